//! What a credential says as a W3C Verifiable Credential: the issuer's `did:web` and DID
//! document, and the Open Badges 3.0 `OpenBadgeCredential` every credential is issued as.
//!
//! Pure JSON shapes; canonicalization and the Data Integrity proof are the `vc` crate's.
//! The shapes are pinned by the Open Badges 3.0 schema check in `interop/` and by the tests
//! below; ARCHITECTURE.md ("Verifiable credentials") says how a VC relates to the anchor.
//!
//! - The issuer is `did:web:<host>[%3A<port>][:<path>…]:issuers:<issuer id>`, resolved (as
//!   did:web says) at `<public base URL>/issuers/<issuer id>/did.json`.
//! - The recipient is never in clear: an OB3 `IdentityObject` with
//!   `identityHash = "sha256$" + hex(SHA-256(recipient ‖ salt))`, `salt` the hex of the
//!   credential's own salt, so erasing the salt (crypto-shredding, docs/proof-bundle.md)
//!   removes what links the VC to a person too.
//! - The file is bound by its digest: a `relatedResource` named `ni:///sha-256;…`
//!   (RFC 6920) with `digestSRI` and `digestMultibase`.

use std::fmt;

use base64::Engine;
use ring::digest::{digest, SHA256};
use serde_json::{json, Value};

use crate::hash::{FileDigest, Salt};
use crate::ids::{CredentialId, IssuedAt, IssuerId, KeyId, RecipientId};
use crate::signing::PublicKey;
use crate::status_list::{StatusPosition, LIST_SIZE};

/// The contexts of every credential, in order (VC 2.0, then Open Badges 3.0.3).
pub const CREDENTIAL_CONTEXTS: [&str; 2] = [
    "https://www.w3.org/ns/credentials/v2",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
];
/// The contexts of a DID document with Multikey methods.
pub const DID_CONTEXTS: [&str; 2] = [
    "https://www.w3.org/ns/did/v1",
    "https://w3id.org/security/multikey/v1",
];
/// Multicodec prefix of an Ed25519 public key (`ed25519-pub`, varint 0xed).
const ED25519_PUB: [u8; 2] = [0xed, 0x01];

/// Why a public base URL cannot name a `did:web`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("public base URL {url:?}: {reason}")]
pub struct BaseUrlError {
    pub url: String,
    pub reason: &'static str,
}

/// The URL the issuer API is reached at from outside (`public.base_url`), the root of every
/// `did:web` it serves. `http://` is accepted for loopback and tests; a production DID needs
/// `https://` (did:web resolves over HTTPS only), which `deploy-check` holds the manifests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicBase {
    /// `scheme://authority[/path]`, no trailing slash.
    url: String,
    /// `host` or `host%3Aport`.
    authority: String,
    /// Path segments under the authority.
    path: Vec<String>,
}

