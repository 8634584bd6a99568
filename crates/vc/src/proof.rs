//! The Data Integrity `eddsa-rdfc-2022` cryptosuite (W3C vc-di-eddsa, §3.3): one proof by
//! an Ed25519 key, over the RDFC-1.0 canonical forms of the proof's configuration and of the
//! document.
//!
//! hashData = SHA-256(canonical proof configuration) ‖ SHA-256(canonical document), where
//! the configuration is the proof without `proofValue`, given the document's `@context`;
//! `proofValue` = multibase base58btc (`z…`) of the Ed25519 signature of hashData.

use ring::digest::{digest, SHA256};
use ring::signature::{UnparsedPublicKey, ED25519};
use serde_json::{Map, Value};

use crate::canon::canonicalize;
use crate::CanonError;

pub const PROOF_TYPE: &str = "DataIntegrityProof";
pub const CRYPTOSUITE: &str = "eddsa-rdfc-2022";
pub const ASSERTION_METHOD: &str = "assertionMethod";

/// What a new proof states besides its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofOptions {
    /// The verification method (`did:…#key`) whose key signs.
    pub verification_method: String,
    /// `created`, an XML Schema dateTime (`2026-06-15T12:00:00Z`).
    pub created: String,
}

/// Why a proof does not verify (or cannot be made).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the document is not a JSON object with an @context")]
    NotADocument,
    #[error("the first @context is not {}", crate::contexts::CREDENTIALS_V2)]
    NotAVerifiableCredential,
    #[error("the document has no single proof object")]
    NoProof,
    #[error("the proof is not a {PROOF_TYPE} with cryptosuite {CRYPTOSUITE}")]
    UnsupportedProof,
    #[error("the proof's purpose is not {ASSERTION_METHOD}")]
    WrongPurpose,
    #[error("the proof's {0} is missing or not a string")]
    MalformedProof(&'static str),
    #[error("the proof has a member {0:?} that is not a string of vc-data-integrity")]
    UnexpectedMember(String),
    #[error("the verification method {0:?} is not an assertion key of the issuer")]
    UnknownVerificationMethod(String),
    #[error("the proof's value does not verify")]
    BadSignature,
    #[error(transparent)]
    Canon(#[from] CanonError),
}

/// A proof that verified: which method signed and when it says it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    pub verification_method: String,
    pub created: Option<String>,
}

/// The 64 bytes an `eddsa-rdfc-2022` signature covers.
fn hash_data(
    unsecured: &Map<String, Value>,
    config: &Map<String, Value>,
) -> Result<Vec<u8>, ProofError> {
    let config_c14n = canonicalize(&Value::Object(config.clone()))?;
    let document_c14n = canonicalize(&Value::Object(unsecured.clone()))?;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(digest(&SHA256, config_c14n.as_bytes()).as_ref());
    out.extend_from_slice(digest(&SHA256, document_c14n.as_bytes()).as_ref());
    Ok(out)
}

/// A proof configuration canonicalized once, to sign many documents under the same
/// `@context`, method and `created` (a bulk request): half the canonicalization work of each.
#[derive(Debug, Clone)]
pub struct PreparedProof {
    context: Value,
    proof: Map<String, Value>,
    config_hash: [u8; 32],
}

impl PreparedProof {
    pub fn new(context: &Value, options: &ProofOptions) -> Result<PreparedProof, ProofError> {
        let mut proof = Map::new();
        proof.insert("type".into(), PROOF_TYPE.into());
        proof.insert("cryptosuite".into(), CRYPTOSUITE.into());
        proof.insert("created".into(), options.created.clone().into());
        proof.insert(
            "verificationMethod".into(),
            options.verification_method.clone().into(),
        );
        proof.insert("proofPurpose".into(), ASSERTION_METHOD.into());
        let mut config = proof.clone();
        config.insert("@context".into(), context.clone());
        let config_c14n = canonicalize(&Value::Object(config))?;
        let mut config_hash = [0u8; 32];
        config_hash.copy_from_slice(digest(&SHA256, config_c14n.as_bytes()).as_ref());
        Ok(PreparedProof {
            context: context.clone(),
            proof,
            config_hash,
        })
    }

