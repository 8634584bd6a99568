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
            } else if (s[0] == 0x2001 && s[1] == 0x0db8)
                // 6to4 (2002::/16) and Teredo (2001::/32) carry IPv4 addresses a relay may
                // reach on our behalf; site-local (fec0::/10) is deprecated private space;
                // 64:ff9b:1::/48 is local-use NAT64.
                || s[0] == 0x2002
                || (s[0] == 0x2001 && s[1] == 0)
                || s[0] & 0xffc0 == 0xfec0
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
            {
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

/// What a webhook event reports. The names are the wire `type` of the body and the values
/// an endpoint subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The credential's anchor is finalized.
    CredentialFinalized,
    /// The credential was dead-lettered (an operator may requeue it).
    CredentialFailed,
    /// The credential's revocation memo is finalized.
    CredentialRevoked,
    /// The reconciler rebuilt the credential from an anchor found on chain.
    CredentialRecovered,
    /// Every credential of one `POST /v1/credential-batches` request is anchored.
    CredentialBatchCompleted,
    /// `POST /v1/webhooks/{id}/test`: sent to that endpoint only, never subscribed to.
    Test,
}

impl EventType {
    /// What an endpoint can subscribe to (the default: all of them).
    pub const SUBSCRIBABLE: [EventType; 5] = [
        EventType::CredentialFinalized,
        EventType::CredentialFailed,
        EventType::CredentialRevoked,
        EventType::CredentialRecovered,
        EventType::CredentialBatchCompleted,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::CredentialFinalized => "credential.finalized",
            EventType::CredentialFailed => "credential.failed",
            EventType::CredentialRevoked => "credential.revoked",
            EventType::CredentialRecovered => "credential.recovered",
            EventType::CredentialBatchCompleted => "credential_batch.completed",
            EventType::Test => "webhook.test",
        }
    }

    /// A subscribable type by its name (`webhook.test` is not one).
    pub fn parse_subscribable(text: &str) -> Option<EventType> {
        EventType::SUBSCRIBABLE
            .into_iter()
            .find(|t| t.as_str() == text)
    }

    /// The event a credential's status change reports, if any: the single rule the database
    /// trigger `webhook_event_for_status` (migration V14) implements, and a store test checks
    /// it against this for every pair. A revocation is reported when its memo is finalized
    /// (the `revocations` row gains its anchor), with that anchor, so it is not here; `None`
    /// as the old status is a row being inserted (the reconciler's backfill).
    pub fn for_status_change(
        old: Option<crate::status::CredentialStatus>,
        new: crate::status::CredentialStatus,
    ) -> Option<EventType> {
        use crate::status::CredentialStatus as S;
        if old == Some(new) {
            return None;
        }
        match new {
            S::Finalized => Some(EventType::CredentialFinalized),
            S::Failed => Some(EventType::CredentialFailed),
            S::Recovered => Some(EventType::CredentialRecovered),
            S::Queued | S::Submitted | S::Confirmed | S::Revoked => None,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `webhook-id` of an event's deliveries: the same on every attempt and every replay, so a
/// receiver drops duplicates by it.
pub fn message_id(event: uuid::Uuid) -> String {
    format!("msg_{}", event.simple())
}

/// How one delivery attempt ended, as the worker saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered with this HTTP status.
    Answered(u16),
    /// No answer within the timeout.
    TimedOut,
    /// No connection (DNS, refused, TLS, reset).
    Unreachable,
    /// The destination is not allowed (`destination`, or an `http` URL where only `https` is).
    Refused,
}

/// What the worker does next with a delivery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextStep {
    /// 2xx: delivered; never sent again unless replayed by hand.
    Delivered,
    /// 410 Gone: the receiver asks us to stop. The endpoint is disabled and the delivery is a
    /// dead letter.
    Gone,
    /// Try again after this delay.
    RetryIn(Duration),
    /// The schedule is exhausted: a dead letter, visible and replayable per endpoint.
    DeadLetter,
}

