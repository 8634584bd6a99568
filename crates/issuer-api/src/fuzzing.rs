//! Fuzz properties of the request parsers: what the cargo-fuzz target `issue_request`
//! (fuzz/) checks on every input, kept here so the stable suite replays saved findings
//! (`fuzz/regressions/issue_request/`) and runs a proptest over the same function.
//!
//! The property: whatever the bytes, the single-issuance JSON parser and the bulk JSON and
//! NDJSON parsers never panic; every refusal is a 4xx with a documented code (a 5xx from a
//! request body would mean a parser bug reached the client as "our fault"); anything
//! accepted satisfies the limits the rest of the service relies on.

use actix_web::ResponseError;

use crate::error::{all_codes, ApiError};
use crate::request::MAX_METADATA_BYTES;

/// Runs every body parser on `data` and asserts the property (panics on a violation, which
/// is how a fuzzer learns of it).
pub fn request_parsers(data: &[u8]) {
    match crate::request::parse_json_request(data) {
        Ok(req) => {
            assert!(req.fields.title.chars().count() <= 512, "title limit");
            assert!(
                req.fields.credential_type.chars().count() <= 64,
                "type limit"
            );
            assert!(req.fields.metadata.is_object(), "metadata is an object");
            let size = serde_json::to_vec(&req.fields.metadata).map_or(usize::MAX, |v| v.len());
            assert!(size <= MAX_METADATA_BYTES, "metadata limit");
            assert!(
                domain::Serial::parse(req.fields.serial.as_str()).is_ok(),
                "accepted serial re-parses"
            );
        }
        Err(e) => refusal(&e),
    }
    for parsed in [
        crate::bulk::parse_json(data),
        crate::bulk::parse_ndjson(data),
    ] {
        match parsed {
            Ok(items) => {
                assert!(!items.is_empty() && items.len() <= 10_000, "item count");
                for item in items {
                    if let Err(e) = item {
                        refusal(&e);
                    }
                }
            }
            Err(e) => refusal(&e),
        }
    }
}

fn refusal(e: &ApiError) {
    assert!(
        e.status_code().is_client_error(),
        "a body got {} ({})",
        e.status_code(),
        e.code()
    );
    assert!(
        all_codes().any(|c| c == e.code()),
        "undocumented code {}",
        e.code()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// JSON-ish documents: the right field names with hostile values, so the fuzz gets past
    /// the syntax check and into the field parsers.
    fn hostile_body() -> impl Strategy<Value = Vec<u8>> {
        let value = prop_oneof![
            Just("null".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            ".{0,80}".prop_map(|s| serde_json::Value::String(s).to_string()),
            Just("\"2026-02-30T12:00:00Z\"".to_string()),
            Just("\"2026-06-30T12:00:00Z\"".to_string()),
            Just("\"JVBERi0xLjcK\"".to_string()),
            Just("{\"a\":[1,{\"b\":null}]}".to_string()),
            Just("[]".to_string()),
        ];
        let field = prop_oneof![
            Just("recipient_id"),
            Just("issued_at"),
            Just("serial"),
            Just("credential_type"),
            Just("title"),
            Just("metadata"),
            Just("file_base64"),
            Just("file_sha256"),
            Just("credentials"),
            Just("bogus"),
        ];
        proptest::collection::vec((field, value), 0..9).prop_map(|pairs| {
            let inner: Vec<String> = pairs
                .into_iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!("{{{}}}", inner.join(",")).into_bytes()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn arbitrary_bytes_are_refused_with_a_documented_4xx(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            request_parsers(&data);
        }

        #[test]
        fn hostile_field_values_are_refused_with_a_documented_4xx(data in hostile_body()) {
            request_parsers(&data);
            let wrapped = format!("{{\"credentials\":[{}]}}", String::from_utf8_lossy(&data));
            request_parsers(wrapped.as_bytes());
        }
    }

    #[test]
    fn saved_findings_and_seeds_stay_fixed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/issue_request");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            request_parsers(&data);
            n += 1;
        }
        assert!(n > 0, "seeds present");
    }

    #[test]
    fn a_valid_request_passes_the_property() {
        let ok = br#"{"recipient_id":"s-1","issued_at":"2026-06-30T12:00:00Z","serial":"S-1","credential_type":"diploma","title":"BSc","file_base64":"JVBERi0xLjcK"}"#;
        assert!(crate::request::parse_json_request(ok).is_ok());
        request_parsers(ok);
    }
}