    /// `unsecured` (whose `@context` must be the prepared one) with the proof attached,
    /// signed by `sign` (an Ed25519 signer over the given bytes).
    pub fn attach(
        &self,
        unsecured: &Value,
        sign: impl FnOnce(&[u8]) -> [u8; 64],
    ) -> Result<Value, ProofError> {
        let document = unsecured.as_object().ok_or(ProofError::NotADocument)?;
        if document.get("@context") != Some(&self.context) {
            return Err(ProofError::NotADocument);
        }
        let document_c14n = canonicalize(unsecured)?;
        let mut message = Vec::with_capacity(64);
        message.extend_from_slice(&self.config_hash);
        message.extend_from_slice(digest(&SHA256, document_c14n.as_bytes()).as_ref());
        let signature = sign(&message);
        let mut proof = self.proof.clone();
        proof.insert(
            "proofValue".into(),
            format!("z{}", bs58::encode(signature).into_string()).into(),
        );
        let mut secured = document.clone();
        secured.insert("proof".into(), Value::Object(proof));
        Ok(Value::Object(secured))
    }
}

/// `unsecured` with an `eddsa-rdfc-2022` proof by `sign` (an Ed25519 signer over the given
/// bytes) attached as `proof`.
pub fn attach_proof(
    unsecured: &Value,
    options: &ProofOptions,
    sign: impl FnOnce(&[u8]) -> [u8; 64],
) -> Result<Value, ProofError> {
    let context = unsecured.get("@context").ok_or(ProofError::NotADocument)?;
    PreparedProof::new(context, options)?.attach(unsecured, sign)
}

