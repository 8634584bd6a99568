//! Bearer API-key authentication. The key names its own id (`cak_<id>_<secret>`): the store
//! is queried by id, then the secret's hash is compared in constant time, so neither a
//! timing difference nor a database index leaks how much of a guessed secret was right.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use domain::api_key::ApiKey;
use domain::IssuerId;

use crate::error::ApiError;
use crate::state::AppState;

/// The issuer whose API key authenticated this request. Handlers scope every query by it,
/// so one issuer can never see another's credentials (they are simply "not found").
pub struct AuthenticatedIssuer(pub IssuerId);

impl FromRequest for AuthenticatedIssuer {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let client = state.as_ref().and_then(|s| s.public.client(req));
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        Box::pin(async move {
            let state = state.ok_or(ApiError::Internal)?;
            let now = std::time::Instant::now();
            let blocked = client.and_then(|ip| state.auth_throttle.blocked(ip, now));
            // A failure answers 401, or 429 when it used the client's last token.
            let refuse = || match client.and_then(|ip| state.auth_throttle.failed(ip, now)) {
                Some(retry_after_secs) => ApiError::RateLimited { retry_after_secs },
                None => ApiError::Unauthorized,
            };
            let Some(token) = token else {
                return Err(match blocked {
                    Some(retry_after_secs) => ApiError::RateLimited { retry_after_secs },
                    None => refuse(),
                });
            };
            let Ok((key_id, secret)) = ApiKey::parse(&token) else {
                return Err(match blocked {
                    Some(retry_after_secs) => ApiError::RateLimited { retry_after_secs },
                    None => refuse(),
                });
            };
            let cached = state.api_keys.get(&key_id, now);
            let from_cache = cached.is_some();
            let found = match (cached, blocked) {
                (Some(row), _) => Some(row),
                // Blocked: no database read for a key id this replica has not seen work lately.
                (None, Some(retry_after_secs))
                    if !state.auth_throttle.is_known(key_id.as_str(), now) =>
                {
                    return Err(ApiError::RateLimited { retry_after_secs })
                }
                (None, _) => state
                    .store()
                    .find_api_key(&key_id)
                    .await
                    .map_err(|e| state.store_error(e))?,
            };
            match found {
                Some((issuer, hash)) if hash.matches(&secret) => {
                    // Only a fresh lookup is stored: refreshing on a hit would keep a revoked
                    // key alive for as long as it is used.
                    if !from_cache {
                        state.api_keys.put(&key_id, &issuer, hash, now);
                        state.auth_throttle.authenticated(key_id.as_str(), now);
                    }
                    // After authentication, so only real keys take limiter memory; before
                    // the handler reads the body, so a limited request writes nothing.
                    state
                        .limiter
                        .check(key_id.as_str())
                        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
                    Ok(AuthenticatedIssuer(issuer))
                }
                _ => Err(match blocked {
                    Some(retry_after_secs) => ApiError::RateLimited { retry_after_secs },
                    None => refuse(),
                }),
            }
        })
    }
}
