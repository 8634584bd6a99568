//! Verifying a Verifiable Credential (the `vc` part of `POST /v1/verify` and `/verify`).
//!
//! A VC is signed at issuance, before it is anchored, so it carries no anchor of its own.
//! What links it to the chain is the record it names: the VC must (1) come from one of our
//! issuers' `did:web`, (2) say exactly what that record says (`domain::vc::claims_match`),
//! and (3) carry a valid `eddsa-rdfc-2022` proof by that issuer's key, the one that also
//! signed the record's hash. (2) comes before (3) on purpose: this is a public route, and
//! canonicalization (RDFC-1.0) of an arbitrary graph can be made very expensive ("poison"
//! graphs of many look-alike blank nodes). The proof is then checked over our own template
//! of the record, with only the presented issuer name (a short string, the one claim
//! `claims_match` leaves free) and the presented proof (string members only) put in: what is
//! canonicalized is never the attacker's graph. The record's fields are then verified like claimed fields
//! (`verify::verify`): rehashed under the record's own scheme, the file's digest included,
//! and that hash must be the one anchored on chain by the issuer's key. The database supplies
//! the hash's preimage, never the fact that it was anchored, so a forged row cannot pass.

use bytes::Bytes;
use domain::vc::{claims_match, credential_id_of, open_badge, OpenBadge};
use domain::verdict::VerdictKind;
use serde_json::Value;

use crate::error::ApiError;
use crate::state::AppState;
use crate::verify::{verify, Claim, VerificationView, VerifiedIssuer};

/// The verdict on `vc` presented with `file` (and the status list the verifier was given).
pub async fn verify_credential(
    state: &AppState,
    file: &Bytes,
    vc: &Value,
    status_list: Option<&Bytes>,
) -> Result<VerificationView, ApiError> {
    let view = verify_vc_alone(state, file, vc).await?;
    match status_list {
        Some(list) if view.verdict == VerdictKind::Valid => {
            check_status_list(state, view, vc, list).await
        }
        _ => Ok(view),
    }
}

/// A valid verdict held against the status list the verifier was given: the list's bits
/// must be the newest version its issuer anchored (`domain::status_list::judge_list` over
/// the anchored versions on record), and the credential's bit in it decides. An older list
/// is `stale`; a list whose bits no anchored version has, or that is not a list of this
/// credential, is `inconclusive`; a set bit is `revoked`.
pub async fn check_status_list(
    state: &AppState,
    view: VerificationView,
    vc: &Value,
    list: &Bytes,
) -> Result<VerificationView, ApiError> {
    use domain::status_list::{check_status, judge_list, with_status, Bitstring, StatusCheck};
    let Some(issuer) = view
        .issuer
        .as_ref()
        .and_then(|i| domain::IssuerId::parse(&i.id).ok())
    else {
        return Ok(view);
    };
    let unreadable = |detail: String| StatusCheck::Unavailable {
        reason: "status_list_unreadable",
        detail,
    };
    let check = match domain::vc::status_entry_of(vc, &issuer) {
        Ok(None) => unreadable("the credential names no status list".into()),
        Err(field) => unreadable(format!("the credential's {field} is not one of ours")),
        Ok(Some(entry)) => {
            let given: Option<Value> = serde_json::from_slice(list).ok();
            let encoded = given
                .as_ref()
                .filter(|l| l["id"] == entry.list_url.as_str())
                .and_then(|l| l["credentialSubject"]["encodedList"].as_str());
            match encoded.map(Bitstring::decode) {
                None => unreadable(
                    "the status list given is not the BitstringStatusListCredential the credential names".into(),
                ),
                Some(Err(e)) => unreadable(format!("the status list given cannot be read: {e}")),
                Some(Ok(bits)) => {
                    let hash = bits.anchored_hash(&issuer, entry.list);
                    let anchored = state
                        .store()
                        .anchored_status_versions(&issuer, entry.list, &hash)
                        .await
                        .map_err(|e| state.store_error(e))?;
                    let freshness = judge_list(&hash, &anchored);
                    check_status(freshness, bits.get(entry.index).unwrap_or(false))
                }
            }
        }
    };
    let verdict = with_status(
        domain::verdict::Verdict {
            kind: view.verdict,
            reason: "valid",
            detail: view.detail.clone(),
        },
        Some(&check),
    );
    if verdict.kind == view.verdict {
        return Ok(view);
    }
    Ok(VerificationView {
        verdict: verdict.kind,
        reason: verdict.reason.to_string(),
        message: verdict.kind.headline().to_string(),
        detail: verdict.detail,
        ..view
    })
}

