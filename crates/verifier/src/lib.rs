//! The offline verifier behind `credential-verify`: a credential file plus its proof bundle,
//! checked against one or more Solana RPC endpoints chosen by the verifier, with no call to
//! the issuer's API (it may be gone).
//!
//! Boundary: depends on `domain` (bundle checks, verdict) and `chain` (RPC reads) only. The
//! verdict is `domain::verdict::derive_verdict`, the same function the API uses; this crate
//! only gathers the chain's evidence from every endpoint and refuses to answer when the
//! endpoints disagree (one lying or lagging node must not decide alone).
//!
//! What it can and cannot know offline: the issuer's published signing keys and their
//! validity windows are not available (the bundle's key is checked alone); a revocation is
//! found only once anchored (a `ca1:r` memo, or a `ca1:v` list naming it, paid by the
//! anchoring key in the key's finalized history), never while pending; and the anchoring key is trusted from the bundle unless
//! the user pins it with `--issuer-key`.
//!
//! What one lying endpoint can do: the anchor transaction is read as its signed bytes and
//! every signature is checked over its message (`chain`'s decoder,
//! `domain::verdict::transaction_authentic`), so a node cannot show another memo or fee
//! payer for a real anchor, nor a forger's memo "paid" by a pinned key it does not hold
//! (refused as a disagreement, exit 6). It can still lie about what is not signed: the slot
//! and block time (bounded by the bundle's slot, which must match), the status and
//! finality, and what the key's history holds (it can hide a revocation). Against those the
//! only remedy is asking several independent endpoints (`--rpc` repeated), which must agree.

use std::time::Duration;

use chain::{ChainClient, ChainConfig, ChainError, Cluster, Commitment};
use domain::anchor_keys::AnchorKeyWindow;
use domain::cluster_of_genesis_hash;
use domain::memo::{decode, Decoded};
use domain::proof::{BundleFormatError, ProofBundle};
use domain::revocation_scan::{self, ScanStep};
use domain::status_list::StatusCheck;
use domain::verdict::{
    derive_verdict, ChainAnchor, Evidence, IssuerFacts, RevocationState, Verdict, VerdictKind,
};
use serde::Serialize;

pub mod status;

/// Process exit codes: part of the command's contract (README "Verifying a credential").
pub mod exit {
    /// Valid.
    pub const VALID: u8 = 0;
    /// Revoked (anchored revocation).
    pub const REVOKED: u8 = 1;
    /// Bad arguments, unreadable file, malformed bundle.
    pub const USAGE: u8 = 2;
    /// The file or the bundle does not match what the chain holds.
    pub const TAMPERED: u8 = 3;
    /// The anchor is not (yet) finalized on chain.
    pub const NOT_ANCHORED: u8 = 4;
    /// Bad issuer signature, or anchored by another key than the pinned one.
    pub const INVALID: u8 = 5;
    /// The RPC endpoints gave different answers: refused.
    pub const DISAGREEMENT: u8 = 6;
    /// An RPC endpoint could not be read: nothing was decided.
    pub const RPC_UNAVAILABLE: u8 = 7;
    /// Genuine and anchored, but the anchoring key's history could not be read back to the
    /// anchor's slot, so a revocation may have been missed: not valid.
    pub const INCONCLUSIVE: u8 = 8;
    /// Every check holds, but the anchoring key was taken from the bundle itself (no
    /// `--issuer-key`): anyone can anchor a bundle with a key of their own, so this is not
    /// the unqualified "valid" of exit 0.
    pub const VALID_UNPINNED: u8 = 9;
    /// Genuine and anchored, but the status list checked is older than the newest version
    /// the issuer anchored: not valid.
    pub const STALE: u8 = 10;
}

/// The exit code of a verdict.
pub fn exit_code(kind: VerdictKind) -> u8 {
    match kind {
        VerdictKind::Valid => exit::VALID,
        VerdictKind::Revoked | VerdictKind::RevocationPending => exit::REVOKED,
        VerdictKind::Tampered => exit::TAMPERED,
        VerdictKind::NotAnchoredYet => exit::NOT_ANCHORED,
        VerdictKind::InvalidSignature | VerdictKind::UnknownIssuer => exit::INVALID,
        VerdictKind::Inconclusive => exit::INCONCLUSIVE,
        VerdictKind::Stale => exit::STALE,
    }
}

