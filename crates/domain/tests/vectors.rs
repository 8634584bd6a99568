//! Fixed test vectors, computed with Python's hashlib (and `cryptography` for Ed25519)
//! independently of this crate: v1 once by hand, v2 by `vectors/gen_v2.py`.
//!
//! If one of these fails, the change breaks every credential (or batch proof) already
//! anchored: do not "fix" the expected values, fix the code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::{
    credential_hash, signature_message, verify_credential_signature, CredentialFields,
    CredentialHash, CredentialId, FileDigest, HashScheme, IssuedAt, IssuerId, IssuerSignature,
    KeyId, MerkleProof, MerkleTree, ProofFormat, RecipientId, Salt, Serial, SigningKey,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct HashVectors {
    cases: Vec<HashCase>,
}

#[derive(Deserialize)]
struct HashCase {
    name: String,
    file_utf8: Option<String>,
    file_hex: Option<String>,
    issuer: String,
    recipient: String,
    issued_at: String,
    issued_at_canonical: String,
    serial: String,
    file_digest_hex: String,
    credential_hash_hex: String,
    credential_hash_base58: String,
}

#[test]
fn credential_hash_matches_v1_vectors() {
    let vectors: HashVectors =
        serde_json::from_str(include_str!("vectors/credential_hash_v1.json")).unwrap();
    assert!(vectors.cases.len() >= 4);
    for case in &vectors.cases {
        let file = match (&case.file_utf8, &case.file_hex) {
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, Some(hex)) => hex::decode(hex).unwrap(),
            _ => panic!("case {} needs exactly one of file_utf8/file_hex", case.name),
        };
        let issued_at = IssuedAt::parse_rfc3339(&case.issued_at).unwrap();
        assert_eq!(
            issued_at.canonical(),
            case.issued_at_canonical,
            "{}",
            case.name
        );
        let fields = CredentialFields {
            file_digest: FileDigest::of(&file),
            issuer: IssuerId::parse(&case.issuer).unwrap(),
            recipient: RecipientId::parse(&case.recipient).unwrap(),
            issued_at,
            serial: Serial::parse(&case.serial).unwrap(),
        };
        assert_eq!(
            fields.file_digest.to_hex(),
            case.file_digest_hex,
            "{}",
            case.name
        );
        let hash = credential_hash(&fields);
        assert_eq!(hash.to_hex(), case.credential_hash_hex, "{}", case.name);
        assert_eq!(
            hash.to_base58(),
            case.credential_hash_base58,
            "{}",
            case.name
        );
        assert_eq!(
            CredentialHash::from_base58(&case.credential_hash_base58).unwrap(),
            hash
        );
    }
}

#[test]
fn boundary_vectors_differ() {
    let vectors: HashVectors =
        serde_json::from_str(include_str!("vectors/credential_hash_v1.json")).unwrap();
    let find = |name: &str| {
        vectors
            .cases
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .credential_hash_hex
            .clone()
    };
    assert_ne!(find("boundary ab|c"), find("boundary a|bc"));
}

#[derive(Deserialize)]
struct MerkleVectors {
    cases: Vec<MerkleCase>,
}

#[derive(Deserialize)]
struct MerkleCase {
    leaf_count: usize,
    root_hex: String,
    proofs: Vec<MerkleProof>,
}

fn vector_leaf(i: usize) -> CredentialHash {
    // The vectors use SHA-256("leaf-<i>") as stand-in credential hashes.
    CredentialHash::from_bytes(*FileDigest::of(format!("leaf-{i}").as_bytes()).as_bytes())
}

#[test]
fn merkle_tree_matches_v1_vectors() {
    let vectors: MerkleVectors =
        serde_json::from_str(include_str!("vectors/merkle_v1.json")).unwrap();
    assert!(!vectors.cases.is_empty());
    for case in &vectors.cases {
        let leaves: Vec<_> = (0..case.leaf_count).map(vector_leaf).collect();
        let tree = MerkleTree::build(&leaves).unwrap();
        assert_eq!(tree.root().to_hex(), case.root_hex, "n={}", case.leaf_count);
        for expected in &case.proofs {
            let index = usize::try_from(expected.leaf_index).unwrap();
            let proof = tree.proof(index).unwrap();
            assert_eq!(&proof, expected, "n={} i={}", case.leaf_count, index);
            assert!(expected.verify(&leaves[index], &tree.root()));
        }
    }
}

// ---- v2: the credential id and a salt inside the hash; version-tagged signatures ----------

#[derive(Deserialize)]
struct V2Vectors {
    cases: Vec<V2Case>,
    signatures: Vec<V2Signature>,
    merkle: Vec<V2Tree>,
}

#[derive(Deserialize)]
struct V2Case {
    name: String,
    credential_id: String,
    salt_hex: String,
    seed_hex: String,
    key_id: String,
    signing_public_key_base58: String,
    file_utf8: Option<String>,
    file_hex: Option<String>,
    issuer: String,
    recipient: String,
    issued_at: String,
    issued_at_canonical: String,
    serial: String,
    file_digest_hex: String,
    credential_hash_hex: String,
    credential_hash_base58: String,
    v1_credential_hash_hex: String,
}

#[derive(Deserialize)]
struct V2Signature {
    name: String,
    case: String,
    seed_hex: String,
    key_id: String,
    public_key_base58: String,
    message_hex: String,
    signature_base58: String,
}

