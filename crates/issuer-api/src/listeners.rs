//! Which routes each listener answers, and the lower CPU priority of the public one.
//!
//! One `App` serves every listener; a middleware asks [`answers`] whether the listener a
//! request arrived on serves its route. The metrics port serves `/metrics` alone and `/metrics`
//! is nowhere else. With `public.port` set, the public routes (verification, the page, DID
//! documents, status lists) move to their own listener, whose workers run at a higher
//! niceness: the kernel then gives the portal's workers the CPU first, so a stranger's flood
//! of verifications slows verification, not issuance (issue #18). A refused route gets the
//! same `route_not_found` as any unknown path, so a prober learns nothing.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::state::AppState;

/// The routes anyone on the internet calls (route patterns as registered in `routes`).
pub const PUBLIC_ROUTES: [&str; 4] = [
    "/v1/verify",
    "/verify",
    "/issuers/{id}/did.json",
    "/issuers/{id}/status-lists/{list}",
];

/// Routes every API and public listener answers (probes, the API description).
const ANYWHERE: [&str; 3] = ["/healthz", "/readyz", "/openapi.json"];

/// The listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// `http.port`: the portal's API (and the public routes when `public.port` is unset).
    Api,
    /// `public.port`.
    Public,
    /// `http.metrics_port`.
    Metrics,
}

/// Whether `listener` answers the request whose decoded path is `path` and whose matched
/// route pattern is `route` (`None`: no route matched, the 404 every listener gives).
/// `public_split`: whether `public.port` is set.
pub fn answers(listener: Listener, path: &str, route: Option<&str>, public_split: bool) -> bool {
    // The decoded path, not the pattern alone: `/%6Detrics` is `/metrics` too.
    let metrics = path == "/metrics" || route == Some("/metrics");
    let public = route.is_some_and(|r| PUBLIC_ROUTES.contains(&r));
    match listener {
        Listener::Metrics => metrics,
        _ if metrics => false,
        _ if route.is_some_and(|r| ANYWHERE.contains(&r)) => true,
        Listener::Api => !(public_split && public),
        Listener::Public => public || route.is_none(),
    }
}

/// The middleware applying [`answers`] to the listener the request came in on.
pub async fn listener_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let ports = req
        .app_data::<web::Data<AppState>>()
        .map(|s| (s.metrics_port, s.public_port));
    let local = req.app_config().local_addr().port();
    let (listener, split) = match ports {
        Some((metrics, _)) if metrics == local => (Listener::Metrics, false),
        Some((_, Some(public))) if public == local => (Listener::Public, true),
        Some((_, public)) => (Listener::Api, public.is_some()),
        None => (Listener::Api, false),
    };
    let route = req.match_pattern();
    if !answers(listener, req.match_info().as_str(), route.as_deref(), split) {
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
    use proptest::prelude::*;

    const ROUTES: [&str; 9] = [
        "/v1/credentials",
        "/v1/credentials/{id}",
        "/v1/verify",
        "/verify",
        "/issuers/{id}/did.json",
        "/issuers/{id}/status-lists/{list}",
        "/healthz",
        "/openapi.json",
        "/metrics",
    ];

    #[test]
    fn the_metrics_port_serves_metrics_alone_and_nothing_else_serves_it() {
        for split in [false, true] {
            assert!(answers(
                Listener::Metrics,
                "/metrics",
                Some("/metrics"),
                split
            ));
            assert!(!answers(Listener::Api, "/metrics", Some("/metrics"), split));
            assert!(!answers(
                Listener::Public,
                "/metrics",
                Some("/metrics"),
                split
            ));
            assert!(!answers(
                Listener::Metrics,
                "/healthz",
                Some("/healthz"),
                split
            ));
        }
    }

    #[test]
    fn with_a_public_port_the_api_port_keeps_only_the_portals_routes() {
        let api = |r: &str| answers(Listener::Api, r, Some(r), true);
        let public = |r: &str| answers(Listener::Public, r, Some(r), true);
        assert!(api("/v1/credentials") && !public("/v1/credentials"));
        assert!(api("/v1/credentials/{id}") && !public("/v1/credentials/{id}"));
        for r in PUBLIC_ROUTES {
            assert!(public(r) && !api(r), "{r}");
        }
        assert!(api("/healthz") && public("/healthz"));
        // Without the split, the API port serves the public routes as before.
        for r in PUBLIC_ROUTES {
            assert!(answers(Listener::Api, r, Some(r), false), "{r}");
        }
    }

    proptest! {
        /// Every matched route is served by exactly one of the API and metrics listeners
        /// without a split, and by exactly one of the three, probes aside, with it.
        #[test]
        fn each_route_has_exactly_one_home(i in 0..ROUTES.len(), split in any::<bool>()) {
            let r = ROUTES[i];
            let homes = [Listener::Api, Listener::Public, Listener::Metrics]
                .into_iter()
                .filter(|l| split || *l != Listener::Public)
                .filter(|l| answers(*l, r, Some(r), split))
                .count();
            let expected = if ANYWHERE.contains(&r) { 1 + usize::from(split) } else { 1 };
            prop_assert_eq!(homes, expected);
        }
    }
}