/// Why no verdict could be given.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Usage(String),
    /// The proof bundle is malformed or not in its canonical spelling: an input error.
    #[error("the proof bundle is refused: {0}")]
    Bundle(#[from] BundleFormatError),
    #[error("RPC endpoints disagree: {0}")]
    Disagreement(String),
    #[error("RPC endpoint {url} could not be read: {error}")]
    Rpc { url: String, error: ChainError },
}

impl VerifyError {
    pub fn exit_code(&self) -> u8 {
        match self {
            VerifyError::Usage(_) | VerifyError::Bundle(_) => exit::USAGE,
            VerifyError::Disagreement(_) => exit::DISAGREEMENT,
            VerifyError::Rpc { .. } => exit::RPC_UNAVAILABLE,
        }
    }

    /// An endpoint's failure. A node whose answer contradicts the transaction's own
    /// signatures (`ChainError::Unauthentic`: it showed another memo or fee payer than the
    /// signers signed) disagrees with the chain itself: refused like endpoints that disagree
    /// with each other, not reported as a node that could not be read.
    pub fn from_endpoint(url: &str, error: ChainError) -> VerifyError {
        match error {
            ChainError::Unauthentic { .. } => VerifyError::Disagreement(format!(
                "{} contradicts the signatures of the transaction it returned: {error}",
                redact(url)
            )),
            error => VerifyError::Rpc {
                url: redact(url),
                error,
            },
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Usage(_) => "usage",
            VerifyError::Bundle(e) => e.code(),
            VerifyError::Disagreement(_) => "rpc_disagreement",
            VerifyError::Rpc { .. } => "rpc_unavailable",
        }
    }
}

/// What one endpoint says about the bundle. Endpoints must agree on all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The cluster the endpoint serves, named by its genesis hash.
    pub cluster: Cluster,
    pub anchor: ChainAnchor,
    /// `Unknown` when the search could not reach the anchor's slot.
    pub revocation: RevocationState,
}

/// How far one endpoint's revocation search reached (`--json`: `revocation_scan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    /// The endpoint, path and query hidden.
    pub rpc: String,
    /// The anchoring key whose history was searched.
    pub key: String,
    /// Pages of the anchoring key's history read (1,000 signatures each).
    pub pages: u32,
    /// The anchor's slot as the chain reports it: the search must reach it.
    pub anchor_slot: Option<u64>,
    /// The oldest slot the search read.
    pub reached_slot: Option<u64>,
    /// Every transaction of the key from the anchor's slot onwards was read (or the
    /// revocation was found).
    pub complete: bool,
    /// Why it stopped short: `history_unavailable`, `page_limit`, or `no_anchor` (nothing
    /// on chain to search back to; the verdict is then not valid anyway).
    pub stopped: Option<&'static str>,
}

/// The inputs of one verification.
#[derive(Debug, Clone)]
pub struct Request {
    pub file: Vec<u8>,
    pub bundle: ProofBundle,
    pub rpcs: Vec<String>,
    /// Base58 anchoring key the user trusts for this issuer.
    /// Every key pinned with `--issuer-key`. Pin all the anchoring keys the issuer's profile
    /// lists: after a rotation, revocations are paid by the newer key, and each pinned key's
    /// history is searched.
    pub pinned_issuer_keys: Vec<String>,
    /// The most pages (1,000 signatures each) of the anchoring key's history to read while
    /// searching back to the anchor's slot for a revocation; running out is inconclusive.
    pub max_history_pages: u32,
    pub timeout: Duration,
    /// The issuer's name as the user knows it from an authenticated source (`--issuer-name`:
    /// the issuer's website or profile). The bundle's own `issuer_name` is hashed nowhere,
    /// so it is only ever shown as a claim.
    pub issuer_name: Option<String>,
    /// A Verifiable Credential given apart from the bundle (`--vc`); else the bundle's own
    /// `vc`, if it carries one. Checked by [`check_vc`].
    pub vc: Option<serde_json::Value>,
    /// The status list to judge the VC's `credentialStatus` by (`status`), if asked.
    pub status_list: Option<status::ListSource>,
}

