//! Guards of the public, unauthenticated routes (`POST /v1/verify`, `POST /verify`): anyone
//! on the internet can call them, each call costs RPC reads on the chain quota and up to the
//! verification body limit in memory, so a stranger must not be able to take the service
//! (and the issuance it also serves) down with them.
//!
//! Before a body is read, a request passes two gates: a per-client-IP rate (GCRA, `governor`)
//! and a cap on verifications in flight in this process. Over either it gets `429
//! rate_limited` with `Retry-After`, never a 5xx and never a queue. The client IP is the TCP
//! peer; `X-Forwarded-For` is believed only when the peer is a configured trusted proxy (else
//! anyone could pick a fresh IP per request).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::HttpRequest;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// `[public]`: limits of the unauthenticated verification routes.
#[derive(Debug, Clone, Deserialize)]
pub struct PublicSettings {
    /// Sustained verifications per second per client IP (0 = no per-IP limit).
    #[serde(default = "default_rate")]
    pub verify_per_ip_per_second: u32,
    /// How many a rested client IP may make at once.
    #[serde(default = "default_burst")]
    pub verify_per_ip_burst: u32,
    /// Verifications in flight in this process (each holds its upload in memory and makes
    /// RPC reads): the RPC budget of verification, so it never starves anything else.
    #[serde(default = "default_inflight")]
    pub verify_max_in_flight: usize,
    /// Of those, how many one client may hold: slow uploads from one address cannot take
    /// every place.
    #[serde(default = "default_inflight_per_ip")]
    pub verify_max_in_flight_per_ip: usize,
    /// Largest verification upload (the file and its proof bundle). Smaller than issuance's.
    #[serde(default = "default_verify_body")]
    pub verify_body_limit_bytes: usize,
    /// Proxies (load balancer, ingress) whose `X-Forwarded-For` names the client, as
    /// addresses or CIDR ranges (`10.0.0.0/8`). Empty: the TCP peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<ProxyRange>,
    /// The URL this API is reached at from outside (`https://registrar.example.edu`): the
    /// root of every issuer's `did:web`, so it must stay the same for as long as the
    /// credentials are verified. Unset: `http://<listen address>:<port>` with a warning
    /// (loopback, tests, the demo).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Serve the public routes (verification, the page, DID documents, status lists) on
    /// this port instead of the API port, on their own workers at a lower CPU priority, so a
    /// flood of strangers cannot slow the portal's issuance (`0`: any free port, tests).
    /// Unset: everything on `http.port`, as one listener.
    #[serde(default)]
    pub port: Option<u16>,
    /// actix workers of the public listener (with `public.port`).
    #[serde(default = "default_public_workers")]
    pub workers: usize,
    /// The public listener's CPU niceness (0 to 19; higher yields more): under load the
    /// kernel runs the portal's workers first. Raising niceness needs no privilege.
    #[serde(default = "default_public_nice")]
    pub nice: i32,
    /// Database connections of the public listener's workers together (with `public.port`;
    /// verification reads issuers, keys and revocations). Their own pools, so strangers can
    /// never hold the portal's connections; counted in `make deploy-check`'s budget.
    #[serde(default = "default_public_connections")]
    pub max_connections: usize,
}

fn default_public_connections() -> usize {
    4
}

fn default_public_workers() -> usize {
    1
}
fn default_public_nice() -> i32 {
    10
}

fn default_rate() -> u32 {
    2
}
fn default_burst() -> u32 {
    10
}
fn default_inflight() -> usize {
    16
}
fn default_inflight_per_ip() -> usize {
    2
}
fn default_verify_body() -> usize {
    5 * 1024 * 1024
}

impl Default for PublicSettings {
    fn default() -> Self {
        Self {
            verify_per_ip_per_second: default_rate(),
            verify_per_ip_burst: default_burst(),
            verify_max_in_flight: default_inflight(),
            verify_max_in_flight_per_ip: default_inflight_per_ip(),
            verify_body_limit_bytes: default_verify_body(),
            trusted_proxies: Vec::new(),
            base_url: None,
            port: None,
            workers: default_public_workers(),
            nice: default_public_nice(),
            max_connections: default_public_connections(),
        }
    }
}

/// An address or a CIDR range of trusted proxies (`10.1.2.3`, `10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ProxyRange {
    network: IpAddr,
    prefix: u8,
}

impl TryFrom<String> for ProxyRange {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl std::str::FromStr for ProxyRange {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("trusted proxy {text:?}: expected an IP address or a CIDR range");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { network, prefix })
    }
}

impl ProxyRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        fn bits(ip: IpAddr) -> u128 {
            match ip {
                IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
                IpAddr::V6(v6) => u128::from(v6),
            }
        }
        if self.network.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        // Prefix lengths count from the top of a 32- or 128-bit address; IPv4 sits in the
        // top 32 bits of the u128 here, so its prefix applies as is.
        let mask = if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        };
        bits(self.network) & mask == bits(ip) & mask
    }
}

