//! Validated identifiers and the issuance timestamp.
//!
//! Every identifier that enters the credential hash or an on-chain memo is parsed here once
//! (parse, don't validate), so the rest of the system can rely on its syntax: an `IssuerId`
//! never contains the memo separator `:`, a `RecipientId` is never whitespace-padded (two
//! spellings of one recipient would hash differently), and an `IssuedAt` has exactly one
//! canonical text form because that text is hashed.
//!
//! Constructors are total: any input string yields either a value or an `IdError` naming the
//! field, never a panic. Error messages never echo recipient ids (they may be personal data).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why an identifier or timestamp was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl IdError {
    /// The name of the rejected field (`issuer_id`, `serial`, ...), for API error bodies.
    pub fn field(&self) -> &'static str {
        match self {
            IdError::Invalid { field, .. } => field,
        }
    }

    /// The human-readable reason without the field name.
    pub fn reason(&self) -> &str {
        match self {
            IdError::Invalid { reason, .. } => reason,
        }
    }

    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        IdError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// Checks length (in chars) and that every char satisfies `allowed`; reports the first
/// offending position. `echo` controls whether the offending character appears in the message.
fn check_chars(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
    allowed: impl Fn(usize, char) -> bool,
    echo: bool,
) -> Result<(), IdError> {
    let count = value.chars().count();
    if count < min || count > max {
        return Err(IdError::invalid(
            field,
            format!("must be {min} to {max} characters long, got {count}"),
        ));
    }
    for (position, c) in value.chars().enumerate() {
        if !allowed(position, c) {
            let reason = if echo {
                format!("character {c:?} at position {position} is not allowed")
            } else {
                format!("character at position {position} is not allowed")
            };
            return Err(IdError::invalid(field, reason));
        }
    }
    Ok(())
}

