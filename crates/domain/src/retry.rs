//! Retry policy of the outbox relay: exponential backoff with full jitter and a dead letter.
//!
//! Full jitter (a uniformly random delay in `[0, min(cap, base * 2^(attempt-1)))`) spreads
//! retries of many rows and many relay replicas after a shared RPC outage, instead of having
//! them all hit the node again in lockstep. The random number is a parameter so the policy
//! stays a pure, testable function. All arithmetic saturates: attempt counts come from the
//! database and may be anything.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether an error may go away by trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClass {
    /// Timeouts, rate limits, node unavailable, blockhash not found ...
    Retryable,
    /// Malformed transaction, insufficient funds for the configured key, ... : retrying
    /// cannot help, so the row is dead-lettered at once.
    Permanent,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    RetryAfter(Duration),
    DeadLetter,
}

/// Backoff parameters. In configuration files the durations are whole milliseconds
/// (`base_ms`, `cap_ms`); missing fields take the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    #[serde(rename = "base_ms", with = "duration_ms")]
    pub base: Duration,
    #[serde(rename = "cap_ms", with = "duration_ms")]
    pub cap: Duration,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 1 s doubling, capped at 5 min, 10 attempts.
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            max_attempts: 10,
        }
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

/// Resolution of the jitter: the random factor is quantised to multiples of 2^-32.
const JITTER_SCALE: u128 = 1 << 32;

/// Maps `unit_random` to an integer in `[0, 2^32)`. Values outside `[0, 1)` are clamped;
/// NaN is treated as the top of the range, so a broken random source yields the longest delay
/// rather than a hot retry loop.
fn jitter_numerator(unit_random: f64) -> u128 {
    let max = JITTER_SCALE - 1;
    if unit_random.is_nan() {
        return max;
    }
    if unit_random <= 0.0 {
        return 0;
    }
    // `as` saturates for large floats; the min keeps 1.0 and above strictly below the ceiling.
    let scaled = (unit_random * JITTER_SCALE as f64) as u128;
    scaled.min(max)
}

impl RetryPolicy {
    /// The upper bound of the delay after attempt `attempt` (1-based; 0 is treated as 1):
    /// `min(cap, base * 2^(attempt-1))`, saturating. Non-decreasing in `attempt`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1);
        // 2^exponent, saturating at u32::MAX for exponents of 32 and above.
        let factor = 1u32.checked_shl(exponent).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Full-jitter delay: `unit_random` (expected in `[0, 1)`) times `ceiling(attempt)`.
    /// Never exceeds `cap`; for a positive ceiling it is strictly below it.
    pub fn backoff(&self, attempt: u32, unit_random: f64) -> Duration {
        let ceiling_nanos = self.ceiling(attempt).as_nanos();
        // ceiling_nanos < 2^94 and the numerator < 2^32, so the product fits in u128.
        let nanos = ceiling_nanos.saturating_mul(jitter_numerator(unit_random)) / JITTER_SCALE;
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        let subsec = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
        Duration::new(secs, subsec)
    }