impl PublicBase {
    pub fn parse(url: &str) -> Result<PublicBase, BaseUrlError> {
        let fail = |reason| BaseUrlError {
            url: url.to_string(),
            reason,
        };
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| fail("must start with https:// (or http:// on loopback)"))?;
        let rest = rest.trim_end_matches('/');
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':');
        if authority.is_empty() || !authority.chars().all(host_char) {
            return Err(fail(
                "the host must be a DNS name or IPv4 address, optionally with :port",
            ));
        }
        if authority.matches(':').count() > 1 {
            return Err(fail("at most one :port"));
        }
        let segment_char =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~');
        let path: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if path.iter().any(|s| !s.chars().all(segment_char)) {
            return Err(fail(
                "path segments may hold letters, digits and . - _ ~ only",
            ));
        }
        Ok(PublicBase {
            url: rest.to_string(),
            authority: authority.replace(':', "%3A"),
            path,
        })
        .map(|mut base| {
            let scheme = if url.starts_with("https://") {
                "https"
            } else {
                "http"
            };
            base.url = format!("{scheme}://{}", base.url);
            base
        })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The DID of `issuer`.
    pub fn did(&self, issuer: &IssuerId) -> Did {
        let mut did = format!("did:web:{}", self.authority);
        for segment in &self.path {
            did.push(':');
            did.push_str(segment);
        }
        did.push_str(":issuers:");
        did.push_str(issuer.as_str());
        Did(did)
    }

    /// The issuer a DID of this base names, if it is one of ours (`did(issuer) == did`).
    pub fn issuer_of(&self, did: &str) -> Option<IssuerId> {
        let id = did.rsplit_once(":issuers:")?.1;
        let issuer = IssuerId::parse(id).ok()?;
        (self.did(&issuer).as_str() == did).then_some(issuer)
    }

    /// Where the DID document of `issuer` is served.
    pub fn did_document_url(&self, issuer: &IssuerId) -> String {
        format!("{}/issuers/{}/did.json", self.url, issuer.as_str())
    }

    /// Where status list `list` of `issuer` is served (its `BitstringStatusListCredential`).
    pub fn status_list_url(&self, issuer: &IssuerId, list: u32) -> String {
        format!(
            "{}/issuers/{}/status-lists/{list}",
            self.url,
            issuer.as_str()
        )
    }
}

/// The `credentialStatus` of one of our VCs, as read back from the VC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    /// `statusListCredential`: where the list is served.
    pub list_url: String,
    /// The list number the URL names.
    pub list: u32,
    /// `statusListIndex`: the credential's bit in the list.
    pub index: u32,
}

/// The `credentialStatus` entry of position `position` in `issuer`'s lists under `base`.
pub fn status_entry(base: &PublicBase, issuer: &IssuerId, position: StatusPosition) -> Value {
    let url = base.status_list_url(issuer, position.list);
    json!({
        "id": format!("{url}#{}", position.index),
        "type": "BitstringStatusListEntry",
        "statusPurpose": STATUS_PURPOSE,
        "statusListIndex": position.index.to_string(),
        "statusListCredential": url,
    })
}

/// The revocation status entry a VC of `issuer` carries, if it carries exactly one of ours:
/// a `BitstringStatusListEntry` for `revocation` whose list URL ends in
/// `/issuers/<issuer>/status-lists/<n>` and whose index is a canonical decimal inside a list.
/// `Err` names what is wrong; `Ok(None)`: the VC has no `credentialStatus` (issued before
/// status lists existed).
pub fn status_entry_of(vc: &Value, issuer: &IssuerId) -> Result<Option<StatusEntry>, &'static str> {
    let Some(entry) = vc.get("credentialStatus") else {
        return Ok(None);
    };
    let entry = entry.as_object().ok_or("credentialStatus")?;
    if entry.get("type").and_then(Value::as_str) != Some("BitstringStatusListEntry")
        || entry.get("statusPurpose").and_then(Value::as_str) != Some(STATUS_PURPOSE)
    {
        return Err("credentialStatus.type");
    }
    let url = entry
        .get("statusListCredential")
        .and_then(Value::as_str)
        .ok_or("credentialStatus.statusListCredential")?;
    let suffix = format!("/issuers/{}/status-lists/", issuer.as_str());
    let list = url
        .rsplit_once(&suffix)
        .map(|(_, n)| n)
        .filter(|n| !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()))
        .filter(|n| n.len() == 1 || !n.starts_with('0'))
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or("credentialStatus.statusListCredential")?;
    let index = entry
        .get("statusListIndex")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()))
        .filter(|n| n.len() == 1 || !n.starts_with('0'))
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|i| *i < LIST_SIZE)
        .ok_or("credentialStatus.statusListIndex")?;
    Ok(Some(StatusEntry {
        list_url: url.to_string(),
        list,
        index,
    }))
}

