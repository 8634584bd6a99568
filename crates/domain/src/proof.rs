//! The proof bundle: a self-contained JSON document that lets anyone check a credential file
//! against the chain without our API, years after issuance.
//!
//! A bundle carries the hash inputs except the file itself (the file digest is included so a
//! wrong file is told apart from a forged bundle), the issuer's signature with its key id and
//! public key, and the anchor: the transaction signature, slot, cluster, the anchoring key
//! that paid for it, the exact memo text, and — in merkle mode — the batch id, size, root and
//! the inclusion path.
//!
//! [`check_offline`] performs every check that needs no network: schema version, file digest,
//! credential hash, issuer signature, Merkle path, and that the memo named in the bundle is the
//! one these facts imply. What it cannot do offline — that the transaction exists, succeeded,
//! is finalized, was paid by the anchoring key and carries that memo — is left to the verifier's
//! RPC calls, which compare the chain against [`ProofBundle::expected_memo`].
//!
//! The schema is versioned by `version`, which also names the credential's proof format
//! (`hash::ProofFormat`): a v1 bundle hashes the five fields, a v2 bundle also the credential
//! id and the `salt` it carries, and the signature message is tagged with the same version.
//! Both versions verify forever; new credentials are v2. A verifier refuses versions it does
//! not know rather than guessing.
//!
//! Bundles from outside are read with [`ProofBundle::from_json`], never with a bare serde
//! call: it accepts exactly one spelling of each bundle's JSON value (byte layout, key order
//! and string escapes are JSON's own business: nothing hashes a bundle's bytes) (closed schema at every level, no
//! duplicate keys, lowercase hex, hyphenated lowercase UUIDs, `…T…Z` whole-second times,
//! mode-specific fields only in their mode, version-specific ones only in their version,
//! base58 that decodes to the right length), so no
//! verifier can be shown a claim another verifier silently drops. The rule is one round trip:
//! the typed bundle, serialized again, must be the JSON that came in. The format is documented
//! in `docs/proof-bundle.md` and published as `docs/proof-bundle.schema.json`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cluster::Cluster;
use crate::hash::{CredentialFields, CredentialHash, FileDigest, HashScheme, ProofFormat, Salt};
use crate::ids::{BatchId, CredentialId, KeyId};
use crate::memo::Memo;
use crate::merkle::{MerkleProof, MerkleRoot};
use crate::signing::{verify_credential_signature, IssuerSignature, PublicKey};

/// The bundle schema of v1 credentials (no salt, the id outside the hash).
pub const PROOF_BUNDLE_V1: &str = "credential-anchor/proof-bundle/v1";
/// The bundle schema of v2 credentials (salted, the id inside the hash).
pub const PROOF_BUNDLE_V2: &str = "credential-anchor/proof-bundle/v2";

/// The bundle schema string of a proof format.
pub const fn bundle_version(format: ProofFormat) -> &'static str {
    match format {
        ProofFormat::V1 => PROOF_BUNDLE_V1,
        ProofFormat::V2 => PROOF_BUNDLE_V2,
    }
}

/// How the credential's hash reached the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// `deny_unknown_fields` cannot be combined with `flatten` (serde limitation); the
// top-level struct still refuses unknown fields.
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum AnchorPath {
    /// One `ca1:c` memo per credential: the memo carries the credential hash itself.
    Single,
    /// One `ca1:b` memo per batch: the memo carries the Merkle root of `count` credential
    /// hashes, and `proof` leads from this credential's hash to that root.
    Merkle {
        batch_id: BatchId,
        count: u32,
        root: MerkleRoot,
        proof: MerkleProof,
    },
}

/// The issuer's signature over the credential hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSignature {
    pub key_id: KeyId,
    /// The Ed25519 public key of `key_id`, as published in the issuer profile.
    pub public_key: PublicKey,
    pub signature: IssuerSignature,
}

/// Where the anchor is on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleAnchor {
    /// `localnet`, `devnet`, `testnet` or `mainnet-beta`: which chain to ask.
    pub cluster: Cluster,
    /// Base58 transaction signature.
    pub signature: String,
    pub slot: u64,
    /// Base58 public key of the issuer's anchoring key: the transaction's fee payer must be it.
    pub anchor_pubkey: String,
    /// The exact memo text the transaction carries.
    pub memo: String,
    #[serde(flatten)]
    pub mode: AnchorPath,
}

