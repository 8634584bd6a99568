//! Issuer signatures over credential hashes (Ed25519 via `ring`).
//!
//! The issuer signs a domain-separated message, never a bare hash: the message starts with
//! `credential-anchor/v1/issuer-signature` (or `.../v2/...` for a v2 credential, so a signature
//! made for one format can never be presented as one of the other), so a signing key can never be tricked into signing
//! a Solana transaction (whose message starts with a compact header, never this text) or any
//! other protocol's payload. The key id is part of the message so a signature cannot be
//! re-attributed to another key of the same issuer, and so keys can rotate while old
//! credentials still verify against the key id stored with them.
//!
//! The seed is kept next to the `ring` key pair because the store must be able to seal it at
//! rest (see `sealed`); `Debug` never prints it.

use std::fmt;

use ring::rand::SecureRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

use crate::hash::{CredentialHash, ProofFormat};
use crate::ids::KeyId;

/// Domain-separation tag of v1 issuer signature messages.
pub const SIGNATURE_MESSAGE_TAG: &[u8] = b"credential-anchor/v1/issuer-signature";
/// Domain-separation tag of v2 issuer signature messages.
pub const SIGNATURE_MESSAGE_TAG_V2: &[u8] = b"credential-anchor/v2/issuer-signature";

const fn signature_tag(format: ProofFormat) -> &'static [u8] {
    match format {
        ProofFormat::V1 => SIGNATURE_MESSAGE_TAG,
        ProofFormat::V2 => SIGNATURE_MESSAGE_TAG_V2,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("the Ed25519 key was rejected: {0}")]
    KeyRejected(String),
    #[error("the random number generator failed")]
    Rng,
    #[error("the signature does not verify for this key, key id and credential hash")]
    BadSignature,
    #[error("a Solana keypair must be 64 bytes (seed || public key), got {0}")]
    KeypairLength(usize),
    #[error("the public half of the Solana keypair does not match its seed")]
    KeypairMismatch,
}

/// An Ed25519 public key: base58 in JSON (as Solana shows keys), hex on request.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicKey([u8; 32]);

crate::hash::fixed_bytes_newtype!(PublicKey, 32, to_base58, from_base58);

/// An Ed25519 signature by an issuer key over `signature_message`. Base58 in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IssuerSignature([u8; 64]);

crate::hash::fixed_bytes_newtype!(IssuerSignature, 64, to_base58, from_base58);

/// `tag(format) || u32-BE len(key_id) || key_id || hash (32 bytes)`. The length prefix keeps
/// the key id / hash boundary unambiguous.
pub fn signature_message(format: ProofFormat, key_id: &KeyId, hash: &CredentialHash) -> Vec<u8> {
    let tag = signature_tag(format);
    let key_id = key_id.as_str().as_bytes();
    // A KeyId is at most 64 ASCII characters, so the saturation is unreachable.
    let key_id_len = u32::try_from(key_id.len()).unwrap_or(u32::MAX);
    let mut message = Vec::with_capacity(tag.len() + 4 + key_id.len() + 32);
    message.extend_from_slice(tag);
    message.extend_from_slice(&key_id_len.to_be_bytes());
    message.extend_from_slice(key_id);
    message.extend_from_slice(hash.as_bytes());
    message
}

fn public_of(pair: &Ed25519KeyPair) -> Result<PublicKey, SigningError> {
    <[u8; 32]>::try_from(pair.public_key().as_ref())
        .map(PublicKey)
        .map_err(|_| SigningError::KeyRejected("unexpected public key length".into()))
}

fn pair_from_seed(seed: &[u8; 32]) -> Result<Ed25519KeyPair, SigningError> {
    Ed25519KeyPair::from_seed_unchecked(seed).map_err(|e| SigningError::KeyRejected(e.to_string()))
}

/// The Ed25519 public key of a 32-byte seed. A Solana keypair file holds 64 bytes
/// (seed || public key); its first 32 bytes are a seed `ring` accepts.
pub fn ed25519_public_from_seed(seed: &[u8; 32]) -> Result<PublicKey, SigningError> {
    public_of(&pair_from_seed(seed)?)
}

/// Extracts the seed of a 64-byte Solana keypair (`seed || public key`), checking that the
/// public half belongs to the seed so a corrupted or spliced file is refused.
pub fn seed_from_solana_keypair(bytes: &[u8]) -> Result<[u8; 32], SigningError> {
    if bytes.len() != 64 {
        return Err(SigningError::KeypairLength(bytes.len()));
    }
    let (seed, public) = bytes.split_at(32);
    let seed = <[u8; 32]>::try_from(seed).map_err(|_| SigningError::KeypairLength(bytes.len()))?;
    if ed25519_public_from_seed(&seed)?.as_bytes().as_slice() != public {
        return Err(SigningError::KeypairMismatch);
    }
    Ok(seed)
}

