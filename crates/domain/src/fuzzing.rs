//! The properties the fuzz targets (`fuzz/`, cargo-fuzz on nightly) check, kept here so the
//! stable test suite replays every saved finding through exactly the same code
//! (`tests/fuzz_regressions.rs`). Each function takes arbitrary bytes, as a request body, a
//! header or a chain response may carry them, and panics only when a property breaks: that
//! panic is the finding.

use crate::api_key::{ApiKey, API_KEY_LEN, API_KEY_PREFIX};
use crate::memo::{decode, decode_rpc_memo_field, Decoded};
use crate::proof::{check_offline, ProofBundle};

/// The memo codec: decoding never panics, and whatever decodes as ours re-encodes to
/// exactly the same text (one memo, one encoding, so two readers never disagree).
pub fn memo_decode(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Decoded::Ours(memo) = decode(text) {
        assert_eq!(memo.encode(), text, "decoded memo is not canonical");
    }
    for memo in decode_rpc_memo_field(text) {
        assert!(
            matches!(decode(&memo.encode()), Decoded::Ours(m) if m == memo),
            "a memo from the RPC field does not round-trip"
        );
    }
}

/// The strict proof-bundle reader and offline checker: never a panic, and a bundle that is
/// accepted serialises back to a document that is accepted as the same bundle.
pub fn proof_bundle(data: &[u8]) {
    let Ok(bundle) = ProofBundle::from_json(data) else {
        return;
    };
    let _ = check_offline(&bundle, None);
    let _ = check_offline(&bundle, Some(data));
    let text = match serde_json::to_vec(&bundle) {
        Ok(text) => text,
        Err(e) => panic!("a parsed bundle does not serialise: {e}"),
    };
    match ProofBundle::from_json(&text) {
        Ok(again) => assert_eq!(again, bundle, "bundle round trip changed it"),
        Err(e) => panic!("a serialised bundle does not parse: {e}"),
    }
}

/// The API-key parser: never a panic, and anything accepted has the documented shape.
pub fn api_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((id, _secret)) = ApiKey::parse(text) {
        assert_eq!(text.len(), API_KEY_LEN);
        assert!(text.starts_with(API_KEY_PREFIX));
        assert_eq!(
            text.get(API_KEY_PREFIX.len()..API_KEY_PREFIX.len() + 16),
            Some(id.as_str())
        );
    }
}