/// A proof bundle, schema v1 or v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    /// [`PROOF_BUNDLE_V1`] or [`PROOF_BUNDLE_V2`].
    pub version: String,
    /// In v2 a hash input: editing it breaks the hash. In v1 informational (the verify API
    /// finds the record by issuer and hash and calls a differing id tampered).
    pub credential_id: CredentialId,
    /// v2 only: the per-credential salt, a hash input. Absent from v1 bundles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<Salt>,
    /// The issuer's display name when the bundle was made (informational, not hashed).
    pub issuer_name: String,
    /// Hash inputs, the file excepted (its digest is here).
    pub fields: CredentialFields,
    pub credential_hash: CredentialHash,
    pub issuer_signature: BundleSignature,
    pub anchor: BundleAnchor,
    /// v2, when issued with one: the credential's W3C Verifiable Credential, byte for byte
    /// as signed (checked by `vc::verify_proof` and `vc::anchored_claims_match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vc: Option<serde_json::Value>,
}

/// Why a bundle does not hold, before any chain lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofCheckError {
    #[error(
        "unsupported proof bundle version {0:?} (this verifier knows {PROOF_BUNDLE_V1:?} and {PROOF_BUNDLE_V2:?})"
    )]
    UnsupportedVersion(String),
    #[error("a v2 bundle must carry a salt and a v1 bundle must not")]
    SaltMismatch,
    #[error(
        "the file does not match the bundle: its SHA-256 is {actual}, the bundle says {expected}"
    )]
    FileMismatch {
        expected: FileDigest,
        actual: FileDigest,
    },
    #[error("the credential hash does not match the bundle's fields")]
    HashMismatch,
    #[error("the issuer signature does not verify with key {0}")]
    BadSignature(KeyId),
    #[error("the Merkle path does not lead to the batch root")]
    BadMerklePath,
    #[error("the memo {found:?} is not the one the bundle implies ({expected:?})")]
    MemoMismatch { expected: String, found: String },
    #[error("the batch size in the bundle is invalid")]
    BadBatch,
}

impl ProofCheckError {
    /// Stable machine-readable code (API verdict details, CLI `--json`).
    pub fn code(&self) -> &'static str {
        match self {
            ProofCheckError::UnsupportedVersion(_) => "unsupported_version",
            ProofCheckError::SaltMismatch => "salt_mismatch",
            ProofCheckError::FileMismatch { .. } => "file_mismatch",
            ProofCheckError::HashMismatch => "hash_mismatch",
            ProofCheckError::BadSignature(_) => "invalid_signature",
            ProofCheckError::BadMerklePath => "bad_merkle_path",
            ProofCheckError::MemoMismatch { .. } => "memo_mismatch",
            ProofCheckError::BadBatch => "bad_batch",
        }
    }
}

/// Why some bytes are not a proof bundle in its one canonical spelling. Whatever the reason,
/// the input is refused before any check: a verifier never guesses what a bundle meant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleFormatError {
    /// Not JSON, a duplicate key, a wrong type, an unknown field serde caught, or a value
    /// its type refuses (bad hex, an unknown cluster, a fractional slot).
    #[error("not a proof bundle: {0}")]
    Schema(String),
    /// A field the (mode's) schema does not have, e.g. `anchor.revoked` or a Merkle `proof`
    /// in a single-mode bundle.
    #[error("{at} is not part of the proof bundle schema")]
    UnknownField { at: String },
    /// A value in another spelling than the one issuance writes (uppercase hex, a UUID
    /// without hyphens, `+00:00` instead of `Z`, …): refused, not normalized.
    #[error("{at} is {found}, which is not its canonical spelling {expected}")]
    NotCanonical {
        at: String,
        found: String,
        expected: String,
    },
    /// A base58 value that is not a Solana signature or public key; a version this reader
    /// does not know; a salt in a v1 bundle or none in a v2 one.
    #[error("{at}: {why}")]
    Invalid { at: String, why: String },
}

