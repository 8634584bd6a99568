//! Defensive decoding of what the node says about past transactions.
//!
//! Owns `FetchedTx` and the decoder of a `getTransaction` result (JSON encoding), and the
//! parser of the inline memo summary `getSignaturesForAddress` returns. The node is not
//! trusted to be well-formed: every shape surprise is a `ChainError`, never a panic, and
//! indices into account lists are checked. Only fields we need are modelled, so additions to
//! the RPC response do not break decoding.

use serde::Deserialize;
use serde_json::Value;

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
    transaction: RawTransaction,
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

#[derive(Deserialize)]
struct RawTransaction {
    signatures: Vec<String>,
    message: RawMessage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessage {
    account_keys: Vec<String>,
    instructions: Vec<RawInstruction>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInstruction {
    program_id_index: usize,
    /// base58 in the `json` encoding.
    data: String,
}

fn unexpected(detail: impl Into<String>) -> ChainError {
    ChainError::UnexpectedResponse {
        method: METHOD,
        detail: detail.into(),
    }
}

/// Decodes a `getTransaction` result requested with `encoding: "json"`. `null` (not found at
/// that commitment) is `Ok(None)`. The returned transaction's first signature must be the
/// one asked for: a node answering with another transaction is an error.
pub fn decode_get_transaction(
    requested_signature: &str,
    result: Value,
) -> Result<Option<FetchedTx>, ChainError> {
    if result.is_null() {
        return Ok(None);
    }
    let raw: RawConfirmedTx =
        serde_json::from_value(result).map_err(|e| unexpected(format!("shape: {e}")))?;
    let first_signature = raw
        .transaction
        .signatures
        .first()
        .ok_or_else(|| unexpected("transaction without signatures"))?;
    if first_signature != requested_signature {
        return Err(unexpected(format!(
            "asked for {requested_signature}, got {first_signature}"
        )));
    }
    let message = &raw.transaction.message;
    let fee_payer = message
        .account_keys
        .first()
        .ok_or_else(|| unexpected("transaction without account keys"))?
        .clone();

    // Instruction indices address static keys, then loaded writable, then loaded readonly.
    let loaded = raw.meta.as_ref().and_then(|m| m.loaded_addresses.as_ref());
    let key_at = |index: usize| -> Option<&str> {
        if let Some(key) = message.account_keys.get(index) {
            return Some(key.as_str());
        }
        let statics = message.account_keys.len();
        let loaded = loaded?;
        loaded
            .writable
            .iter()
            .chain(loaded.readonly.iter())
            .nth(index - statics)
            .map(String::as_str)
    };

    let mut memos = Vec::new();
    for (i, ix) in message.instructions.iter().enumerate() {
        let program = key_at(ix.program_id_index).ok_or_else(|| {
            unexpected(format!(
                "instruction {i} names program index {} out of range",
                ix.program_id_index
            ))
        })?;
        if program == MEMO_V3_PROGRAM_ID || program == MEMO_V1_PROGRAM_ID {
            let data = bs58::decode(&ix.data)
                .into_vec()
                .map_err(|e| unexpected(format!("instruction {i} data is not base58: {e}")))?;
            memos.push(String::from_utf8_lossy(&data).into_owned());
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

    const SIG: &str = "sig1";
    const PAYER: &str = "Payer11111111111111111111111111111111111111";
    const CB: &str = "ComputeBudget111111111111111111111111111111";

    fn sample(memo_data: &str) -> Value {
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
            "transaction": {
                "signatures": [SIG],
                "message": {
                    "accountKeys": [PAYER, CB, MEMO_V3_PROGRAM_ID],
                    "header": {"numRequiredSignatures": 1, "numReadonlySignedAccounts": 0, "numReadonlyUnsignedAccounts": 2},
                    "recentBlockhash": "4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofM",
                    "instructions": [
                        {"programIdIndex": 1, "accounts": [], "data": "HnkkG7", "stackHeight": null},
                        {"programIdIndex": 2, "accounts": [0], "data": memo_data, "stackHeight": null},
                    ],
                },
            },
            "version": "legacy",
        })
    }

    #[test]
    fn decodes_memo_payer_fee_and_success() {
        let data = bs58::encode("ca1:c:x").into_string();
        let tx = decode_get_transaction(SIG, sample(&data)).unwrap().unwrap();
        assert_eq!(tx.memos, vec!["ca1:c:x".to_string()]);
        assert_eq!(tx.fee_payer, PAYER);
        assert!(tx.succeeded);
        assert_eq!(tx.fee_lamports, 5_012);
        assert_eq!(tx.slot, 77);
        assert_eq!(tx.block_time, Some(1_700_000_000));
    }

    #[test]
    fn null_is_not_found() {
        assert_eq!(decode_get_transaction(SIG, Value::Null).unwrap(), None);
    }

    #[test]
    fn failed_and_meta_less_transactions_are_not_succeeded() {
        let data = bs58::encode("m").into_string();
        let mut v = sample(&data);
        v["meta"]["err"] = json!({"InstructionError": [1, {"Custom": 1}]});
        assert!(!decode_get_transaction(SIG, v).unwrap().unwrap().succeeded);
        let mut v = sample(&data);
        v["meta"] = Value::Null;
        let tx = decode_get_transaction(SIG, v).unwrap().unwrap();
        assert!(!tx.succeeded);
        assert_eq!(tx.fee_lamports, 0);
    }

    #[test]
    fn memo_v1_and_invalid_utf8_are_read_lossily() {
        let mut v = sample(&bs58::encode([0x66, 0xff, 0x6f]).into_string());
        v["transaction"]["message"]["accountKeys"][2] = json!(MEMO_V1_PROGRAM_ID);
        let tx = decode_get_transaction(SIG, v).unwrap().unwrap();
        assert_eq!(tx.memos, vec!["f\u{fffd}o".to_string()]);
    }

    #[test]
    fn loaded_addresses_extend_the_key_space() {
        let mut v = sample(&bs58::encode("via lookup").into_string());
        v["transaction"]["message"]["accountKeys"] = json!([PAYER, CB]);
        v["meta"]["loadedAddresses"] = json!({"writable": ["W1111111111111111111111111111111"], "readonly": [MEMO_V3_PROGRAM_ID]});
        v["transaction"]["message"]["instructions"][1]["programIdIndex"] = json!(3);
        let tx = decode_get_transaction(SIG, v).unwrap().unwrap();
        assert_eq!(tx.memos, vec!["via lookup".to_string()]);
    }

    #[test]
    fn shape_surprises_are_errors_not_panics() {
        let data = bs58::encode("m").into_string();
        type Mutation = Box<dyn Fn(&mut Value)>;
        let mutations: Vec<Mutation> = vec![
            Box::new(|v| {
                v["transaction"]["message"]["instructions"][1]["programIdIndex"] = json!(9)
            }),
            Box::new(|v| {
                v["transaction"]["message"]["instructions"][1]["programIdIndex"] = json!(-1)
            }),
            Box::new(|v| v["transaction"]["message"]["instructions"][1]["data"] = json!("0OIl")),
            Box::new(|v| v["transaction"]["message"]["accountKeys"] = json!([])),
            Box::new(|v| v["transaction"]["signatures"] = json!([])),
            Box::new(|v| v["transaction"]["signatures"] = json!(["other"])),
            Box::new(|v| v["transaction"] = json!(["base64blob", "base64"])),
            Box::new(|v| v["meta"]["fee"] = json!("lots")),
            Box::new(|v| v["slot"] = json!(-5)),
            Box::new(|v| *v = json!("a string")),
            Box::new(|v| *v = json!([1, 2])),
        ];
        for (i, mutate) in mutations.iter().enumerate() {
            let mut v = sample(&data);
            mutate(&mut v);
            let err = decode_get_transaction(SIG, v).unwrap_err();
            assert!(
                matches!(err, ChainError::UnexpectedResponse { .. }),
                "mutation {i}: {err}"
            );
        }
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