/// The delivery rule: after `attempts_made` attempts (this one included) ending in `result`,
/// what happens. `scale` shrinks the schedule (tests run it in seconds; 1.0 in production);
/// `jitter` in 0.0..=1.0 spreads retries by ±20%. A redirect is not followed: it is an
/// answer that is not 2xx, retried like any other.
pub fn after_attempt(
    result: AttemptResult,
    attempts_made: u32,
    jitter: f64,
    scale: f64,
) -> NextStep {
    match result {
        AttemptResult::Answered(status) if (200..300).contains(&status) => NextStep::Delivered,
        AttemptResult::Answered(410) => NextStep::Gone,
        _ => match retry_delay(attempts_made, jitter) {
            None => NextStep::DeadLetter,
            Some(delay) => {
                let scale = if scale.is_finite() {
                    scale.clamp(0.0, 1.0)
                } else {
                    1.0
                };
                NextStep::RetryIn(delay.mul_f64(scale))
            }
        },
    }
}

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why an endpoint URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("not an absolute URL")]
    NotAUrl,
    #[error("at most {MAX_URL_LEN} characters")]
    TooLong,
    #[error("only https URLs are accepted (webhooks.allow_http is off)")]
    NotHttps,
    #[error("the scheme must be https")]
    BadScheme,
    #[error("credentials in the URL are not accepted; authenticate deliveries by their signature")]
    UserInfo,
    #[error("a fragment is never sent; remove it")]
    Fragment,
    #[error("the address is {0}: deliveries only go to public addresses")]
    Destination(&'static str),
}

