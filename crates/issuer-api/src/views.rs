//! Response bodies (the API's public JSON shapes), built from store records.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::credentials::CredentialRecord;
use utoipa::ToSchema;

/// A credential as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CredentialView {
    /// Credential id (UUIDv7).
    pub id: String,
    pub issuer_id: String,
    pub serial: Option<String>,
    pub recipient_id: Option<String>,
    /// RFC 3339 UTC, whole seconds: exactly the string that was hashed.
    pub issued_at: Option<String>,
    pub credential_type: Option<String>,
    pub title: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// SHA-256 of the file, hex.
    pub file_digest: Option<String>,
    /// The anchored credential hash, hex.
    pub credential_hash: String,
    /// 2 for every credential issued now (the id and `salt` inside the hash), 1 for those
    /// issued before format v2; absent for a row rebuilt from the chain alone.
    pub proof_format: Option<i16>,
    /// v2: the credential's 32-byte salt, hex. Only the issuer (here) and the holder (in the
    /// proof bundle) see it; without it the public hash cannot be linked to the person.
    pub salt: Option<String>,
    /// Ed25519 issuer signature over the credential hash, base58.
    pub signature: Option<String>,
    pub key_id: Option<String>,
    /// queued | submitted | confirmed | finalized | failed | recovered | revoked
    pub status: String,
    pub anchor: Option<AnchorView>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub finalized_at: Option<String>,
    /// The credential's revocation, pending or anchored; absent if it was never revoked.
    /// `status` stays as it was (e.g. `finalized`) until the revocation memo finalizes, then
    /// becomes `revoked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<RevocationView>,
}

/// Where the credential is anchored on chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnchorView {
    /// Transaction signature (base58).
    pub signature: String,
    pub slot: Option<u64>,
    /// Link to the transaction on a block explorer for the configured cluster.
    pub explorer_url: Option<String>,
}

/// One page of credentials.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialPage {
    pub items: Vec<CredentialView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl CredentialView {
    /// The view with explorer links for `explorer`'s cluster.
    pub fn with_explorer(r: &CredentialRecord, explorer: &crate::state::Explorer) -> Self {
        let mut view = CredentialView::from(r);
        if let Some(anchor) = view.anchor.as_mut() {
            anchor.explorer_url = Some(
                explorer
                    .cluster
                    .explorer_tx_url(&anchor.signature, explorer.custom_rpc_url.as_deref()),
            );
        }
        view
    }
}

impl From<&CredentialRecord> for CredentialView {
    fn from(r: &CredentialRecord) -> Self {
        CredentialView {
            id: r.id.to_string(),
            issuer_id: r.issuer.as_str().to_string(),
            serial: r.serial.as_ref().map(|s| s.as_str().to_string()),
            recipient_id: r.recipient.as_ref().map(|s| s.as_str().to_string()),
            issued_at: r.issued_at.as_ref().map(|t| t.canonical()),
            credential_type: r.credential_type.clone(),
            title: r.title.clone(),
            metadata: r.metadata.clone(),
            file_digest: r.file_digest.as_ref().map(|d| d.to_hex()),
            credential_hash: r.hash.to_hex(),
            proof_format: r.proof_format.map(domain::ProofFormat::number),
            salt: r.salt.map(|s| s.to_hex()),
            signature: r.signature.as_ref().map(|s| s.to_base58()),
            key_id: r.key_id.as_ref().map(|k| k.as_str().to_string()),
            status: r.status.as_str().to_string(),
            anchor: r.anchor_signature.as_ref().map(|sig| AnchorView {
                signature: sig.clone(),
                slot: r.anchor_slot,
                explorer_url: None,
            }),
            last_error: r.last_error.clone(),
            created_at: r.created_at.to_rfc3339(),
            updated_at: r.updated_at.to_rfc3339(),
            finalized_at: r.finalized_at.map(|t| t.to_rfc3339()),
            revocation: None,
        }
    }
}

/// A revocation as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RevocationView {
    pub credential_id: String,
    /// `pending` until its memo (`ca1:r`, or a `ca1:v` list in Merkle mode) is finalized on chain, then `anchored`.
    pub status: RevocationStatus,
    pub reason: String,
    pub requested_at: String,
    /// The finalized revocation transaction (absent while pending).
    pub anchor: Option<AnchorView>,
    pub finalized_at: Option<String>,
}

/// Whether a revocation is anchored yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevocationStatus {
    Pending,
    Anchored,
}

impl RevocationView {
    pub fn new(
        r: &store::revocations::RevocationRecord,
        explorer: &crate::state::Explorer,
    ) -> Self {
        let anchor = match (&r.anchor_signature, r.is_anchored()) {
            (Some(sig), true) => Some(AnchorView {
                signature: sig.clone(),
                slot: r.anchor_slot,
                explorer_url: Some(
                    explorer
                        .cluster
                        .explorer_tx_url(sig, explorer.custom_rpc_url.as_deref()),
                ),
            }),
            _ => None,
        };
        RevocationView {
            credential_id: r.credential_id.to_string(),
            status: if anchor.is_some() {
                RevocationStatus::Anchored
            } else {
                RevocationStatus::Pending
            },
            reason: r.reason.clone(),
            requested_at: r.requested_at.to_rfc3339(),
            anchor,
            finalized_at: r.finalized_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// The public profile of an issuer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuerProfileView {
    pub id: String,
    pub name: String,
    /// The issuer's `did:web`; its DID document is at `did_document`.
    pub did: String,
    pub did_document: String,
    /// Base58 Solana public key that pays for (signs) this issuer's anchors now.
    pub anchor_pubkey: Option<String>,
    /// Every anchoring key ever used, oldest first, with its window. A verifier trusts an
    /// anchor only from a transaction whose fee payer is one of these keys, in a block made
    /// before that key's `retired_at`.
    pub anchor_keys: Vec<AnchorKeyView>,
    /// Every signing key ever used, oldest first.
    pub signing_keys: Vec<SigningKeyView>,
}

/// One anchoring key of an issuer and its window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnchorKeyView {
    /// Base58 Solana public key.
    pub pubkey: String,
    pub valid_from: String,
    /// Absent while the key is active. Anything it pays for at or after this time is not the
    /// issuer's.
    pub retired_at: Option<String>,
}

impl From<&domain::anchor_keys::AnchorKeyWindow> for AnchorKeyView {
    fn from(k: &domain::anchor_keys::AnchorKeyWindow) -> Self {
        AnchorKeyView {
            pubkey: k.pubkey.clone(),
            valid_from: k.valid_from.to_rfc3339(),
            retired_at: k.retired_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// One issuer signing key and its validity window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SigningKeyView {
    pub key_id: String,
    /// Ed25519 public key, base58.
    pub public_key: String,
    pub valid_from: String,
    /// Absent while the key is active. A signature by this key on a credential made at or
    /// after this time is not valid.
    pub retired_at: Option<String>,
}

impl From<&store::issuers::SigningKeyRecord> for SigningKeyView {
    fn from(k: &store::issuers::SigningKeyRecord) -> Self {
        SigningKeyView {
            key_id: k.key_id.as_str().to_string(),
            public_key: k.public_key.to_base58(),
            valid_from: k.window.valid_from.to_rfc3339(),
            retired_at: k.window.retired_at.map(|t| t.to_rfc3339()),
        }
    }
}
