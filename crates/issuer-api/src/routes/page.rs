//! The public verification page: `GET /verify` (the form) and `POST /verify` (the verdict),
//! server-rendered HTML with inline CSS, no external resources and no JavaScript, so it works
//! as a plain form, with a keyboard, and behind strict content-security policies.
//!
//! Accessibility: every input has a `<label>`, the result is an `aria-live` status region
//! (screen readers announce the verdict), verdicts are told in words and by an icon, not by
//! colour alone, and errors say what to do. The verdict comes from the same
//! [`crate::verify::verify`] as `POST /v1/verify`.

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use domain::verdict::VerdictKind;

use crate::error::ApiError;
use crate::routes::verify::parse_verify_multipart;
use crate::state::AppState;
use crate::verify::{verify, VerificationView};

/// `GET /verify`: the empty form.
pub async fn form(state: web::Data<AppState>) -> HttpResponse {
    html(StatusCode::OK, &page(&state, None))
}

/// `POST /verify`: the verdict (or the error, in words) above the form.
pub async fn submit(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let limit = state.public.body_limit_bytes;
    // Admitted (per-IP rate, in-flight cap) before a byte of the body is read.
    let outcome = match state.public.admit(&req) {
        Ok(admitted) => {
            let parsed = crate::request::within_deadline(
                state.body_read_timeout,
                parse_verify_multipart(req.headers(), payload, limit),
            )
            .await;
            let verdict = match parsed {
                Ok(parsed) => verify(&state, &parsed.file, parsed.claim).await,
                Err(e) => Err(e),
            };
            drop(admitted);
            verdict
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(view) => html(StatusCode::OK, &page(&state, Some(&render_verdict(&view)))),
        Err(e) => {
            let mut response = html(
                e.status_code(),
                &page(&state, Some(&render_error(&e, limit))),
            );
            if let ApiError::RateLimited { retry_after_secs } = e {
                if let Ok(value) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            response
        }
    }
}

fn html(status: StatusCode, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(ContentType::html())
        // Nothing external is loaded, ever: a strict policy costs nothing. Never framed: a
        // page of someone else's laid over ours could make a verifier read "Valid" for a
        // credential it did not check (clickjacking); X-Frame-Options for older browsers.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; \
             frame-ancestors 'none'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body.to_string())
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    // Control and bidi characters made visible first (`domain::display`): an error message
    // may quote a key name from an uploaded bundle.
    let text = domain::display::printable(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// (css class, icon) of a verdict: meaning by colour AND by symbol and words.
fn tone(kind: VerdictKind) -> (&'static str, &'static str) {
    match kind {
        VerdictKind::Valid => ("ok", "✔"),
        VerdictKind::NotAnchoredYet | VerdictKind::Inconclusive | VerdictKind::Stale => {
            ("wait", "⏳")
        }
        VerdictKind::UnknownIssuer => ("unknown", "?"),
        VerdictKind::Revoked
        | VerdictKind::RevocationPending
        | VerdictKind::Tampered
        | VerdictKind::InvalidSignature => ("bad", "✖"),
    }
}

fn row(label: &str, value: &str) -> String {
    format!("<dt>{}</dt><dd>{}</dd>", escape(label), value)
}

/// The verdict block.
pub fn render_verdict(v: &VerificationView) -> String {
    let (class, icon) = tone(v.verdict);
    let mut rows = String::new();
    if let Some(i) = &v.issuer {
        let name = i.name.as_deref().unwrap_or("(unknown issuer)");
        rows.push_str(&row(
            "Issued by",
            &format!(
                "{} <span class=\"muted\">({})</span>",
                escape(name),
                escape(&i.id)
            ),
        ));
        if let Some(k) = &i.key_id {
            rows.push_str(&row("Signing key", &format!("<code>{}</code>", escape(k))));
        }
    }
    if let Some(t) = &v.issued_at {
        rows.push_str(&row("Issued at", &escape(t)));
    }
    if let Some(id) = &v.credential_id {
        rows.push_str(&row("Credential", &format!("<code>{}</code>", escape(id))));
    }
    if let Some(a) = &v.anchor {
        rows.push_str(&row(
            "Anchor transaction",
            &format!(
                "<a href=\"{}\" rel=\"noopener noreferrer\">{}</a> (opens the Solana explorer)",
                escape(&a.explorer_url),
                escape(&a.signature)
            ),
        ));
        if let Some(slot) = a.slot {
            rows.push_str(&row("Slot", &slot.to_string()));
        }
        rows.push_str(&row(
            "Finalized on chain",
            if a.finalized { "yes" } else { "not yet" },
        ));
    }
    if let Some(r) = &v.revocation {
        // Revoked and since when; never why (the reason is private to the issuer).
        rows.push_str(&row(
            "Revocation",
            &format!(
                "{} since {}",
                if r.status == "anchored" {
                    "revoked"
                } else {
                    "revocation pending"
                },
                escape(&r.requested_at),
            ),
        ));
    }
    rows.push_str(&row(
        "Details",
        &format!(
            "{} <span class=\"muted\">({})</span>",
            escape(&v.detail),
            escape(&v.reason)
        ),
    ));
    format!(
        "<div class=\"verdict {class}\" data-verdict=\"{}\"><h2><span aria-hidden=\"true\">{icon}</span> {}</h2><dl>{rows}</dl></div>",
        v.verdict.as_str(),
        escape(v.verdict.headline())
    )
}

/// An input error in words, with what to do about it.
pub fn render_error(e: &ApiError, limit: usize) -> String {
    let advice = match e {
        ApiError::PayloadTooLarge { .. } => format!(
            "The upload is too large: files up to {} MiB are accepted.",
            limit / (1024 * 1024)
        ),
        ApiError::MissingField { field } if field == "file" => {
            "Choose the credential file to check.".to_string()
        }
        ApiError::MissingField { .. } => {
            "Add the proof file, or fill in all four credential details (issuer, recipient, date, serial).".to_string()
        }
        ApiError::InvalidField { field, reason } if field == "proof" => {
            format!("The proof file is not a valid proof bundle or verifiable credential: {reason}")
        }
        ApiError::InvalidField { field, reason } => {
            format!("The field “{field}” is not valid: {reason}")
        }
        ApiError::ChainUnavailable { .. } | ApiError::DatabaseUnavailable { .. } => {
            "The check could not be completed right now (a service is unavailable). Please try again in a minute.".to_string()
        }
        ApiError::ChainUnauthentic { .. } => {
            "The check could not be completed: the blockchain node we asked returned an answer that fails its own signatures, so it was not believed. Please try again later.".to_string()
        }
        ApiError::ChainDisagreement { .. } => {
            "The check could not be completed: the blockchain nodes we asked gave different answers about this credential's record, so none was believed. Please try again later.".to_string()
        }
        other => other.to_string(),
    };
    format!(
        "<div class=\"verdict error\" data-error=\"{}\"><h2><span aria-hidden=\"true\">!</span> Could not check</h2><p>{}</p></div>",
        e.code(),
        escape(&advice)
    )
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}\
h1{font-size:1.6rem}fieldset{border:1px solid #888;border-radius:6px;margin:1rem 0;padding:.5rem 1rem 1rem}\
label{display:block;margin:.6rem 0 .2rem;font-weight:600}input[type=text]{width:100%;padding:.4rem;box-sizing:border-box}\
button{margin-top:1rem;padding:.6rem 1.4rem;font-size:1rem}:focus{outline:3px solid #1a5fb4;outline-offset:2px}\
.verdict{border-left:8px solid;padding:.5rem 1rem;margin:1rem 0;border-radius:4px}\
.ok{border-color:#1e7d32;background:#e8f5e9}.bad{border-color:#b71c1c;background:#fdecea}\
.wait{border-color:#a56a00;background:#fff4e0}.unknown,.error{border-color:#555;background:#f1f1f1}\
dt{font-weight:600}dd{margin:0 0 .4rem;overflow-wrap:anywhere}.muted{color:#555}.hint{color:#444;font-size:.9rem}";

fn page(state: &AppState, result: Option<&str>) -> String {
    let mib = state.public.body_limit_bytes / (1024 * 1024);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>Verify a credential</title><style>{STYLE}</style></head><body><main>\
<h1>Verify a credential</h1>\
<p>Check that a diploma or transcript file was issued by its university, is unchanged, is anchored on the Solana blockchain, and has not been revoked. Nothing you upload is stored.</p>\
<section id=\"result\" role=\"status\" aria-live=\"polite\" aria-atomic=\"true\">{}</section>\
<form method=\"post\" action=\"/verify\" enctype=\"multipart/form-data\">\
<fieldset><legend>The credential</legend>\
<label for=\"file\">Credential file (required)</label>\
<input id=\"file\" name=\"file\" type=\"file\" required aria-describedby=\"file-hint\">\
<p id=\"file-hint\" class=\"hint\">The exact file you received, up to {mib} MiB.</p>\
<label for=\"proof\">Proof bundle or verifiable credential (optional)</label>\
<input id=\"proof\" name=\"proof\" type=\"file\" accept=\".json,application/json\" aria-describedby=\"proof-hint\">\
<p id=\"proof-hint\" class=\"hint\">The <code>proof.json</code> or the <code>.vc.json</code> (Open Badges 3.0) that came with the credential. Without either, fill in the details below.</p>\
</fieldset>\
<fieldset><legend>Or the credential's details</legend>\
<label for=\"issuer_id\">Issuer id</label><input id=\"issuer_id\" name=\"issuer_id\" type=\"text\" autocomplete=\"off\" placeholder=\"uni-example\">\
<label for=\"recipient_id\">Recipient id</label><input id=\"recipient_id\" name=\"recipient_id\" type=\"text\" autocomplete=\"off\">\
<label for=\"issued_at\">Issued at (e.g. 2026-06-30T12:00:00Z)</label><input id=\"issued_at\" name=\"issued_at\" type=\"text\" autocomplete=\"off\">\
<label for=\"serial\">Serial number</label><input id=\"serial\" name=\"serial\" type=\"text\" autocomplete=\"off\">\
</fieldset>\
<button type=\"submit\">Verify</button></form>\
<p class=\"hint\">Machines: <code>POST /v1/verify</code> answers the same in JSON. Offline: <code>credential-verify --file … --proof … --rpc …</code>.</p>\
</main></body></html>",
        result.unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_attribute_quotes() {
        assert_eq!(
            escape("<a href=\"x\" onclick='y'>&</a>"),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn escaping_makes_control_and_bidi_characters_visible() {
        // A right-to-left override from a bundle's key name would reverse the words after it.
        assert_eq!(escape("key\u{202e}gnp.exe"), "key\\u{202e}gnp.exe");
        assert_eq!(escape("a\u{9b}2Jb"), "a\\u{9b}2Jb");
        assert_eq!(escape("Université"), "Université");
    }

    #[test]
    fn every_verdict_has_a_tone_and_errors_are_words() {
        for k in VerdictKind::ALL {
            let (class, icon) = tone(k);
            assert!(!class.is_empty() && !icon.is_empty());
        }
        let e = render_error(
            &ApiError::PayloadTooLarge {
                limit: 10 * 1024 * 1024,
            },
            10 * 1024 * 1024,
        );
        assert!(e.contains("up to 10 MiB"), "{e}");
        let e = render_error(
            &ApiError::MissingField {
                field: "serial".into(),
            },
            1,
        );
        assert!(e.contains("proof file"), "{e}");
    }

    #[test]
    fn a_revocation_shows_status_and_date_but_never_a_reason() {
        let mut v = VerificationView {
            verdict: VerdictKind::Revoked,
            reason: "revoked".into(),
            message: VerdictKind::Revoked.headline().into(),
            detail: "anchored".into(),
            credential_id: None,
            issuer: None,
            issued_at: None,
            credential_hash: None,
            anchor: None,
            revocation: Some(crate::verify::VerifiedRevocation {
                status: "anchored".into(),
                reason: None,
                requested_at: "2026-07-01T00:00:00+00:00".into(),
                signature: None,
            }),
        };
        let html = render_verdict(&v);
        assert!(
            html.contains("revoked since 2026-07-01T00:00:00+00:00"),
            "{html}"
        );
        // Even a view that carried one would not print it on the public page.
        if let Some(r) = v.revocation.as_mut() {
            r.reason = Some("private: fraud investigation".into());
        }
        let html = render_verdict(&v);
        assert!(!html.contains("fraud investigation"), "{html}");
    }
}
