//! Parse, don't validate: turns a raw `POST /v1/credentials` body (JSON with a base64 file,
//! or multipart with a file part and a JSON metadata part) into domain-typed values, naming
//! the field at fault in every error. Nothing here touches the database.

use actix_web::http::header::{self, HeaderMap};
use actix_web::web;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use domain::{IssuedAt, RecipientId, Serial};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;

/// Largest accepted `metadata` object once serialised: metadata describes, the file proves.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// `metadata` is read under a memory budget (`bounded`) of 32 times its limit (any object of
/// at most 16 KiB compact fits: a node takes at least 2 bytes of text and 32 of memory), so a
/// huge value is refused while it is read, before it is built; the exact size is checked after.
pub fn bounded_metadata<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    crate::bounded::optional::<D, { 32 * MAX_METADATA_BYTES }>(d)
}
const MAX_TYPE_CHARS: usize = 64;
const MAX_TITLE_CHARS: usize = 512;

/// JSON body of `POST /v1/credentials` (also the `metadata` part of a multipart request,
/// without `file_base64`). All fields are parsed by hand so each error names its field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueCredentialBody {
    /// The portal's opaque id of the graduate. Hashed, never put on chain.
    pub recipient_id: Option<String>,
    /// RFC 3339, whole seconds (e.g. 2026-06-30T12:00:00Z).
    pub issued_at: Option<String>,
    /// Unique per issuer: `[A-Za-z0-9._/-]{1,64}`.
    pub serial: Option<String>,
    /// e.g. "diploma", "transcript".
    pub credential_type: Option<String>,
    /// e.g. "BSc Computer Science".
    pub title: Option<String>,
    /// Free-form JSON object (at most 16 KiB).
    #[schema(value_type = Option<Object>)]
    #[serde(default, deserialize_with = "bounded_metadata")]
    pub metadata: Option<Value>,
    /// The credential file, standard base64 (JSON requests only).
    pub file_base64: Option<String>,
}

/// A fully parsed issuance request.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub fields: ParsedFields,
    pub file: Bytes,
}

/// Runs `reading` (the read of a request body) within `deadline`: a body that does not arrive
/// in time is `408 request_timeout`, so a slow client cannot hold a worker and its buffer.
pub async fn within_deadline<T>(
    deadline: std::time::Duration,
    reading: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(deadline, reading)
        .await
        .map_err(|_| ApiError::RequestTimeout {
            secs: deadline.as_secs(),
        })?
}

/// Reads the whole body, refusing more than `limit` bytes (413) before buffering it all.
pub async fn read_body_limited(
    headers: &HeaderMap,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if let Some(len) = content_length(headers) {
        if len > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidJson {
            message: format!("could not read the request body: {e}"),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Deserialises JSON, reporting the path of the offending field when serde knows it.
pub fn parse_json_body(bytes: &[u8]) -> Result<IssueCredentialBody, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let body: IssueCredentialBody = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // Syntax and EOF errors have no meaningful field; only a type/value error inside a
        // well-formed document names one.
        let is_data = inner.classify() == serde_json::error::Category::Data;
        if !is_data || path.is_empty() || path == "." || path.contains('?') {
            ApiError::InvalidJson {
                message: format!("malformed JSON body: {inner}"),
            }
        } else {
            ApiError::invalid_field(path, inner.to_string())
        }
    })?;
    // Trailing garbage after the object is malformed too.
    de.end().map_err(|e| ApiError::InvalidJson {
        message: format!("malformed JSON body: {e}"),
    })?;
    Ok(body)
}

/// JSON request: every field including the base64 file.
pub fn parse_json_request(bytes: &[u8]) -> Result<IssueRequest, ApiError> {
    let mut body = parse_json_body(bytes)?;
    let file_b64 = body
        .file_base64
        .take()
        .ok_or_else(|| missing("file_base64"))?;
    let file = base64::engine::general_purpose::STANDARD
        .decode(file_b64.trim())
        .map_err(|e| ApiError::invalid_field("file_base64", format!("not valid base64: {e}")))?;
    finish(body, Bytes::from(file), "file_base64")
}

