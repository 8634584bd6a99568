//! The API's listeners: which routes each serves, and the lower CPU priority of the public one.
//!
//! Without `public.port` one server answers every route on `http.port`, and `/metrics` on
//! `http.metrics_port` (that server listens on both). With it, the public routes (verification,
//! the page, issuer profiles, DID documents, status lists) move to a second server whose `App`
//! registers only them ([`RouteSet::Public`]), and the API port's `App` no longer registers
//! them ([`RouteSet::Portal`]): a route a listener does not serve is simply absent from its
//! router, so no spelling of a path (percent-encoding, case, slashes) reaches it. The public
//! server's workers run at a higher niceness: the kernel then gives the portal's workers the
//! CPU first, so a stranger's flood of verifications slows verification, not issuance
//! (issue #18).
//!
//! The one route shared by two listeners of one server is `/metrics`: [`metrics_gate`] answers
//! it on the metrics port only, and nothing else there.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

pub use crate::routes::RouteSet;
use crate::state::AppState;

/// Whether a request for the (percent-decoded) `path` may be answered on a listener that is,
/// or is not, the metrics port: there only `/metrics`, and `/metrics` nowhere else.
pub fn metrics_port_serves(on_metrics_port: bool, path: &str) -> bool {
    on_metrics_port == (path == "/metrics")
}

/// The middleware applying [`metrics_port_serves`]; a refusal is the same `route_not_found`
/// as any unknown path, so a prober learns nothing.
pub async fn metrics_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let metrics_port = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics_port);
    let on_metrics_port = Some(req.app_config().local_addr().port()) == metrics_port;
    // The path the router matches (percent-decoded), not the raw one: `/%6Detrics` must not
    // slip past the gate and then be routed to `/metrics`.
    if !metrics_port_serves(on_metrics_port, req.match_info().as_str()) {
        let res = actix_web::ResponseError::error_response(&crate::error::ApiError::RouteNotFound);
        return Ok(req.into_response(res).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Raises the calling thread's niceness to `nice` (clamped to 0..=19). Threads inherit it, so
/// calling this first on the thread that starts the public server lowers its acceptor and
/// workers too. Best effort: where the kernel refuses, the listener still runs, only without
/// the priority (logged).
pub fn lower_cpu_priority(nice: i32) {
    let nice = nice.clamp(0, 19);
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
        tracing::warn!(error = %e, nice, "could not lower the public listener's CPU priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test as web_test;
    use actix_web::App;

    #[test]
    fn the_metrics_port_serves_metrics_alone_and_nothing_else_serves_it() {
        assert!(metrics_port_serves(true, "/metrics"));
        assert!(!metrics_port_serves(true, "/healthz"));
        assert!(!metrics_port_serves(false, "/metrics"));
        assert!(metrics_port_serves(false, "/v1/verify"));
    }

    /// Whether `App`s of `set` route `method path` (anything but the default service's 404;
    /// handlers without their state answer 500, which is fine here: they were reached).
    async fn routed(set: RouteSet, method: &str, path: &str) -> bool {
        let app = web_test::init_service(
            App::new()
                .configure(crate::routes::configure(set))
                .default_service(web::to(crate::routes::route_not_found)),
        )
        .await;
        let req = web_test::TestRequest::default()
            .method(method.parse().unwrap_or(actix_web::http::Method::GET))
            .uri(path)
            .to_request();
        web_test::call_service(&app, req).await.status() != 404
    }

    #[actix_web::test]
    async fn each_listener_routes_only_its_own_routes_however_the_path_is_spelled() {
        let public = [
            ("POST", "/v1/verify"),
            ("POST", "/v1/%76erify"),
            ("GET", "/verify"),
            ("GET", "/%76erify"),
            ("GET", "/issuers/uni/did.json"),
            ("GET", "/issuers/uni/status-lists/0"),
            ("GET", "/v1/issuers/uni"),
            ("GET", "/v1/%69ssuers/uni"),
        ];
        let portal = [
            ("POST", "/v1/credentials"),
            ("POST", "/v1/%63redentials"),
            (
                "GET",
                "/v1/credentials/00000000-0000-0000-0000-000000000000",
            ),
            ("POST", "/v1/credentials/x/revoke"),
            ("POST", "/v1/credentials/x/re%76oke"),
            ("POST", "/v1/credential-batches"),
            ("GET", "/v1/%63redential-batches/x/proofs"),
            ("GET", "/metrics"),
            ("GET", "/%6Detrics"),
        ];
        for (method, path) in public {
            assert!(
                routed(RouteSet::Public, method, path).await,
                "{method} {path}"
            );
            assert!(routed(RouteSet::All, method, path).await, "{method} {path}");
            assert!(
                !routed(RouteSet::Portal, method, path).await,
                "{method} {path}"
            );
        }
        for (method, path) in portal {
            assert!(
                routed(RouteSet::Portal, method, path).await,
                "{method} {path}"
            );
            assert!(routed(RouteSet::All, method, path).await, "{method} {path}");
            assert!(
                !routed(RouteSet::Public, method, path).await,
                "{method} {path}"
            );
        }
        for set in [RouteSet::All, RouteSet::Portal, RouteSet::Public] {
            for path in ["/healthz", "/readyz", "/openapi.json"] {
                assert!(routed(set, "GET", path).await, "{set:?} {path}");
            }
        }
    }
}
