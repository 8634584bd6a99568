//! Issuer API keys: format, generation, parsing and the stored hash.
//!
//! A key reads `cak_<id>_<secret>`: `id` is 16 lowercase hex characters (8 random bytes) and
//! is stored in clear to find the row; `secret` is 43 base64url characters (32 random bytes)
//! and only its hash is stored, so a database dump does not yield usable keys. The secret has
//! 256 bits of entropy, so a single domain-separated SHA-256 is enough (no password hashing
//! needed), and hashes are compared in constant time.
//!
//! Secrets never appear in `Debug` output or error messages.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::hash::sha256;

/// Prefix of every API key, so leaked keys are recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "cak_";
/// Domain-separation tag of the stored hash.
pub const API_KEY_HASH_TAG: &[u8] = b"credential-anchor/v1/api-key";

const ID_BYTES: usize = 8;
const ID_CHARS: usize = ID_BYTES * 2;
const SECRET_BYTES: usize = 32;
const SECRET_CHARS: usize = 43;
/// `cak_` + id + `_` + secret = 64 characters.
pub const API_KEY_LEN: usize = API_KEY_PREFIX.len() + ID_CHARS + 1 + SECRET_CHARS;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// Deliberately without detail: the input may be a (mistyped) secret.
    #[error("malformed API key")]
    Malformed,
    #[error("malformed API key id")]
    MalformedId,
    #[error("the random number generator failed")]
    Rng,
    #[error("a stored API key hash must be 32 bytes, got {0}")]
    HashLength(usize),
}

