//! A Verifiable Credential held against the proof bundle it travels with: the one rule the
//! offline verifier and the API share (a bundle may carry its VC, `ProofBundle::vc`).

use domain::proof::ProofBundle;
use domain::verdict::{Verdict, VerdictKind};

/// Holds a Verifiable Credential against the bundle it came with: it must make the claims
/// the anchored hash covers (`domain::vc::anchored_claims_match`, checked first: it is
/// cheap and reads no RDF), and its `eddsa-rdfc-2022` proof must verify with the bundle's
/// signing key (which the v2 hash binds to the anchor). `Err` is the verdict a refused VC
/// gets; `Ok` names the method that signed it.
///
/// The DID is not resolved: offline, the key is the bundle's (pin the anchoring key with
/// `--issuer-key` to know the bundle is the issuer's).
pub fn check_vc(bundle: &ProofBundle, vc: &serde_json::Value) -> Result<String, Verdict> {
    let key_id = &bundle.issuer_signature.key_id;
    let tampered = |claim: &str| Verdict {
        kind: VerdictKind::Tampered,
        reason: "vc_bundle_mismatch",
        detail: format!(
            "the verifiable credential's {claim} is not what the anchored credential says"
        ),
    };
    let salt = bundle
        .salt
        .as_ref()
        .ok_or_else(|| tampered("salt (a v1 bundle has none)"))?;
    domain::vc::anchored_claims_match(
        vc,
        &domain::vc::AnchoredClaims {
            id: bundle.credential_id,
            issuer: &bundle.fields.issuer,
            issued_at: bundle.fields.issued_at,
            recipient: &bundle.fields.recipient,
            salt,
            file_digest: &bundle.fields.file_digest,
            key_id,
        },
    )
    .map_err(tampered)?;
    let public = *bundle.issuer_signature.public_key.as_bytes();
    let proof = crate::verify_proof(vc, |method| {
        method
            .rsplit_once('#')
            .is_some_and(|(_, fragment)| fragment == key_id.as_str())
            .then_some(public)
    })
    .map_err(|e| Verdict {
        kind: VerdictKind::InvalidSignature,
        reason: "vc_proof_invalid",
        detail: format!(
            "the verifiable credential's proof does not verify with the bundle's key {key_id}: {e}"
        ),
    })?;
    Ok(proof.verification_method)
}

/// The verdict of a bundle and the VC it came with: the bundle's own refusal (tampered,
/// invalid signature, unknown issuer) keeps its precise reason; otherwise a refused VC
/// decides, since people read the credential from it. One rule for the API and the CLI.
pub fn with_vc(bundle_verdict: Verdict, vc_refusal: Option<Verdict>) -> Verdict {
    match (bundle_verdict.kind, vc_refusal) {
        (VerdictKind::Tampered | VerdictKind::InvalidSignature | VerdictKind::UnknownIssuer, _)
        | (_, None) => bundle_verdict,
        (_, Some(refusal)) => refusal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(kind: VerdictKind, reason: &'static str) -> Verdict {
        Verdict {
            kind,
            reason,
            detail: String::new(),
        }
    }

    #[test]
    fn the_bundles_refusal_keeps_its_reason_and_a_refused_vc_decides_otherwise() {
        let vc = verdict(VerdictKind::Tampered, "vc_bundle_mismatch");
        let hash = verdict(VerdictKind::Tampered, "hash_mismatch");
        assert_eq!(with_vc(hash.clone(), Some(vc.clone())), hash);
        for kind in [
            VerdictKind::Valid,
            VerdictKind::Revoked,
            VerdictKind::NotAnchoredYet,
            VerdictKind::Inconclusive,
        ] {
            assert_eq!(with_vc(verdict(kind, "x"), Some(vc.clone())), vc);
            assert_eq!(with_vc(verdict(kind, "x"), None), verdict(kind, "x"));
        }
    }
}