/// The unsigned `BitstringStatusListCredential` of one list version: no `credentialStatus`
/// of its own, the same issuer DID as the credentials it covers (verifiers compare them).
pub fn status_list_credential(
    base: &PublicBase,
    issuer: &IssuerId,
    list: u32,
    valid_from: &str,
    encoded_list: &str,
) -> Value {
    let url = base.status_list_url(issuer, list);
    json!({
        "@context": [CREDENTIAL_CONTEXTS[0]],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": base.did(issuer).as_str(),
        "validFrom": valid_from,
        "credentialSubject": {
            "id": format!("{url}#list"),
            "type": "BitstringStatusList",
            "statusPurpose": STATUS_PURPOSE,
            "encodedList": encoded_list,
        },
    })
}

/// The one status purpose our lists carry.
pub const STATUS_PURPOSE: &str = "revocation";

/// A `did:web` made by [`PublicBase::did`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Did(String);

impl Did {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The verification method of signing key `key_id`: `<did>#<key_id>` (key ids are
    /// `[A-Za-z0-9._-]`, all fragment-safe).
    pub fn signing_method(&self, key_id: &KeyId) -> String {
        format!("{}#{}", self.0, key_id.as_str())
    }

    /// The verification method of a Solana anchoring key: `<did>#solana:<base58 pubkey>`
    /// (a `:` no key id can contain, so no signing key is ever mistaken for it).
    pub fn anchoring_method(&self, anchor_pubkey: &str) -> String {
        format!("{}#solana:{anchor_pubkey}", self.0)
    }

    /// The signing key id a verification method of this DID names, if it names one.
    pub fn signing_key_of(&self, method: &str) -> Option<KeyId> {
        let fragment = method.strip_prefix(self.0.as_str())?.strip_prefix('#')?;
        KeyId::parse(fragment).ok()
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `publicKeyMultibase` of an Ed25519 key: `z` + base58btc(0xed 0x01 ‖ key).
pub fn multikey(public: &[u8; 32]) -> String {
    let mut bytes = ED25519_PUB.to_vec();
    bytes.extend_from_slice(public);
    format!("z{}", bs58::encode(bytes).into_string())
}

/// The Ed25519 key of a `publicKeyMultibase`, if it is one.
pub fn parse_multikey(text: &str) -> Option<[u8; 32]> {
    let bytes = bs58::decode(text.strip_prefix('z')?).into_vec().ok()?;
    let key = bytes.strip_prefix(&ED25519_PUB[..])?;
    key.try_into().ok()
}

/// The Ed25519 key a DID document (`did_document`'s shape) lets `method` assert with, as a
/// standard verifier resolves it: the method must be listed in `assertionMethod` and be a
/// `verificationMethod` entry with a `publicKeyMultibase`. `None` otherwise (an anchoring
/// key, an unknown or retired-and-removed method).
pub fn assertion_key(did_document: &Value, method: &str) -> Option<[u8; 32]> {
    let listed = did_document["assertionMethod"]
        .as_array()?
        .iter()
        .any(|m| m == method);
    let entry = did_document["verificationMethod"]
        .as_array()?
        .iter()
        .find(|m| m["id"] == method)?;
    if !listed {
        return None;
    }
    parse_multikey(entry["publicKeyMultibase"].as_str()?)
}

/// One signing key in a DID document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DidSigningKey {
    pub key_id: KeyId,
    pub public_key: PublicKey,
}

/// The issuer's DID document: every signing key it ever used (retired ones too, so old
/// credentials keep verifying) as a `Multikey` allowed to assert, and each Solana anchoring
/// key as a `Multikey` that is *not* (it pays for anchors; it never signs credentials).
/// Which key was valid when is the signing-key history's (`domain::key_validity`), checked
/// by our verifier; a DID document cannot say it.
pub fn did_document(did: &Did, signing: &[DidSigningKey], anchoring: &[String]) -> Value {
    let mut methods = Vec::new();
    let mut assertion = Vec::new();
    for key in signing {
        let id = did.signing_method(&key.key_id);
        methods.push(json!({
            "id": id,
            "type": "Multikey",
            "controller": did.as_str(),
            "publicKeyMultibase": multikey(key.public_key.as_bytes()),
        }));
        assertion.push(Value::String(id));
    }
    for pubkey in anchoring {
        // A Solana address is the base58 of its Ed25519 public key.
        let Some(public) = bs58::decode(pubkey)
            .into_vec()
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        else {
            continue;
        };
        methods.push(json!({
            "id": did.anchoring_method(pubkey),
            "type": "Multikey",
            "controller": did.as_str(),
            "publicKeyMultibase": multikey(&public),
        }));
    }
    json!({
        "@context": DID_CONTEXTS,
        "id": did.as_str(),
        "verificationMethod": methods,
        "assertionMethod": assertion,
    })
}

/// OB3 `achievementType` for our free-text credential type: a value of the OB3
/// `AchievementType` enumeration when one matches (case and separators ignored), else
/// `ext:` + the type's letters, digits and `.-_` (the schema's extension pattern).
pub fn achievement_type(credential_type: &str) -> String {
    const KNOWN: &[&str] = &[
        "Achievement",
        "ApprenticeshipCertificate",
        "Assessment",
        "Assignment",
        "AssociateDegree",
        "Award",
        "Badge",
        "BachelorDegree",
        "Certificate",
        "CertificateOfCompletion",
        "Certification",
        "CommunityService",
        "Competency",
        "Course",
        "CoCurricular",
        "Degree",
        "Diploma",
        "DoctoralDegree",
        "Fieldwork",
        "GeneralEducationDevelopment",
        "JourneymanCertificate",
        "LearningProgram",
        "License",
        "Membership",
        "ProfessionalDoctorate",
        "QualityAssuranceCredential",
        "MasterCertificate",
        "MasterDegree",
        "MicroCredential",
        "ResearchDoctorate",
        "SecondarySchoolDiploma",
    ];
    let squashed: String = credential_type
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    if let Some(known) = KNOWN.iter().find(|k| k.to_ascii_lowercase() == squashed) {
        return (*known).to_string();
    }
    let ext: String = credential_type
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    if ext.is_empty() {
        "Achievement".to_string()
    } else {
        format!("ext:{ext}")
    }
}

/// OB3 `identityHash` of `recipient` under `salt`: `sha256$` + hex(SHA-256(recipient ‖
/// salt as hex)), the salted form OB3 verifiers recompute from a claimed identity.
pub fn identity_hash(recipient: &RecipientId, salt: &Salt) -> String {
    let input = format!("{}{}", recipient.as_str(), salt.to_hex());
    format!("sha256${}", hex::encode(digest(&SHA256, input.as_bytes())))
}

/// What an `OpenBadgeCredential` is made from.
#[derive(Debug, Clone)]
pub struct OpenBadge<'a> {
    pub id: CredentialId,
    pub issuer_did: &'a Did,
    pub issuer_name: &'a str,
    pub issued_at: IssuedAt,
    pub credential_type: &'a str,
    pub title: &'a str,
    pub recipient: &'a RecipientId,
    pub salt: &'a Salt,
    pub file_digest: &'a FileDigest,
    /// Its `credentialStatus` ([`status_entry`]); `None` for credentials issued before
    /// status lists.
    pub status: Option<Value>,
}

/// The unsigned `OpenBadgeCredential` (VC 2.0) of a credential.
pub fn open_badge(badge: &OpenBadge<'_>) -> Value {
    let id = format!("urn:uuid:{}", badge.id);
    let digest = badge.file_digest.as_bytes();
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    // multihash: sha2-256 (0x12), 32 bytes (0x20), then the digest; multibase `u` = base64url.
    let mut multihash = vec![0x12, 0x20];
    multihash.extend_from_slice(digest);
    let digest_multibase = format!(
        "u{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(multihash)
    );
    let mut vc = json!({
        "@context": CREDENTIAL_CONTEXTS,
        "id": id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {
            "id": badge.issuer_did.as_str(),
            "type": ["Profile"],
            "name": badge.issuer_name,
        },
        "validFrom": badge.issued_at.canonical(),
        "name": badge.title,
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [{
                "type": "IdentityObject",
                "identityHash": identity_hash(badge.recipient, badge.salt),
                "identityType": "identifier",
                "hashed": true,
                "salt": badge.salt.to_hex(),
            }],
            "achievement": {
                "id": format!("{id}#achievement"),
                "type": ["Achievement"],
                "achievementType": achievement_type(badge.credential_type),
                "name": badge.title,
                "description": format!("{} awarded by {}", badge.title, badge.issuer_name),
                "criteria": {"narrative": format!("Awarded by {} and recorded in its registrar's register.", badge.issuer_name)},
            },
        },
        "relatedResource": [{
            "id": format!("ni:///sha-256;{b64url}"),
            "digestSRI": format!("sha256-{b64}"),
            "digestMultibase": digest_multibase,
        }],
    });
    if let (Some(status), Some(object)) = (&badge.status, vc.as_object_mut()) {
        object.insert("credentialStatus".into(), status.clone());
    }
    vc
}

