//! HTTP routes. Handlers are thin: parse (request.rs), call domain + store, render (views.rs).

pub mod batches;
pub mod credentials;
pub mod health;
pub mod issuers;
pub mod page;
pub mod revocations;
pub mod vcs;
pub mod verify;
pub mod webhooks;

use actix_web::web;

use crate::error::ApiError;

/// Which routes an `App` registers: everything on one listener, or the portal's and the public
/// routes apart (`public.port`, `crate::listeners`). A route an App does not register is
/// `route_not_found` there however its path is spelled (percent-encoding included), because
/// its router never holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSet {
    /// One listener serves every route.
    All,
    /// The API port when the public routes have their own: the authenticated routes, probes,
    /// the API description and `/metrics` (answered on the metrics port only).
    Portal,
    /// The public listener: verification, the page, issuer profiles, DID documents and status
    /// lists, probes and the API description.
    Public,
}

pub fn configure(set: RouteSet) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        if set != RouteSet::Public {
            portal(cfg);
            cfg.route("/metrics", web::get().to(health::metrics));
        }
        if set != RouteSet::Portal {
            public(cfg);
        }
        cfg.route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .route("/openapi.json", web::get().to(health::openapi));
    }
}

/// The routes anyone on the internet calls, without an API key.
fn public(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/issuers/{id}/did.json")
            .route(web::get().to(vcs::get_did_document))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/issuers/{id}/status-lists/{list}")
            .route(web::get().to(vcs::get_status_list))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/issuers/{id}")
            .route(web::get().to(issuers::get_issuer))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/verify")
            .route(web::post().to(verify::verify_json))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/verify")
            .route(web::get().to(page::form))
            .route(web::post().to(page::submit))
            .default_service(web::to(method_not_allowed)),
    );
}

/// The portal's routes (API key).
fn portal(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/credentials")
            .name("credentials")
            .route(web::post().to(credentials::issue_credential))
            .route(web::get().to(credentials::list_credentials))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/credentials/recover")
            .route(web::post().to(crate::proofs::recover))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/credentials/{id}/proof")
            .route(web::get().to(crate::proofs::get_proof))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/credential-batches")
            .route(web::post().to(batches::issue_batch))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/credential-batches/{id}")
            .route(web::get().to(batches::get_batch))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/credential-batches/{id}/proofs")
            .route(web::get().to(batches::get_batch_proofs))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/credential-batches/{id}/vcs")
            .route(web::get().to(vcs::get_batch_vcs))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/credentials/{id}/vc")
            .route(web::get().to(vcs::get_vc))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/credentials/{id}")
            .route(web::get().to(credentials::get_credential))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/credentials/{id}/revoke")
            .route(web::post().to(revocations::revoke_credential))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/webhooks")
            .route(web::post().to(webhooks::create_endpoint))
            .route(web::get().to(webhooks::list_endpoints))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/webhooks/{id}")
            .route(web::get().to(webhooks::get_endpoint))
            .route(web::patch().to(webhooks::update_endpoint))
            .route(web::delete().to(webhooks::delete_endpoint))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/webhooks/{id}/rotate-secret")
            .route(web::post().to(webhooks::rotate_secret))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/webhooks/{id}/test")
            .route(web::post().to(webhooks::test_endpoint))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/webhooks/{id}/deliveries")
            .route(web::get().to(webhooks::list_deliveries))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/webhooks/{id}/deliveries/{delivery_id}/retry")
            .route(web::post().to(webhooks::retry_delivery))
            .default_service(web::to(method_not_allowed)),
    );
}

pub async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

pub async fn route_not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}