/// The outcome: the verdict and the facts behind it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: VerdictKind,
    pub reason: &'static str,
    pub message: &'static str,
    pub detail: String,
    pub exit_code: u8,
    pub credential_id: String,
    /// False for a v1 Merkle bundle: nothing offline binds its id (see `credential_id_proven`).
    pub credential_id_proven: bool,
    pub issuer_id: String,
    /// The issuer's name from an authenticated source (`--issuer-name`), else `None`.
    pub issuer_name: Option<String>,
    /// The bundle's `issuer_name`: a claim, authenticated by nothing (not hashed, not signed,
    /// not anchored). Shown only with that label.
    pub issuer_name_claimed: String,
    pub key_id: String,
    /// Whether the signing key (`key_id`, public key) is bound to the anchor: v2 hashes it;
    /// in v1 it is the bundle's word (the anchored hash proves the fields, not who signed).
    pub signing_key_proven: bool,
    pub issued_at: String,
    pub anchor_signature: String,
    pub anchor_pubkey: String,
    pub slot: Option<u64>,
    pub finalized: bool,
    pub block_time: Option<String>,
    pub revoked: bool,
    pub explorer_url: String,
    /// Every endpoint asked (URL path and query hidden: providers put API keys there).
    pub rpcs: Vec<String>,
    /// True when the anchoring key came from `--issuer-key`, not from the bundle.
    pub issuer_key_pinned: bool,
    /// How far each endpoint's revocation search reached.
    pub revocation_scan: Vec<ScanReport>,
    /// The Verifiable Credential checked with the bundle: its verification method, when
    /// its proof verified and it makes the bundle's anchored claims; `None` when there was
    /// none (a refused one changes the verdict instead).
    pub vc_verification_method: Option<String>,
    /// The status-list check, when one was asked for: `current (version N)`, `stale`, ...
    pub status_list: Option<String>,
}

pub use vc::bundle::check_vc;

/// Reads a proof bundle file the one strict way (`ProofBundle::from_json`): anything
/// malformed or in another spelling is an input error (exit 2), never an RPC failure.
pub fn read_bundle(bytes: &[u8]) -> Result<ProofBundle, VerifyError> {
    Ok(ProofBundle::from_json(bytes)?)
}

