//! Throttling of failed authentications per client IP. A 256-bit key secret cannot be
//! guessed, so this is not about brute force succeeding: it stops one client from making the
//! API spend a database lookup on every made-up key id, and makes a scanner's requests cheap.
//!
//! Every failed authentication takes a token from the client's bucket (GCRA, `governor`;
//! `http.failed_auth_per_ip_per_minute`, the same number as burst). A client whose bucket is
//! empty is blocked until it refills: its requests are answered `429 rate_limited` with
//! `Retry-After` before any database read, except those whose key is in this replica's cache
//! of keys that authenticated in the last `api_key_cache_secs` (checked in constant time as
//! always). So a portal sharing an address with a scanner (one NAT, or an ingress whose
//! `X-Forwarded-For` is not trusted) keeps working while its key is warm, and the scanner
//! gains nothing. The client address is the one the public routes use
//! (`public::client_ip`: the trusted-proxy rule, IPv6 by /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// More blocked clients than this and the oldest blocks are dropped wholesale: memory stays
/// bounded under a spoofed-address flood (which cannot happen over TCP anyway).
const MAX_BLOCKED: usize = 100_000;

pub struct AuthThrottle {
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl AuthThrottle {
    /// `per_minute == 0` turns throttling off.
    pub fn new(per_minute: u32) -> Self {
        let failures = NonZeroU32::new(per_minute)
            .map(|n| RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)));
        Self {
            failures,
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds)` while `client` is blocked.
    pub fn blocked(&self, client: IpAddr, now: Instant) -> Option<u64> {
        self.failures.as_ref()?;
        let mut blocked = self.blocked.lock().ok()?;
        let until = *blocked.get(&client)?;
        if until <= now {
            blocked.remove(&client);
            return None;
        }
        Some(whole_seconds(until - now))
    }

    /// Records a failed authentication; `Some(seconds)` when it used the client's last token
    /// (the client is now blocked for that long).
    pub fn failed(&self, client: IpAddr, now: Instant) -> Option<u64> {
        let limiter = self.failures.as_ref()?;
        let not_until = limiter.check_key(&client).err()?;
        let wait = not_until.wait_time_from(limiter.clock().now());
        let mut blocked = self.blocked.lock().ok()?;
        if blocked.len() >= MAX_BLOCKED {
            blocked.retain(|_, until| *until > now);
            if blocked.len() >= MAX_BLOCKED {
                blocked.clear();
            }
            limiter.retain_recent();
        }
        blocked.insert(client, now + wait.max(Duration::from_secs(1)));
        Some(whole_seconds(wait))
    }
}

fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_is_blocked_after_its_budget_of_failures_and_others_are_not() {
        let throttle = AuthThrottle::new(5);
        let now = Instant::now();
        for _ in 0..5 {
            assert_eq!(throttle.failed(ip("192.0.2.1"), now), None);
            assert_eq!(throttle.blocked(ip("192.0.2.1"), now), None);
        }
        let wait = throttle
            .failed(ip("192.0.2.1"), now)
            .expect("sixth failure blocks");
        assert!((1..=12).contains(&wait), "{wait}");
        assert!(throttle.blocked(ip("192.0.2.1"), now).is_some());
        assert_eq!(throttle.blocked(ip("192.0.2.2"), now), None);
        // The block ends when its time has passed.
        let later = now + Duration::from_secs(wait + 1);
        assert_eq!(throttle.blocked(ip("192.0.2.1"), later), None);
    }

    #[test]
    fn zero_turns_it_off() {
        let throttle = AuthThrottle::new(0);
        let now = Instant::now();
        for _ in 0..1_000 {
            assert_eq!(throttle.failed(ip("192.0.2.1"), now), None);
        }
        assert_eq!(throttle.blocked(ip("192.0.2.1"), now), None);
    }
}