/// Checks an endpoint URL when it is registered: absolute, `https` (or `http` when
/// `allow_http`), a host, no user info or fragment, and, for an IP literal, a destination
/// `destination` allows. A host name is judged again at every delivery, on the addresses it
/// resolves to then (a name can change what it points at).
pub fn endpoint_url(
    text: &str,
    allow_http: bool,
    allow_private: bool,
) -> Result<url::Url, UrlRefusal> {
    if text.len() > MAX_URL_LEN {
        return Err(UrlRefusal::TooLong);
    }
    let url = url::Url::parse(text).map_err(|_| UrlRefusal::NotAUrl)?;
    // Normalizing percent-encodes non-ASCII text: the stored form must fit too.
    if url.as_str().len() > MAX_URL_LEN {
        return Err(UrlRefusal::TooLong);
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err(UrlRefusal::NotHttps),
        _ => return Err(UrlRefusal::BadScheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::UserInfo);
    }
    if url.fragment().is_some() {
        return Err(UrlRefusal::Fragment);
    }
    match url.host() {
        None => Err(UrlRefusal::NotAUrl),
        Some(url::Host::Domain(_)) => Ok(url),
        Some(url::Host::Ipv4(v4)) => destination(IpAddr::V4(v4), allow_private)
            .map(|()| url.clone())
            .map_err(|r| UrlRefusal::Destination(r.as_str())),
        Some(url::Host::Ipv6(v6)) => destination(IpAddr::V6(v6), allow_private)
            .map(|()| url.clone())
            .map_err(|r| UrlRefusal::Destination(r.as_str())),
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
    fn event_types_round_trip_and_only_three_statuses_report() {
        use crate::status::CredentialStatus as S;
        for t in EventType::SUBSCRIBABLE {
            assert_eq!(EventType::parse_subscribable(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse_subscribable("webhook.test"), None);
        assert_eq!(
            EventType::for_status_change(Some(S::Confirmed), S::Finalized),
            Some(EventType::CredentialFinalized)
        );
        assert_eq!(
            EventType::for_status_change(Some(S::Finalized), S::Finalized),
            None
        );
        assert_eq!(
            EventType::for_status_change(Some(S::Finalized), S::Revoked),
            None
        );
        assert_eq!(
            EventType::for_status_change(None, S::Recovered),
            Some(EventType::CredentialRecovered)
        );
        assert_eq!(
            EventType::for_status_change(Some(S::Queued), S::Submitted),
            None
        );
    }

    #[test]
    fn endpoint_urls_are_https_public_and_plain() {
        assert!(endpoint_url("https://portal.example.edu/hooks", false, false).is_ok());
        assert_eq!(
            endpoint_url("http://portal.example.edu/hooks", false, false),
            Err(UrlRefusal::NotHttps)
        );
        assert!(endpoint_url("http://portal.example.edu/hooks", true, false).is_ok());
        assert_eq!(
            endpoint_url("ftp://x.example/", true, true),
            Err(UrlRefusal::BadScheme)
        );
        assert_eq!(
            endpoint_url("https://u:p@x.example/", false, false),
            Err(UrlRefusal::UserInfo)
        );
        assert_eq!(
            endpoint_url("https://x.example/#f", false, false),
            Err(UrlRefusal::Fragment)
        );
        assert_eq!(
            endpoint_url("/relative", false, false),
            Err(UrlRefusal::NotAUrl)
        );
        for (url, why) in [
            ("https://127.0.0.1/h", "loopback"),
            ("https://169.254.169.254/latest", "link_local"),
            ("https://10.0.0.1/h", "private"),
            ("https://[::1]/h", "loopback"),
            ("https://[::ffff:10.0.0.1]/h", "private"),
            // Spellings the URL parser normalizes to the same addresses.
            ("https://2130706433/h", "loopback"),
            ("https://0x7f.1/h", "loopback"),
        ] {
            assert_eq!(
                endpoint_url(url, false, false),
                Err(UrlRefusal::Destination(why)),
                "{url}"
            );
            assert!(endpoint_url(url, false, true).is_ok(), "{url}");
        }
        assert!(endpoint_url(
            &format!("https://x.example/{}", "a".repeat(MAX_URL_LEN)),
            false,
            false
        )
        .is_err());
    }

    #[test]
    fn two_xx_delivers_410_stops_anything_else_retries_until_the_schedule_ends() {
        assert_eq!(
            after_attempt(AttemptResult::Answered(204), 1, 0.5, 1.0),
            NextStep::Delivered
        );
        assert_eq!(
            after_attempt(AttemptResult::Answered(410), 1, 0.5, 1.0),
            NextStep::Gone
        );
        assert_eq!(
            after_attempt(AttemptResult::Answered(500), 1, 0.5, 1.0),
            NextStep::RetryIn(Duration::from_secs(5))
        );
        // A redirect is not followed: retried.
        assert!(matches!(
            after_attempt(AttemptResult::Answered(302), 2, 0.5, 1.0),
            NextStep::RetryIn(_)
        ));
        assert_eq!(
            after_attempt(AttemptResult::TimedOut, 2, 0.5, 0.01),
            NextStep::RetryIn(Duration::from_secs(3))
        );
        let last = u32::try_from(RETRY_SCHEDULE.len()).unwrap();
        assert_eq!(
            after_attempt(AttemptResult::Unreachable, last, 0.5, 1.0),
            NextStep::DeadLetter
        );
        assert_eq!(
            after_attempt(AttemptResult::Refused, last, f64::NAN, f64::NAN),
            NextStep::DeadLetter
        );
    }

    proptest! {
        #[test]
        fn every_failure_is_retried_within_a_day_and_a_half_then_dead(
            status in 0u16..1000, attempts in 1u32..20, jitter in proptest::num::f64::ANY,
        ) {
            match after_attempt(AttemptResult::Answered(status), attempts, jitter, 1.0) {
                NextStep::Delivered => prop_assert!((200..300).contains(&status)),
                NextStep::Gone => prop_assert_eq!(status, 410),
                NextStep::RetryIn(d) => {
                    prop_assert!(usize::try_from(attempts).unwrap() < RETRY_SCHEDULE.len());
                    prop_assert!(d <= Duration::from_secs(12 * 3600));
                }
                NextStep::DeadLetter => {
                    prop_assert!(usize::try_from(attempts).unwrap() >= RETRY_SCHEDULE.len());
                }
            }
        }
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