/// Reads the chain from every endpoint, refuses on disagreement, and derives the verdict.
pub async fn verify(req: &Request) -> Result<Report, VerifyError> {
    if req.rpcs.is_empty() {
        return Err(VerifyError::Usage("give at least one --rpc URL".into()));
    }
    // A name you supply is shown as the issuer's only when the anchor is proven to be the
    // issuer's, i.e. paid by a key you pinned; otherwise it would dress a self-asserted
    // bundle in a trusted name.
    if req.issuer_name.is_some() && req.pinned_issuer_keys.is_empty() {
        return Err(VerifyError::Usage(
            "--issuer-name needs --issuer-key: pin the issuer's anchoring key too".into(),
        ));
    }
    let cluster = req.bundle.anchor.cluster;
    let mut observations = Vec::with_capacity(req.rpcs.len());
    let mut scans = Vec::with_capacity(req.rpcs.len());
    // Revocations are searched in the history of every pinned key (a rotation moves later
    // revocations to the newer key), or of the bundle's own key when nothing is pinned.
    let keys: Vec<String> = if req.pinned_issuer_keys.is_empty() {
        vec![req.bundle.anchor.anchor_pubkey.clone()]
    } else {
        req.pinned_issuer_keys.clone()
    };
    for url in &req.rpcs {
        let client = ChainClient::read_only(ChainConfig {
            request_timeout: req.timeout,
            ..ChainConfig::new(url.clone(), cluster)
        });
        let (obs, endpoint_scans) = observe(&client, &req.bundle, &keys, req.max_history_pages)
            .await
            .map_err(|error| VerifyError::from_endpoint(url, error))?;
        observations.push((url, obs));
        scans.extend(endpoint_scans.into_iter().map(|mut scan| {
            scan.rpc = redact(url);
            scan
        }));
    }
    let first = agreed(&observations)?;

    let pinned_ok = req.pinned_issuer_keys.is_empty()
        || req
            .pinned_issuer_keys
            .contains(&req.bundle.anchor.anchor_pubkey);
    // A pin names one key and no window: offline, the holder pins the key the issuer
    // published for the time of the anchor (a retired key's window is the API's to check).
    let facts = IssuerFacts {
        anchor_keys: (!req.pinned_issuer_keys.is_empty()).then(|| {
            req.pinned_issuer_keys
                .iter()
                .map(|pubkey| AnchorKeyWindow {
                    pubkey: pubkey.clone(),
                    valid_from: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                    retired_at: None,
                })
                .collect()
        }),
        signing_keys: Vec::new(),
    };
    let vc = req.vc.as_ref().or(req.bundle.vc.as_ref());
    let vc_checked = vc.map(|vc| check_vc(&req.bundle, vc));
    let verdict = if pinned_ok {
        derive_verdict(&Evidence {
            bundle: &req.bundle,
            file: Some(&req.file),
            issuer: Some(&facts),
            recorded_at: None,
            // Offline there is no record of the id (the revocation is matched by hash).
            recorded_id: None,
            chain: &first.anchor,
            // The chain the endpoints actually serve, not the one the bundle names.
            chain_cluster: Some(first.cluster),
            revocation: &first.revocation,
        })
    } else {
        Verdict {
            kind: VerdictKind::UnknownIssuer,
            reason: "issuer_key_mismatch",
            detail: format!(
                "the bundle's anchoring key {} is not a pinned key",
                req.bundle.anchor.anchor_pubkey
            ),
        }
    };
    let vc_refusal = match &vc_checked {
        Some(Err(refused)) => Some(refused.clone()),
        _ => None,
    };
    let verdict = vc::bundle::with_vc(verdict, vc_refusal);
    let status = match (&req.status_list, vc) {
        (Some(source), Some(vc)) if verdict.kind == VerdictKind::Valid => {
            Some(status_check(req, source, vc, &keys).await?)
        }
        (Some(_), None) => Some(StatusCheck::Unavailable {
            reason: "status_list_unreadable",
            detail: "a status list needs the credential's VC (--vc, or the bundle's vc)".into(),
        }),
        _ => None,
    };
    let verdict = domain::status_list::with_status(verdict, status.as_ref());
    let mut report = report(req, cluster, verdict, first, scans);
    report.vc_verification_method = vc_checked.and_then(Result::ok);
    report.status_list = status.map(|s| describe_status(&s));
    Ok(report)
}

/// The status check every endpoint agrees on; endpoints that disagree make it unavailable
/// (the verdict is then inconclusive, never valid).
async fn status_check(
    req: &Request,
    source: &status::ListSource,
    vc: &serde_json::Value,
    keys: &[String],
) -> Result<StatusCheck, VerifyError> {
    let issuer = &req.bundle.fields.issuer;
    let entry = match domain::vc::status_entry_of(vc, issuer) {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            return Ok(StatusCheck::Unavailable {
                reason: "status_list_unreadable",
                detail: "the credential names no status list".into(),
            })
        }
        Err(field) => {
            return Ok(StatusCheck::Unavailable {
                reason: "status_list_unreadable",
                detail: format!("the credential's {field} is not one of this issuer's"),
            })
        }
    };
    let bytes = match source {
        status::ListSource::Given(bytes) => bytes.clone(),
        status::ListSource::Fetch => match status::fetch_list(&entry.list_url, req.timeout).await {
            Ok(bytes) => bytes,
            Err(unreachable) => return Ok(unreachable),
        },
    };
    let mut checks = Vec::with_capacity(req.rpcs.len());
    for url in &req.rpcs {
        let client = ChainClient::read_only(ChainConfig {
            request_timeout: req.timeout,
            ..ChainConfig::new(url.clone(), req.bundle.anchor.cluster)
        });
        let check = status::check(&client, keys, issuer, &entry, &bytes, req.max_history_pages)
            .await
            .map_err(|error| VerifyError::from_endpoint(url, error))?;
        checks.push(check);
    }
    Ok(match checks.split_first() {
        Some((first, rest)) if rest.iter().all(|c| c == first) => first.clone(),
        _ => StatusCheck::Unavailable {
            reason: "status_list_rpc_disagree",
            detail: "the RPC endpoints disagree about the status list's anchored versions".into(),
        },
    })
}

