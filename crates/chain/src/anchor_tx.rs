//! Building, signing and (de)serializing SPL Memo anchor transactions.
//!
//! Owns the exact instruction list of an anchor transaction and its wire bytes. Signing is a
//! pure function of (keypair, memo, blockhash, price) so the relay can store the bytes, the
//! signature and `lastValidBlockHeight` *before* the first send, and every later send of the
//! same bytes is the same transaction that the cluster deduplicates by signature.

use std::str::FromStr;

use bincode::Options;
use solana_compute_budget_interface::ComputeBudgetInstruction;
use solana_sdk::hash::Hash;
use solana_sdk::signer::Signer;
use solana_transaction::Transaction;

use crate::error::ChainError;
use crate::fees::{compute_unit_limit_for_memo, fee_lamports, MAX_MEMO_BYTES};
use crate::keypair::AnchorKeypair;

/// Largest serialized transaction the network accepts (IPv6 MTU minus headers).
pub const PACKET_DATA_SIZE: usize = 1_232;

/// A signed anchor transaction, ready to be stored and (re)sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAnchorTx {
    /// Wire format (bincode of a legacy `Transaction`), exactly the bytes that are sent.
    pub bytes: Vec<u8>,
    /// First signature, base58: the transaction's id.
    pub signature: String,
    /// After this block height the blockhash has expired and the transaction can never land.
    pub last_valid_block_height: u64,
    pub compute_unit_limit: u32,
    pub compute_unit_price_micro_lamports: u64,
}

impl SignedAnchorTx {
    /// Lamports this transaction will be charged if it lands (5,000 per signature plus
    /// `ceil(limit × price / 1e6)`). The priority part is charged on the *requested* limit,
    /// not on the units actually used.
    pub fn fee_lamports_estimate(&self) -> u64 {
        fee_lamports(
            signature_count(&self.bytes),
            self.compute_unit_limit,
            self.compute_unit_price_micro_lamports,
        )
    }
}

/// Number of signatures in wire bytes (a compact-u16 prefix). Falls back to 1 for bytes that
/// are not a transaction, since every anchor transaction has exactly one signer.
fn signature_count(bytes: &[u8]) -> u64 {
    match bytes.first() {
        // One-byte compact-u16 (< 0x80); anything else is not one of ours.
        Some(&n) if n > 0 && n < 0x80 => u64::from(n),
        _ => 1,
    }
}

/// Builds and signs the anchor transaction for `memo`. Pure: the blockhash and price come
/// from the caller (`ChainClient::build_memo_transaction` fetches them).
///
/// Instructions: set_compute_unit_limit (sized to the memo), set_compute_unit_price (only when
/// the price is non-zero: a zero price instruction would cost CUs for nothing), and SPL Memo
/// v3 with the payer as required signer, so the memo is provably written by the issuer key.
pub fn sign_memo_transaction(
    payer: &AnchorKeypair,
    memo: &str,
    recent_blockhash: &str,
    last_valid_block_height: u64,
    compute_unit_price_micro_lamports: u64,
) -> Result<SignedAnchorTx, ChainError> {
    sign_memo_transaction_with_limit(
        payer,
        memo,
        recent_blockhash,
        last_valid_block_height,
        compute_unit_price_micro_lamports,
        compute_unit_limit_for_memo(memo.len()),
    )
}

/// `sign_memo_transaction` with an explicit compute-unit limit (measurements use the maximum).
pub(crate) fn sign_memo_transaction_with_limit(
    payer: &AnchorKeypair,
    memo: &str,
    recent_blockhash: &str,
    last_valid_block_height: u64,
    compute_unit_price_micro_lamports: u64,
    compute_unit_limit: u32,
) -> Result<SignedAnchorTx, ChainError> {
    if memo.len() > MAX_MEMO_BYTES {
        return Err(ChainError::MemoTooLong {
            len: memo.len(),
            max: MAX_MEMO_BYTES,
        });
    }
    let blockhash = Hash::from_str(recent_blockhash)
        .map_err(|e| ChainError::InvalidArgument(format!("blockhash {recent_blockhash:?}: {e}")))?;
    let keypair = payer.keypair();
    let payer_pubkey = keypair.pubkey();

    let mut instructions = vec![ComputeBudgetInstruction::set_compute_unit_limit(
        compute_unit_limit,
    )];
    if compute_unit_price_micro_lamports > 0 {
        instructions.push(ComputeBudgetInstruction::set_compute_unit_price(
            compute_unit_price_micro_lamports,
        ));
    }
    instructions.push(spl_memo_interface::instruction::build_memo(
        &spl_memo_interface::v3::id(),
        memo.as_bytes(),
        &[&payer_pubkey],
    ));

    let mut tx = Transaction::new_with_payer(&instructions, Some(&payer_pubkey));
    tx.try_sign(&[keypair], blockhash)
        .map_err(|e| ChainError::Signing(e.to_string()))?;
    let signature = tx
        .signatures
        .first()
        .map(ToString::to_string)
        .ok_or_else(|| ChainError::Signing("signed transaction has no signature".into()))?;
    let bytes = wire_options()
        .serialize(&tx)
        .map_err(|e| ChainError::Signing(format!("serialize: {e}")))?;
    if bytes.len() > PACKET_DATA_SIZE {
        return Err(ChainError::MemoTooLong {
            len: memo.len(),
            max: MAX_MEMO_BYTES,
        });
    }
    Ok(SignedAnchorTx {
        bytes,
        signature,
        last_valid_block_height,
        compute_unit_limit,
        compute_unit_price_micro_lamports,
    })
}