/// Verifies the single `eddsa-rdfc-2022` proof of `secured`. `assertion_key` answers the
/// Ed25519 public key of a verification method the issuer lists for `assertionMethod`, or
/// `None` (unknown, or not allowed to assert).
pub fn verify_proof(
    secured: &Value,
    assertion_key: impl FnOnce(&str) -> Option<[u8; 32]>,
) -> Result<VerifiedProof, ProofError> {
    let document = secured.as_object().ok_or(ProofError::NotADocument)?;
    let context = document.get("@context").ok_or(ProofError::NotADocument)?;
    // VC 2.0 §4.3: the first context is the VC 2.0 one. `jsonld.js` refuses the other
    // orders (a protected term redefined); checking it here gives the same verdict.
    if context.get(0).and_then(Value::as_str) != Some(crate::contexts::CREDENTIALS_V2) {
        return Err(ProofError::NotAVerifiableCredential);
    }
    let proof = document
        .get("proof")
        .and_then(Value::as_object)
        .ok_or(ProofError::NoProof)?;
    // Only the members vc-data-integrity defines, each a string: the configuration is
    // canonicalized too, and anything else would be attacker-sized JSON-LD.
    const MEMBERS: &[&str] = &[
        "id",
        "type",
        "cryptosuite",
        "created",
        "expires",
        "verificationMethod",
        "proofPurpose",
        "proofValue",
        "domain",
        "challenge",
        "nonce",
    ];
    if let Some((name, _)) = proof
        .iter()
        .find(|(name, value)| !MEMBERS.contains(&name.as_str()) || !value.is_string())
    {
        return Err(ProofError::UnexpectedMember(
            name.chars().take(64).collect(),
        ));
    }
    let text = |name: &'static str| {
        proof
            .get(name)
            .and_then(Value::as_str)
            .ok_or(ProofError::MalformedProof(name))
    };
    if text("type")? != PROOF_TYPE || text("cryptosuite")? != CRYPTOSUITE {
        return Err(ProofError::UnsupportedProof);
    }
    if text("proofPurpose")? != ASSERTION_METHOD {
        return Err(ProofError::WrongPurpose);
    }
    let method = text("verificationMethod")?.to_string();
    let signature = text("proofValue")?
        .strip_prefix('z')
        .and_then(|b58| bs58::decode(b58).into_vec().ok())
        .filter(|bytes| bytes.len() == 64)
        .ok_or(ProofError::MalformedProof("proofValue"))?;
    let created = match proof.get("created") {
        None => None,
        Some(Value::String(created)) => Some(created.clone()),
        Some(_) => return Err(ProofError::MalformedProof("created")),
    };
    let public_key = assertion_key(&method).ok_or_else(|| {
        // Attacker-chosen text: enough to recognise, never a page of it.
        ProofError::UnknownVerificationMethod(method.chars().take(96).collect())
    })?;
    let mut config = proof.clone();
    config.remove("proofValue");
    // The configuration is canonicalized under the document's context (vc-di-eddsa §3.3.2).
    config.insert("@context".into(), context.clone());
    let mut unsecured = document.clone();
    unsecured.remove("proof");
    let message = hash_data(&unsecured, &config)?;
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&message, &signature)
        .map_err(|_| ProofError::BadSignature)?;
    Ok(VerifiedProof {
        verification_method: method,
        created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use serde_json::json;

    fn key() -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap()
    }

    fn public(key: &Ed25519KeyPair) -> [u8; 32] {
        key.public_key().as_ref().try_into().unwrap()
    }

    fn signed() -> Value {
        let doc = json!({
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
            "type": ["VerifiableCredential"],
            "issuer": "did:web:example.edu",
            "validFrom": "2023-01-01T00:00:00Z",
            "credentialSubject": {"id": "did:example:abcdefgh", "name": "Alice"}
        });
        let options = ProofOptions {
            verification_method: "did:web:example.edu#k1".into(),
            created: "2023-02-01T00:00:00Z".into(),
        };
        attach_proof(&doc, &options, |m| {
            key().sign(m).as_ref().try_into().unwrap()
        })
        .unwrap()
    }

    fn resolver(method: &str) -> Option<[u8; 32]> {
        (method == "did:web:example.edu#k1").then(|| public(&key()))
    }

    #[test]
    fn a_proof_made_here_verifies() {
        let verified = verify_proof(&signed(), resolver).unwrap();
        assert_eq!(verified.verification_method, "did:web:example.edu#k1");
        assert_eq!(verified.created.as_deref(), Some("2023-02-01T00:00:00Z"));
    }

    #[test]
    fn every_tampered_part_is_refused() {
        type Tamper = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Tamper)> = vec![
            (
                "claim",
                Box::new(|d| d["credentialSubject"]["name"] = json!("Mallory")),
            ),
            (
                "date",
                Box::new(|d| d["validFrom"] = json!("2022-01-01T00:00:00Z")),
            ),
            (
                "created",
                Box::new(|d| d["proof"]["created"] = json!("2024-01-01T00:00:00Z")),
            ),
            ("added claim", Box::new(|d| d["name"] = json!("Extra"))),
            (
                "purpose",
                Box::new(|d| d["proof"]["proofPurpose"] = json!("authentication")),
            ),
            (
                "suite",
                Box::new(|d| d["proof"]["cryptosuite"] = json!("eddsa-jcs-2022")),
            ),
            (
                "method",
                Box::new(|d| d["proof"]["verificationMethod"] = json!("did:web:example.edu#k2")),
            ),
            (
                "value",
                Box::new(|d| d["proof"]["proofValue"] = json!("z1111")),
            ),
            (
                "no proof",
                Box::new(|d| {
                    d.as_object_mut().unwrap().remove("proof");
                }),
            ),
        ];
        for (name, tamper) in cases {
            let mut doc = signed();
            tamper(&mut doc);
            assert!(verify_proof(&doc, resolver).is_err(), "{name} verified");
        }
    }

    #[test]
    fn a_flipped_signature_byte_is_a_bad_signature() {
        let mut doc = signed();
        let value = doc["proof"]["proofValue"].as_str().unwrap();
        let mut bytes = bs58::decode(&value[1..]).into_vec().unwrap();
        bytes[10] ^= 1;
        doc["proof"]["proofValue"] = json!(format!("z{}", bs58::encode(bytes).into_string()));
        assert_eq!(verify_proof(&doc, resolver), Err(ProofError::BadSignature));
    }
}