fn describe_status(check: &StatusCheck) -> String {
    match check {
        StatusCheck::Current { version, revoked } => format!(
            "current (version {version} is the newest anchored), {}",
            if *revoked { "revoked" } else { "not revoked" }
        ),
        StatusCheck::RevokedByList => "an anchored version of the list marks it revoked".into(),
        StatusCheck::Stale { version, newest } => {
            format!("stale: version {version} given, version {newest} anchored")
        }
        StatusCheck::Unanchored => "no anchored version has these bits".into(),
        StatusCheck::Unavailable { reason, detail } => format!("{reason}: {}", printable(detail)),
    }
}

/// The single observation all endpoints agree on.
pub fn agreed<'a>(
    observations: &'a [(&String, Observation)],
) -> Result<&'a Observation, VerifyError> {
    let Some((first_url, first)) = observations.first() else {
        return Err(VerifyError::Usage("give at least one --rpc URL".into()));
    };
    for (url, obs) in &observations[1..] {
        if obs != first {
            return Err(VerifyError::Disagreement(format!(
                "{} says {}, {} says {}",
                redact(first_url),
                describe(first),
                redact(url),
                describe(obs)
            )));
        }
    }
    Ok(first)
}

fn describe(o: &Observation) -> String {
    let anchor = match &o.anchor {
        ChainAnchor::NotSubmitted => "no anchor".to_string(),
        ChainAnchor::NotFound => "transaction not found".to_string(),
        ChainAnchor::Seen(tx) => format!(
            "transaction in slot {} ({}, {}, paid by {})",
            tx.slot,
            if tx.finalized {
                "finalized"
            } else {
                "confirmed"
            },
            if tx.succeeded { "succeeded" } else { "failed" },
            tx.fee_payer
        ),
    };
    let revocation = match o.revocation {
        RevocationState::NotRevoked => "not revoked",
        RevocationState::Unknown => "revocation unknown (history not read back to the anchor)",
        RevocationState::Pending => "revocation pending",
        RevocationState::Anchored => "revoked",
    };
    format!("{anchor}, {revocation}")
}

/// One endpoint's view: the anchor transaction (finalized, else confirmed) and whether an
/// anchored revocation exists in the anchoring key's finalized history after the anchor.
pub async fn observe(
    client: &ChainClient,
    bundle: &ProofBundle,
    keys: &[String],
    max_history_pages: u32,
) -> Result<(Observation, Vec<ScanReport>), ChainError> {
    let anchor = if bundle.anchor.signature.is_empty() {
        ChainAnchor::NotSubmitted
    } else {
        match client.fetch_anchor(&bundle.anchor.signature).await? {
            Some(seen) => ChainAnchor::Seen(seen),
            None => ChainAnchor::NotFound,
        }
    };
    let anchor_slot = match &anchor {
        ChainAnchor::Seen(tx) => Some(tx.slot),
        _ => None,
    };
    // Revoked if any key's history holds the revocation; unknown if none does and some
    // history could not be read back to the anchor; not revoked only if all were read.
    let mut revocation = RevocationState::NotRevoked;
    let mut scans = Vec::with_capacity(keys.len());
    for key in keys {
        let (state, scan) =
            find_revocation(client, bundle, key, anchor_slot, max_history_pages).await?;
        scans.push(scan);
        match state {
            RevocationState::Anchored => {
                revocation = RevocationState::Anchored;
                break;
            }
            RevocationState::Unknown => revocation = RevocationState::Unknown,
            _ => {}
        }
    }
    let cluster = cluster_of_genesis_hash(&client.genesis_hash().await?);
    Ok((
        Observation {
            cluster,
            anchor,
            revocation,
        },
        scans,
    ))
}