impl BundleFormatError {
    /// Stable machine-readable code (API error `reason`, CLI `--json`).
    pub fn code(&self) -> &'static str {
        match self {
            BundleFormatError::Schema(_) => "malformed_bundle",
            BundleFormatError::UnknownField { .. } => "unknown_bundle_field",
            BundleFormatError::NotCanonical { .. } => "non_canonical_bundle",
            BundleFormatError::Invalid { .. } => "malformed_bundle",
        }
    }
}

impl ProofBundle {
    /// Reads a proof bundle from outside (an upload, a file) under the strict rules of the
    /// module docs: the one way bundles enter a verifier.
    pub fn from_json(bytes: &[u8]) -> Result<ProofBundle, BundleFormatError> {
        let StrictValue(input) =
            serde_json::from_slice(bytes).map_err(|e| BundleFormatError::Schema(e.to_string()))?;
        let bundle: ProofBundle = serde_json::from_value(input.clone())
            .map_err(|e| BundleFormatError::Schema(e.to_string()))?;
        // Serializing a bundle cannot fail (strings, numbers and maps only); should it ever,
        // the input is refused rather than compared against nothing.
        let canonical =
            serde_json::to_value(&bundle).map_err(|e| BundleFormatError::Schema(e.to_string()))?;
        if let Some(difference) = first_difference(&input, &canonical, String::new()) {
            return Err(difference);
        }
        // The version and the salt's presence are shape, not facts: a version this reader
        // does not know, or a v1 bundle with a salt (a v2 one without), is not a bundle it
        // can read at all.
        bundle.scheme().map_err(|e| BundleFormatError::Invalid {
            at: match e {
                ProofCheckError::UnsupportedVersion(_) => "/version".into(),
                _ => "/salt".into(),
            },
            why: e.to_string(),
        })?;
        check_base58::<64>(
            &bundle.anchor.signature,
            "/anchor/signature",
            "transaction signature",
        )?;
        check_base58::<32>(
            &bundle.anchor.anchor_pubkey,
            "/anchor/anchor_pubkey",
            "public key",
        )?;
        Ok(bundle)
    }

    /// The proof format the bundle's `version` names.
    pub fn format(&self) -> Result<ProofFormat, ProofCheckError> {
        match self.version.as_str() {
            PROOF_BUNDLE_V1 => Ok(ProofFormat::V1),
            PROOF_BUNDLE_V2 => Ok(ProofFormat::V2),
            other => Err(ProofCheckError::UnsupportedVersion(other.to_string())),
        }
    }

    /// How this bundle's credential hash is computed: the version decides, and the salt must
    /// be present exactly when the version is v2.
    pub fn scheme(&self) -> Result<HashScheme, ProofCheckError> {
        match (self.format()?, self.salt) {
            (ProofFormat::V1, None) => Ok(HashScheme::V1),
            (ProofFormat::V2, Some(salt)) => Ok(HashScheme::V2 {
                credential_id: self.credential_id,
                salt,
                key_id: self.issuer_signature.key_id.clone(),
                public_key: self.issuer_signature.public_key,
            }),
            _ => Err(ProofCheckError::SaltMismatch),
        }
    }

    /// The memo the anchoring transaction must carry if this bundle is genuine. Built from
    /// the checked facts (fields, hash, batch root), never copied from `anchor.memo`.
    pub fn expected_memo(&self) -> Result<Memo, ProofCheckError> {
        match &self.anchor.mode {
            AnchorPath::Single => Ok(Memo::Credential {
                issuer: self.fields.issuer.clone(),
                credential: self.credential_id,
                hash: self.credential_hash,
            }),
            AnchorPath::Merkle {
                batch_id,
                count,
                root,
                ..
            } => Memo::batch(self.fields.issuer.clone(), *batch_id, *count, *root)
                .map_err(|_| ProofCheckError::BadBatch),
        }
    }
}

