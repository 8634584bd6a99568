//! Parsing of bulk issuance requests (`POST /v1/credential-batches`): a JSON object
//! `{"credentials": [item, ...]}` or NDJSON (one item per line). Each item is parsed on its
//! own, so one bad item is reported with its index, code and field and never poisons the
//! others. Nothing here touches the database.
//!
//! An item carries its file as `file_base64` (the bytes) or `file_sha256` (the hex SHA-256
//! of the file, computed by the registrar's tooling): only the digest enters the credential
//! hash, so sending the digest lets 10,000 large PDFs go in one small request.

use base64::Engine;
use domain::hash::FileDigest;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::request::{self, IssueCredentialBody, ParsedFields};

/// Most items per request.
pub const MAX_BULK_ITEMS: usize = 10_000;

/// One item of a bulk request.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkItemBody {
    pub recipient_id: Option<String>,
    pub issued_at: Option<String>,
    pub serial: Option<String>,
    pub credential_type: Option<String>,
    pub title: Option<String>,
    #[schema(value_type = Option<Object>)]
    #[serde(default, deserialize_with = "request::bounded_metadata")]
    pub metadata: Option<Value>,
    /// The file, standard base64. Exactly one of `file_base64` and `file_sha256`.
    pub file_base64: Option<String>,
    /// The file's SHA-256, 64 hex characters.
    pub file_sha256: Option<String>,
}

/// JSON body of `POST /v1/credential-batches`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// 1 to 10,000 items.
    #[schema(value_type = Vec<BulkItemBody>)]
    pub credentials: Vec<Value>,
}

/// A parsed item.
#[derive(Debug, Clone)]
pub struct BulkItem {
    pub fields: ParsedFields,
    pub file_digest: FileDigest,
}

/// Each item parsed, or the error that item gets.
pub type ParsedItems = Vec<Result<BulkItem, ApiError>>;

/// Most memory (`bounded`, bytes) one item may take while it is read: a single request's
/// file as base64 (at most 10 MiB of file) plus its fields. An item over it refuses the
/// request before the next is read.
pub const MAX_ITEM_UNITS: usize = 16 * 1024 * 1024;

/// JSON form, read as a stream: the items are counted and each is read under its own budget
/// and parsed before the next one is read, so neither 10,001 items nor one enormous item is
/// ever built whole. A malformed document, an item count outside 1..=10,000 or an item over
/// its budget refuses the whole request (nothing could be reported per item); anything else
/// is per item.
pub fn parse_json(body: &[u8]) -> Result<ParsedItems, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let items = serde::Deserializer::deserialize_map(&mut de, BodyVisitor)
        .and_then(|items| de.end().map(|()| items))
        .map_err(bulk_read_error)?;
    let items = items.ok_or_else(|| request::missing("credentials"))?;
    check_count(items.len())?;
    Ok(items)
}

/// The top-level object: `credentials` and nothing else.
struct BodyVisitor;

impl<'de> serde::de::Visitor<'de> for BodyVisitor {
    type Value = Option<ParsedItems>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("{\"credentials\": [...]}")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut items = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "credentials" || items.is_some() {
                return Err(serde::de::Error::custom(format!(
                    "unexpected field `{}`: the body is {{\"credentials\": [...]}}",
                    key.chars().take(64).collect::<String>()
                )));
            }
            items = Some(map.next_value_seed(crate::bounded::BoundedItems {
                per_item: MAX_ITEM_UNITS,
                max_items: MAX_BULK_ITEMS,
                each: parse_item_value,
            })?);
        }
        Ok(items)
    }
}

fn bulk_read_error(e: serde_json::Error) -> ApiError {
    let text = e.to_string();
    if text.contains(crate::bounded::TOO_MANY_ITEMS) {
        ApiError::invalid_field(
            "credentials",
            format!("at most {MAX_BULK_ITEMS} credentials per request"),
        )
    } else if text.starts_with(crate::bounded::OVER_BUDGET) {
        ApiError::invalid_field(
            "credentials",
            format!("an item takes more than {MAX_ITEM_UNITS} bytes once read: {text}"),
        )
    } else {
        ApiError::InvalidJson {
            message: format!("malformed JSON body (expected {{\"credentials\": [...]}}): {text}"),
        }
    }
}

/// NDJSON form: one JSON item per non-empty line; a malformed line is an invalid item.
pub fn parse_ndjson(body: &[u8]) -> Result<ParsedItems, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::InvalidJson {
        message: format!("NDJSON body is not UTF-8: {e}"),
    })?;
    // Counted before any line is parsed (the lines are slices of the body), then each line
    // read under its own budget.
    let lines = || text.lines().filter(|l| !l.trim().is_empty());
    check_count(lines().count())?;
    let lines: Vec<&str> = lines().collect();
    Ok(lines
        .into_iter()
        .map(|line| {
            let mut budget = crate::bounded::Budget::new(MAX_ITEM_UNITS);
            let mut de = serde_json::Deserializer::from_str(line);
            serde::de::DeserializeSeed::deserialize(
                crate::bounded::BoundedValue(&mut budget),
                &mut de,
            )
            .and_then(|value| de.end().map(|()| value))
            .map_err(|e| ApiError::InvalidJson {
                message: format!("malformed JSON line: {e}"),
            })
            .and_then(parse_item_value)
        })
        .collect())
}

