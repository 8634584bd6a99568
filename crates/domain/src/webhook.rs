//! Standard Webhooks (issue #24): the signature a webhook delivery carries, the secret that
//! makes it, the retry schedule and which destinations a delivery may go to. Pure: the
//! delivery worker does the I/O.
//!
//! Signature (the Standard Webhooks specification, `webhook-signature` header): base64 of
//! HMAC-SHA256, keyed by the secret's bytes, over `<webhook-id>.<webhook-timestamp>.<body>`,
//! written `v1,<base64>`; several space-separated when a rotated secret is still in its grace
//! period, so a receiver holding either secret accepts. A secret is `whsec_` + base64 of 24 to
//! 64 random bytes. Receivers verify with any Standard Webhooks library (the tests use the
//! published npm `standardwebhooks`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::hmac;

/// What every secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes of a secret we generate (the specification allows 24 to 64).
pub const SECRET_BYTES: usize = 32;
const MIN_SECRET_BYTES: usize = 24;
const MAX_SECRET_BYTES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("a webhook secret is `whsec_` followed by base64 of 24 to 64 bytes")]
    BadSecret,
}

/// A signing secret. `Debug` never shows it; [`WebhookSecret::expose`] is the only way out
/// (shown once, when it is created).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    /// A secret from `bytes` (24 to 64 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WebhookError> {
        if (MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            Ok(Self(bytes.to_vec()))
        } else {
            Err(WebhookError::BadSecret)
        }
    }

    /// Parses `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, WebhookError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(WebhookError::BadSecret)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| WebhookError::BadSecret)?;
        Self::from_bytes(&bytes)
    }

    /// The secret as the receiver configures it: `whsec_<base64>`.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.0)
    }
}

/// The signed content: `<id>.<timestamp>.<body>`.
fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    content
}

