//! The credential hash: the single value that is signed, batched and anchored on chain.
//!
//! The hash binds the diploma file (through its SHA-256 digest) to the issuer, the recipient,
//! the issuance time and the serial. Every field is length-prefixed so that moving bytes
//! between adjacent fields (`"ab"+"c"` vs `"a"+"bc"`) always changes the hash, and the whole
//! input is prefixed with a version tag so two formats can never collide.
//!
//! Two formats exist ([`ProofFormat`]); every credential keeps the one it was issued in:
//! - **v1** ([`credential_hash`]) hashes those five fields only. Its weaknesses, which v2
//!   fixes: the credential id is outside the hash (so nothing signed or anchored in Merkle mode
//!   names the credential), and the inputs carry little entropy (a student id, a date, a
//!   serial and a PDF rendered from a template), so anyone who can guess them can confirm the
//!   guess against the public chain.
//! - **v2** ([`credential_hash_v2`], issued since issue #17) puts the credential id, a random
//!   32-byte per-credential [`Salt`] and the signing key (key id and Ed25519 public key) first.
//!   They then travel inside everything the hash enters: the issuer signature, the Merkle
//!   leaf, the memo. So the id a bundle names and the key that signed it are proven by the
//!   anchor itself, offline, without trusting the bundle or our API. The salt makes a guess
//!   uncheckable without it, and deleting it (from the database and every bundle) makes the
//!   on-chain hash unlinkable to the person: crypto-shredding for erasure requests.
//!
//! Fixed test vectors live in `tests/vectors/credential_hash_v{1,2}.json`, computed
//! independently in Python; any change that breaks them breaks every credential ever issued.
//!
//! This module also holds the fixed-size byte encodings (hex, base58) shared by the other
//! 32- and 64-byte newtypes of the crate.

use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

use crate::ids::{CredentialId, IssuedAt, IssuerId, KeyId, RecipientId, Serial};
use crate::signing::PublicKey;

/// Domain-separation tag of the v1 credential hash.
pub const CREDENTIAL_HASH_V1_TAG: &[u8] = b"credential-anchor/v1";
/// Domain-separation tag of the v2 credential hash.
pub const CREDENTIAL_HASH_V2_TAG: &[u8] = b"credential-anchor/v2";

/// The proof format of a credential: which hash, which signature message and which bundle
/// schema it uses. Fixed at issuance; new credentials are [`ProofFormat::CURRENT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProofFormat {
    V1,
    V2,
}

impl ProofFormat {
    /// The format every new credential is issued in.
    pub const CURRENT: ProofFormat = ProofFormat::V2;

    /// The number stored in the database (`credentials.proof_format`).
    pub const fn number(self) -> i16 {
        match self {
            ProofFormat::V1 => 1,
            ProofFormat::V2 => 2,
        }
    }

    pub fn from_number(number: i16) -> Option<ProofFormat> {
        match number {
            1 => Some(ProofFormat::V1),
            2 => Some(ProofFormat::V2),
            _ => None,
        }
    }
}

/// A random 32-byte per-credential salt (v2): hex in JSON. It is as sensitive as the
/// recipient id it protects, so `Debug` does not print it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Salt([u8; 32]);

impl Salt {
    /// 32 bytes from `rng` (a `SystemRandom` in the service).
    pub fn generate(rng: &dyn ring::rand::SecureRandom) -> Result<Salt, SaltError> {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes).map_err(|_| SaltError)?;
        Ok(Salt(bytes))
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Salt {
        Salt(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<Salt, HashParseError> {
        decode_hex_fixed(text).map(Salt)
    }
}

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(<redacted>)")
    }
}

impl TryFrom<String> for Salt {
    type Error = HashParseError;
    fn try_from(value: String) -> Result<Salt, HashParseError> {
        Salt::from_hex(&value)
    }
}

impl From<Salt> for String {
    fn from(value: Salt) -> String {
        value.to_hex()
    }
}

/// The random number generator failed while drawing a salt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the random number generator failed while drawing a salt")]
pub struct SaltError;