/// Searches the anchoring key's finalized history (newest first) for a `ca1:r` memo (or a
/// `ca1:v` list entry) of this
/// issuer and credential hash, back to the anchor's slot (`domain::revocation_scan`: a fixed
/// number of pages could be outrun by cheap traffic to the key). It matches on what the
/// bundle PROVES (issuer and hash, covered by the issuer's signature and the anchor), never
/// on the credential id the memo names: in merkle mode nothing covers the bundle's
/// `credential_id`, so an edited id must not hide a revocation. The inline memo summary only
/// nominates candidates: a candidate counts only if its transaction succeeded, was paid by
/// the anchoring key (anyone can write a memo that mentions the key) and carries such a memo.
async fn find_revocation(
    client: &ChainClient,
    bundle: &ProofBundle,
    key: &str,
    anchor_slot: Option<u64>,
    max_pages: u32,
) -> Result<(RevocationState, ScanReport), ChainError> {
    const PAGE: usize = 1000;
    let mut scan = ScanReport {
        rpc: String::new(),
        key: key.to_string(),
        pages: 0,
        anchor_slot,
        reached_slot: None,
        complete: false,
        stopped: None,
    };
    let Some(anchor_slot) = anchor_slot else {
        // Nothing anchored to search back to: the verdict is not valid whatever we find.
        scan.stopped = Some("no_anchor");
        return Ok((RevocationState::NotRevoked, scan));
    };
    let mut before: Option<String> = None;
    loop {
        let page = client
            .signatures_for_address(key, before.as_deref(), None, PAGE)
            .await?;
        scan.pages += 1;
        if let Some(last) = page.last() {
            scan.reached_slot = Some(last.slot);
        }
        for entry in &page {
            let nominated = !entry.err
                && entry
                    .inline_memos()
                    .unwrap_or_default()
                    .iter()
                    .any(|m| revokes(bundle, m));
            if !nominated {
                continue;
            }
            if let Some(tx) = client
                .fetch_transaction(&entry.signature, Commitment::Finalized)
                .await?
            {
                if tx.succeeded
                    && tx.fee_payer == key
                    && tx.memos.iter().any(|m| revokes(bundle, m))
                {
                    scan.complete = true;
                    return Ok((RevocationState::Anchored, scan));
                }
            }
        }
        let oldest = page.last().map(|e| e.slot);
        match revocation_scan::after_page(
            anchor_slot,
            scan.pages,
            max_pages,
            oldest,
            page.len() == PAGE,
        ) {
            ScanStep::NextPage => before = page.last().map(|e| e.signature.clone()),
            ScanStep::Covered => {
                scan.complete = true;
                return Ok((RevocationState::NotRevoked, scan));
            }
            ScanStep::Stop(why) => {
                scan.stopped = Some(why.code());
                return Ok((RevocationState::Unknown, scan));
            }
        }
    }
}

/// Whether memo text `m` revokes the bundle's issuer and credential hash (a `ca1:r` memo, or
/// an entry of a `ca1:v` list), whatever credential id it names.
pub fn revokes(bundle: &ProofBundle, m: &str) -> bool {
    match decode(m) {
        Decoded::Ours(memo) => {
            *memo.issuer() == bundle.fields.issuer
                && memo
                    .revoked()
                    .iter()
                    .any(|r| r.hash == bundle.credential_hash)
        }
        Decoded::NotOurs => false,
    }
}