/// The credential id a VC names (`urn:uuid:<id>`), if it names one.
pub fn credential_id_of(vc: &Value) -> Option<CredentialId> {
    vc.get("id")?
        .as_str()?
        .strip_prefix("urn:uuid:")?
        .parse()
        .ok()
}

/// Whether `presented` (a VC, its proof aside) says exactly what `expected` (the
/// [`open_badge`] of the record it names) says, the issuer's display name excepted: a name
/// is not part of the anchored hash and an issuer may be renamed after issuing. Anything
/// else (a claim added, changed or dropped) is a mismatch, even under a valid proof.
pub fn claims_match(presented: &Value, expected: &Value) -> bool {
    let strip = |vc: &Value| {
        let mut vc = vc.clone();
        if let Some(object) = vc.as_object_mut() {
            object.remove("proof");
        }
        if let Some(issuer) = vc.get_mut("issuer").and_then(Value::as_object_mut) {
            issuer.remove("name");
        }
        vc
    };
    strip(presented) == strip(expected)
}

/// What a proof bundle's anchored hash covers, to hold a VC against (offline: no record).
#[derive(Debug, Clone)]
pub struct AnchoredClaims<'a> {
    pub id: CredentialId,
    pub issuer: &'a IssuerId,
    pub issued_at: IssuedAt,
    pub recipient: &'a RecipientId,
    pub salt: &'a Salt,
    pub file_digest: &'a FileDigest,
    /// The key that signed the anchored hash; the VC's proof must be by the same key.
    pub key_id: &'a KeyId,
}

