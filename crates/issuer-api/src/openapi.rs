//! The OpenAPI document, generated from the handlers' annotations (utoipa; no build-time
//! downloads). Served at `/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "issuer-api", description = "Issue academic credentials anchored on Solana."),
    paths(
        crate::routes::credentials::issue_credential,
        crate::routes::credentials::get_credential,
        crate::routes::credentials::list_credentials,
        crate::routes::revocations::revoke_credential,
        crate::routes::issuers::get_issuer,
        crate::routes::verify::verify_json,
        crate::proofs::get_proof,
        crate::proofs::recover,
        crate::routes::batches::issue_batch,
        crate::routes::batches::get_batch,
        crate::routes::batches::get_batch_proofs,
        crate::routes::vcs::get_vc,
        crate::routes::vcs::get_batch_vcs,
        crate::routes::vcs::get_did_document,
        crate::routes::vcs::get_status_list,
        crate::routes::webhooks::create_endpoint,
        crate::routes::webhooks::list_endpoints,
        crate::routes::webhooks::get_endpoint,
        crate::routes::webhooks::update_endpoint,
        crate::routes::webhooks::delete_endpoint,
        crate::routes::webhooks::rotate_secret,
        crate::routes::webhooks::test_endpoint,
        crate::routes::webhooks::list_deliveries,
        crate::routes::webhooks::retry_delivery,
    ),
    components(schemas(
        crate::views::CredentialView,
        crate::views::AnchorView,
        crate::views::CredentialPage,
        crate::error::ErrorBody,
        crate::request::IssueCredentialBody,
        crate::routes::revocations::RevokeBody,
        crate::views::RevocationView,
        crate::views::RevocationStatus,
        crate::views::IssuerProfileView,
        crate::views::SigningKeyView,
        crate::views::AnchorKeyView,
        crate::verify::VerificationView,
        crate::verify::VerifiedIssuer,
        crate::verify::VerifiedAnchor,
        crate::verify::VerifiedRevocation,
        crate::bulk::BulkItemBody,
        crate::bulk::BulkBody,
        crate::routes::batches::BulkResponse,
        crate::routes::batches::BulkItemResult,
        crate::routes::batches::CredentialBatchView,
        crate::routes::webhooks::CreateEndpointBody,
        crate::routes::webhooks::UpdateEndpointBody,
        crate::routes::webhooks::RotateBody,
        crate::routes::webhooks::EndpointView,
        crate::routes::webhooks::EndpointList,
        crate::routes::webhooks::DeliveryView,
        crate::routes::webhooks::DeliveryPage,
        crate::routes::webhooks::TestEventView,
    )),
    modifiers(&BearerAuth, &CommonResponses)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// Responses every operation of a kind can give, added in one place so no annotation can
/// forget them (schemathesis found 401 and 400 missing from the GET operations):
/// - authenticated operations: 401 `unauthorized`, 429 `rate_limited` (after auth, every
///   route), 503 `database_unavailable` or `commit_outcome_unknown`;
/// - operations with a path parameter: 400 when it does not parse;
/// - operations that read a body: 408 `request_timeout` (`http.body_read_timeout_secs`);
/// - the public verification: 429 `rate_limited` (per client IP, verifications in flight);
/// - every operation: 503 (the database or the chain may be unavailable).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

        let error = |description: &str| -> RefOr<utoipa::openapi::Response> {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                let responses = &mut op.responses.responses;
                let authenticated = op.security.as_ref().is_some_and(|s| !s.is_empty());
                if authenticated {
                    responses.entry("401".into()).or_insert_with(|| {
                        error("`unauthorized`: missing, malformed or unknown API key")
                    });
                    responses.entry("429".into()).or_insert_with(|| {
                        error("`rate_limited`: this API key's rate limit; see Retry-After")
                    });
                }
                if op.request_body.is_some() {
                    responses.entry("408".into()).or_insert_with(|| {
                        error("`request_timeout`: the body did not arrive within http.body_read_timeout_secs")
                    });
                }
                if !authenticated && op.request_body.is_some() {
                    responses.entry("429".into()).or_insert_with(|| {
                        error("`rate_limited`: this client IP's verification rate, or too many verifications in flight; see Retry-After")
                    });
                }
                let has_path_param = op.parameters.as_ref().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| matches!(p.parameter_in, ParameterIn::Path))
                });
                if has_path_param {
                    responses.entry("400".into()).or_insert_with(|| {
                        error("`invalid_field`: the path parameter does not parse")
                    });
                }
                responses.entry("503".into()).or_insert_with(|| {
                    error("`database_unavailable`, `commit_outcome_unknown` (a write may have committed: retry with the same Idempotency-Key), `chain_unavailable`, `chain_unauthentic` (the RPC node's transaction failed its own signatures: refused) or `chain_disagreement` (two RPC endpoints answered differently: no verdict); see Retry-After")
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_authenticated_operation_documents_401_429_and_503() {
        let doc = ApiDoc::openapi();
        let mut checked = 0;
        for (path, item) in &doc.paths.paths {
            for op in [&item.get, &item.post].into_iter().flatten() {
                let codes: Vec<&String> = op.responses.responses.keys().collect();
                assert!(codes.iter().any(|c| *c == "503"), "{path}: {codes:?}");
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    for code in ["401", "429"] {
                        assert!(codes.iter().any(|c| *c == code), "{path} lacks {code}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked >= 8, "{checked} authenticated operations");
    }
}