/// The gates; one per process (shared by the workers).
pub struct PublicGuard {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    in_flight: Arc<Semaphore>,
    /// Places held per client (limiter key), removed at zero so the map holds only clients
    /// with a verification running.
    per_client: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
    max_per_client: usize,
    trusted_proxies: Vec<ProxyRange>,
    checks: AtomicU64,
    pub body_limit_bytes: usize,
}

/// A verification admitted: holds its place among those in flight until dropped.
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    client: ClientPlace,
}

type ClientPlace = Option<(Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>, IpAddr)>;

impl Drop for Admission {
    fn drop(&mut self) {
        release_client(self.client.take());
    }
}

/// Gives a client's place back.
fn release_client(client: ClientPlace) {
    if let Some((map, ip)) = client {
        if let Ok(mut map) = map.lock() {
            if let Some(n) = map.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

/// Forgetting idle client IPs every this many checks keeps the limiter's memory bounded by
/// the clients of the last few seconds, not by every address ever seen.
const RETAIN_EVERY: u64 = 4_096;

impl PublicGuard {
    pub fn new(settings: &PublicSettings) -> Self {
        let per_ip = NonZeroU32::new(settings.verify_per_ip_per_second).map(|rate| {
            let burst =
                NonZeroU32::new(settings.verify_per_ip_burst.max(rate.get())).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            per_ip,
            in_flight: Arc::new(Semaphore::new(settings.verify_max_in_flight.max(1))),
            per_client: Arc::default(),
            max_per_client: settings.verify_max_in_flight_per_ip.max(1),
            trusted_proxies: settings.trusted_proxies.clone(),
            checks: AtomicU64::new(0),
            body_limit_bytes: settings.verify_body_limit_bytes,
        }
    }

    /// Admits a verification from `req`'s client, or `429 rate_limited` with the seconds to
    /// wait. Called before the body is read.
    pub fn admit(&self, req: &HttpRequest) -> Result<Admission, ApiError> {
        self.admit_ip(self.client(req))
    }

    /// The client `req` comes from as the limiters key it (`client_ip`, then `limiter_key`).
    pub fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        // Every X-Forwarded-For line, in order: a proxy may add its own line rather than
        // append to the client's, and the walk must start from the last one.
        let forwarded: Vec<String> = req
            .headers()
            .get_all("x-forwarded-for")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
        let ip = client_ip(
            req.peer_addr().map(|a| a.ip()),
            forwarded.as_deref(),
            &self.trusted_proxies,
        );
        ip.map(limiter_key)
    }

    fn admit_ip(&self, ip: Option<IpAddr>) -> Result<Admission, ApiError> {
        if let (Some(limiter), Some(ip)) = (&self.per_ip, ip) {
            if self
                .checks
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(RETAIN_EVERY)
            {
                limiter.retain_recent();
            }
            limiter.check_key(&ip).map_err(|not_until| {
                let wait = not_until.wait_time_from(limiter.clock().now());
                ApiError::RateLimited {
                    retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
                }
            })?;
        }
        let busy = || ApiError::RateLimited {
            retry_after_secs: 1,
        };
        let client = match ip {
            Some(ip) => {
                let mut map = self.per_client.lock().map_err(|_| ApiError::Internal)?;
                let held = map.entry(ip).or_insert(0);
                if *held >= self.max_per_client {
                    return Err(busy());
                }
                *held += 1;
                Some((self.per_client.clone(), ip))
            }
            None => None,
        };
        // Built before the shared place is taken: refused, it gives the client's place back.
        let mut admission = Admission {
            _permit: match self.in_flight.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    release_client(client);
                    return Err(busy());
                }
            },
            client: None,
        };
        admission.client = client;
        Ok(admission)
    }
}

/// The key a client is limited under: IPv6 clients by their /64 (one subscriber's network
/// holds 2^64 addresses; per address, rotating them would be a free pass).
pub fn limiter_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(std::net::Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry as an address: `a.b.c.d`, `a.b.c.d:port`, an IPv6 address
/// with or without brackets and port. IPv4-mapped IPv6 is read as IPv4.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })?;
    Some(ip.to_canonical())
}

/// The client a request comes from: the TCP peer, unless the peer is a trusted proxy, in
/// which case the rightmost `X-Forwarded-For` address that is not itself a trusted proxy
/// (proxies append; anything left of the first trusted hop was written by the client and
/// proves nothing). A malformed entry ends the walk at the last address believed.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[ProxyRange],
) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d.
    let mut client = peer?.to_canonical();
    if !is_trusted(client) {
        return Some(client);
    }
    let Some(header) = forwarded_for else {
        return Some(client);
    };
    for hop in header.rsplit(',') {
        match parse_hop(hop) {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let lb = ip("10.0.0.1");
        let trusted = ["10.0.0.1".parse::<ProxyRange>().unwrap()];
        // Untrusted peer: its header is ignored (a client cannot pick its own address).
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), Some("1.2.3.4"), &trusted),
            Some(ip("203.0.113.9"))
        );
        // Trusted proxy: the rightmost address it did not itself write.
        assert_eq!(
            client_ip(Some(lb), Some("6.6.6.6, 198.51.100.7"), &trusted),
            Some(ip("198.51.100.7"))
        );
        // Several trusted hops are skipped.
        assert_eq!(
            client_ip(Some(lb), Some("198.51.100.7, 10.0.0.1"), &trusted),
            Some(ip("198.51.100.7"))
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(client_ip(Some(lb), None, &trusted), Some(lb));
        assert_eq!(client_ip(Some(lb), Some("nonsense"), &trusted), Some(lb));
        assert_eq!(client_ip(None, Some("1.2.3.4"), &trusted), None);
    }

    #[test]
    fn mapped_ports_brackets_and_ipv6_networks_are_one_client_each() {
        let trusted = ["10.0.0.0/8".parse::<ProxyRange>().unwrap()];
        // A dual-stack peer that is a trusted IPv4 proxy.
        assert_eq!(
            client_ip(Some(ip("::ffff:10.0.0.1")), Some("198.51.100.7"), &trusted),
            Some(ip("198.51.100.7"))
        );
        // Ports and brackets do not end the walk at the proxy.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), Some("198.51.100.7:4711"), &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), Some("[2001:db8::1]:443"), &trusted),
            Some(ip("2001:db8::1"))
        );
        // Two addresses of one IPv6 /64 share a budget; IPv4 is per address.
        assert_eq!(
            limiter_key(ip("2001:db8:1:2::1")),
            limiter_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            limiter_key(ip("2001:db8:1:2::1")),
            limiter_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(limiter_key(ip("198.51.100.7")), ip("198.51.100.7"));
    }

    #[test]
    fn proxy_ranges_parse_and_match_by_prefix() {
        let r: ProxyRange = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains(ip("10.200.3.4")));
        assert!(!r.contains(ip("11.0.0.1")));
        assert!(!r.contains(ip("::1")));
        let one: ProxyRange = "192.168.1.7".parse().unwrap();
        assert!(one.contains(ip("192.168.1.7")) && !one.contains(ip("192.168.1.8")));
        let v6: ProxyRange = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let any: ProxyRange = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<ProxyRange>().is_err(), "{bad}");
        }
        // Through the chain of hops: a range trusts every proxy in it.
        let trusted = [r];
        assert_eq!(
            client_ip(
                Some(ip("10.1.1.1")),
                Some("198.51.100.7, 10.2.2.2"),
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn each_client_ip_gets_its_burst_then_429_and_the_in_flight_cap_holds() {
        let guard = PublicGuard::new(&PublicSettings {
            verify_per_ip_per_second: 1,
            verify_per_ip_burst: 3,
            verify_max_in_flight: 100,
            ..Default::default()
        });
        let a = Some(ip("198.51.100.1"));
        for _ in 0..3 {
            assert!(guard.admit_ip(a).is_ok());
        }
        let refused = guard.admit_ip(a).err().expect("over the burst");
        assert!(
            matches!(refused, ApiError::RateLimited { retry_after_secs } if retry_after_secs >= 1)
        );
        assert!(
            guard.admit_ip(Some(ip("198.51.100.2"))).is_ok(),
            "another client is unaffected"
        );

        // One client holds at most its own share of the places.
        let shared = PublicGuard::new(&PublicSettings {
            verify_per_ip_per_second: 0,
            verify_max_in_flight: 16,
            verify_max_in_flight_per_ip: 2,
            ..Default::default()
        });
        let slow = Some(ip("203.0.113.5"));
        let held = [
            shared.admit_ip(slow).unwrap(),
            shared.admit_ip(slow).unwrap(),
        ];
        assert!(
            shared.admit_ip(slow).is_err(),
            "a third from one client is refused"
        );
        assert!(shared.admit_ip(a).is_ok(), "others still get in");
        drop(held);
        assert!(shared.admit_ip(slow).is_ok(), "its places come back");

        let capped = PublicGuard::new(&PublicSettings {
            verify_per_ip_per_second: 0,
            verify_max_in_flight: 2,
            verify_max_in_flight_per_ip: 10,
            ..Default::default()
        });
        let first = capped.admit_ip(a).unwrap();
        let _second = capped.admit_ip(a).unwrap();
        assert!(capped.admit_ip(a).is_err(), "a third in flight is refused");
        drop(first);
        assert!(capped.admit_ip(a).is_ok(), "a finished one frees its place");
    }
}
