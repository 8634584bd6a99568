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
        crate::verify::VerificationView,
        crate::verify::VerifiedIssuer,
        crate::verify::VerifiedAnchor,
        crate::verify::VerifiedRevocation,
        crate::bulk::BulkItemBody,
        crate::bulk::BulkBody,
        crate::routes::batches::BulkResponse,
        crate::routes::batches::BulkItemResult,
        crate::routes::batches::CredentialBatchView,
    )),
    modifiers(&BearerAuth)
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
