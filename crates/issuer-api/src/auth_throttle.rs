//! Throttling of failed authentications per client IP. A 256-bit key secret cannot be
//! guessed, so this is not about brute force succeeding: it stops one client from making the
//! API spend a database lookup on every made-up key id, and makes a scanner's requests cheap.
//!
//! Every failed authentication takes a token from the client's bucket (GCRA, `governor`;
//! `http.failed_auth_per_ip_per_minute`, the same number as burst). A client whose bucket is
//! empty is blocked until it refills: its requests are answered `429 rate_limited` with
//! `Retry-After` before any database read, except those whose key id authenticated on this
//! replica in the last `KNOWN_TTL` (10 minutes): those are looked up as usual (so a revoked key
//! is still refused) and checked in constant time as always. So a portal sharing an address
//! with a scanner (one NAT, or an ingress whose `X-Forwarded-For` is not trusted) keeps
//! working, and the scanner gains nothing: a made-up key id costs no lookup while it is
//! blocked. The client address is the one the public routes use
//! (`public::client_ip`: the trusted-proxy rule, IPv6 by /64).
//!
//! IPv6 has a second tier: one end site usually holds a whole /48 (65,536 /64s), so the
//! failures of all the /64s of a /48 also share one bucket of `PREFIX48_SHARE` clients'
//! budgets. Past it every address of that /48 is blocked the same way.

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

/// How long a key id that authenticated stays "known": looked up even from a blocked address.
const KNOWN_TTL: Duration = Duration::from_secs(600);
/// More known key ids than any registrar has: past this the set is emptied, not grown.
const MAX_KNOWN: usize = 10_000;
/// Which bucket a block comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Tier {
    Client,
    Net48,
}

/// An IPv6 /48 may fail as often as this many clients together.
pub const PREFIX48_SHARE: u32 = 16;

/// Forgetting clients whose bucket is full again every this many failures keeps the
/// limiter's memory bounded by recent failing clients.
const RETAIN_EVERY: u64 = 4_096;

pub struct AuthThrottle {
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Failures per IPv6 /48 (`prefix48`).
    failures48: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Blocked clients (their /64 for IPv6) and blocked IPv6 /48s, apart: the first /64 of a
    /// /48 is the same address as the /48.
    blocked: Mutex<HashMap<(Tier, IpAddr), Instant>>,
    known: Mutex<HashMap<String, Instant>>,
    failed_count: std::sync::atomic::AtomicU64,
}

impl AuthThrottle {
    /// `per_minute == 0` turns throttling off.
    pub fn new(per_minute: u32) -> Self {
        let limiter = |n: u32| {
            NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)))
        };
        Self {
            failures: limiter(per_minute),
            failures48: limiter(per_minute.saturating_mul(PREFIX48_SHARE)),
            blocked: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
            failed_count: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Remembers that `key_id` just authenticated.
    pub fn authenticated(&self, key_id: &str, now: Instant) {
        if self.failures.is_none() {
            return;
        }
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= MAX_KNOWN && !known.contains_key(key_id) {
                known.retain(|_, at| now.saturating_duration_since(*at) < KNOWN_TTL);
                if known.len() >= MAX_KNOWN {
                    known.clear();
                }
            }
            known.insert(key_id.to_string(), now);
        }
    }

    /// Whether `key_id` authenticated on this replica within `KNOWN_TTL` of `now`.
    pub fn is_known(&self, key_id: &str, now: Instant) -> bool {
        self.known.lock().is_ok_and(|known| {
            known
                .get(key_id)
                .is_some_and(|at| now.saturating_duration_since(*at) < KNOWN_TTL)
        })
    }

    /// `Some(seconds)` while `client` (or, for IPv6, its /48) is blocked.
    pub fn blocked(&self, client: IpAddr, now: Instant) -> Option<u64> {
        self.failures.as_ref()?;
        let mut blocked = self.blocked.lock().ok()?;
        let mut wait = None;
        let keys = std::iter::once((Tier::Client, client))
            .chain(prefix48(client).map(|net| (Tier::Net48, net)));
        for key in keys {
            match blocked.get(&key) {
                Some(until) if *until > now => {
                    wait = wait.max(Some(whole_seconds(*until - now)));
                }
                Some(_) => {
                    blocked.remove(&key);
                }
                None => {}
            }
        }
        wait
    }

    /// Records a failed authentication; `Some(seconds)` when it used the client's last token
    /// (the client is now blocked for that long).
    pub fn failed(&self, client: IpAddr, now: Instant) -> Option<u64> {
        let limiter = self.failures.as_ref()?;
        if self
            .failed_count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(RETAIN_EVERY)
        {
            limiter.retain_recent();
            if let Some(limiter48) = &self.failures48 {
                limiter48.retain_recent();
            }
        }
        // Both tiers take a token; whichever runs out blocks its key (the client, or its /48).
        let mut over: Vec<((Tier, IpAddr), Duration)> = Vec::new();
        if let Err(not_until) = limiter.check_key(&client) {
            over.push((
                (Tier::Client, client),
                not_until.wait_time_from(limiter.clock().now()),
            ));
        }
        if let (Some(net), Some(limiter48)) = (prefix48(client), self.failures48.as_ref()) {
            if let Err(not_until) = limiter48.check_key(&net) {
                over.push((
                    (Tier::Net48, net),
                    not_until.wait_time_from(limiter48.clock().now()),
                ));
            }
        }
        let wait = over.iter().map(|(_, wait)| *wait).max()?;
        let mut blocked = self.blocked.lock().ok()?;
        if blocked.len() >= MAX_BLOCKED {
            blocked.retain(|_, until| *until > now);
            if blocked.len() >= MAX_BLOCKED {
                blocked.clear();
            }
            limiter.retain_recent();
            if let Some(limiter48) = &self.failures48 {
                limiter48.retain_recent();
            }
        }
        for (key, wait) in over {
            blocked.insert(key, now + wait.max(Duration::from_secs(1)));
        }
        Some(whole_seconds(wait))
    }
}