/// How a credential's hash is computed: its format and, for v2, what it binds besides the
/// fields. Everything that hashes a credential (issuance, proof bundles, recovery) goes
/// through [`HashScheme::hash`], so the format decision lives in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashScheme {
    V1,
    V2 {
        credential_id: CredentialId,
        salt: Salt,
        /// The signing key that signs this hash: bound into it.
        key_id: KeyId,
        public_key: PublicKey,
    },
}

impl HashScheme {
    pub fn format(&self) -> ProofFormat {
        match self {
            HashScheme::V1 => ProofFormat::V1,
            HashScheme::V2 { .. } => ProofFormat::V2,
        }
    }

    pub fn hash(&self, fields: &CredentialFields) -> CredentialHash {
        match self {
            HashScheme::V1 => credential_hash(fields),
            HashScheme::V2 {
                credential_id,
                salt,
                key_id,
                public_key,
            } => credential_hash_v2(credential_id, salt, key_id, public_key, fields),
        }
    }

    /// The salt, if this scheme has one.
    pub fn salt(&self) -> Option<Salt> {
        match self {
            HashScheme::V1 => None,
            HashScheme::V2 { salt, .. } => Some(*salt),
        }
    }
}

/// Why a hex or base58 text did not decode to a fixed-size byte value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashParseError {
    #[error("not valid hex")]
    InvalidHex,
    #[error("not valid base58")]
    InvalidBase58,
    #[error("expected {expected} bytes, got {actual}")]
    WrongLength { expected: usize, actual: usize },
}

/// Decodes hex (either case) into exactly `N` bytes.
pub(crate) fn decode_hex_fixed<const N: usize>(text: &str) -> Result<[u8; N], HashParseError> {
    let bytes = hex::decode(text).map_err(|_| HashParseError::InvalidHex)?;
    to_array(bytes)
}

/// Decodes base58 (Bitcoin alphabet, as Solana uses) into exactly `N` bytes.
pub(crate) fn decode_base58_fixed<const N: usize>(text: &str) -> Result<[u8; N], HashParseError> {
    // Reject absurdly long input before decoding: base58 decoding is quadratic.
    let max_chars = N * 2;
    if text.len() > max_chars {
        return Err(HashParseError::WrongLength {
            expected: N,
            actual: text.len(),
        });
    }
    let bytes = bs58::decode(text)
        .into_vec()
        .map_err(|_| HashParseError::InvalidBase58)?;
    to_array(bytes)
}

fn to_array<const N: usize>(bytes: Vec<u8>) -> Result<[u8; N], HashParseError> {
    let actual = bytes.len();
    <[u8; N]>::try_from(bytes).map_err(|_| HashParseError::WrongLength {
        expected: N,
        actual,
    })
}

/// The plumbing every fixed-size byte newtype shares (digests, roots, keys, signatures):
/// constructors, hex and base58 codecs, `Display`/`Debug` in the type's text form, and the
/// `String` conversions serde uses. Written once so the encodings cannot drift apart.
/// `$to`/`$from` name the text form (hex or base58) used by Display, Debug and serde.
macro_rules! fixed_bytes_newtype {
    ($name:ident, $n:literal, $to:ident, $from:ident) => {
        impl $name {
            pub const fn from_bytes(bytes: [u8; $n]) -> $name {
                $name(bytes)
            }

            pub const fn as_bytes(&self) -> &[u8; $n] {
                &self.0
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            pub fn from_hex(text: &str) -> Result<$name, $crate::hash::HashParseError> {
                $crate::hash::decode_hex_fixed(text).map($name)
            }

            pub fn to_base58(&self) -> String {
                bs58::encode(self.0).into_string()
            }

            pub fn from_base58(text: &str) -> Result<$name, $crate::hash::HashParseError> {
                $crate::hash::decode_base58_fixed(text).map($name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.$to())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.$to())
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::hash::HashParseError;
            fn try_from(value: String) -> Result<Self, $crate::hash::HashParseError> {
                $name::$from(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.$to()
            }
        }
    };
}
pub(crate) use fixed_bytes_newtype;

pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut context = Context::new(&SHA256);
    for part in parts {
        context.update(part);
    }
    digest_to_array(context.finish())
}

pub(crate) fn digest_to_array(digest: ring::digest::Digest) -> [u8; 32] {
    // SHA-256 output is always 32 bytes; copying through zip keeps this total without a
    // fallible conversion.
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(digest.as_ref()) {
        *o = *b;
    }
    out
}

/// Serde helper: a `[u8; 32]` as a hex string (used by Merkle proof steps).
pub(crate) mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        super::decode_hex_fixed(&text).map_err(serde::de::Error::custom)
    }
}