    /// Retry after a jittered delay, or dead-letter: at once for permanent errors, and once
    /// `attempts_so_far` (attempts made, including the one that just failed) reaches
    /// `max_attempts`.
    pub fn decide(
        &self,
        attempts_so_far: u32,
        class: ErrorClass,
        unit_random: f64,
    ) -> RetryDecision {
        if class == ErrorClass::Permanent || attempts_so_far >= self.max_attempts {
            return RetryDecision::DeadLetter;
        }
        RetryDecision::RetryAfter(self.backoff(attempts_so_far, unit_random))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_doubles_from_one_second_to_five_minutes() {
        let policy = RetryPolicy::default();
        let ceilings: Vec<u64> = (1..=11).map(|a| policy.ceiling(a).as_secs()).collect();
        assert_eq!(ceilings, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(policy.ceiling(0), Duration::from_secs(1));
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn jitter_scales_the_ceiling_and_clamps_odd_inputs() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(policy.backoff(3, 0.5), Duration::from_secs(2));
        assert_eq!(policy.backoff(3, -1.0), Duration::ZERO);
        assert_eq!(policy.backoff(3, f64::NEG_INFINITY), Duration::ZERO);
        let top = policy.backoff(3, 1.0);
        assert!(top < Duration::from_secs(4) && top > Duration::from_millis(3999));
        assert_eq!(policy.backoff(3, f64::INFINITY), top);
        assert_eq!(policy.backoff(3, f64::NAN), top);
        assert_eq!(policy.backoff(3, 7.5), top);
    }

    #[test]
    fn extreme_policies_do_not_panic() {
        let huge = RetryPolicy {
            base: Duration::MAX,
            cap: Duration::MAX,
            max_attempts: u32::MAX,
        };
        assert!(huge.backoff(u32::MAX, 0.999_999) <= Duration::MAX);
        assert!(huge.backoff(1, 1.0) < Duration::MAX);
        let zero = RetryPolicy {
            base: Duration::ZERO,
            cap: Duration::ZERO,
            max_attempts: 0,
        };
        assert_eq!(zero.backoff(5, 0.5), Duration::ZERO);
        assert_eq!(
            zero.decide(0, ErrorClass::Retryable, 0.5),
            RetryDecision::DeadLetter
        );
        let inverted = RetryPolicy {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(1),
            max_attempts: 3,
        };
        assert_eq!(inverted.ceiling(1), Duration::from_secs(1));
    }

    #[test]
    fn decide_dead_letters_permanent_errors_and_exhausted_rows() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.decide(1, ErrorClass::Permanent, 0.5),
            RetryDecision::DeadLetter
        );
        assert_eq!(
            policy.decide(1, ErrorClass::Retryable, 0.5),
            RetryDecision::RetryAfter(Duration::from_millis(500))
        );
        assert!(matches!(
            policy.decide(9, ErrorClass::Retryable, 0.5),
            RetryDecision::RetryAfter(_)
        ));
        assert_eq!(
            policy.decide(10, ErrorClass::Retryable, 0.5),
            RetryDecision::DeadLetter
        );
        assert_eq!(
            policy.decide(u32::MAX, ErrorClass::Retryable, 0.5),
            RetryDecision::DeadLetter
        );
    }

    #[test]
    fn serde_uses_milliseconds_and_defaults() {
        let policy: RetryPolicy = serde_json::from_str(r#"{"base_ms": 250}"#).unwrap();
        assert_eq!(policy.base, Duration::from_millis(250));
        assert_eq!(policy.cap, Duration::from_secs(300));
        assert_eq!(policy.max_attempts, 10);
        let json = serde_json::to_value(RetryPolicy::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"base_ms": 1000, "cap_ms": 300000, "max_attempts": 10})
        );
    }

    fn arb_policy() -> impl Strategy<Value = RetryPolicy> {
        (
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u64>(),
            any::<u32>(),
        )
            .prop_map(
                |(base_s, cap_s, base_n, cap_ms, max_attempts)| RetryPolicy {
                    base: Duration::new(base_s % 1_000_000, base_n % 1_000_000_000),
                    cap: if cap_s % 4 == 0 {
                        Duration::MAX
                    } else {
                        Duration::from_millis(cap_ms)
                    },
                    max_attempts,
                },
            )
    }

    proptest! {
        #[test]
        fn backoff_never_exceeds_cap(
            policy in arb_policy(),
            attempt in any::<u32>(),
            unit in any::<f64>(),
        ) {
            prop_assert!(policy.backoff(attempt, unit) <= policy.cap);
            prop_assert!(policy.backoff(attempt, unit) <= policy.ceiling(attempt));
        }

        #[test]
        fn backoff_is_monotone_in_the_ceiling(
            policy in arb_policy(),
            a in any::<u32>(),
            b in any::<u32>(),
            unit in 0.0f64..1.0,
        ) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(policy.ceiling(low) <= policy.ceiling(high));
            prop_assert!(policy.backoff(low, unit) <= policy.backoff(high, unit));
        }

        #[test]
        fn decide_never_panics(
            policy in arb_policy(),
            attempts in any::<u32>(),
            permanent in any::<bool>(),
            unit in any::<f64>(),
        ) {
            let class = if permanent { ErrorClass::Permanent } else { ErrorClass::Retryable };
            match policy.decide(attempts, class, unit) {
                RetryDecision::DeadLetter => {
                    prop_assert!(permanent || attempts >= policy.max_attempts)
                }
                RetryDecision::RetryAfter(delay) => prop_assert!(delay <= policy.cap),
            }
        }
    }
}