/// The /48 an IPv6 client belongs to (its own key in the block list); `None` for IPv4.
fn prefix48(ip: IpAddr) -> Option<IpAddr> {
    match ip.to_canonical() {
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & (u128::MAX << 80);
            Some(IpAddr::V6(std::net::Ipv6Addr::from(net)))
        }
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
    fn the_slash_64s_of_one_ipv6_slash_48_share_a_bigger_budget() {
        let throttle = AuthThrottle::new(2);
        let now = Instant::now();
        // 16 clients of 2001:db8:1::/48 use their own budgets (2 each), all of the /48's (32).
        for n in 0..PREFIX48_SHARE {
            let client = ip(&format!("2001:db8:1:{n:x}::"));
            assert_eq!(throttle.failed(client, now), None);
            assert_eq!(throttle.failed(client, now), None);
        }
        // A 17th fails once: the /48's bucket is empty, so the whole /48 is blocked.
        let seventeenth = ip("2001:db8:1:ff::");
        assert!(throttle.failed(seventeenth, now).is_some());
        assert!(
            throttle.blocked(ip("2001:db8:1:abcd::"), now).is_some(),
            "a fresh /64 of the same /48 is blocked before any failure"
        );
        assert_eq!(
            throttle.blocked(ip("2001:db8:2::"), now),
            None,
            "another /48 is not"
        );
        assert_eq!(throttle.blocked(ip("192.0.2.9"), now), None);
        assert_eq!(prefix48(ip("192.0.2.9")), None);
        // The first /64 of a /48 is the same address as the /48: its own block is its own.
        let throttle = AuthThrottle::new(2);
        let first = ip("2001:db8:5::");
        for _ in 0..2 {
            assert_eq!(throttle.failed(first, now), None);
        }
        assert!(throttle.failed(first, now).is_some(), "over its own budget");
        assert!(throttle.blocked(first, now).is_some());
        assert_eq!(
            throttle.blocked(ip("2001:db8:5:1::"), now),
            None,
            "a sibling /64 is not blocked by the first /64's own block"
        );
        assert_eq!(
            prefix48(ip("2001:db8:1:ff:1:2:3:4")),
            Some(ip("2001:db8:1::"))
        );
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

    #[test]
    fn a_key_that_authenticated_stays_known_for_its_ttl_only() {
        let throttle = AuthThrottle::new(5);
        let now = Instant::now();
        assert!(!throttle.is_known("abc", now));
        throttle.authenticated("abc", now);
        assert!(throttle.is_known("abc", now + KNOWN_TTL - Duration::from_secs(1)));
        assert!(!throttle.is_known("abc", now + KNOWN_TTL));
        assert!(!throttle.is_known("abd", now));
    }
}