fn report(
    req: &Request,
    cluster: Cluster,
    verdict: Verdict,
    obs: &Observation,
    revocation_scan: Vec<ScanReport>,
) -> Report {
    let b = &req.bundle;
    let tx = match &obs.anchor {
        ChainAnchor::Seen(tx) => Some(tx),
        _ => None,
    };
    Report {
        verdict: verdict.kind,
        reason: verdict.reason,
        message: verdict.kind.headline(),
        detail: verdict.detail,
        exit_code: match verdict.kind {
            VerdictKind::Valid if req.pinned_issuer_keys.is_empty() => exit::VALID_UNPINNED,
            kind => exit_code(kind),
        },
        credential_id: b.credential_id.to_string(),
        credential_id_proven: credential_id_proven(b),
        issuer_id: b.fields.issuer.as_str().to_string(),
        issuer_name: req.issuer_name.clone(),
        issuer_name_claimed: b.issuer_name.clone(),
        key_id: b.issuer_signature.key_id.as_str().to_string(),
        signing_key_proven: matches!(b.format(), Ok(domain::ProofFormat::V2)),
        issued_at: b.fields.issued_at.canonical(),
        anchor_signature: b.anchor.signature.clone(),
        anchor_pubkey: b.anchor.anchor_pubkey.clone(),
        slot: tx.map(|t| t.slot),
        finalized: tx.is_some_and(|t| t.finalized),
        block_time: tx.and_then(|t| t.block_time).map(|t| t.to_rfc3339()),
        revoked: obs.revocation == RevocationState::Anchored,
        explorer_url: cluster.explorer_tx_url(&b.anchor.signature, None),
        rpcs: req.rpcs.iter().map(|u| redact(u)).collect(),
        issuer_key_pinned: !req.pinned_issuer_keys.is_empty(),
        revocation_scan,
        vc_verification_method: None,
        status_list: None,
    }
    .printable()
}

impl Report {
    /// Every string that came from the bundle or the chain, with control and bidi
    /// characters escaped: a bundle's `issuer_name` could otherwise carry terminal escape
    /// sequences that redraw a REVOKED line as VALID.
    fn printable(mut self) -> Report {
        if let Some(name) = &mut self.issuer_name {
            *name = printable(name);
        }
        for text in [
            &mut self.detail,
            &mut self.credential_id,
            &mut self.issuer_id,
            &mut self.issuer_name_claimed,
            &mut self.key_id,
            &mut self.issued_at,
            &mut self.anchor_signature,
            &mut self.anchor_pubkey,
            &mut self.explorer_url,
        ] {
            *text = printable(text);
        }
        self
    }
}

/// Control and bidi characters escaped: the one rule, shared with the `/verify` page.
pub use domain::display::printable;

/// `scheme://host[:port]` only: RPC providers put API keys in paths and queries.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // `user:key@host`: the userinfo is a secret too.
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if scheme.is_empty() {
        host.to_string()
    } else {
        format!("{scheme}://{host}")
    }
}

/// The one-line human verdict.
/// Whether the bundle's `credential_id` is proven offline: v2 hashes it; a v1 single-mode
/// memo names it (and the memo is checked on chain); a v1 Merkle bundle leaves it unproven
/// (only the issuer's API, which finds its record by hash, can tell it was edited).
pub fn credential_id_proven(bundle: &ProofBundle) -> bool {
    matches!(bundle.format(), Ok(domain::ProofFormat::V2))
        || matches!(bundle.anchor.mode, domain::proof::AnchorPath::Single)
}