/// SHA-256 of a credential's file bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileDigest([u8; 32]);

impl FileDigest {
    pub fn of(bytes: &[u8]) -> FileDigest {
        FileDigest(sha256(&[bytes]))
    }
}

fixed_bytes_newtype!(FileDigest, 32, to_hex, from_hex);

/// The v1 credential hash (see the module docs). Hex in JSON and logs, base58 on chain.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CredentialHash([u8; 32]);

fixed_bytes_newtype!(CredentialHash, 32, to_hex, from_hex);

/// The inputs of the credential hash, in hashing order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialFields {
    pub file_digest: FileDigest,
    pub issuer: IssuerId,
    pub recipient: RecipientId,
    pub issued_at: IssuedAt,
    pub serial: Serial,
}

impl CredentialFields {
    /// The v1 hash, `credential_hash(self)`; use [`HashScheme::hash`] for a credential whose
    /// format is not known to be v1.
    pub fn hash(&self) -> CredentialHash {
        credential_hash(self)
    }
}

/// Big-endian u32 length prefix. Every field is bounded by its type (at most 128 chars of up
/// to 4 bytes), so the saturation can never be reached; it only keeps the function total.
fn length_prefix(bytes: &[u8]) -> [u8; 4] {
    u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes()
}

/// `SHA-256(tag || for each part: u32-BE length || bytes)`.
fn tagged_hash(tag: &[u8], parts: &[&[u8]]) -> CredentialHash {
    let mut context = Context::new(&SHA256);
    context.update(tag);
    for part in parts {
        context.update(&length_prefix(part));
        context.update(part);
    }
    CredentialHash(digest_to_array(context.finish()))
}

/// v1: `SHA-256("credential-anchor/v1" || for each field: u32-BE length || bytes)` over
/// (file digest raw bytes, issuer, recipient, issued_at canonical text, serial).
pub fn credential_hash(fields: &CredentialFields) -> CredentialHash {
    let issued_at = fields.issued_at.canonical();
    tagged_hash(
        CREDENTIAL_HASH_V1_TAG,
        &[
            fields.file_digest.as_bytes(),
            fields.issuer.as_str().as_bytes(),
            fields.recipient.as_str().as_bytes(),
            issued_at.as_bytes(),
            fields.serial.as_str().as_bytes(),
        ],
    )
}

