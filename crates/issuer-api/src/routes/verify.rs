//! `POST /v1/verify` (JSON verdict) and the public page `GET /verify` + `POST /verify`
//! (server-rendered HTML, a plain form: works without JavaScript). No authentication.
//!
//! Both parse the same multipart body into a file and a [`Claim`] and call
//! [`crate::verify::verify`], so the page and the API cannot disagree.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use domain::proof::ProofBundle;
use domain::{IssuedAt, IssuerId, RecipientId, Serial};
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::state::AppState;
use crate::verify::{verify, Claim, VerificationView};

/// Largest accepted proof bundle part: a Merkle path of a 2^32-leaf tree is ~3 KiB.
const MAX_PROOF_BYTES: usize = 64 * 1024;
/// Largest accepted claimed-field part.
const MAX_FIELD_BYTES: usize = 256;

/// A parsed verification request.
#[derive(Debug)]
pub struct VerifyRequest {
    pub file: Bytes,
    pub claim: Claim,
}

/// Parses `file` + (`proof` | `issuer_id`, `recipient_id`, `issued_at`, `serial`). Empty
/// parts count as absent (an HTML form sends an empty part for an unused input).
pub async fn parse_verify_multipart(
    headers: &HeaderMap,
    payload: web::Payload,
    limit: usize,
) -> Result<VerifyRequest, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::UnsupportedMediaType);
    }
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let mut multipart = actix_multipart::Multipart::new(headers, payload);
    let mut parts: Vec<(String, Bytes)> = Vec::new();
    let mut total = 0usize;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| ApiError::InvalidMultipart {
            message: format!("malformed multipart body: {e}"),
        })?;
        let name = field.name().map(str::to_string).unwrap_or_default();
        let max = match name.as_str() {
            "file" => limit,
            "proof" | "vc" | "status_list" => MAX_PROOF_BYTES,
            "issuer_id" | "recipient_id" | "issued_at" | "serial" => MAX_FIELD_BYTES,
            other => {
                return Err(ApiError::InvalidMultipart {
                    message: format!(
                        "unexpected part `{}`: send `file` and one of `proof`, `vc` (optionally with `status_list`), or `issuer_id`, `recipient_id`, `issued_at`, `serial`",
                        other.chars().take(64).collect::<String>()
                    ),
                })
            }
        };
        if parts.iter().any(|(n, _)| *n == name) {
            return Err(ApiError::InvalidMultipart {
                message: format!("part `{name}` appears more than once"),
            });
        }
        let mut buf = BytesMut::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::InvalidMultipart {
                message: format!("malformed multipart body: {e}"),
            })?;
            total += chunk.len();
            if total > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            if buf.len() + chunk.len() > max {
                return Err(ApiError::invalid_field(
                    name,
                    format!("larger than {max} bytes"),
                ));
            }
            buf.extend_from_slice(&chunk);
        }
        if !buf.is_empty() {
            parts.push((name, buf.freeze()));
        }
    }
    parse_parts(parts)
}

/// The claim from the (non-empty) parts. Pure, for unit tests.
pub fn parse_parts(parts: Vec<(String, Bytes)>) -> Result<VerifyRequest, ApiError> {
    let take = |name: &str| {
        parts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
    };
    let file = take("file").ok_or_else(|| ApiError::MissingField {
        field: "file".into(),
    })?;
    let claimed = ["issuer_id", "recipient_id", "issued_at", "serial"];
    let any_claimed = claimed.iter().any(|n| take(n).is_some());
    let status_list = take("status_list");
    let claim = match (take("proof"), take("vc")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidMultipart {
                message: "send either `proof` or `vc`, not both".into(),
            })
        }
        (Some(_), _) | (_, Some(_)) if any_claimed => {
            return Err(ApiError::InvalidMultipart {
                message: "send either `proof` / `vc` or the claimed fields, not both".into(),
            })
        }
        (None, Some(vc)) => {
            let vc: serde_json::Value = serde_json::from_slice(&vc)
                .ok()
                .filter(serde_json::Value::is_object)
                .ok_or_else(|| ApiError::invalid_field("vc", "not a JSON object"))?;
            Claim::Credential(Box::new(vc), status_list.clone())
        }
        (Some(proof), None) => match json_ld(&proof) {
            // The page has one upload for "the proof that came with it": a VC there (a JSON-LD
            // document; a proof bundle's closed schema has no `@context`) is read as a `vc`.
            Some(vc) => Claim::Credential(Box::new(vc), status_list.clone()),
            None => {
                // The one strict reader: an unknown field, a duplicate key or another spelling
                // of a value is refused here, before any check (400 `invalid_field`, `proof`).
                let bundle = ProofBundle::from_json(&proof)
                    .map_err(|e| ApiError::invalid_field("proof", e.to_string()))?;
                Claim::Bundle(Box::new(bundle))
            }
        },
        (None, None) => {
            let text = |name: &str| -> Result<String, ApiError> {
                let bytes = take(name).ok_or_else(|| ApiError::MissingField {
                    field: name.to_string(),
                })?;
                String::from_utf8(bytes.to_vec())
                    .map(|s| s.trim().to_string())
                    .map_err(|_| ApiError::invalid_field(name, "not UTF-8 text"))
            };
            let bad = |name: &'static str| {
                move |e: domain::ids::IdError| ApiError::invalid_field(name, e.to_string())
            };
            Claim::Fields {
                issuer: IssuerId::parse(&text("issuer_id")?).map_err(bad("issuer_id"))?,
                recipient: RecipientId::parse(&text("recipient_id")?)
                    .map_err(bad("recipient_id"))?,
                issued_at: IssuedAt::parse_rfc3339(&text("issued_at")?)
                    .map_err(bad("issued_at"))?,
                serial: Serial::parse(&text("serial")?).map_err(bad("serial"))?,
            }
        }
    };
    if status_list.is_some() && !matches!(claim, Claim::Credential(..)) {
        return Err(ApiError::InvalidMultipart {
            message: "`status_list` goes with a `vc` (the status list its credentialStatus names)"
                .into(),
        });
    }
    Ok(VerifyRequest { file, claim })
}

