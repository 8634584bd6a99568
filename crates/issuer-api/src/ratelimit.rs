//! Per-API-key rate limiting (GCRA, from the `governor` crate): a runaway portal script or a
//! leaked key cannot starve the other issuers or the database. Over the limit a request gets
//! `429 rate_limited` with `Retry-After`, before its body is read, so nothing is written.
//!
//! The limiter is keyed by the API key id and consulted only after the key authenticated, so
//! its memory is bounded by the number of real keys: unauthenticated garbage cannot grow it.
//! A limited request still costs the key lookup (one indexed read), never a write or the
//! issuance work.
//! Limits are per process: with N replicas an issuer gets N times the rate, which is what an
//! operator scaling the API for graduation day wants anyway.

use std::num::NonZeroU32;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// `None` when disabled (`rate_limit_per_second = 0`).
pub struct KeyLimiter {
    inner: Option<DefaultKeyedRateLimiter<String>>,
}

impl KeyLimiter {
    /// `per_second` sustained requests per key; `burst` is the bucket size, i.e. how many
    /// requests a rested key may make at once (at least `per_second`); `per_second == 0`
    /// disables limiting.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let inner = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { inner }
    }

    /// `Ok` when `key_id` may make a request now, else the whole seconds to wait (at least
    /// 1, the granularity of `Retry-After`).
    pub fn check(&self, key_id: &str) -> Result<(), u64> {
        let Some(limiter) = &self.inner else {
            return Ok(());
        };
        limiter.check_key(&key_id.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_must_wait_and_other_keys_are_unaffected() {
        let limiter = KeyLimiter::new(1, 3);
        for _ in 0..3 {
            assert_eq!(limiter.check("a"), Ok(()));
        }
        let wait = limiter.check("a").unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        assert_eq!(limiter.check("b"), Ok(()));
    }

    #[test]
    fn zero_disables_limiting() {
        let limiter = KeyLimiter::new(0, 0);
        for _ in 0..10_000 {
            assert_eq!(limiter.check("a"), Ok(()));
        }
    }

    #[test]
    fn a_burst_below_the_rate_is_raised_to_the_rate() {
        let limiter = KeyLimiter::new(5, 1);
        for _ in 0..5 {
            assert_eq!(limiter.check("a"), Ok(()));
        }
        assert!(limiter.check("a").is_err());
    }
}
