//! When an issuer signing key may have signed a credential (key rotation, issue #7).
//!
//! Keys rotate: `admin rotate-signing-key` retires the active key and creates a new one in one
//! transaction, the new key's `valid_from` being the old key's `retired_at`. Credentials signed
//! before the rotation stay valid forever; a retired key must not be accepted on a credential
//! made after its retirement, or a leaked old key could mint "valid" diplomas.
//!
//! The rule needs a time at which the signature certainly existed. Two kinds of evidence are
//! accepted, and this module is told which one it got, because they differ in precision:
//! - [`SigningEvidence::Recorded`]: the credential's `created_at` in our database. The issuing
//!   transaction holds the key row `FOR SHARE`, so a credential recorded with a key is always
//!   recorded strictly before that key's retirement: exact.
//! - [`SigningEvidence::AnchoredBy`]: the block time of the anchor transaction, an upper bound
//!   (the relay may anchor late, e.g. after an RPC outage), so retirement is enforced only
//!   beyond [`ANCHOR_LAG_ALLOWANCE`].
//!
//! Independently of the evidence, a credential whose claimed `issued_at` is at or after the
//! key's retirement is refused: a retired key cannot sign a diploma dated after it retired.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::IssuedAt;

/// How late an anchor may land after its credential was signed and still count as signed
/// before a rotation that happened in between (relay backlog, RPC outage).
pub const ANCHOR_LAG_ALLOWANCE: Duration = Duration::hours(24);

/// The validity window of one signing key, as the issuer profile publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyWindow {
    pub valid_from: DateTime<Utc>,
    /// `None` while the key is the issuer's active key.
    pub retired_at: Option<DateTime<Utc>>,
}

/// A time by which the signature certainly existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningEvidence {
    /// When our database recorded the credential (exact, see module docs).
    Recorded(DateTime<Utc>),
    /// The anchor transaction's block time (an upper bound with lag).
    AnchoredBy(DateTime<Utc>),
    /// Nothing beyond the claimed issue date (e.g. not anchored yet, no record).
    None,
}

/// Why a key is not acceptable for a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyValidityError {
    /// The signature existed before the key did: not a signature this key made as ours.
    #[error("the signature predates the key's validity (valid from {valid_from})")]
    NotYetValid { valid_from: DateTime<Utc> },
    /// The credential was dated or made after the key was retired.
    #[error("the key was retired at {retired_at}, before this credential was made")]
    Retired { retired_at: DateTime<Utc> },
}

impl KeyValidityError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            KeyValidityError::NotYetValid { .. } => "key_not_yet_valid",
            KeyValidityError::Retired { .. } => "key_retired",
        }
    }
}

/// Whether `window`'s key may have signed a credential dated `issued_at` given `evidence`.
pub fn check_key_validity(
    window: &KeyWindow,
    issued_at: &IssuedAt,
    evidence: SigningEvidence,
) -> Result<(), KeyValidityError> {
    let signed_by = match evidence {
        SigningEvidence::Recorded(t) | SigningEvidence::AnchoredBy(t) => Some(t),
        SigningEvidence::None => None,
    };
    if let Some(t) = signed_by {
        if t < window.valid_from {
            return Err(KeyValidityError::NotYetValid {
                valid_from: window.valid_from,
            });
        }
    }
    let Some(retired_at) = window.retired_at else {
        return Ok(());
    };
    let retired = Err(KeyValidityError::Retired { retired_at });
    if *issued_at.as_datetime() >= retired_at {
        return retired;
    }
    match evidence {
        SigningEvidence::Recorded(t) if t >= retired_at => retired,
        SigningEvidence::AnchoredBy(t) if t >= retired_at + ANCHOR_LAG_ALLOWANCE => retired,
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn issued(s: &str) -> IssuedAt {
        IssuedAt::parse_rfc3339(s).unwrap()
    }

    const FROM: &str = "2026-01-01T00:00:00Z";
    const RETIRED: &str = "2026-06-01T00:00:00Z";

    fn retired_key() -> KeyWindow {
        KeyWindow {
            valid_from: t(FROM),
            retired_at: Some(t(RETIRED)),
        }
    }

    #[test]
    fn an_active_key_accepts_anything_after_its_start() {
        let active = KeyWindow {
            valid_from: t(FROM),
            retired_at: None,
        };
        for evidence in [
            SigningEvidence::Recorded(t("2030-01-01T00:00:00Z")),
            SigningEvidence::AnchoredBy(t("2030-01-01T00:00:00Z")),
            SigningEvidence::None,
        ] {
            assert_eq!(
                check_key_validity(&active, &issued("2031-01-01T00:00:00Z"), evidence),
                Ok(())
            );
        }
        // A diploma may be dated before the key existed (backdated registration): only the
        // evidence of when it was signed can predate the key.
        assert_eq!(
            check_key_validity(
                &active,
                &issued("2020-01-01T00:00:00Z"),
                SigningEvidence::Recorded(t("2026-02-01T00:00:00Z"))
            ),
            Ok(())
        );
    }

    #[test]
    fn evidence_before_the_key_existed_is_refused() {
        for evidence in [
            SigningEvidence::Recorded(t("2025-12-31T23:59:59Z")),
            SigningEvidence::AnchoredBy(t("2025-12-31T23:59:59Z")),
        ] {
            assert_eq!(
                check_key_validity(&retired_key(), &issued("2025-06-01T00:00:00Z"), evidence)
                    .unwrap_err()
                    .code(),
                "key_not_yet_valid"
            );
        }
    }

    #[test]
    fn credentials_signed_before_rotation_stay_valid() {
        let k = retired_key();
        let before = issued("2026-05-31T23:59:59Z");
        assert_eq!(
            check_key_validity(
                &k,
                &before,
                SigningEvidence::Recorded(t("2026-05-31T23:59:59Z"))
            ),
            Ok(())
        );
        // Anchored late (within the allowance): still valid.
        assert_eq!(
            check_key_validity(
                &k,
                &before,
                SigningEvidence::AnchoredBy(t("2026-06-01T23:59:59Z"))
            ),
            Ok(())
        );
        assert_eq!(
            check_key_validity(&k, &before, SigningEvidence::None),
            Ok(())
        );
    }

    #[test]
    fn a_retired_key_is_refused_after_its_retirement() {
        let k = retired_key();
        let before = issued("2026-05-01T00:00:00Z");
        // Recorded at or after retirement (exact evidence).
        for at in [RETIRED, "2026-06-01T00:00:01Z"] {
            assert_eq!(
                check_key_validity(&k, &before, SigningEvidence::Recorded(t(at))),
                Err(KeyValidityError::Retired {
                    retired_at: t(RETIRED)
                })
            );
        }
        // Anchored beyond the allowance.
        assert_eq!(
            check_key_validity(
                &k,
                &before,
                SigningEvidence::AnchoredBy(t("2026-06-02T00:00:00Z"))
            )
            .unwrap_err()
            .code(),
            "key_retired"
        );
        // Dated at or after retirement, whatever the evidence.
        for evidence in [
            SigningEvidence::None,
            SigningEvidence::Recorded(t("2026-05-01T00:00:00Z")),
            SigningEvidence::AnchoredBy(t("2026-05-01T00:00:00Z")),
        ] {
            for date in [RETIRED, "2027-01-01T00:00:00Z"] {
                assert_eq!(
                    check_key_validity(&k, &issued(date), evidence)
                        .unwrap_err()
                        .code(),
                    "key_retired",
                    "{date} {evidence:?}"
                );
            }
        }
    }
}