/// A JSON value read without losing anything a verifier could be fooled by: a duplicate key
/// (which `serde_json::Value` would resolve silently, last one wins) is an error.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            let StrictValue(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// The first place (a JSON pointer) where `input` is not `canonical`, the bundle as this
/// verifier writes it. Pure.
fn first_difference(input: &Value, canonical: &Value, at: String) -> Option<BundleFormatError> {
    match (input, canonical) {
        (Value::Object(got), Value::Object(want)) => {
            for (key, value) in got {
                let here = format!("{at}/{key}");
                match want.get(key) {
                    None => return Some(BundleFormatError::UnknownField { at: here }),
                    Some(expected) => {
                        if let Some(d) = first_difference(value, expected, here) {
                            return Some(d);
                        }
                    }
                }
            }
            // Every canonical key was read from the input (serde has no defaults for
            // required fields), so nothing can be missing here; say so if it ever is.
            want.keys()
                .find(|key| !got.contains_key(*key))
                .map(|key| BundleFormatError::Schema(format!("{at}/{key} is missing")))
        }
        (Value::Array(got), Value::Array(want)) if got.len() == want.len() => got
            .iter()
            .zip(want)
            .enumerate()
            .find_map(|(i, (g, w))| first_difference(g, w, format!("{at}/{i}"))),
        (got, want) if got == want => None,
        (got, want) => Some(BundleFormatError::NotCanonical {
            at: if at.is_empty() { "/".into() } else { at },
            found: got.to_string(),
            expected: want.to_string(),
        }),
    }
}

/// `text` is the canonical base58 of exactly `N` bytes (decoded by the crate's one base58
/// rule, `hash::decode_base58_fixed`; re-encoding must give `text` back).
fn check_base58<const N: usize>(text: &str, at: &str, what: &str) -> Result<(), BundleFormatError> {
    let canonical = crate::hash::decode_base58_fixed::<N>(text)
        .is_ok_and(|bytes| bs58::encode(bytes).into_string() == text);
    if canonical {
        Ok(())
    } else {
        Err(BundleFormatError::Invalid {
            at: at.to_string(),
            why: format!("not a base58 Solana {what} ({N} bytes)"),
        })
    }
}