/// Generates a validated string newtype with the common API: `parse`, `as_str`, `Display`,
/// `FromStr`, `AsRef<str>` and serde as a plain string that is validated on deserialization.
macro_rules! validated_string_id {
    ($(#[$meta:meta])* $name:ident, $validate:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates; the only way to construct the value.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                $validate(value)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                $validate(&value)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Longest issuer slug; bounds the memo length (see `memo::MAX_MEMO_LEN`).
pub const MAX_ISSUER_ID_LEN: usize = 32;

fn validate_issuer(value: &str) -> Result<(), IdError> {
    check_chars(
        "issuer_id",
        value,
        1,
        MAX_ISSUER_ID_LEN,
        |position, c| c.is_ascii_lowercase() || c.is_ascii_digit() || (position > 0 && c == '-'),
        true,
    )
}

validated_string_id!(
    /// An issuer slug, `^[a-z0-9][a-z0-9-]{0,31}$`. It appears on chain in memos, so it can
    /// never contain the `:` separator nor anything that needs escaping.
    IssuerId,
    validate_issuer
);

fn validate_serial(value: &str) -> Result<(), IdError> {
    check_chars(
        "serial",
        value,
        1,
        64,
        |_, c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'),
        true,
    )
}

validated_string_id!(
    /// The issuer's serial number of a credential, `^[A-Za-z0-9._/-]{1,64}$`.
    Serial,
    validate_serial
);

fn validate_recipient(value: &str) -> Result<(), IdError> {
    // The value is opaque and possibly personal, so messages never echo it.
    check_chars("recipient_id", value, 1, 128, |_, c| !c.is_control(), false)?;
    // U+FEFF (a byte-order mark) is not Unicode whitespace, so `trim` keeps it; it would
    // still give one recipient a second, invisible spelling.
    if value.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}') != value {
        return Err(IdError::invalid(
            "recipient_id",
            "must not start or end with whitespace or a byte-order mark",
        ));
    }
    Ok(())
}

validated_string_id!(
    /// The portal's opaque id of the recipient: 1..=128 characters, no control characters, no
    /// surrounding whitespace. It enters the credential hash but never goes on chain.
    RecipientId,
    validate_recipient
);

fn validate_key_id(value: &str) -> Result<(), IdError> {
    check_chars(
        "key_id",
        value,
        1,
        64,
        |_, c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
        true,
    )
}

validated_string_id!(
    /// Identifier of an issuer signing key, `^[A-Za-z0-9._-]{1,64}$`. Kept with every
    /// signature so keys can rotate while old credentials still verify.
    KeyId,
    validate_key_id
);

/// Generates a UUID newtype: `new_v7`, `from_uuid`, `as_uuid`, hyphenated `Display`,
/// `FromStr` and transparent serde.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh time-ordered (v7) id; time-ordering keeps index inserts local.
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            /// Accepts every textual UUID form the `uuid` crate accepts; the memo codec is
            /// stricter and only accepts the canonical lowercase hyphenated form.
            fn from_str(s: &str) -> Result<Self, IdError> {
                Uuid::try_parse(s)
                    .map(Self)
                    .map_err(|e| IdError::invalid($field, e.to_string()))
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

uuid_id!(
    /// Identifier of one credential.
    CredentialId,
    "credential_id"
);
uuid_id!(
    /// Identifier of one Merkle batch of credentials.
    BatchId,
    "batch_id"
);

/// Issuance time, in UTC with whole-second precision.
///
/// Its canonical text (`%Y-%m-%dT%H:%M:%SZ`) is part of the credential hash, so the type only
/// admits values with exactly one such text: no fractional seconds, no leap second, and a
/// four-digit year in 1900..=9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IssuedAt(DateTime<Utc>);

impl IssuedAt {
    const FIELD: &'static str = "issued_at";

    /// Parses any RFC 3339 timestamp (any offset) and converts it to UTC.
    pub fn parse_rfc3339(value: &str) -> Result<IssuedAt, IdError> {
        let parsed = DateTime::parse_from_rfc3339(value).map_err(|e| {
            IdError::invalid(Self::FIELD, format!("not an RFC 3339 timestamp: {e}"))
        })?;
        Self::from_datetime(parsed.with_timezone(&Utc))
    }

    /// Accepts a UTC time under the same rules as `parse_rfc3339`.
    pub fn from_datetime(value: DateTime<Utc>) -> Result<IssuedAt, IdError> {
        let nanos = value.nanosecond();
        // chrono represents a leap second as nanosecond >= 1e9.
        if nanos >= 1_000_000_000 {
            return Err(IdError::invalid(
                Self::FIELD,
                "leap seconds are not allowed",
            ));
        }
        if nanos != 0 {
            return Err(IdError::invalid(
                Self::FIELD,
                "fractional seconds are not allowed (whole-second precision only)",
            ));
        }
        let year = value.year();
        if !(1900..=9999).contains(&year) {
            return Err(IdError::invalid(
                Self::FIELD,
                format!("year {year} is outside 1900..=9999"),
            ));
        }
        Ok(IssuedAt(value))
    }

    /// The exact text hashed into the credential hash, e.g. `2024-06-30T12:00:00Z`.
    pub fn canonical(&self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    pub fn as_datetime(&self) -> &DateTime<Utc> {
        &self.0
    }
}

impl fmt::Display for IssuedAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl FromStr for IssuedAt {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse_rfc3339(s)
    }
}

impl TryFrom<String> for IssuedAt {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        Self::parse_rfc3339(&value)
    }
}

impl From<IssuedAt> for String {
    fn from(value: IssuedAt) -> String {
        value.canonical()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    #[test]
    fn issuer_id_accepts_slugs_and_rejects_everything_else() {
        for ok in ["a", "0", "uni-graz", "tu-wien-2", &"a".repeat(32), "a-"] {
            assert!(IssuerId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-abc",
            "Uni",
            "uni:graz",
            "uni graz",
            "uni_graz",
            "ü",
            &"a".repeat(33),
        ] {
            let err = IssuerId::parse(bad).unwrap_err();
            assert_eq!(err.field(), "issuer_id", "{bad}");
        }
    }

    #[test]
    fn serial_and_key_id_follow_their_alphabets() {
        assert!(Serial::parse("2024/BSc.CS-001_a").is_ok());
        assert!(Serial::parse(&"x".repeat(64)).is_ok());
        assert!(Serial::parse(&"x".repeat(65)).is_err());
        assert!(Serial::parse("a:b").is_err());
        assert!(Serial::parse("").is_err());
        assert!(KeyId::parse("issuer-key.2024_01").is_ok());
        assert!(KeyId::parse("a/b").is_err());
        assert_eq!(KeyId::parse("").unwrap_err().field(), "key_id");
    }

    #[test]
    fn recipient_id_rejects_padding_and_control_chars_without_echoing() {
        assert!(RecipientId::parse("Jöhn Döe #42").is_ok());
        assert!(RecipientId::parse(&"é".repeat(128)).is_ok());
        assert!(RecipientId::parse(&"é".repeat(129)).is_err());
        for bad in [
            "",
            " x",
            "x ",
            "a\nb",
            "a\u{0}b",
            "\u{a0}x",
            "\u{feff}x",
            "x\u{feff}",
        ] {
            let err = RecipientId::parse(bad).unwrap_err();
            assert_eq!(err.field(), "recipient_id");
        }
        let err = RecipientId::parse("secret\u{7}name").unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn string_ids_validate_on_deserialize() {
        let ok: IssuerId = serde_json::from_str("\"uni-graz\"").unwrap();
        assert_eq!(ok.as_str(), "uni-graz");
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"uni-graz\"");
        assert!(serde_json::from_str::<IssuerId>("\"Uni:Graz\"").is_err());
        assert!(serde_json::from_str::<RecipientId>("\" padded\"").is_err());
    }

    #[test]
    fn uuid_ids_display_hyphenated_and_round_trip() {
        let id =
            CredentialId::from_uuid(Uuid::from_u128(0x0190_7e0a_0000_7000_8000_0000_0000_0001));
        let text = id.to_string();
        assert_eq!(text, "01907e0a-0000-7000-8000-000000000001");
        assert_eq!(text.parse::<CredentialId>().unwrap(), id);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{text}\""));
        assert!("nope".parse::<BatchId>().is_err());
        assert_ne!(BatchId::new_v7(), BatchId::new_v7());
        assert_eq!(BatchId::new_v7().as_uuid().get_version_num(), 7);
    }

    #[test]
    fn issued_at_converts_offsets_to_utc_canonical_form() {
        let t = IssuedAt::parse_rfc3339("2024-06-30T14:00:00+02:00").unwrap();
        assert_eq!(t.canonical(), "2024-06-30T12:00:00Z");
        let t = IssuedAt::parse_rfc3339("2024-06-30T12:00:00.000Z").unwrap();
        assert_eq!(t.canonical(), "2024-06-30T12:00:00Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2024-06-30T12:00:00Z\""
        );
        let back: IssuedAt = serde_json::from_str("\"2024-06-30T12:00:00Z\"").unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn issued_at_rejects_fractions_leap_seconds_and_odd_years() {
        let err = IssuedAt::parse_rfc3339("2024-06-30T12:00:00.5Z").unwrap_err();
        assert!(err.to_string().contains("fractional"), "{err}");
        assert_eq!(err.field(), "issued_at");
        let err = IssuedAt::parse_rfc3339("2016-12-31T23:59:60Z").unwrap_err();
        assert!(err.to_string().contains("leap"), "{err}");
        assert!(IssuedAt::parse_rfc3339("1899-12-31T23:59:59Z").is_err());
        assert!(IssuedAt::parse_rfc3339("1899-12-31T23:59:59-01:00").is_ok());
        assert!(IssuedAt::parse_rfc3339("9999-12-31T23:00:00-05:00").is_err());
        assert!(IssuedAt::parse_rfc3339("2024-06-30").is_err());
        assert!(IssuedAt::parse_rfc3339("").is_err());
        let fractional = Utc.timestamp_opt(1_700_000_000, 1).unwrap();
        assert!(IssuedAt::from_datetime(fractional).is_err());
    }

    proptest! {
        #[test]
        fn id_parsers_never_panic(s in "\\PC{0,80}|.{0,200}") {
            let _ = IssuerId::parse(&s);
            let _ = Serial::parse(&s);
            let _ = RecipientId::parse(&s);
            let _ = KeyId::parse(&s);
            let _ = IssuedAt::parse_rfc3339(&s);
            let _ = s.parse::<CredentialId>();
        }

        #[test]
        fn issuer_regex_strings_parse(s in "[a-z0-9][a-z0-9-]{0,31}") {
            let id = IssuerId::parse(&s).unwrap();
            prop_assert_eq!(id.as_str(), s.as_str());
        }

        #[test]
        fn issued_at_canonical_round_trips(secs in -2_208_988_800i64..253_402_300_799i64) {
            let dt = Utc.timestamp_opt(secs, 0).unwrap();
            let t = IssuedAt::from_datetime(dt).unwrap();
            let again = IssuedAt::parse_rfc3339(&t.canonical()).unwrap();
            prop_assert_eq!(again, t);
            prop_assert_eq!(t.canonical().len(), 20);
        }
    }
}