/// v2: `SHA-256("credential-anchor/v2" || for each part: u32-BE length || bytes)` over
/// (credential id as 16 raw UUID bytes, salt 32 raw bytes, signing key id, signing public key
/// 32 raw bytes, then the v1 fields in v1 order).
pub fn credential_hash_v2(
    credential_id: &CredentialId,
    salt: &Salt,
    key_id: &KeyId,
    public_key: &PublicKey,
    fields: &CredentialFields,
) -> CredentialHash {
    let issued_at = fields.issued_at.canonical();
    tagged_hash(
        CREDENTIAL_HASH_V2_TAG,
        &[
            credential_id.as_uuid().as_bytes(),
            salt.as_bytes(),
            key_id.as_str().as_bytes(),
            public_key.as_bytes(),
            fields.file_digest.as_bytes(),
            fields.issuer.as_str().as_bytes(),
            fields.recipient.as_str().as_bytes(),
            issued_at.as_bytes(),
            fields.serial.as_str().as_bytes(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key_id(s: &str) -> KeyId {
        KeyId::parse(s).unwrap()
    }

    fn fields(issuer: &str, recipient: &str, serial: &str) -> CredentialFields {
        CredentialFields {
            file_digest: FileDigest::of(b"diploma"),
            issuer: IssuerId::parse(issuer).unwrap(),
            recipient: RecipientId::parse(recipient).unwrap(),
            issued_at: IssuedAt::parse_rfc3339("2024-06-30T12:00:00Z").unwrap(),
            serial: Serial::parse(serial).unwrap(),
        }
    }

    #[test]
    fn file_digest_is_sha256() {
        assert_eq!(
            FileDigest::of(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let d = FileDigest::of(b"abc");
        assert_eq!(FileDigest::from_hex(&d.to_hex()).unwrap(), d);
    }

    #[test]
    fn credential_hash_encodings_round_trip_and_check_length() {
        let h = credential_hash(&fields("uni", "r1", "s1"));
        assert_eq!(CredentialHash::from_hex(&h.to_hex()).unwrap(), h);
        assert_eq!(CredentialHash::from_base58(&h.to_base58()).unwrap(), h);
        assert_eq!(h.to_string(), h.to_hex());
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", h.to_hex()));
        assert_eq!(serde_json::from_str::<CredentialHash>(&json).unwrap(), h);

        assert_eq!(
            CredentialHash::from_base58(&bs58::encode([1u8; 31]).into_string()),
            Err(HashParseError::WrongLength {
                expected: 32,
                actual: 31
            })
        );
        assert_eq!(
            CredentialHash::from_base58("0OIl"),
            Err(HashParseError::InvalidBase58)
        );
        assert_eq!(
            CredentialHash::from_hex("zz"),
            Err(HashParseError::InvalidHex)
        );
        assert!(CredentialHash::from_hex(&"ab".repeat(33)).is_err());
        assert!(CredentialHash::from_base58(&"z".repeat(10_000)).is_err());
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = fields("uni", "r1", "s1");
        let h = credential_hash(&base);
        let mut f = base.clone();
        f.file_digest = FileDigest::of(b"diploma2");
        assert_ne!(credential_hash(&f), h);
        assert_ne!(credential_hash(&fields("uni2", "r1", "s1")), h);
        assert_ne!(credential_hash(&fields("uni", "r2", "s1")), h);
        assert_ne!(credential_hash(&fields("uni", "r1", "s2")), h);
        let mut f = base.clone();
        f.issued_at = IssuedAt::parse_rfc3339("2024-06-30T12:00:01Z").unwrap();
        assert_ne!(credential_hash(&f), h);
    }

    #[test]
    fn v2_binds_the_id_and_the_salt_and_never_equals_v1() {
        let f = fields("uni", "r1", "s1");
        let id = CredentialId::new_v7();
        let salt = Salt::from_bytes([9; 32]);
        let (k, p) = (key_id("k1"), PublicKey::from_bytes([5; 32]));
        let v2 = HashScheme::V2 {
            credential_id: id,
            salt,
            key_id: k.clone(),
            public_key: p,
        };
        let h = v2.hash(&f);
        assert_eq!(h, credential_hash_v2(&id, &salt, &k, &p, &f));
        assert_ne!(h, HashScheme::V1.hash(&f));
        assert_ne!(
            credential_hash_v2(&CredentialId::new_v7(), &salt, &k, &p, &f),
            h
        );
        assert_ne!(
            credential_hash_v2(&id, &Salt::from_bytes([8; 32]), &k, &p, &f),
            h
        );
        assert_ne!(credential_hash_v2(&id, &salt, &key_id("k2"), &p, &f), h);
        assert_ne!(
            credential_hash_v2(&id, &salt, &k, &PublicKey::from_bytes([6; 32]), &f),
            h
        );
        assert_eq!(v2.format(), ProofFormat::V2);
        assert_eq!(v2.salt(), Some(salt));
        assert_eq!(HashScheme::V1.salt(), None);
    }

    #[test]
    fn salts_are_random_hex_in_json_and_hidden_from_debug() {
        let rng = ring::rand::SystemRandom::new();
        let a = Salt::generate(&rng).unwrap();
        let b = Salt::generate(&rng).unwrap();
        assert_ne!(a, b);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{}\"", a.to_hex()));
        assert_eq!(serde_json::from_str::<Salt>(&json).unwrap(), a);
        assert!(!format!("{a:?}").contains(&a.to_hex()));
        assert!(serde_json::from_str::<Salt>("\"abcd\"").is_err());
    }

    #[test]
    fn proof_format_numbers_round_trip() {
        for f in [ProofFormat::V1, ProofFormat::V2] {
            assert_eq!(ProofFormat::from_number(f.number()), Some(f));
        }
        assert_eq!(ProofFormat::from_number(0), None);
        assert_eq!(ProofFormat::from_number(3), None);
        assert_eq!(ProofFormat::CURRENT, ProofFormat::V2);
    }

    proptest! {
        /// v2: any change of id, salt or a field changes the hash (sampled).
        #[test]
        fn v2_hash_changes_with_every_input(
            salt in any::<[u8; 32]>(),
            other in any::<[u8; 32]>(),
            id in any::<u128>(),
            id2 in any::<u128>(),
        ) {
            let f = fields("uni", "r1", "s1");
            let (k, p) = (key_id("k1"), PublicKey::from_bytes([5; 32]));
            let id = CredentialId::from_uuid(uuid::Uuid::from_u128(id));
            let h = credential_hash_v2(&id, &Salt::from_bytes(salt), &k, &p, &f);
            if other != salt {
                prop_assert_ne!(credential_hash_v2(&id, &Salt::from_bytes(other), &k, &p, &f), h);
            }
            if other != *p.as_bytes() {
                prop_assert_ne!(credential_hash_v2(&id, &Salt::from_bytes(salt), &k, &PublicKey::from_bytes(other), &f), h);
            }
            let id2 = CredentialId::from_uuid(uuid::Uuid::from_u128(id2));
            if id2 != id {
                prop_assert_ne!(credential_hash_v2(&id2, &Salt::from_bytes(salt), &k, &p, &f), h);
            }
            prop_assert_ne!(credential_hash_v2(&id, &Salt::from_bytes(salt), &k, &p, &fields("uni", "r1", "s2")), h);
        }

        /// Moving the boundary between issuer and recipient changes the hash.
        #[test]
        fn moving_bytes_between_issuer_and_recipient_changes_hash(
            s in "[a-z0-9]{2,40}",
            a in 1usize..40,
            b in 1usize..40,
        ) {
            let n = s.len();
            let (a, b) = (1 + a % (n - 1), 1 + b % (n - 1));
            prop_assume!(a != b && a <= 32 && b <= 32);
            let one = fields(&s[..a], &s[a..], "x");
            let two = fields(&s[..b], &s[b..], "x");
            prop_assert_ne!(credential_hash(&one), credential_hash(&two));
        }

        /// The same for recipient and serial (issued_at sits between them, fixed width).
        #[test]
        fn moving_bytes_between_recipient_and_serial_changes_hash(
            s in "[A-Za-z0-9]{2,100}",
            a in 1usize..100,
            b in 1usize..100,
        ) {
            let n = s.len();
            let (a, b) = (1 + a % (n - 1), 1 + b % (n - 1));
            prop_assume!(a != b && n - a <= 64 && n - b <= 64);
            let one = fields("uni", &s[..a], &s[a..]);
            let two = fields("uni", &s[..b], &s[b..]);
            prop_assert_ne!(credential_hash(&one), credential_hash(&two));
        }

        #[test]
        fn hash_parsers_never_panic(s in "\\PC{0,100}") {
            let _ = CredentialHash::from_base58(&s);
            let _ = CredentialHash::from_hex(&s);
            let _ = FileDigest::from_hex(&s);
        }
    }
}