/// Every check that needs no network, in order of the most useful message first. `file`:
/// the credential file's bytes, or `None` to check the bundle alone.
pub fn check_offline(bundle: &ProofBundle, file: Option<&[u8]>) -> Result<(), ProofCheckError> {
    let scheme = bundle.scheme()?;
    if let Some(bytes) = file {
        let actual = FileDigest::of(bytes);
        if actual != bundle.fields.file_digest {
            return Err(ProofCheckError::FileMismatch {
                expected: bundle.fields.file_digest,
                actual,
            });
        }
    }
    if scheme.hash(&bundle.fields) != bundle.credential_hash {
        return Err(ProofCheckError::HashMismatch);
    }
    let sig = &bundle.issuer_signature;
    verify_credential_signature(
        scheme.format(),
        &sig.public_key,
        &sig.key_id,
        &bundle.credential_hash,
        &sig.signature,
    )
    .map_err(|_| ProofCheckError::BadSignature(sig.key_id.clone()))?;
    if let AnchorPath::Merkle {
        count, root, proof, ..
    } = &bundle.anchor.mode
    {
        if *count == 0 || proof.leaf_index >= u64::from(*count) {
            return Err(ProofCheckError::BadBatch);
        }
        // Position too: an edited `leaf_index` no longer fits the path (`verify_at`).
        if !proof.verify_at(&bundle.credential_hash, root, u64::from(*count)) {
            return Err(ProofCheckError::BadMerklePath);
        }
    }
    let expected = bundle.expected_memo()?.encode();
    if expected != bundle.anchor.memo {
        return Err(ProofCheckError::MemoMismatch {
            expected,
            found: bundle.anchor.memo.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{IssuedAt, IssuerId, RecipientId, Serial};
    use crate::merkle::MerkleTree;
    use crate::signing::SigningKey;
    use proptest::prelude::*;

    fn key() -> SigningKey {
        SigningKey::from_seed(KeyId::parse("k1").unwrap(), &[7u8; 32]).unwrap()
    }

    fn fields(file: &[u8], serial: &str) -> CredentialFields {
        CredentialFields {
            file_digest: FileDigest::of(file),
            issuer: IssuerId::parse("uni").unwrap(),
            recipient: RecipientId::parse("s-1").unwrap(),
            issued_at: IssuedAt::parse_rfc3339("2026-06-30T12:00:00Z").unwrap(),
            serial: Serial::parse(serial).unwrap(),
        }
    }

    fn bundle(file: &[u8], mode_batch: Option<usize>) -> ProofBundle {
        bundle_in(ProofFormat::V2, file, mode_batch)
    }

    fn bundle_in(format: ProofFormat, file: &[u8], mode_batch: Option<usize>) -> ProofBundle {
        let f = fields(file, "S-1");
        let credential_id = CredentialId::new_v7();
        let key = key();
        let scheme = match format {
            ProofFormat::V1 => HashScheme::V1,
            ProofFormat::V2 => HashScheme::V2 {
                credential_id,
                salt: Salt::from_bytes([3; 32]),
                key_id: key.key_id().clone(),
                public_key: key.public_key(),
            },
        };
        let hash = scheme.hash(&f);
        let mode = match mode_batch {
            None => AnchorPath::Single,
            Some(n) => {
                let mut leaves: Vec<CredentialHash> = (0..n)
                    .map(|i| fields(format!("other {i}").as_bytes(), "X").hash())
                    .collect();
                leaves[n / 2] = hash;
                let tree = MerkleTree::build(&leaves).unwrap();
                AnchorPath::Merkle {
                    batch_id: BatchId::new_v7(),
                    count: n as u32,
                    root: tree.root(),
                    proof: tree.proof(n / 2).unwrap(),
                }
            }
        };
        let mut b = ProofBundle {
            version: bundle_version(format).into(),
            credential_id,
            salt: scheme.salt(),
            issuer_name: "University".into(),
            fields: f,
            credential_hash: hash,
            issuer_signature: BundleSignature {
                key_id: key.key_id().clone(),
                public_key: key.public_key(),
                signature: key.sign_credential(format, &hash),
            },
            anchor: BundleAnchor {
                cluster: Cluster::Localnet,
                signature: bs58::encode([5u8; 64]).into_string(),
                slot: 5,
                anchor_pubkey: bs58::encode([6u8; 32]).into_string(),
                memo: String::new(),
                mode,
            },
            vc: None,
        };
        b.anchor.memo = b.expected_memo().unwrap().encode();
        b
    }

    /// Regenerates the fuzzer's seed bundles (`fuzz/regressions/proof_bundle/seed-*.json`),
    /// which the stable suite replays: `cargo test -p domain write_fuzz_seeds -- --ignored`.
    #[test]
    #[ignore = "writes seed files; run by hand"]
    fn write_fuzz_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/proof_bundle");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, batch) in [("single", None), ("merkle", Some(5))] {
            let b = bundle(b"%PDF seed", batch);
            assert!(check_offline(&b, Some(b"%PDF seed")).is_ok());
            let text = serde_json::to_vec_pretty(&b).unwrap();
            std::fs::write(dir.join(format!("seed-{name}.json")), text).unwrap();
        }
    }

    #[test]
    fn genuine_bundles_check_in_both_modes_and_round_trip_through_json() {
        for (format, mode) in [ProofFormat::V1, ProofFormat::V2]
            .into_iter()
            .flat_map(|f| [None, Some(1), Some(7), Some(1000)].map(|m| (f, m)))
        {
            let b = bundle_in(format, b"diploma", mode);
            check_offline(&b, Some(b"diploma")).unwrap();
            check_offline(&b, None).unwrap();
            let json = serde_json::to_string(&b).unwrap();
            let back: ProofBundle = serde_json::from_str(&json).unwrap();
            assert_eq!(back, b);
        }
    }

    #[test]
    fn json_shape_is_flat_and_documented() {
        let b = bundle(b"diploma", Some(3));
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["anchor"]["mode"], "merkle");
        assert!(v["anchor"]["proof"]["steps"].is_array());
        assert!(v["anchor"]["root"].is_string());
        assert_eq!(v["fields"]["serial"], "S-1");
        assert_eq!(v["version"], PROOF_BUNDLE_V2);
        assert_eq!(v["salt"], hex::encode([3u8; 32]));
        let v1 = serde_json::to_value(bundle_in(ProofFormat::V1, b"d", None)).unwrap();
        assert!(v1.get("salt").is_none(), "a v1 bundle keeps its v1 shape");
        let single = serde_json::to_value(bundle(b"d", None)).unwrap();
        assert_eq!(single["anchor"]["mode"], "single");
        assert!(single["anchor"].get("proof").is_none());
    }

    #[test]
    fn unknown_fields_and_versions_are_refused() {
        let b = bundle(b"diploma", None);
        let mut v = serde_json::to_value(&b).unwrap();
        v["extra"] = serde_json::json!(true);
        assert!(serde_json::from_value::<ProofBundle>(v).is_err());
        let mut old = b.clone();
        old.version = "credential-anchor/proof-bundle/v0".into();
        assert_eq!(
            check_offline(&old, None).unwrap_err().code(),
            "unsupported_version"
        );
    }

    #[test]
    fn v2_binds_the_id_and_the_salt_and_refuses_a_downgrade() {
        for mode in [None, Some(5)] {
            let b = bundle(b"diploma", mode);
            let mut t = b.clone();
            t.credential_id = CredentialId::new_v7();
            assert_eq!(check_offline(&t, None).unwrap_err().code(), "hash_mismatch");
            let mut t = b.clone();
            t.salt = Some(Salt::from_bytes([4; 32]));
            assert_eq!(check_offline(&t, None).unwrap_err().code(), "hash_mismatch");
            let mut t = b.clone();
            t.salt = None;
            assert_eq!(check_offline(&t, None).unwrap_err().code(), "salt_mismatch");
            // Relabelled as v1 without its salt: the v1 hash of the fields is another value.
            t.version = PROOF_BUNDLE_V1.into();
            assert_eq!(check_offline(&t, None).unwrap_err().code(), "hash_mismatch");
            // A v1 bundle that grew a salt is refused, not silently ignored.
            let mut v1 = bundle_in(ProofFormat::V1, b"diploma", mode);
            v1.salt = Some(Salt::from_bytes([3; 32]));
            assert_eq!(
                check_offline(&v1, None).unwrap_err().code(),
                "salt_mismatch"
            );
            // v2 binds the signing key: the same hash re-signed by another key (with its own
            // id and public key in the bundle) no longer matches the hash.
            let rogue = SigningKey::from_seed(KeyId::parse("k1").unwrap(), &[9; 32]).unwrap();
            let mut t = b.clone();
            t.issuer_signature.public_key = rogue.public_key();
            t.issuer_signature.signature =
                rogue.sign_credential(ProofFormat::V2, &b.credential_hash);
            assert_eq!(check_offline(&t, None).unwrap_err().code(), "hash_mismatch");
            let mut t = b.clone();
            t.issuer_signature.key_id = KeyId::parse("k2").unwrap();
            assert_eq!(check_offline(&t, None).unwrap_err().code(), "hash_mismatch");
            // The signature is version-tagged: a v1 signature over the v2 hash is refused.
            let mut t = b.clone();
            t.issuer_signature.signature =
                key().sign_credential(ProofFormat::V1, &b.credential_hash);
            assert_eq!(
                check_offline(&t, None).unwrap_err().code(),
                "invalid_signature"
            );
        }
    }

    #[test]
    fn each_tampering_is_named() {
        let b = bundle(b"diploma", Some(5));
        assert_eq!(
            check_offline(&b, Some(b"diplomA")).unwrap_err().code(),
            "file_mismatch"
        );

        let mut t = b.clone();
        t.fields.serial = Serial::parse("S-2").unwrap();
        assert_eq!(check_offline(&t, None).unwrap_err().code(), "hash_mismatch");

        // Another public key: v2 binds the key into the hash, v1 only fails the signature.
        for (format, code) in [
            (ProofFormat::V2, "hash_mismatch"),
            (ProofFormat::V1, "invalid_signature"),
        ] {
            let mut t = bundle_in(format, b"diploma", Some(5));
            t.issuer_signature.public_key =
                SigningKey::from_seed(KeyId::parse("k1").unwrap(), &[8; 32])
                    .unwrap()
                    .public_key();
            assert_eq!(check_offline(&t, None).unwrap_err().code(), code);
        }
        let mut t = b.clone();
        t.issuer_signature.signature = key().sign_credential(ProofFormat::V2, &t.credential_hash);
        t.issuer_signature.signature = IssuerSignature::from_bytes({
            let mut bytes = *t.issuer_signature.signature.as_bytes();
            bytes[0] ^= 1;
            bytes
        });
        assert_eq!(
            check_offline(&t, None).unwrap_err().code(),
            "invalid_signature"
        );

        let mut t = b.clone();
        if let AnchorPath::Merkle { proof, .. } = &mut t.anchor.mode {
            proof.steps[0].hash[0] ^= 1;
        }
        assert_eq!(
            check_offline(&t, None).unwrap_err().code(),
            "bad_merkle_path"
        );

        let mut t = b.clone();
        if let AnchorPath::Merkle { count, .. } = &mut t.anchor.mode {
            *count = 2; // leaf index 2 is out of a 2-leaf batch
        }
        assert_eq!(check_offline(&t, None).unwrap_err().code(), "bad_batch");

        let mut t = b.clone();
        t.anchor.memo.push('x');
        assert_eq!(check_offline(&t, None).unwrap_err().code(), "memo_mismatch");
    }

    fn schema() -> jsonschema::Validator {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/proof-bundle.schema.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    fn genuine_bundles() -> Vec<(String, ProofBundle)> {
        [ProofFormat::V1, ProofFormat::V2]
            .into_iter()
            .flat_map(|f| [None, Some(5)].map(|m| (f, m)))
            .map(|(f, m)| (format!("{f:?} {m:?}"), bundle_in(f, b"diploma", m)))
            .collect()
    }

    #[test]
    fn the_strict_reader_accepts_exactly_what_issuance_writes_and_the_schema_agrees() {
        let schema = schema();
        let mut refused = 0;
        for (name, b) in genuine_bundles() {
            let text = serde_json::to_vec_pretty(&b).unwrap();
            assert_eq!(ProofBundle::from_json(&text).unwrap(), b, "{name}");
            let value: Value = serde_json::from_slice(&text).unwrap();
            assert!(
                schema.is_valid(&value),
                "{name}: the schema refuses a genuine bundle"
            );
            for (edit, v, schema_sees_it) in crate::bundle_edits::spellings(&value) {
                assert_ne!(v, value, "{name} / {edit}: the edit changed nothing");
                let err = ProofBundle::from_json(&serde_json::to_vec(&v).unwrap())
                    .expect_err(&format!("{name} / {edit}: accepted"));
                assert!(
                    [
                        "malformed_bundle",
                        "unknown_bundle_field",
                        "non_canonical_bundle"
                    ]
                    .contains(&err.code()),
                    "{name} / {edit}: {err}"
                );
                if schema_sees_it {
                    assert!(
                        !schema.is_valid(&v),
                        "{name} / {edit}: the schema accepts it"
                    );
                }
                refused += 1;
            }
        }
        assert!(refused > 120, "{refused}");
    }

    #[test]
    fn duplicate_keys_are_refused_whichever_comes_first() {
        let b = bundle(b"diploma", Some(3));
        let text = serde_json::to_string(&b).unwrap();
        let serial = r#""serial":"S-1""#;
        assert!(text.contains(serial));
        for dup in [
            format!(r#"{serial},"serial":"S-9""#),
            format!(r#""serial":"S-9",{serial}"#),
        ] {
            let edited = text.replacen(serial, &dup, 1);
            let err = ProofBundle::from_json(edited.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("duplicate"), "{err}");
        }
        let revoked = text.replacen(r#""anchor":{"#, r#""anchor":{"slot":1,"#, 1);
        assert!(ProofBundle::from_json(revoked.as_bytes()).is_err());
    }

    #[test]
    fn refusals_name_the_place_and_the_canonical_spelling() {
        let b = bundle(b"diploma", None);
        let mut v = serde_json::to_value(&b).unwrap();
        v["anchor"]["revoked"] = Value::Bool(false);
        let err = ProofBundle::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(
            err,
            BundleFormatError::UnknownField {
                at: "/anchor/revoked".into()
            }
        );
        let mut v = serde_json::to_value(&b).unwrap();
        v["credential_hash"] = Value::String(b.credential_hash.to_hex().to_uppercase());
        let err = ProofBundle::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(err.code(), "non_canonical_bundle");
        assert!(
            err.to_string().contains("/credential_hash")
                && err.to_string().contains(&b.credential_hash.to_hex()),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn any_flipped_file_byte_is_a_file_mismatch(
            file in proptest::collection::vec(any::<u8>(), 1..256),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let b = bundle(&file, Some(4));
            prop_assert!(check_offline(&b, Some(&file)).is_ok());
            let mut bad = file.clone();
            let i = at.index(bad.len());
            bad[i] ^= 1 << bit;
            prop_assert_eq!(check_offline(&b, Some(&bad)).unwrap_err().code(), "file_mismatch");
        }
    }
}