/// Multipart request: a `file` part (the bytes) and a `metadata` part (JSON fields).
pub async fn parse_multipart_request(
    headers: &HeaderMap,
    payload: web::Payload,
    limit: usize,
) -> Result<IssueRequest, ApiError> {
    if let Some(len) = content_length(headers) {
        if len > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let mut multipart = actix_multipart::Multipart::new(headers, payload);
    let mut file: Option<Bytes> = None;
    let mut metadata: Option<Bytes> = None;
    let mut total = 0usize;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(multipart_error)?;
        let name = field.name().map(str::to_string).unwrap_or_default();
        let mut buf = BytesMut::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(multipart_error)?;
            total += chunk.len();
            if total > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        let slot = match name.as_str() {
            "file" => &mut file,
            "metadata" => &mut metadata,
            other => {
                return Err(ApiError::InvalidMultipart {
                    message: format!("unexpected part `{other}`: send `file` and `metadata`"),
                })
            }
        };
        if slot.is_some() {
            return Err(ApiError::InvalidMultipart {
                message: format!("part `{name}` appears more than once"),
            });
        }
        *slot = Some(buf.freeze());
    }
    let metadata = metadata.ok_or_else(|| missing("metadata"))?;
    let file = file.ok_or_else(|| missing("file"))?;
    let body = parse_json_body(&metadata)?;
    if body.file_base64.is_some() {
        return Err(ApiError::invalid_field(
            "file_base64",
            "not allowed in a multipart request: send the file as the `file` part",
        ));
    }
    finish(body, file, "file")
}

fn multipart_error(e: actix_multipart::MultipartError) -> ApiError {
    ApiError::InvalidMultipart {
        message: format!("malformed multipart body: {e}"),
    }
}

pub(crate) fn missing(field: &str) -> ApiError {
    ApiError::MissingField {
        field: field.to_string(),
    }
}

fn finish(
    body: IssueCredentialBody,
    file: Bytes,
    file_field: &str,
) -> Result<IssueRequest, ApiError> {
    if file.is_empty() {
        return Err(ApiError::invalid_field(file_field, "the file is empty"));
    }
    Ok(IssueRequest {
        fields: parse_fields(body)?,
        file,
    })
}

/// The described (non-file) fields of one credential, parsed.
#[derive(Debug, Clone)]
pub struct ParsedFields {
    pub recipient: RecipientId,
    pub issued_at: IssuedAt,
    pub serial: Serial,
    pub credential_type: String,
    pub title: String,
    pub metadata: Value,
}

/// Parses every field but the file (shared by single and bulk issuance).
pub fn parse_fields(body: IssueCredentialBody) -> Result<ParsedFields, ApiError> {
    let recipient = body.recipient_id.ok_or_else(|| missing("recipient_id"))?;
    let recipient = RecipientId::parse(&recipient)
        .map_err(|e| ApiError::invalid_field("recipient_id", e.to_string()))?;
    let issued_at = body.issued_at.ok_or_else(|| missing("issued_at"))?;
    let issued_at = IssuedAt::parse_rfc3339(&issued_at)
        .map_err(|e| ApiError::invalid_field("issued_at", e.to_string()))?;
    let serial = body.serial.ok_or_else(|| missing("serial"))?;
    let serial =
        Serial::parse(&serial).map_err(|e| ApiError::invalid_field("serial", e.to_string()))?;
    let credential_type = body
        .credential_type
        .ok_or_else(|| missing("credential_type"))?;
    let credential_type = plain_text("credential_type", credential_type, MAX_TYPE_CHARS)?;
    let title = body.title.ok_or_else(|| missing("title"))?;
    let title = plain_text("title", title, MAX_TITLE_CHARS)?;
    let metadata = match body.metadata {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(Value::Object(map)) => {
            let value = Value::Object(map);
            let size = serde_json::to_vec(&value)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
            // PostgreSQL's jsonb cannot store U+0000: refuse it here as bad input, not a 500.
            if value_has_nul(&value) {
                return Err(ApiError::invalid_field(
                    "metadata",
                    "contains a NUL (U+0000) character",
                ));
            }
            if size > MAX_METADATA_BYTES {
                return Err(ApiError::invalid_field(
                    "metadata",
                    format!("larger than {MAX_METADATA_BYTES} bytes"),
                ));
            }
            value
        }
        Some(_) => return Err(ApiError::invalid_field("metadata", "must be a JSON object")),
    };
    Ok(ParsedFields {
        recipient,
        issued_at,
        serial,
        credential_type,
        title,
        metadata,
    })
}

