//! Defensive decoding of what the node says about past transactions.
//!
//! Owns `FetchedTx` and the decoder of a `getTransaction` result (base64 encoding: the
//! signed bytes, so the signatures can be checked here), and the
//! parser of the inline memo summary `getSignaturesForAddress` returns. The node is not
//! trusted to be well-formed: every shape surprise is a `ChainError`, never a panic, and
//! indices into account lists are checked. Only fields we need are modelled, so additions to
//! the RPC response do not break decoding.

use base64::Engine as _;
use bincode::Options as _;
use serde::Deserialize;
use serde_json::Value;
use solana_transaction::versioned::VersionedTransaction;

use crate::anchor_tx::PACKET_DATA_SIZE;
use crate::error::ChainError;

const METHOD: &str = "getTransaction";

/// SPL Memo v1, still deployed and accepted as a memo source when reading.
pub const MEMO_V1_PROGRAM_ID: &str = "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo";
/// SPL Memo v3, the program we write to.
pub const MEMO_V3_PROGRAM_ID: &str = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr";

/// A transaction as the chain recorded it, reduced to what anchoring needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedTx {
    pub signature: String,
    pub slot: u64,
    pub block_time: Option<i64>,
    /// First account key: the account that paid the fee and signed first.
    pub fee_payer: String,
    /// `meta.err == null`. A transaction whose status meta is missing is reported as not
    /// succeeded, because success cannot be proven.
    pub succeeded: bool,
    pub fee_lamports: u64,
    /// Data of every top-level instruction to SPL Memo v1 or v3, in order, UTF-8 lossy.
    /// Memos written through CPI by another program are not included: an anchor is a
    /// top-level memo instruction signed by the issuer key.
    pub memos: Vec<String>,
}