fn check_count(n: usize) -> Result<(), ApiError> {
    if n == 0 {
        return Err(ApiError::invalid_field(
            "credentials",
            "at least one credential is required",
        ));
    }
    if n > MAX_BULK_ITEMS {
        return Err(ApiError::invalid_field(
            "credentials",
            format!("at most {MAX_BULK_ITEMS} credentials per request, got {n}"),
        ));
    }
    Ok(())
}

/// One item from its JSON value, naming the offending field.
pub fn parse_item_value(value: Value) -> Result<BulkItem, ApiError> {
    if !value.is_object() {
        return Err(ApiError::InvalidJson {
            message: "each credential must be a JSON object".into(),
        });
    }
    let item: BulkItemBody = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." || path.contains('?') {
            ApiError::InvalidJson {
                message: inner.to_string(),
            }
        } else {
            ApiError::invalid_field(path, inner.to_string())
        }
    })?;
    let file_digest = match (&item.file_base64, &item.file_sha256) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field(
                "file_sha256",
                "send either file_base64 or file_sha256, not both",
            ))
        }
        (None, None) => return Err(request::missing("file_base64")),
        (Some(b64), None) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| {
                    ApiError::invalid_field("file_base64", format!("not valid base64: {e}"))
                })?;
            if bytes.is_empty() {
                return Err(ApiError::invalid_field("file_base64", "the file is empty"));
            }
            FileDigest::of(&bytes)
        }
        (None, Some(hex)) => FileDigest::from_hex(hex).map_err(|e| {
            ApiError::invalid_field("file_sha256", format!("64 hex characters expected: {e}"))
        })?,
    };
    let fields = request::parse_fields(IssueCredentialBody {
        recipient_id: item.recipient_id,
        issued_at: item.issued_at,
        serial: item.serial,
        credential_type: item.credential_type,
        title: item.title,
        metadata: item.metadata,
        file_base64: None,
    })?;
    Ok(BulkItem {
        fields,
        file_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(serial: &str) -> Value {
        serde_json::json!({"recipient_id":"r","issued_at":"2026-06-30T12:00:00Z","serial":serial,
            "credential_type":"diploma","title":"BSc","file_base64":"aGVsbG8="})
    }

    fn err_of(r: &Result<BulkItem, ApiError>) -> (&'static str, Option<String>) {
        let e = r.as_ref().unwrap_err();
        (e.code(), e.body().field)
    }

    #[test]
    fn good_items_parse_and_bad_ones_are_named_one_by_one() {
        let mut bad_date = item("S-2");
        bad_date["issued_at"] = "2026-02-30T00:00:00Z".into();
        let mut both = item("S-3");
        both["file_sha256"] = "00".repeat(32).into();
        let mut sha = item("S-4");
        sha.as_object_mut().unwrap().remove("file_base64");
        sha["file_sha256"] = FileDigest::of(b"hello").to_hex().into();
        let mut wrong_type = item("S-5");
        wrong_type["title"] = 5.into();
        let body =
            serde_json::json!({"credentials": [item("S-1"), bad_date, both, sha, wrong_type, 7]});
        let parsed = parse_json(body.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.len(), 6);
        let first = parsed[0].as_ref().unwrap();
        assert_eq!(first.file_digest, FileDigest::of(b"hello"));
        assert_eq!(
            err_of(&parsed[1]),
            ("invalid_field", Some("issued_at".into()))
        );
        assert_eq!(
            err_of(&parsed[2]),
            ("invalid_field", Some("file_sha256".into()))
        );
        // The digest form hashes the same as sending the bytes.
        assert_eq!(parsed[3].as_ref().unwrap().file_digest, first.file_digest);
        assert_eq!(err_of(&parsed[4]), ("invalid_field", Some("title".into())));
        assert_eq!(err_of(&parsed[5]).0, "invalid_json");
    }

    #[test]
    fn ndjson_reports_a_malformed_line_as_one_invalid_item() {
        let body = format!("{}\n{{oops\n\n{}\n", item("A"), item("B"));
        let parsed = parse_ndjson(body.as_bytes()).unwrap();
        assert_eq!(parsed.len(), 3);
        assert!(parsed[0].is_ok() && parsed[2].is_ok());
        assert_eq!(err_of(&parsed[1]).0, "invalid_json");
    }

    #[test]
    fn empty_oversized_and_malformed_documents_are_refused_whole() {
        let e = parse_json(br#"{"credentials": []}"#).unwrap_err();
        assert_eq!(e.body().field.as_deref(), Some("credentials"));
        let many: Vec<Value> = (0..=MAX_BULK_ITEMS)
            .map(|i| item(&format!("S{i}")))
            .collect();
        let e = parse_json(
            serde_json::json!({ "credentials": many })
                .to_string()
                .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.code(), "invalid_field");
        assert_eq!(parse_json(b"[1,2]").unwrap_err().code(), "invalid_json");
        assert_eq!(parse_json(b"{").unwrap_err().code(), "invalid_json");
        assert_eq!(parse_ndjson(b"\n \n").unwrap_err().code(), "invalid_field");
        assert_eq!(
            parse_ndjson(&[0xff, 0xfe]).unwrap_err().code(),
            "invalid_json"
        );
    }
}