/// Whether `vc` (its proof already verified) makes the claims the anchored hash covers:
/// same id, an issuer DID ending in this issuer, proof by the same key, same `validFrom`,
/// recipient hash and file digests. The first claim that differs, by name, otherwise. Title
/// and type are in neither hash (the issuer's signature alone vouches for them, in the VC
/// as in the record).
pub fn anchored_claims_match(vc: &Value, claims: &AnchoredClaims<'_>) -> Result<(), &'static str> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    if credential_id_of(vc) != Some(claims.id) {
        return Err("id");
    }
    let did = vc["issuer"]["id"].as_str().unwrap_or_default();
    if did.rsplit_once(":issuers:").map(|(_, id)| id) != Some(claims.issuer.as_str()) {
        return Err("issuer");
    }
    let method = vc["proof"]["verificationMethod"]
        .as_str()
        .unwrap_or_default();
    if method != format!("{did}#{}", claims.key_id.as_str()) {
        return Err("proof.verificationMethod");
    }
    if text(&vc["validFrom"]) != Some(claims.issued_at.canonical()) {
        return Err("validFrom");
    }
    let identity = &vc["credentialSubject"]["identifier"];
    let expected_identity = json!([{
        "type": "IdentityObject",
        "identityHash": identity_hash(claims.recipient, claims.salt),
        "identityType": "identifier",
        "hashed": true,
        "salt": claims.salt.to_hex(),
    }]);
    if identity != &expected_identity {
        return Err("credentialSubject.identifier");
    }
    // The same digests `open_badge` writes for this file.
    let expected = open_badge(&OpenBadge {
        id: claims.id,
        issuer_did: &Did(did.to_string()),
        issuer_name: "",
        issued_at: claims.issued_at,
        credential_type: "",
        title: "",
        recipient: claims.recipient,
        salt: claims.salt,
        file_digest: claims.file_digest,
        status: None,
    });
    if vc["relatedResource"] != expected["relatedResource"] {
        return Err("relatedResource");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn base(url: &str) -> PublicBase {
        PublicBase::parse(url).unwrap()
    }

    fn issuer() -> IssuerId {
        IssuerId::parse("uni-example").unwrap()
    }

    #[test]
    fn a_status_entry_reads_back_as_written() {
        let b = base("https://registrar.example.edu");
        let position = StatusPosition {
            list: 2,
            index: 4711,
        };
        let vc = json!({"credentialStatus": status_entry(&b, &issuer(), position)});
        assert_eq!(
            status_entry_of(&vc, &issuer()),
            Ok(Some(StatusEntry {
                list_url: "https://registrar.example.edu/issuers/uni-example/status-lists/2".into(),
                list: 2,
                index: 4711,
            }))
        );
        assert_eq!(status_entry_of(&json!({}), &issuer()), Ok(None));
        // Another issuer's list, a non-canonical or out-of-list index, another purpose.
        let other = IssuerId::parse("other").unwrap();
        assert!(status_entry_of(&vc, &other).is_err());
        for (field, value) in [
            ("statusListIndex", json!("04711")),
            ("statusListIndex", json!(4711)),
            ("statusListIndex", json!(LIST_SIZE.to_string())),
            ("statusPurpose", json!("suspension")),
            (
                "statusListCredential",
                json!("https://x/issuers/uni-example/status-lists/02"),
            ),
        ] {
            let mut bad = vc.clone();
            bad["credentialStatus"][field] = value;
            assert!(status_entry_of(&bad, &issuer()).is_err(), "{field}");
        }
    }

    #[test]
    fn did_web_follows_the_did_web_rules() {
        assert_eq!(
            base("https://registrar.example.edu")
                .did(&issuer())
                .as_str(),
            "did:web:registrar.example.edu:issuers:uni-example"
        );
        assert_eq!(
            base("http://127.0.0.1:8080/").did(&issuer()).as_str(),
            "did:web:127.0.0.1%3A8080:issuers:uni-example"
        );
        let nested = base("https://example.edu/registrar/api");
        assert_eq!(
            nested.did(&issuer()).as_str(),
            "did:web:example.edu:registrar:api:issuers:uni-example"
        );
        assert_eq!(
            nested.did_document_url(&issuer()),
            "https://example.edu/registrar/api/issuers/uni-example/did.json"
        );
    }

    #[test]
    fn only_our_own_dids_name_an_issuer() {
        let ours = base("https://example.edu/registrar");
        let did = ours.did(&issuer());
        assert_eq!(ours.issuer_of(did.as_str()), Some(issuer()));
        let theirs = base("https://evil.example/registrar").did(&issuer());
        assert_eq!(ours.issuer_of(theirs.as_str()), None);
        assert_eq!(
            ours.issuer_of("did:web:example.edu:registrar:issuers:NOT OK"),
            None
        );
        assert_eq!(ours.issuer_of("did:key:z6Mk"), None);
    }

    fn badge_of(title: &str) -> Value {
        let did = base("https://example.edu").did(&issuer());
        open_badge(&OpenBadge {
            id: CredentialId::new_v7(),
            issuer_did: &did,
            issuer_name: "Example University",
            issued_at: IssuedAt::parse_rfc3339("2026-06-30T12:00:00Z").unwrap(),
            credential_type: "diploma",
            title,
            recipient: &RecipientId::parse("student-1").unwrap(),
            salt: &Salt::from_bytes([4; 32]),
            file_digest: &FileDigest::of(b"pdf"),
            status: None,
        })
    }

    #[test]
    fn claims_match_ignores_the_proof_and_the_issuer_name_only() {
        let expected = badge_of("BSc");
        let mut presented = expected.clone();
        presented["proof"] = json!({"type": "DataIntegrityProof"});
        presented["issuer"]["name"] = json!("Renamed University");
        assert!(claims_match(&presented, &expected));
        assert_eq!(
            credential_id_of(&expected).map(|id| format!("urn:uuid:{id}")),
            expected["id"].as_str().map(str::to_string)
        );
        for tamper in [
            |v: &mut Value| v["name"] = json!("PhD"),
            |v: &mut Value| v["validFrom"] = json!("2020-01-01T00:00:00Z"),
            |v: &mut Value| v["description"] = json!("added"),
            |v: &mut Value| {
                v["credentialSubject"]["identifier"][0]["identityHash"] = json!("sha256$00")
            },
            |v: &mut Value| v["relatedResource"] = json!([]),
            |v: &mut Value| v["issuer"]["id"] = json!("did:web:evil.example:issuers:uni-example"),
        ] {
            let mut changed = expected.clone();
            tamper(&mut changed);
            assert!(!claims_match(&changed, &expected), "{changed}");
        }
    }

    #[test]
    fn anchored_claims_name_the_first_that_differs() {
        let base = base("https://example.edu");
        let did = base.did(&issuer());
        let id = CredentialId::new_v7();
        let recipient = RecipientId::parse("student-1").unwrap();
        let salt = Salt::from_bytes([4; 32]);
        let digest = FileDigest::of(b"pdf");
        let key = KeyId::parse("k1").unwrap();
        let issued_at = IssuedAt::parse_rfc3339("2026-06-30T12:00:00Z").unwrap();
        let mut vc = open_badge(&OpenBadge {
            id,
            issuer_did: &did,
            issuer_name: "U",
            issued_at,
            credential_type: "diploma",
            title: "BSc",
            recipient: &recipient,
            salt: &salt,
            file_digest: &digest,
            status: None,
        });
        vc["proof"] = json!({"verificationMethod": did.signing_method(&key)});
        let issuer = issuer();
        let claims = AnchoredClaims {
            id,
            issuer: &issuer,
            issued_at,
            recipient: &recipient,
            salt: &salt,
            file_digest: &digest,
            key_id: &key,
        };
        assert_eq!(anchored_claims_match(&vc, &claims), Ok(()));
        let other_key = KeyId::parse("k2").unwrap();
        let other_digest = FileDigest::of(b"other");
        let other_recipient = RecipientId::parse("student-2").unwrap();
        for (changed, expected) in [
            (
                AnchoredClaims {
                    id: CredentialId::new_v7(),
                    ..claims.clone()
                },
                "id",
            ),
            (
                AnchoredClaims {
                    key_id: &other_key,
                    ..claims.clone()
                },
                "proof.verificationMethod",
            ),
            (
                AnchoredClaims {
                    issued_at: IssuedAt::parse_rfc3339("2020-01-01T00:00:00Z").unwrap(),
                    ..claims.clone()
                },
                "validFrom",
            ),
            (
                AnchoredClaims {
                    recipient: &other_recipient,
                    ..claims.clone()
                },
                "credentialSubject.identifier",
            ),
            (
                AnchoredClaims {
                    file_digest: &other_digest,
                    ..claims.clone()
                },
                "relatedResource",
            ),
        ] {
            assert_eq!(anchored_claims_match(&vc, &changed), Err(expected));
        }
    }

    #[test]
    fn a_base_url_that_cannot_name_a_did_is_refused() {
        for bad in [
            "ftp://example.edu",
            "example.edu",
            "https://",
            "https://exa mple.edu",
            "https://example.edu/a?b=c",
            "https://[::1]:8080",
            "https://a:1:2",
        ] {
            assert!(PublicBase::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_verification_method_names_its_key_and_only_signing_keys_count() {
        let did = base("https://example.edu").did(&issuer());
        let key = KeyId::parse("k-2026.1").unwrap();
        let method = did.signing_method(&key);
        assert_eq!(did.signing_key_of(&method), Some(key));
        assert_eq!(did.signing_key_of(&did.anchoring_method("abc")), None);
        // An issuer named `solana` keeps its own keys (key ids are `<issuer>-<hex>`).
        let solana = base("https://example.edu").did(&IssuerId::parse("solana").unwrap());
        let key = KeyId::parse("solana-0a1b").unwrap();
        assert_eq!(
            solana.signing_key_of(&solana.signing_method(&key)),
            Some(key)
        );
        let other = base("https://evil.example").did(&issuer());
        assert_eq!(other.signing_key_of(&method), None);
    }

    #[test]
    fn known_achievement_types_map_and_others_are_extensions() {
        assert_eq!(achievement_type("diploma"), "Diploma");
        assert_eq!(achievement_type("Bachelor degree"), "BachelorDegree");
        assert_eq!(achievement_type("transcript"), "ext:transcript");
        assert_eq!(achievement_type("Relevé de notes"), "ext:Relevdenotes");
        assert_eq!(achievement_type("???"), "Achievement");
    }

    #[test]
    fn the_did_document_lists_signing_keys_as_assertion_and_anchor_keys_apart() {
        let did = base("https://example.edu").did(&issuer());
        let keys = [
            DidSigningKey {
                key_id: KeyId::parse("k1").unwrap(),
                public_key: PublicKey::from_bytes([1; 32]),
            },
            DidSigningKey {
                key_id: KeyId::parse("k2").unwrap(),
                public_key: PublicKey::from_bytes([2; 32]),
            },
        ];
        let anchor = bs58::encode([3u8; 32]).into_string();
        let doc = did_document(&did, &keys, std::slice::from_ref(&anchor));
        assert_eq!(doc["verificationMethod"].as_array().unwrap().len(), 3);
        assert_eq!(
            doc["assertionMethod"],
            json!([
                did.signing_method(&keys[0].key_id),
                did.signing_method(&keys[1].key_id)
            ])
        );
        assert_eq!(
            parse_multikey(
                doc["verificationMethod"][2]["publicKeyMultibase"]
                    .as_str()
                    .unwrap()
            ),
            Some([3; 32])
        );
    }

    #[test]
    fn the_w3c_multikey_example_decodes() {
        // vc-di-eddsa B.1: this multikey is the Ed25519 public key 0x4bb4…
        let key = parse_multikey("z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2").unwrap();
        assert_eq!(
            multikey(&key),
            "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
        );
        assert!(parse_multikey("z6Mk").is_none());
    }

    proptest! {
        #[test]
        fn multikey_round_trips(key in any::<[u8; 32]>()) {
            let text = multikey(&key);
            prop_assert!(text.starts_with("z6Mk"));
            prop_assert_eq!(parse_multikey(&text), Some(key));
        }

        #[test]
        fn achievement_type_is_always_schema_valid(text in ".{0,40}") {
            let ty = achievement_type(&text);
            let ext_ok = ty.strip_prefix("ext:").is_some_and(|rest| !rest.is_empty()
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
            prop_assert!(ext_ok || ty.chars().all(|c| c.is_ascii_alphanumeric()), "{}", ty);
        }
    }
}