impl FetchedTx {
    /// The transaction as the verification verdict sees it (`domain::verdict`); `finalized`
    /// is the commitment it was read at. One conversion for the API and `credential-verify`.
    pub fn into_seen(self, finalized: bool) -> domain::verdict::SeenTx {
        domain::verdict::SeenTx {
            slot: self.slot,
            block_time: self
                .block_time
                .and_then(|t| chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0)),
            finalized,
            succeeded: self.succeeded,
            fee_payer: self.fee_payer,
            memos: self.memos,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfirmedTx {
    slot: u64,
    #[serde(default)]
    block_time: Option<i64>,
    #[serde(default)]
    meta: Option<RawMeta>,
    /// `[wire bytes in base64, "base64"]`: the transaction exactly as signed.
    transaction: (String, String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    // `null` on success; any other value (object or string) is the error.
    #[serde(default)]
    err: Value,
    fee: u64,
    #[serde(default)]
    loaded_addresses: Option<RawLoadedAddresses>,
}

#[derive(Deserialize)]
struct RawLoadedAddresses {
    #[serde(default)]
    writable: Vec<String>,
    #[serde(default)]
    readonly: Vec<String>,
}

fn unexpected(detail: impl Into<String>) -> ChainError {
    ChainError::UnexpectedResponse {
        method: METHOD,
        detail: detail.into(),
    }
}

/// Length of the compact-u16 prefix that encodes `n` in Solana's wire format.
fn short_vec_len(n: usize) -> usize {
    match n {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        _ => 3,
    }
}

/// Decodes a `getTransaction` result requested with `encoding: "base64"`. `null` (not found
/// at that commitment) is `Ok(None)`.
///
/// The node is not trusted with what the transaction says: its first signature must be the
/// one asked for (a node answering with another transaction is an error), and every
/// signature must verify over the message bytes as received
/// (`domain::verdict::transaction_authentic`), so the fee payer and the memos read from
/// that message are what the signers signed; a node that edits them is
/// [`ChainError::Unauthentic`]. The slot, block time, status and fee come from the node
/// alone (they are not signed); see `transaction_authentic` for what that leaves open.
/// Keys loaded from address lookup tables come from the node too (the signers signed only a
/// table's address and an index into it): a program reached through one is never read as
/// the memo program, so a node cannot turn signed bytes sent to another program into a memo
/// by naming the memo program there. An anchor never uses a lookup table.
pub fn decode_get_transaction(
    requested_signature: &str,
    result: Value,
) -> Result<Option<FetchedTx>, ChainError> {
    if result.is_null() {
        return Ok(None);
    }
    let raw: RawConfirmedTx =
        serde_json::from_value(result).map_err(|e| unexpected(format!("shape: {e}")))?;
    let (blob, encoding) = &raw.transaction;
    if encoding != "base64" {
        return Err(unexpected(format!(
            "encoding {encoding:?}, asked for base64"
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|e| unexpected(format!("transaction is not base64: {e}")))?;
    let tx: VersionedTransaction = bincode::DefaultOptions::new()
        .with_limit(PACKET_DATA_SIZE as u64)
        .with_fixint_encoding()
        .reject_trailing_bytes()
        .deserialize(&bytes)
        .map_err(|e| unexpected(format!("transaction bytes: {e}")))?;
    let first_signature = tx
        .signatures
        .first()
        .ok_or_else(|| unexpected("transaction without signatures"))?
        .to_string();
    if first_signature != requested_signature {
        return Err(unexpected(format!(
            "asked for {requested_signature}, got {first_signature}"
        )));
    }
    let keys = tx.message.static_account_keys();
    // The message is what follows the signatures, as received: checked as sent, never
    // re-serialised.
    let signed = bytes
        .get(short_vec_len(tx.signatures.len()) + 64 * tx.signatures.len()..)
        .ok_or_else(|| unexpected("transaction shorter than its signatures"))?;
    let required = usize::from(tx.message.header().num_required_signatures);
    // Exactly one signature per required signer, each signer a key of the message: what the
    // runtime itself demands, so nothing a node adds or drops passes as signed.
    if tx.signatures.len() != required || keys.len() < required {
        return Err(ChainError::Unauthentic {
            method: METHOD,
            detail: format!(
                "transaction {requested_signature} as returned has {} signatures for {required} \
                 required signers and {} keys",
                tx.signatures.len(),
                keys.len()
            ),
        });
    }
    let signers: Vec<[u8; 32]> = keys.iter().take(required).map(|k| k.to_bytes()).collect();
    let signatures: Vec<[u8; 64]> = tx.signatures.iter().map(|s| *s.as_array()).collect();
    if !domain::verdict::transaction_authentic(signed, &signers, &signatures) {
        return Err(ChainError::Unauthentic {
            method: METHOD,
            detail: format!(
                "transaction {requested_signature} as returned is not what its signers signed \
                 (a signature does not verify over its message)"
            ),
        });
    }
    let fee_payer = keys
        .first()
        .ok_or_else(|| unexpected("transaction without account keys"))?
        .to_string();

    // Instruction indices address static keys, then loaded writable, then loaded readonly.
    let loaded = raw.meta.as_ref().and_then(|m| m.loaded_addresses.as_ref());
    let key_at = |index: usize| -> Option<String> {
        if let Some(key) = keys.get(index) {
            return Some(key.to_string());
        }
        let loaded = loaded?;
        loaded
            .writable
            .iter()
            .chain(loaded.readonly.iter())
            .nth(index - keys.len())
            .cloned()
    };

    let mut memos = Vec::new();
    for (i, ix) in tx.message.instructions().iter().enumerate() {
        let index = usize::from(ix.program_id_index);
        let program = key_at(index).ok_or_else(|| {
            unexpected(format!(
                "instruction {i} names program index {index} out of range"
            ))
        })?;
        let signed_program = index < keys.len();
        if signed_program && (program == MEMO_V3_PROGRAM_ID || program == MEMO_V1_PROGRAM_ID) {
            memos.push(String::from_utf8_lossy(&ix.data).into_owned());
        }
    }

    let (succeeded, fee_lamports) = match &raw.meta {
        Some(meta) => (meta.err.is_null(), meta.fee),
        None => (false, 0),
    };
    Ok(Some(FetchedTx {
        signature: requested_signature.to_string(),
        slot: raw.slot,
        block_time: raw.block_time,
        fee_payer,
        succeeded,
        fee_lamports,
        memos,
    }))
}

/// Splits the memo summary of `getSignaturesForAddress` (`"[len] text; [len] text"`, where
/// `len` is the memo's byte length) into the memo texts. Uses the byte length, so a memo
/// containing `"; "` is not split. Returns `None` when the summary does not follow that
/// format (e.g. `(unparseable)` for non-UTF-8 memos); callers that need certainty use
/// `fetch_transaction`.
pub fn parse_inline_memos(summary: &str) -> Option<Vec<String>> {
    let mut memos = Vec::new();
    let mut rest = summary;
    loop {
        let after_open = rest.strip_prefix('[')?;
        let close = after_open.find(']')?;
        let len: usize = after_open.get(..close)?.parse().ok()?;
        let body = after_open.get(close + 1..)?.strip_prefix(' ')?;
        let text = body.get(..len)?;
        memos.push(text.to_string());
        rest = body.get(len..)?;
        if rest.is_empty() {
            return Some(memos);
        }
        rest = rest.strip_prefix("; ")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use solana_sdk::hash::Hash;
    use solana_sdk::message::compiled_instruction::CompiledInstruction;
    use solana_sdk::message::{v0, Message, MessageHeader, VersionedMessage};
    use solana_sdk::pubkey::Pubkey;
    use solana_sdk::signature::{Keypair, Signature};
    use solana_sdk::signer::Signer;
    use std::str::FromStr;

    const CB: &str = "ComputeBudget111111111111111111111111111111";

    fn key(s: &str) -> Pubkey {
        Pubkey::from_str(s).unwrap()
    }

    /// A legacy message paid by `payer`: a compute-budget instruction, then `data` to
    /// `program` (instruction 1 names account index 2).
    fn message(payer: &Keypair, program: &str, data: &[u8]) -> VersionedMessage {
        VersionedMessage::Legacy(Message {
            header: MessageHeader {
                num_required_signatures: 1,
                num_readonly_signed_accounts: 0,
                num_readonly_unsigned_accounts: 2,
            },
            account_keys: vec![payer.pubkey(), key(CB), key(program)],
            recent_blockhash: Hash::new_from_array([7; 32]),
            instructions: vec![
                CompiledInstruction::new_from_raw_parts(1, vec![2, 0, 0, 0], vec![]),
                CompiledInstruction::new_from_raw_parts(2, data.to_vec(), vec![0]),
            ],
        })
    }

    /// The wire bytes of `message` signed by `payer`, and its signature.
    fn signed(payer: &Keypair, message: &VersionedMessage) -> (Vec<u8>, String) {
        let sig = payer.sign_message(&bincode::serialize(message).unwrap());
        let tx = VersionedTransaction {
            signatures: vec![sig],
            message: message.clone(),
        };
        (bincode::serialize(&tx).unwrap(), sig.to_string())
    }

    fn result(wire: &[u8]) -> Value {
        json!({
            "slot": 77,
            "blockTime": 1_700_000_000,
            "meta": {
                "err": null,
                "fee": 5_012,
                "status": {"Ok": null},
                "preBalances": [1, 2, 3],
                "postBalances": [1, 2, 3],
                "loadedAddresses": {"writable": [], "readonly": []},
                "logMessages": [],
            },
            "transaction": [base64::engine::general_purpose::STANDARD.encode(wire), "base64"],
            "version": "legacy",
        })
    }

    /// A getTransaction result for a memo `data` paid by a fresh key: (result, signature, payer).
    fn sample(data: &[u8]) -> (Value, String, String) {
        let payer = Keypair::new();
        let (wire, sig) = signed(&payer, &message(&payer, MEMO_V3_PROGRAM_ID, data));
        (result(&wire), sig, payer.pubkey().to_string())
    }

    #[test]
    fn decodes_memo_payer_fee_and_success() {
        let (v, sig, payer) = sample(b"ca1:c:x");
        let tx = decode_get_transaction(&sig, v).unwrap().unwrap();
        assert_eq!(tx.memos, vec!["ca1:c:x".to_string()]);
        assert_eq!(tx.fee_payer, payer);
        assert!(tx.succeeded);
        assert_eq!(tx.fee_lamports, 5_012);
        assert_eq!(tx.slot, 77);
        assert_eq!(tx.block_time, Some(1_700_000_000));
    }

    #[test]
    fn null_is_not_found() {
        assert_eq!(decode_get_transaction("sig", Value::Null).unwrap(), None);
    }

    #[test]
    fn failed_and_meta_less_transactions_are_not_succeeded() {
        let (mut v, sig, _) = sample(b"m");
        v["meta"]["err"] = json!({"InstructionError": [1, {"Custom": 1}]});
        assert!(!decode_get_transaction(&sig, v).unwrap().unwrap().succeeded);
        let (mut v, sig, _) = sample(b"m");
        v["meta"] = Value::Null;
        let tx = decode_get_transaction(&sig, v).unwrap().unwrap();
        assert!(!tx.succeeded);
        assert_eq!(tx.fee_lamports, 0);
    }

    #[test]
    fn memo_v1_and_invalid_utf8_are_read_lossily() {
        let payer = Keypair::new();
        let (wire, sig) = signed(
            &payer,
            &message(&payer, MEMO_V1_PROGRAM_ID, &[0x66, 0xff, 0x6f]),
        );
        let tx = decode_get_transaction(&sig, result(&wire))
            .unwrap()
            .unwrap();
        assert_eq!(tx.memos, vec!["f\u{fffd}o".to_string()]);
    }

    /// Instruction indices go on into the loaded keys (an index past them is an error), but a
    /// program the node says it loaded is not the signers' word: never read as a memo.
    #[test]
    fn a_memo_program_named_only_by_the_node_is_not_a_memo() {
        let payer = Keypair::new();
        let message = VersionedMessage::V0(v0::Message {
            header: MessageHeader {
                num_required_signatures: 1,
                num_readonly_signed_accounts: 0,
                num_readonly_unsigned_accounts: 1,
            },
            account_keys: vec![payer.pubkey(), key(CB)],
            recent_blockhash: Hash::new_from_array([7; 32]),
            instructions: vec![CompiledInstruction::new_from_raw_parts(
                3,
                b"via lookup".to_vec(),
                vec![0],
            )],
            address_table_lookups: vec![v0::MessageAddressTableLookup {
                account_key: Pubkey::new_from_array([5; 32]),
                writable_indexes: vec![0],
                readonly_indexes: vec![1],
            }],
        });
        let (wire, sig) = signed(&payer, &message);
        let mut v = result(&wire);
        v["meta"]["loadedAddresses"] = json!({"writable": ["W1111111111111111111111111111111"], "readonly": [MEMO_V3_PROGRAM_ID]});
        let tx = decode_get_transaction(&sig, v.clone()).unwrap().unwrap();
        assert!(tx.memos.is_empty(), "{:?}", tx.memos);
        assert_eq!(tx.fee_payer, payer.pubkey().to_string());
        // Without the loaded keys the program index is out of range: an error, not a guess.
        v["meta"]["loadedAddresses"] = json!({"writable": [], "readonly": []});
        assert!(decode_get_transaction(&sig, v).is_err());
    }

    /// What a lying node would show for a real signature: another memo, another fee payer.
    /// The signatures no longer verify over the message, so the decoder refuses.
    #[test]
    fn an_edited_memo_or_fee_payer_is_not_authentic() {
        let payer = Keypair::new();
        let genuine = message(&payer, MEMO_V3_PROGRAM_ID, b"ca1:c:genuine");
        let (_, sig) = signed(&payer, &genuine);
        let real_sig = Signature::from_str(&sig).unwrap();
        let other_memo = message(&payer, MEMO_V3_PROGRAM_ID, b"ca1:c:forgery");
        let other_payer = message(&Keypair::new(), MEMO_V3_PROGRAM_ID, b"ca1:c:genuine");
        for lie in [other_memo, other_payer] {
            let wire = bincode::serialize(&VersionedTransaction {
                signatures: vec![real_sig],
                message: lie,
            })
            .unwrap();
            let err = decode_get_transaction(&sig, result(&wire)).unwrap_err();
            assert!(matches!(err, ChainError::Unauthentic { .. }), "{err}");
        }
    }

    /// A node that adds a signature the message does not require (or claims more required
    /// signers than it sends) is refused, even when every signature it sends verifies.
    #[test]
    fn a_signature_count_other_than_the_required_one_is_not_authentic() {
        let payer = Keypair::new();
        let genuine = message(&payer, MEMO_V3_PROGRAM_ID, b"ca1:c:genuine");
        let (_, sig) = signed(&payer, &genuine);
        let real_sig = Signature::from_str(&sig).unwrap();
        let extra = bincode::serialize(&VersionedTransaction {
            signatures: vec![real_sig, real_sig],
            message: genuine.clone(),
        })
        .unwrap();
        let err = decode_get_transaction(&sig, result(&extra)).unwrap_err();
        assert!(matches!(err, ChainError::Unauthentic { .. }), "{err}");
        let mut two_required = genuine.clone();
        if let VersionedMessage::Legacy(m) = &mut two_required {
            m.header.num_required_signatures = 2;
        }
        let (wire, sig2) = signed(&payer, &two_required);
        let err = decode_get_transaction(&sig2, result(&wire)).unwrap_err();
        assert!(matches!(err, ChainError::Unauthentic { .. }), "{err}");
    }

    #[test]
    fn shape_surprises_are_errors_not_panics() {
        let payer = Keypair::new();
        let (wire, sig) = signed(&payer, &message(&payer, MEMO_V3_PROGRAM_ID, b"m"));
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut bad_index = message(&payer, MEMO_V3_PROGRAM_ID, b"m");
        if let VersionedMessage::Legacy(m) = &mut bad_index {
            m.instructions[1].program_id_index = 9;
        }
        let (bad_index_wire, bad_index_sig) = signed(&payer, &bad_index);
        let mut trailing = wire.clone();
        trailing.push(0);
        let unsigned = bincode::serialize(&VersionedTransaction {
            signatures: vec![],
            message: message(&payer, MEMO_V3_PROGRAM_ID, b"m"),
        })
        .unwrap();
        type Mutation = Box<dyn Fn(&mut Value)>;
        let wire_of = |bytes: Vec<u8>| -> Mutation {
            Box::new(move |v| v["transaction"] = json!([b64(&bytes), "base64"]))
        };
        let mutations: Vec<(&str, Mutation)> = vec![
            ("truncated", wire_of(wire[..wire.len() - 1].to_vec())),
            ("trailing bytes", wire_of(trailing)),
            ("no signatures", wire_of(unsigned)),
            (
                "json encoding",
                Box::new(|v| v["transaction"][1] = json!("json")),
            ),
            (
                "not base64",
                Box::new(|v| v["transaction"][0] = json!("!!")),
            ),
            (
                "object",
                Box::new(|v| v["transaction"] = json!({"message": {}})),
            ),
            ("fee", Box::new(|v| v["meta"]["fee"] = json!("lots"))),
            ("slot", Box::new(|v| v["slot"] = json!(-5))),
            ("string", Box::new(|v| *v = json!("a string"))),
            ("array", Box::new(|v| *v = json!([1, 2]))),
        ];
        for (name, mutate) in &mutations {
            let mut v = result(&wire);
            mutate(&mut v);
            let err = decode_get_transaction(&sig, v).unwrap_err();
            assert!(
                matches!(err, ChainError::UnexpectedResponse { .. }),
                "{name}: {err}"
            );
        }
        // Another transaction than the one asked for.
        let err = decode_get_transaction(&bad_index_sig, result(&wire)).unwrap_err();
        assert!(
            matches!(err, ChainError::UnexpectedResponse { .. }),
            "{err}"
        );
        // A signed transaction naming a program index out of range.
        let err = decode_get_transaction(&bad_index_sig, result(&bad_index_wire)).unwrap_err();
        assert!(
            matches!(err, ChainError::UnexpectedResponse { .. }),
            "{err}"
        );
    }

    #[test]
    fn inline_memo_summaries_split_by_length() {
        assert_eq!(parse_inline_memos("[3] abc"), Some(vec!["abc".into()]));
        assert_eq!(
            parse_inline_memos("[4] a; b; [0] "),
            Some(vec!["a; b".into(), "".into()])
        );
        assert_eq!(parse_inline_memos("[2] é"), Some(vec!["é".into()]));
        assert_eq!(parse_inline_memos("[5] (unparseable)"), None);
        assert_eq!(parse_inline_memos("abc"), None);
        assert_eq!(parse_inline_memos("[9] short"), None);
        assert_eq!(parse_inline_memos("[1] é"), None);
        assert_eq!(parse_inline_memos(""), None);
        assert_eq!(parse_inline_memos("[3] abc;"), None);
    }
}