/// The `webhook-signature` header value: one `v1,<base64>` per secret, space-separated, in
/// the order given (the current secret first, then any still in its grace period).
pub fn signature_header(
    secrets: &[&WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let content = signed_content(id, timestamp, body);
    secrets
        .iter()
        .map(|s| {
            format!(
                "v1,{}",
                STANDARD.encode(hmac::sign(&s.key(), &content).as_ref())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `header` carries a valid `v1` signature by `secret` (constant-time comparison).
/// Our receivers in tests use the published library; this is the same rule, for the
/// property tests and the `POST .../test` self-check.
pub fn verify(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let content = signed_content(id, timestamp, body);
    header.split(' ').any(|part| {
        part.strip_prefix("v1,")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .is_some_and(|sig| hmac::verify(&secret.key(), &content, &sig).is_ok())
    })
}

/// The delays before each retry, as the Standard Webhooks guidance suggests: immediately, then
/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h: about 27.6 hours in all, after which the
/// delivery is a dead letter (replayable by hand).
pub const RETRY_SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// The delay before attempt `attempt` (0 = the first delivery) with `jitter` in 0.0..=1.0
/// spreading it by up to ±20% (so retries of many deliveries do not arrive together), or
/// `None` once the schedule is exhausted.
pub fn retry_delay(attempt: u32, jitter: f64) -> Option<Duration> {
    let base = *RETRY_SCHEDULE.get(usize::try_from(attempt).ok()?)?;
    // NaN or infinite jitter (never from a sane RNG) must not panic `mul_f64`: no spread.
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let factor = 0.8 + 0.4 * jitter;
    Some(base.mul_f64(factor))
}

/// Why a destination address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Loopback,
    LinkLocal,
    Private,
    Unspecified,
    Multicast,
    /// Carrier-grade NAT, benchmarking, documentation, reserved: not a public host.
    Reserved,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Loopback => "loopback",
            Refusal::LinkLocal => "link_local",
            Refusal::Private => "private",
            Refusal::Unspecified => "unspecified",
            Refusal::Multicast => "multicast",
            Refusal::Reserved => "reserved",
        }
    }
}

fn classify_v4(v4: Ipv4Addr) -> Option<Refusal> {
    let [a, b, c, _] = v4.octets();
    if v4.is_unspecified() || a == 0 {
        Some(Refusal::Unspecified)
    } else if v4.is_loopback() {
        Some(Refusal::Loopback)
    } else if v4.is_link_local() {
        Some(Refusal::LinkLocal)
    } else if v4.is_private() {
        Some(Refusal::Private)
    } else if v4.is_multicast() || v4.is_broadcast() {
        Some(Refusal::Multicast)
    } else if (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && b == 0 && c == 0)
        || v4.is_documentation()
        || a >= 240
    {
        Some(Refusal::Reserved)
    } else {
        None
    }
}

/// Whether a delivery may connect to `ip` (SSRF): only public unicast addresses. With
/// `allow_private` (tests, an on-premises portal) loopback, link-local, private and reserved
/// ranges are allowed too; unspecified and multicast addresses never are. IPv4-mapped,
/// IPv4-compatible and NAT64 (`64:ff9b::/96`) IPv6 addresses are judged as the IPv4 address
/// they carry, so `::ffff:127.0.0.1` is loopback.
pub fn destination(ip: IpAddr, allow_private: bool) -> Result<(), Refusal> {
    let refusal = match ip.to_canonical() {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let o = v6.octets();
            let embedded = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
            if v6.is_unspecified() {
                Some(Refusal::Unspecified)
            } else if v6.is_loopback() {
                Some(Refusal::Loopback)
            } else if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0))
                || s[..6].iter().all(|x| *x == 0)
            {
                classify_v4(embedded)
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some(Refusal::LinkLocal)
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some(Refusal::Private)
            } else if v6.is_multicast() {
                Some(Refusal::Multicast)
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some(Refusal::Reserved)
            } else {
                None
            }
        }
    };
    match refusal {
        None => Ok(()),
        Some(why @ (Refusal::Unspecified | Refusal::Multicast)) => Err(why),
        Some(_) if allow_private => Ok(()),
        Some(why) => Err(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret(byte: u8) -> WebhookSecret {
        WebhookSecret::from_bytes(&[byte; SECRET_BYTES]).unwrap()
    }

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_the_reference_example() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let header = signature_header(
            &[&secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_parse_only_in_their_format_and_never_print() {
        let s = secret(7);
        assert_eq!(WebhookSecret::parse(&s.expose()).unwrap(), s);
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(format!("{s:?}"), "WebhookSecret(<redacted>)");
        for bad in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!!",
            "whsec_AAAA",
            &format!("whsec_{}", STANDARD.encode([1u8; 65])),
        ] {
            assert_eq!(
                WebhookSecret::parse(bad),
                Err(WebhookError::BadSecret),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_retry_schedule_spans_about_a_day_then_ends() {
        let total: Duration = RETRY_SCHEDULE.iter().sum();
        assert_eq!(total.as_secs(), 99_305); // 27 h 35 min 5 s
        assert_eq!(retry_delay(0, 0.5), Some(Duration::ZERO));
        assert_eq!(retry_delay(1, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(8, 0.5), None);
        assert_eq!(retry_delay(u32::MAX, 0.5), None);
    }

    #[test]
    fn destinations_that_are_not_public_hosts_are_refused() {
        let refused = [
            ("127.0.0.1", Refusal::Loopback),
            ("::1", Refusal::Loopback),
            ("::ffff:127.0.0.1", Refusal::Loopback),
            ("64:ff9b::7f00:1", Refusal::Loopback),
            ("169.254.169.254", Refusal::LinkLocal),
            ("fe80::1", Refusal::LinkLocal),
            ("10.0.0.1", Refusal::Private),
            ("172.16.5.4", Refusal::Private),
            ("192.168.1.1", Refusal::Private),
            ("fd00::1", Refusal::Private),
            ("100.64.0.1", Refusal::Reserved),
            ("192.0.2.1", Refusal::Reserved),
            ("2001:db8::1", Refusal::Reserved),
            ("0.0.0.0", Refusal::Unspecified),
            ("::", Refusal::Unspecified),
            ("224.0.0.1", Refusal::Multicast),
            ("255.255.255.255", Refusal::Multicast),
        ];
        for (ip, why) in refused {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(destination(ip, false), Err(why), "{ip}");
        }
        // Allowed by the setting: everything but unspecified and multicast.
        assert!(destination("127.0.0.1".parse().unwrap(), true).is_ok());
        assert!(destination("10.0.0.1".parse().unwrap(), true).is_ok());
        assert!(destination("0.0.0.0".parse().unwrap(), true).is_err());
        assert!(destination("ff02::1".parse().unwrap(), true).is_err());
        for public in ["93.184.216.34", "2606:2800:220:1::248", "::ffff:8.8.8.8"] {
            assert_eq!(
                destination(public.parse().unwrap(), false),
                Ok(()),
                "{public}"
            );
        }
    }

    proptest! {
        #[test]
        fn a_signature_verifies_and_any_change_breaks_it(
            key in prop::collection::vec(any::<u8>(), 24..=64),
            other in prop::collection::vec(any::<u8>(), 24..=64),
            id in "msg_[a-zA-Z0-9]{1,30}",
            timestamp in 0i64..4_000_000_000,
            body in prop::collection::vec(any::<u8>(), 0..200),
            flip in any::<prop::sample::Index>(),
        ) {
            let s = WebhookSecret::from_bytes(&key).unwrap();
            let o = WebhookSecret::from_bytes(&other).unwrap();
            let header = signature_header(&[&s], &id, timestamp, &body);
            prop_assert!(verify(&s, &id, timestamp, &body, &header));
            // Rotation: both signatures, either secret verifies.
            let both = signature_header(&[&o, &s], &id, timestamp, &body);
            prop_assert!(verify(&s, &id, timestamp, &body, &both));
            prop_assert!(verify(&o, &id, timestamp, &body, &both));
            if key != other {
                prop_assert!(!verify(&o, &id, timestamp, &body, &header));
            }
            prop_assert!(!verify(&s, &id, timestamp + 1, &body, &header));
            let other_id = format!("{}x", id);
            prop_assert!(!verify(&s, &other_id, timestamp, &body, &header));
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip.index(changed.len());
                changed[i] ^= 1;
                prop_assert!(!verify(&s, &id, timestamp, &changed, &header));
            }
        }

        #[test]
        fn jitter_stays_within_twenty_percent(
            attempt in 0u32..8,
            jitter in prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(-1.0)],
        ) {
            let base = RETRY_SCHEDULE[attempt as usize];
            let delay = retry_delay(attempt, jitter).unwrap();
            prop_assert!(delay >= base.mul_f64(0.8) && delay <= base.mul_f64(1.2));
        }
    }
}