/// Parses wire bytes back into a transaction, refusing anything that is not exactly one
/// well-formed legacy transaction within the packet size (the bytes come from our own
/// database, but a corrupted row must be an error, not a panic or a huge allocation).
pub(crate) fn decode_wire_transaction(bytes: &[u8]) -> Result<Transaction, ChainError> {
    if bytes.len() > PACKET_DATA_SIZE {
        return Err(ChainError::InvalidTransaction(format!(
            "{} bytes exceed the {PACKET_DATA_SIZE}-byte packet limit",
            bytes.len()
        )));
    }
    let tx: Transaction = wire_options()
        .deserialize(bytes)
        .map_err(|e| ChainError::InvalidTransaction(e.to_string()))?;
    if tx.signatures.is_empty() {
        return Err(ChainError::InvalidTransaction("no signatures".into()));
    }
    if tx.signatures.len() != usize::from(tx.message.header.num_required_signatures) {
        return Err(ChainError::InvalidTransaction(
            "signature count does not match the message header".into(),
        ));
    }
    Ok(tx)
}

/// Solana's wire encoding: bincode with fixed-width integers (compact-u16 where the types
/// say so), bounded by the packet size, no trailing garbage.
fn wire_options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(PACKET_DATA_SIZE as u64)
        .with_fixint_encoding()
        .reject_trailing_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCKHASH: &str = "4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofM";

    #[test]
    fn signed_memo_round_trips_through_the_wire_format() {
        let payer = AnchorKeypair::generate();
        let tx = sign_memo_transaction(&payer, "ca1:c:test", BLOCKHASH, 42, 1_000).unwrap();
        let decoded = decode_wire_transaction(&tx.bytes).unwrap();
        assert_eq!(decoded.signatures[0].to_string(), tx.signature);
        assert!(decoded.verify().is_ok());
        assert_eq!(
            decoded.message.account_keys[0].to_string(),
            payer.pubkey_base58()
        );
        assert_eq!(decoded.message.instructions.len(), 3);
        let memo_ix = &decoded.message.instructions[2];
        let program = decoded.message.account_keys[usize::from(memo_ix.program_id_index)];
        assert_eq!(program, spl_memo_interface::v3::id());
        assert_eq!(memo_ix.data, b"ca1:c:test");
        assert_eq!(memo_ix.accounts, vec![0]);
        assert_eq!(tx.last_valid_block_height, 42);
        assert_eq!(tx.compute_unit_limit, compute_unit_limit_for_memo(10));
    }

    #[test]
    fn zero_price_omits_the_price_instruction() {
        let payer = AnchorKeypair::generate();
        let tx = sign_memo_transaction(&payer, "m", BLOCKHASH, 1, 0).unwrap();
        let decoded = decode_wire_transaction(&tx.bytes).unwrap();
        assert_eq!(decoded.message.instructions.len(), 2);
        assert_eq!(tx.fee_lamports_estimate(), 5_000);
    }

    #[test]
    fn the_largest_memo_fits_in_a_packet_and_one_more_byte_is_refused() {
        let payer = AnchorKeypair::generate();
        let max = "x".repeat(MAX_MEMO_BYTES);
        let tx = sign_memo_transaction(&payer, &max, BLOCKHASH, 1, u64::MAX).unwrap();
        assert!(tx.bytes.len() <= PACKET_DATA_SIZE, "{}", tx.bytes.len());
        let err = sign_memo_transaction(&payer, &format!("{max}y"), BLOCKHASH, 1, 0).unwrap_err();
        assert!(
            matches!(err, ChainError::MemoTooLong { len: 1001, .. }),
            "{err}"
        );
        assert_eq!(err.class(), domain::retry::ErrorClass::Permanent);
    }

    #[test]
    fn fee_estimate_uses_limit_and_price() {
        let payer = AnchorKeypair::generate();
        let tx = sign_memo_transaction(&payer, "abc", BLOCKHASH, 1, 1_000_000).unwrap();
        assert_eq!(
            tx.fee_lamports_estimate(),
            5_000 + u64::from(tx.compute_unit_limit)
        );
    }

    #[test]
    fn bad_blockhash_and_bad_bytes_are_errors() {
        let payer = AnchorKeypair::generate();
        assert!(matches!(
            sign_memo_transaction(&payer, "m", "not-a-hash", 1, 0),
            Err(ChainError::InvalidArgument(_))
        ));
        let good = sign_memo_transaction(&payer, "m", BLOCKHASH, 1, 0).unwrap();
        for bad in [
            Vec::new(),
            vec![0u8],
            vec![1u8; 10],
            good.bytes[..good.bytes.len() - 1].to_vec(),
            [good.bytes.clone(), vec![0]].concat(),
            vec![0xffu8; 5_000],
        ] {
            assert!(matches!(
                decode_wire_transaction(&bad),
                Err(ChainError::InvalidTransaction(_))
            ));
        }
    }
}