async fn verify_vc_alone(
    state: &AppState,
    file: &Bytes,
    vc: &Value,
) -> Result<VerificationView, ApiError> {
    let store_err = |e| state.store_error(e);
    let did = vc
        .get("issuer")
        .and_then(|i| i.get("id").or(Some(i)))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(issuer) = state.public_base.issuer_of(did) else {
        return Ok(refused(
            state,
            VerdictKind::UnknownIssuer,
            "unknown_issuer",
            // Attacker-chosen text: enough to recognise, never a page of it.
            format!(
                "the credential's issuer {:?} is not an issuer of this service",
                did.chars().take(96).collect::<String>()
            ),
            None,
        ));
    };
    let Some(issuer_record) = state.store().issuer(&issuer).await.map_err(store_err)? else {
        return Ok(refused(
            state,
            VerdictKind::UnknownIssuer,
            "unknown_issuer",
            format!("issuer {:?} is not known", issuer.as_str()),
            None,
        ));
    };
    let named = || Some((issuer.as_str().to_string(), issuer_record.name.clone()));
    let record = match credential_id_of(vc) {
        Some(id) => state
            .store()
            .credential(&issuer, &id)
            .await
            .map_err(store_err)?,
        None => None,
    };
    let Some(record) = record else {
        return Ok(refused(
            state,
            VerdictKind::Tampered,
            "no_matching_credential",
            "no credential of this issuer has this id".into(),
            named(),
        ));
    };
    if record.proof_format == Some(domain::ProofFormat::V2) && record.salt.is_none() {
        return Ok(refused(
            state,
            VerdictKind::Inconclusive,
            "salt_erased",
            "the issuer erased this credential's salt (an erasure request): it can only be verified with its proof bundle".into(),
            named(),
        ));
    }
    // (2) Exactly what the record says.
    let issuer_did = state.public_base.did(&issuer);
    let expected = match (
        &record.recipient,
        record.issued_at,
        &record.salt,
        &record.file_digest,
        &record.title,
        &record.credential_type,
    ) {
        (
            Some(recipient),
            Some(issued_at),
            Some(salt),
            Some(file_digest),
            Some(title),
            Some(ty),
        ) => Some(open_badge(&OpenBadge {
            id: record.id,
            issuer_did: &issuer_did,
            issuer_name: &issuer_record.name,
            issued_at,
            credential_type: ty,
            title,
            recipient,
            salt,
            file_digest,
            status: record
                .status_ordinal
                .map(|o| domain::vc::status_entry(&state.public_base, &issuer, o.position())),
        })),
        _ => None,
    };
    // The one free claim: a display name, as a short string.
    let name = vc
        .get("issuer")
        .and_then(|i| i.get("name"))
        .and_then(Value::as_str)
        .filter(|name| name.len() <= 1024);
    let signed = match (expected, name) {
        (Some(mut expected), Some(name)) if claims_match(vc, &expected) => {
            expected["issuer"]["name"] = name.into();
            expected["proof"] = vc.get("proof").cloned().unwrap_or(Value::Null);
            Some(expected)
        }
        _ => None,
    };
    let Some(signed) = signed else {
        return Ok(refused(
            state,
            VerdictKind::Tampered,
            "vc_record_mismatch",
            "the credential does not say what the issuer recorded for it".into(),
            named(),
        ));
    };
    // (3) The proof, by a key the issuer published, the same that signed the record.
    let keys = state
        .store()
        .signing_keys(&issuer)
        .await
        .map_err(store_err)?;
    let proof = vc::verify_proof(&signed, |method| {
        let key_id = issuer_did.signing_key_of(method)?;
        keys.iter()
            .find(|k| k.key_id == key_id)
            .map(|k| *k.public_key.as_bytes())
    });
    let proof = match proof {
        Ok(proof) => proof,
        Err(e) => {
            return Ok(refused(
                state,
                VerdictKind::InvalidSignature,
                "vc_proof_invalid",
                format!("the credential's Data Integrity proof does not verify: {e}"),
                named(),
            ))
        }
    };
    let signed_by = issuer_did.signing_key_of(&proof.verification_method);
    if signed_by.is_none() || signed_by != record.key_id {
        return Ok(refused(
            state,
            VerdictKind::InvalidSignature,
            "vc_proof_invalid",
            "the credential was signed by another key than the one that signed its record".into(),
            named(),
        ));
    }
    // A record that matched has these (`expected` needed them); the serial too.
    let (Some(recipient), Some(issued_at), Some(serial)) =
        (record.recipient, record.issued_at, record.serial)
    else {
        return Ok(refused(
            state,
            VerdictKind::Tampered,
            "vc_record_mismatch",
            "the credential does not say what the issuer recorded for it".into(),
            named(),
        ));
    };
    // (4) The record's fields, with this file: hash, anchor on chain, revocation.
    verify(
        state,
        file,
        Claim::Fields {
            issuer,
            recipient,
            issued_at,
            serial,
        },
    )
    .await
}

fn refused(
    state: &AppState,
    kind: VerdictKind,
    reason: &str,
    detail: String,
    issuer: Option<(String, String)>,
) -> VerificationView {
    state
        .metrics
        .verifications
        .with_label_values(&[kind.as_str()])
        .inc();
    VerificationView {
        verdict: kind,
        reason: reason.to_string(),
        message: kind.headline().to_string(),
        detail,
        credential_id: None,
        issuer: issuer.map(|(id, name)| VerifiedIssuer {
            id,
            name: Some(name),
            key_id: None,
        }),
        issued_at: None,
        credential_hash: None,
        anchor: None,
        revocation: None,
    }
}