/// An issuer signing key: the `ring` key pair, its seed (for sealing) and its key id.
pub struct SigningKey {
    key_id: KeyId,
    seed: [u8; 32],
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl SigningKey {
    pub fn from_seed(key_id: KeyId, seed: &[u8; 32]) -> Result<SigningKey, SigningError> {
        let pair = pair_from_seed(seed)?;
        let public = public_of(&pair)?;
        Ok(SigningKey {
            key_id,
            seed: *seed,
            pair,
            public,
        })
    }

    /// A fresh key from `rng`; also returns the seed so the caller can seal and store it.
    pub fn generate(
        key_id: KeyId,
        rng: &dyn SecureRandom,
    ) -> Result<(SigningKey, [u8; 32]), SigningError> {
        let mut seed = [0u8; 32];
        rng.fill(&mut seed).map_err(|_| SigningError::Rng)?;
        let key = SigningKey::from_seed(key_id, &seed)?;
        Ok((key, seed))
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The raw seed, only so it can be sealed for storage (`sealed::seal_seed`).
    pub fn seed_bytes(&self) -> &[u8; 32] {
        &self.seed
    }

    pub fn sign_credential(&self, format: ProofFormat, hash: &CredentialHash) -> IssuerSignature {
        let signature = self
            .pair
            .sign(&signature_message(format, &self.key_id, hash));
        // Ed25519 signatures are always 64 bytes; copying through zip keeps this total.
        let mut out = [0u8; 64];
        for (o, b) in out.iter_mut().zip(signature.as_ref()) {
            *o = *b;
        }
        IssuerSignature(out)
    }
}

impl SigningKey {
    /// Ed25519 signature of a Data Integrity proof's hashData (`vc::attach_proof`): 64 bytes,
    /// the two SHA-256 hashes of vc-di-eddsa. It cannot be mistaken for a credential
    /// signature: `signature_message` starts with its ASCII tag and is over 64 bytes long.
    pub fn sign_data_integrity(&self, hash_data: &[u8]) -> [u8; 64] {
        let signature = self.pair.sign(hash_data);
        let mut out = [0u8; 64];
        for (o, b) in out.iter_mut().zip(signature.as_ref()) {
            *o = *b;
        }
        out
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .field("public_key", &self.public)
            .field("seed", &"<redacted>")
            .finish()
    }
}

/// Checks `sig` against `public` for the message `signature_message(format, key_id, hash)`.
pub fn verify_credential_signature(
    format: ProofFormat,
    public: &PublicKey,
    key_id: &KeyId,
    hash: &CredentialHash,
    sig: &IssuerSignature,
) -> Result<(), SigningError> {
    UnparsedPublicKey::new(&ED25519, public.as_bytes())
        .verify(&signature_message(format, key_id, hash), sig.as_bytes())
        .map_err(|_| SigningError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ProofFormat::{V1, V2};

    // RFC 8032, section 7.1, test 1.
    const RFC8032_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn seed() -> [u8; 32] {
        hex::decode(RFC8032_SEED).unwrap().try_into().unwrap()
    }

    fn key_id(s: &str) -> KeyId {
        KeyId::parse(s).unwrap()
    }

    #[test]
    fn public_key_from_seed_matches_rfc8032() {
        let public = ed25519_public_from_seed(&seed()).unwrap();
        assert_eq!(public.to_hex(), RFC8032_PUBLIC);
        let key = SigningKey::from_seed(key_id("k1"), &seed()).unwrap();
        assert_eq!(key.public_key(), public);
        assert_eq!(key.seed_bytes(), &seed());
        assert_eq!(PublicKey::from_base58(&public.to_base58()).unwrap(), public);
        assert_eq!(PublicKey::from_hex(RFC8032_PUBLIC).unwrap(), public);
        let json = serde_json::to_string(&public).unwrap();
        assert_eq!(json, format!("\"{}\"", public.to_base58()));
    }

    #[test]
    fn signature_message_is_domain_separated_and_length_prefixed() {
        let hash = CredentialHash::from_bytes([7; 32]);
        for (format, tag) in [
            (
                ProofFormat::V1,
                &b"credential-anchor/v1/issuer-signature"[..],
            ),
            (
                ProofFormat::V2,
                &b"credential-anchor/v2/issuer-signature"[..],
            ),
        ] {
            let message = signature_message(format, &key_id("k1"), &hash);
            let mut expected = tag.to_vec();
            expected.extend_from_slice(&[0, 0, 0, 2]);
            expected.extend_from_slice(b"k1");
            expected.extend_from_slice(&[7; 32]);
            assert_eq!(message, expected);
        }
    }

    #[test]
    fn sign_then_verify_and_reject_any_change() {
        let key = SigningKey::from_seed(key_id("issuer-2024"), &seed()).unwrap();
        let hash = CredentialHash::from_bytes([1; 32]);
        let sig = key.sign_credential(V2, &hash);
        let public = key.public_key();
        assert_eq!(
            verify_credential_signature(V2, &public, key.key_id(), &hash, &sig),
            Ok(())
        );
        // A v2 signature is no v1 signature of the same hash, and the reverse.
        assert!(verify_credential_signature(V1, &public, key.key_id(), &hash, &sig).is_err());
        let v1 = key.sign_credential(V1, &hash);
        assert!(verify_credential_signature(V1, &public, key.key_id(), &hash, &v1).is_ok());
        assert!(verify_credential_signature(V2, &public, key.key_id(), &hash, &v1).is_err());
        let other_hash = CredentialHash::from_bytes([2; 32]);
        assert_eq!(
            verify_credential_signature(V2, &public, key.key_id(), &other_hash, &sig),
            Err(SigningError::BadSignature)
        );
        assert!(
            verify_credential_signature(V2, &public, &key_id("issuer-2025"), &hash, &sig).is_err()
        );
        let mut bytes = *sig.as_bytes();
        bytes[10] ^= 1;
        let tampered = IssuerSignature::from_bytes(bytes);
        assert!(verify_credential_signature(V2, &public, key.key_id(), &hash, &tampered).is_err());
        let stranger = SigningKey::from_seed(key_id("issuer-2024"), &[9; 32]).unwrap();
        assert!(
            verify_credential_signature(V2, &stranger.public_key(), key.key_id(), &hash, &sig)
                .is_err()
        );
        // An invalid point as public key is an error, not a panic.
        let bogus = PublicKey::from_bytes([0xff; 32]);
        assert!(verify_credential_signature(V2, &bogus, key.key_id(), &hash, &sig).is_err());
    }

    #[test]
    fn signature_encodings_round_trip() {
        let key = SigningKey::from_seed(key_id("k"), &seed()).unwrap();
        let sig = key.sign_credential(V2, &CredentialHash::from_bytes([3; 32]));
        assert_eq!(IssuerSignature::from_base58(&sig.to_base58()).unwrap(), sig);
        assert_eq!(IssuerSignature::from_hex(&sig.to_hex()).unwrap(), sig);
        let json = serde_json::to_string(&sig).unwrap();
        assert_eq!(serde_json::from_str::<IssuerSignature>(&json).unwrap(), sig);
        assert!(IssuerSignature::from_base58(&PublicKey::from_bytes([5; 32]).to_base58()).is_err());
    }

    #[test]
    fn generated_keys_sign_and_debug_hides_the_seed() {
        let rng = SystemRandom::new();
        let (key, seed) = SigningKey::generate(key_id("gen"), &rng).unwrap();
        assert_eq!(key.seed_bytes(), &seed);
        assert_eq!(ed25519_public_from_seed(&seed).unwrap(), key.public_key());
        let hash = CredentialHash::from_bytes([4; 32]);
        let sig = key.sign_credential(V2, &hash);
        assert!(
            verify_credential_signature(V2, &key.public_key(), key.key_id(), &hash, &sig).is_ok()
        );
        let debug = format!("{key:?}");
        assert!(!debug.contains(&hex::encode(seed)));
        assert!(!debug.contains(&format!("{seed:?}")));
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn solana_keypair_bytes_yield_the_seed() {
        let public = ed25519_public_from_seed(&seed()).unwrap();
        let mut file = seed().to_vec();
        file.extend_from_slice(public.as_bytes());
        assert_eq!(seed_from_solana_keypair(&file).unwrap(), seed());
        file[40] ^= 1;
        assert_eq!(
            seed_from_solana_keypair(&file),
            Err(SigningError::KeypairMismatch)
        );
        assert_eq!(
            seed_from_solana_keypair(&file[..63]),
            Err(SigningError::KeypairLength(63))
        );
    }
}