#[derive(Deserialize)]
struct V2Tree {
    name: String,
    cases: Vec<String>,
    root_hex: String,
    proofs: Vec<MerkleProof>,
}

fn v2_vectors() -> V2Vectors {
    serde_json::from_str(include_str!("vectors/credential_hash_v2.json")).unwrap()
}

fn v2_scheme_and_fields(case: &V2Case) -> (HashScheme, CredentialFields) {
    let file = match (&case.file_utf8, &case.file_hex) {
        (Some(text), None) => text.as_bytes().to_vec(),
        (None, Some(hex)) => hex::decode(hex).unwrap(),
        _ => panic!("case {} needs exactly one of file_utf8/file_hex", case.name),
    };
    let issued_at = IssuedAt::parse_rfc3339(&case.issued_at).unwrap();
    assert_eq!(
        issued_at.canonical(),
        case.issued_at_canonical,
        "{}",
        case.name
    );
    let fields = CredentialFields {
        file_digest: FileDigest::of(&file),
        issuer: IssuerId::parse(&case.issuer).unwrap(),
        recipient: RecipientId::parse(&case.recipient).unwrap(),
        issued_at,
        serial: Serial::parse(&case.serial).unwrap(),
    };
    assert_eq!(
        fields.file_digest.to_hex(),
        case.file_digest_hex,
        "{}",
        case.name
    );
    let seed: [u8; 32] = hex::decode(&case.seed_hex).unwrap().try_into().unwrap();
    let key = SigningKey::from_seed(KeyId::parse(&case.key_id).unwrap(), &seed).unwrap();
    assert_eq!(key.public_key().to_base58(), case.signing_public_key_base58);
    let scheme = HashScheme::V2 {
        credential_id: case.credential_id.parse::<CredentialId>().unwrap(),
        salt: Salt::from_hex(&case.salt_hex).unwrap(),
        key_id: key.key_id().clone(),
        public_key: key.public_key(),
    };
    (scheme, fields)
}

#[test]
fn credential_hash_matches_v2_vectors_and_differs_from_v1() {
    let vectors = v2_vectors();
    assert!(vectors.cases.len() >= 6);
    let mut seen = std::collections::HashSet::new();
    for case in &vectors.cases {
        let (scheme, fields) = v2_scheme_and_fields(case);
        let hash = scheme.hash(&fields);
        assert_eq!(hash.to_hex(), case.credential_hash_hex, "{}", case.name);
        assert_eq!(
            hash.to_base58(),
            case.credential_hash_base58,
            "{}",
            case.name
        );
        assert_eq!(
            credential_hash(&fields).to_hex(),
            case.v1_credential_hash_hex
        );
        assert_ne!(case.credential_hash_hex, case.v1_credential_hash_hex);
        assert!(
            seen.insert(case.credential_hash_hex.clone()),
            "{}",
            case.name
        );
    }
}

#[test]
fn issuer_signatures_match_v2_vectors() {
    let vectors = v2_vectors();
    assert!(vectors.signatures.len() >= 3);
    for sig in &vectors.signatures {
        let case = vectors.cases.iter().find(|c| c.name == sig.case).unwrap();
        let (scheme, fields) = v2_scheme_and_fields(case);
        let hash = scheme.hash(&fields);
        let seed: [u8; 32] = hex::decode(&sig.seed_hex).unwrap().try_into().unwrap();
        let key_id = KeyId::parse(&sig.key_id).unwrap();
        let message = signature_message(ProofFormat::V2, &key_id, &hash);
        assert_eq!(hex::encode(&message), sig.message_hex, "{}", sig.name);
        let key = SigningKey::from_seed(key_id.clone(), &seed).unwrap();
        assert_eq!(key.public_key().to_base58(), sig.public_key_base58);
        let made = key.sign_credential(ProofFormat::V2, &hash);
        assert_eq!(made.to_base58(), sig.signature_base58, "{}", sig.name);
        let published = IssuerSignature::from_base58(&sig.signature_base58).unwrap();
        verify_credential_signature(
            ProofFormat::V2,
            &key.public_key(),
            &key_id,
            &hash,
            &published,
        )
        .unwrap();
        // The same signature is no v1 signature of that hash.
        assert!(verify_credential_signature(
            ProofFormat::V1,
            &key.public_key(),
            &key_id,
            &hash,
            &published
        )
        .is_err());
    }
}

#[test]
fn merkle_trees_of_v2_hashes_match_the_vectors() {
    let vectors = v2_vectors();
    assert!(!vectors.merkle.is_empty());
    for tree_case in &vectors.merkle {
        let leaves: Vec<CredentialHash> = tree_case
            .cases
            .iter()
            .map(|name| {
                let case = vectors.cases.iter().find(|c| &c.name == name).unwrap();
                let (scheme, fields) = v2_scheme_and_fields(case);
                scheme.hash(&fields)
            })
            .collect();
        let tree = MerkleTree::build(&leaves).unwrap();
        assert_eq!(
            tree.root().to_hex(),
            tree_case.root_hex,
            "{}",
            tree_case.name
        );
        assert_eq!(tree_case.proofs.len(), leaves.len());
        for expected in &tree_case.proofs {
            let index = usize::try_from(expected.leaf_index).unwrap();
            assert_eq!(&tree.proof(index).unwrap(), expected, "{}", tree_case.name);
            assert!(expected.verify(&leaves[index], &tree.root()));
        }
    }
}