fn value_has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(value_has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || value_has_nul(v)),
        _ => false,
    }
}

/// Non-empty, bounded, no control characters, no surrounding whitespace.
fn plain_text(field: &str, value: String, max_chars: usize) -> Result<String, ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(ApiError::invalid_field(
            field,
            format!("longer than {max_chars} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            "contains control characters",
        ));
    }
    if value.trim() != value {
        return Err(ApiError::invalid_field(
            field,
            "has leading or trailing whitespace",
        ));
    }
    Ok(value)
}

/// Validates the `Idempotency-Key` header: 1..=255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("Idempotency-Key") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::InvalidIdempotencyKey {
            reason: "must be visible ASCII".into(),
        })?;
    if text.is_empty() || text.len() > 255 {
        return Err(ApiError::InvalidIdempotencyKey {
            reason: "must be 1 to 255 characters".into(),
        });
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::InvalidIdempotencyKey {
            reason: "must be visible ASCII without spaces".into(),
        });
    }
    Ok(Some(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Result<IssueRequest, ApiError> {
        parse_json_request(json.as_bytes())
    }

    const OK: &str = r#"{"recipient_id":"r-1","issued_at":"2026-06-30T12:00:00Z","serial":"S-1",
        "credential_type":"diploma","title":"BSc","file_base64":"aGVsbG8="}"#;

    #[test]
    fn parses_a_complete_request() {
        let r = body(OK).unwrap();
        assert_eq!(r.file.as_ref(), b"hello");
        assert_eq!(r.fields.serial.as_str(), "S-1");
        assert_eq!(r.fields.metadata, serde_json::json!({}));
    }

    #[test]
    fn names_missing_and_invalid_fields() {
        let err = body(r#"{"issued_at":"2026-06-30T12:00:00Z","file_base64":"aGk="}"#).unwrap_err();
        assert!(
            matches!(err, ApiError::MissingField { ref field } if field == "recipient_id"),
            "{err:?}"
        );
        let err = body(&OK.replace("2026-06-30T12:00:00Z", "2026-02-30T12:00:00Z")).unwrap_err();
        assert!(matches!(err, ApiError::InvalidField { ref field, .. } if field == "issued_at"));
        let err = body(&OK.replace("aGVsbG8=", "@@@")).unwrap_err();
        assert!(matches!(err, ApiError::InvalidField { ref field, .. } if field == "file_base64"));
        let err = body(&OK.replace("\"S-1\"", "42")).unwrap_err();
        assert!(
            matches!(err, ApiError::InvalidField { ref field, .. } if field == "serial"),
            "{err:?}"
        );
        let err = body(&OK.replace("\"BSc\"", "\"a\\u0007b\"")).unwrap_err();
        assert!(matches!(err, ApiError::InvalidField { ref field, .. } if field == "title"));
    }

    #[test]
    fn rejects_malformed_json_unknown_fields_and_trailing_bytes() {
        assert!(matches!(body("{"), Err(ApiError::InvalidJson { .. })));
        assert!(matches!(
            body(&format!("{OK} x")),
            Err(ApiError::InvalidJson { .. })
        ));
        let err = body(&OK.replace("\"title\"", "\"titel\"")).unwrap_err();
        assert!(matches!(
            err,
            ApiError::InvalidJson { .. } | ApiError::InvalidField { .. }
        ));
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        let err = body(&OK.replace("\"title\":\"BSc\"", "\"title\":\"BSc\",\"metadata\":[1]"))
            .unwrap_err();
        assert!(matches!(err, ApiError::InvalidField { ref field, .. } if field == "metadata"));
        let big = "x".repeat(MAX_METADATA_BYTES);
        let err = body(&OK.replace(
            "\"title\":\"BSc\"",
            &format!("\"title\":\"BSc\",\"metadata\":{{\"k\":\"{big}\"}}"),
        ))
        .unwrap_err();
        assert!(matches!(err, ApiError::InvalidField { ref field, .. } if field == "metadata"));
    }

    #[test]
    fn empty_file_is_rejected() {
        let err = body(&OK.replace("aGVsbG8=", "")).unwrap_err();
        assert!(matches!(err, ApiError::InvalidField { ref field, .. } if field == "file_base64"));
    }
}