pub fn one_line(r: &Report) -> String {
    let id = if r.credential_id_proven {
        r.credential_id.clone()
    } else {
        format!(
            "{} (id claimed by a v1 Merkle bundle, not proven)",
            r.credential_id
        )
    };
    // The name is shown as a fact only when the user supplied it (`--issuer-name`); the
    // bundle's own name is labelled a claim, since nothing proves it.
    let issuer = match &r.issuer_name {
        Some(name) => format!("{name} ({})", r.issuer_id),
        // Quoted with every `"` and `\` escaped: the claim cannot close its own label.
        None => format!(
            "issuer {} (name claimed by the bundle, not verified: {:?})",
            r.issuer_id, r.issuer_name_claimed
        ),
    };
    let mut line = format!(
        "{}: {} Credential {} of {}, issued {}",
        r.verdict.as_str().to_uppercase(),
        r.message,
        id,
        issuer,
        r.issued_at
    );
    if let Some(slot) = r.slot {
        line.push_str(&format!(
            ", anchor {} in slot {} ({})",
            r.anchor_signature,
            slot,
            if r.finalized {
                "finalized"
            } else {
                "not finalized"
            }
        ));
    }
    if r.verdict != VerdictKind::Valid {
        line.push_str(&format!(" [{}: {}]", r.reason, r.detail));
    }
    if let Some(status) = &r.status_list {
        line.push_str(&format!("; status list: {status}"));
    }
    if !r.issuer_key_pinned {
        line.push_str(" (anchoring key taken from the bundle: pin it with --issuer-key)");
    }
    if r.verdict == VerdictKind::Inconclusive {
        for scan in &r.revocation_scan {
            line.push_str(&format!(
                " [{}: {} pages read back to slot {}, the anchor is in slot {}; stopped: {}]",
                scan.rpc,
                scan.pages,
                scan.reached_slot.map_or("-".into(), |s| s.to_string()),
                scan.anchor_slot.map_or("-".into(), |s| s.to_string()),
                scan.stopped.unwrap_or("-"),
            ));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(anchor: ChainAnchor) -> Observation {
        Observation {
            cluster: Cluster::Localnet,
            anchor,
            revocation: RevocationState::NotRevoked,
        }
    }

    #[test]
    fn every_verdict_has_a_distinct_exit_code_family() {
        let codes: Vec<u8> = VerdictKind::ALL.iter().map(|k| exit_code(*k)).collect();
        assert_eq!(codes, [0, 1, 1, 4, 3, 5, 5, 10, 8]);
        assert!(!codes.contains(&exit::VALID_UNPINNED));
        for e in [
            VerifyError::Usage("x".into()),
            VerifyError::Disagreement("x".into()),
            VerifyError::Rpc {
                url: "u".into(),
                error: ChainError::Timeout("t".into()),
            },
        ] {
            assert!(!codes.contains(&e.exit_code()), "{e}");
        }
    }

    #[test]
    fn endpoints_must_all_agree() {
        let a = "http://a:1/key?x=secret".to_string();
        let b = "http://b:2".to_string();
        let same = [
            (&a, obs(ChainAnchor::NotFound)),
            (&b, obs(ChainAnchor::NotFound)),
        ];
        assert_eq!(agreed(&same).unwrap(), &obs(ChainAnchor::NotFound));
        let differ = [
            (&a, obs(ChainAnchor::NotFound)),
            (&b, obs(ChainAnchor::NotSubmitted)),
        ];
        let err = agreed(&differ).unwrap_err();
        assert_eq!(err.exit_code(), exit::DISAGREEMENT);
        assert!(!err.to_string().contains("secret"), "{err}");
        let revoked = Observation {
            cluster: Cluster::Localnet,
            anchor: ChainAnchor::NotFound,
            revocation: RevocationState::Anchored,
        };
        assert!(agreed(&[(&a, obs(ChainAnchor::NotFound)), (&b, revoked)]).is_err());
        // Endpoints of two different clusters never agree.
        let devnet = Observation {
            cluster: Cluster::Devnet,
            ..obs(ChainAnchor::NotFound)
        };
        assert!(agreed(&[(&a, obs(ChainAnchor::NotFound)), (&b, devnet)]).is_err());
        assert!(agreed(&[]).is_err());
    }

    #[test]
    fn urls_are_redacted_to_scheme_and_host() {
        assert_eq!(
            redact("https://rpc.example.com/v2/KEY?api=1"),
            "https://rpc.example.com"
        );
        assert_eq!(redact("http://127.0.0.1:8899"), "http://127.0.0.1:8899");
        assert_eq!(redact("host:1/x"), "host:1");
        assert_eq!(
            redact("https://user:secret@rpc.example.com/k"),
            "https://rpc.example.com"
        );
    }
}