/// The full plaintext key, shown to the issuer exactly once.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A new key from `rng`, with its id and the hash to store.
    pub fn generate(rng: &dyn SecureRandom) -> Result<(ApiKey, ApiKeyId, ApiKeyHash), ApiKeyError> {
        let mut id = [0u8; ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill(&mut id).map_err(|_| ApiKeyError::Rng)?;
        rng.fill(&mut secret).map_err(|_| ApiKeyError::Rng)?;
        let id = ApiKeyId(hex::encode(id));
        let secret = ApiKeySecret(secret);
        let key = ApiKey(format!(
            "{API_KEY_PREFIX}{}_{}",
            id.as_str(),
            URL_SAFE_NO_PAD.encode(secret.0)
        ));
        let hash = ApiKeyHash::of(&secret);
        Ok((key, id, hash))
    }

    /// Splits a presented key into its id and secret. Total: anything that is not exactly
    /// `cak_<16 lowercase hex>_<43 canonical base64url chars>` is `Malformed`.
    pub fn parse(text: &str) -> Result<(ApiKeyId, ApiKeySecret), ApiKeyError> {
        // Positions, not splitting on '_': the base64url secret may itself contain '_'.
        if text.len() != API_KEY_LEN || !text.is_ascii() {
            return Err(ApiKeyError::Malformed);
        }
        let rest = text
            .strip_prefix(API_KEY_PREFIX)
            .ok_or(ApiKeyError::Malformed)?;
        let (id, rest) = rest
            .split_at_checked(ID_CHARS)
            .ok_or(ApiKeyError::Malformed)?;
        let secret = rest.strip_prefix('_').ok_or(ApiKeyError::Malformed)?;
        let id = ApiKeyId::parse(id).map_err(|_| ApiKeyError::Malformed)?;
        // The engine rejects padding and non-zero trailing bits, so each secret has one text.
        let bytes = URL_SAFE_NO_PAD
            .decode(secret)
            .map_err(|_| ApiKeyError::Malformed)?;
        let secret = <[u8; SECRET_BYTES]>::try_from(bytes).map_err(|_| ApiKeyError::Malformed)?;
        Ok((id, ApiKeySecret(secret)))
    }

    /// The plaintext, to hand to the issuer once. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The public part of a key, used to look up its row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiKeyId(String);

impl ApiKeyId {
    pub fn parse(text: &str) -> Result<ApiKeyId, ApiKeyError> {
        let valid = text.len() == ID_CHARS
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(ApiKeyId(text.to_owned()))
        } else {
            Err(ApiKeyError::MalformedId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ApiKeyId {
    type Error = ApiKeyError;
    fn try_from(value: String) -> Result<Self, ApiKeyError> {
        ApiKeyId::parse(&value)
    }
}

impl From<ApiKeyId> for String {
    fn from(value: ApiKeyId) -> String {
        value.0
    }
}

/// The 32 secret bytes of a presented key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret([u8; SECRET_BYTES]);

impl ApiKeySecret {
    pub fn as_bytes(&self) -> &[u8; SECRET_BYTES] {
        &self.0
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(<redacted>)")
    }
}

/// `SHA-256("credential-anchor/v1/api-key" || secret bytes)`, stored as `bytea`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ApiKeyHash([u8; 32]);

impl ApiKeyHash {
    pub fn of(secret: &ApiKeySecret) -> ApiKeyHash {
        ApiKeyHash(sha256(&[API_KEY_HASH_TAG, &secret.0]))
    }

    /// Whether `secret` hashes to this value, compared in constant time so response timing
    /// reveals nothing about how much of a guess was right.
    pub fn matches(&self, secret: &ApiKeySecret) -> bool {
        ApiKeyHash::of(secret).0.ct_eq(&self.0).into()
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From a stored `bytea` value.
    pub fn from_slice(bytes: &[u8]) -> Result<ApiKeyHash, ApiKeyError> {
        <[u8; 32]>::try_from(bytes)
            .map(ApiKeyHash)
            .map_err(|_| ApiKeyError::HashLength(bytes.len()))
    }
}

impl fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyHash({})", hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ring::rand::SystemRandom;

    #[test]
    fn generated_keys_parse_and_match_their_hash() {
        let rng = SystemRandom::new();
        let (key, id, hash) = ApiKey::generate(&rng).unwrap();
        let text = key.expose();
        assert_eq!(text.len(), API_KEY_LEN);
        assert!(text.starts_with("cak_"));
        assert_eq!(&text[4..20], id.as_str());
        let (parsed_id, secret) = ApiKey::parse(text).unwrap();
        assert_eq!(parsed_id, id);
        assert!(hash.matches(&secret));
        assert_eq!(ApiKeyHash::of(&secret), hash);
        assert_eq!(ApiKeyHash::from_slice(hash.as_bytes()).unwrap(), hash);

        let (other_key, _, other_hash) = ApiKey::generate(&rng).unwrap();
        assert_ne!(other_key, key);
        assert!(!other_hash.matches(&secret));
    }

    #[test]
    fn hash_is_domain_separated_sha256() {
        let secret = ApiKeySecret([7; 32]);
        let mut input = b"credential-anchor/v1/api-key".to_vec();
        input.extend_from_slice(&[7; 32]);
        let expected = ring::digest::digest(&ring::digest::SHA256, &input);
        assert_eq!(
            ApiKeyHash::of(&secret).as_bytes().as_slice(),
            expected.as_ref()
        );
    }

    #[test]
    fn secrets_with_underscores_parse_by_position() {
        let secret = [0xff; 32]; // encodes to "____..._w"
        let text = format!("cak_0123456789abcdef_{}", URL_SAFE_NO_PAD.encode(secret));
        let (id, parsed) = ApiKey::parse(&text).unwrap();
        assert_eq!(id.as_str(), "0123456789abcdef");
        assert_eq!(parsed.as_bytes(), &secret);
    }

    #[test]
    fn parse_rejects_everything_else() {
        let good = format!("cak_0123456789abcdef_{}", URL_SAFE_NO_PAD.encode([1u8; 32]));
        assert!(ApiKey::parse(&good).is_ok());
        let last = good.chars().last().unwrap();
        let cases = [
            String::new(),
            good.replacen("cak_", "cak-", 1),
            good.replacen("cak_", "CAK_", 1),
            good.replacen("0123456789abcdef", "0123456789ABCDEF", 1),
            good.replacen("0123456789abcdef", "0123456789abcdeg", 1),
            good.replacen("abcdef_", "abcdef-", 1),
            format!("{good}A"),
            good[..good.len() - 1].to_string(),
            format!("{}=", &good[..good.len() - 1]),
            format!("{}+", &good[..good.len() - 1]),
            // Same length, non-canonical trailing bits.
            format!(
                "{}{}",
                &good[..good.len() - 1],
                if last == 'B' { 'C' } else { 'B' }
            ),
            format!("{}é", &good[..good.len() - 2]),
        ];
        for case in cases {
            assert_eq!(
                ApiKey::parse(&case).unwrap_err(),
                ApiKeyError::Malformed,
                "{case}"
            );
        }
    }

    #[test]
    fn debug_output_is_redacted() {
        let rng = SystemRandom::new();
        let (key, _, _) = ApiKey::generate(&rng).unwrap();
        let (_, secret) = ApiKey::parse(key.expose()).unwrap();
        let secret_text = &key.expose()[21..];
        assert!(!format!("{key:?}").contains(secret_text));
        assert!(!format!("{secret:?}").contains(secret_text));
        assert!(format!("{secret:?}").contains("redacted"));
    }

    #[test]
    fn stored_hash_must_be_32_bytes() {
        assert_eq!(
            ApiKeyHash::from_slice(&[0; 31]),
            Err(ApiKeyError::HashLength(31))
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}|cak_[0-9a-f]{16}_.{43}") {
            let _ = ApiKey::parse(&s);
        }

        #[test]
        fn every_canonical_key_round_trips(id in any::<[u8; 8]>(), secret in any::<[u8; 32]>()) {
            let text = format!("cak_{}_{}", hex::encode(id), URL_SAFE_NO_PAD.encode(secret));
            let (parsed_id, parsed_secret) = ApiKey::parse(&text).unwrap();
            prop_assert_eq!(parsed_id.as_str(), hex::encode(id));
            prop_assert_eq!(parsed_secret.as_bytes(), &secret);
        }
    }
}