/// `bytes` as a JSON-LD document (a JSON object with `@context`), if they are one.
fn json_ld(bytes: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .filter(|v| v.get("@context").is_some())
}

/// Verify a credential file against a proof bundle or its claimed fields.
#[utoipa::path(
    post,
    path = "/v1/verify",
    request_body(content = String, description = "multipart/form-data: `file` (the credential file) and one of `proof` (a proof bundle v2 or v1, JSON, read strictly: docs/proof-bundle.md; a Verifiable Credential there is read as `vc`), `vc` (the credential's W3C Verifiable Credential, docs/verifiable-credentials.md; with it, optionally `status_list`: the BitstringStatusListCredential you were given, judged current, `stale` or unanchored against the anchored versions), or `issuer_id`, `recipient_id`, `issued_at`, `serial`", content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The verdict (whatever it is)", body = VerificationView),
        (status = 400, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody),
        (status = 415, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody),
    ),
)]
pub async fn verify_json(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // Admitted (per-IP rate, in-flight cap) before a byte of the body is read.
    let _admitted = state.public.admit(&req)?;
    let parsed = crate::request::within_deadline(
        state.body_read_timeout,
        parse_verify_multipart(req.headers(), payload, state.public.body_limit_bytes),
    )
    .await?;
    let view = verify(&state, &parsed.file, parsed.claim).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &str, value: &str) -> (String, Bytes) {
        (name.to_string(), Bytes::from(value.to_string()))
    }

    #[test]
    fn claimed_fields_parse_and_errors_name_the_field() {
        let ok = parse_parts(vec![
            part("file", "pdf"),
            part("issuer_id", "uni"),
            part("recipient_id", "s-1"),
            part("issued_at", "2026-06-30T12:00:00Z"),
            part("serial", "S-1"),
        ])
        .unwrap();
        assert!(matches!(ok.claim, Claim::Fields { .. }));

        let err = parse_parts(vec![part("issuer_id", "uni")]).unwrap_err();
        assert_eq!(
            (err.code(), err.body().field),
            ("missing_field", Some("file".into()))
        );
        let err = parse_parts(vec![part("file", "x"), part("issuer_id", "uni")]).unwrap_err();
        assert_eq!(err.body().field.as_deref(), Some("recipient_id"));
        let err = parse_parts(vec![
            part("file", "pdf"),
            part("issuer_id", "uni"),
            part("recipient_id", "s-1"),
            part("issued_at", "yesterday"),
            part("serial", "S-1"),
        ])
        .unwrap_err();
        assert_eq!(
            (err.code(), err.body().field),
            ("invalid_field", Some("issued_at".into()))
        );
    }

    #[test]
    fn proof_must_be_a_bundle_and_excludes_claimed_fields() {
        let err =
            parse_parts(vec![part("file", "x"), part("proof", "{\"version\": 1}")]).unwrap_err();
        assert_eq!(
            (err.code(), err.body().field),
            ("invalid_field", Some("proof".into()))
        );
        let err = parse_parts(vec![part("file", "x"), part("proof", "not json")]).unwrap_err();
        assert_eq!(err.code(), "invalid_field");
        let err = parse_parts(vec![
            part("file", "x"),
            part("proof", "{}"),
            part("serial", "S"),
        ])
        .unwrap_err();
        assert_eq!(err.code(), "invalid_multipart");
    }
}
