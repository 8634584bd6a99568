//! The status-list check of `credential-verify` (issue #20): the list a verifier was given
//! (`--status-list FILE`) or fetched (`--fetch-status-list`, from the VC's
//! `statusListCredential`) is judged against the `ca1:s` memos its issuer anchored, read from
//! the history of the pinned anchoring keys, as revocations are: the list is authentic
//! because its bits are anchored, whoever served it (no DID resolution needed), and current
//! only if no newer version is anchored. The rules are `domain::status_list`'s.

use std::time::Duration;

use chain::{ChainClient, ChainError, Commitment};
use domain::memo::{decode_rpc_memo_field, Memo};
use domain::status_list::{
    check_status, judge_list, AnchoredVersion, Bitstring, StatusCheck, StatusListHash,
};
use domain::vc::StatusEntry;
use domain::IssuerId;

/// The most bytes read from a status list server (our lists are a few KiB).
pub const MAX_LIST_BYTES: usize = 1024 * 1024;

/// Where the list to judge comes from.
#[derive(Debug, Clone)]
pub enum ListSource {
    /// Bytes the user supplied (`--status-list FILE`).
    Given(Vec<u8>),
    /// Fetch the VC's `statusListCredential` (`--fetch-status-list`).
    Fetch,
}

/// Fetches a list over HTTP(S): no redirects, a timeout, at most [`MAX_LIST_BYTES`]. Any
/// failure is a stable reason and a sentence (the verdict is then inconclusive).
pub async fn fetch_list(url: &str, timeout: Duration) -> Result<Vec<u8>, StatusCheck> {
    let unreachable = |detail: String| StatusCheck::Unavailable {
        reason: "status_list_unreachable",
        detail,
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(unreachable(format!(
            "the status list URL {:?} is not http(s)",
            crate::printable(url)
        )));
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| unreachable(format!("cannot make an HTTP client: {e}")))?;
    let mut response = client
        .get(url)
        .header("Accept", "application/vc, application/json")
        .send()
        .await
        .map_err(|e| unreachable(format!("cannot fetch the status list: {e}")))?;
    if !response.status().is_success() {
        return Err(unreachable(format!(
            "the status list server answered {}",
            response.status()
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| unreachable(format!("the status list download failed: {e}")))?
    {
        if body.len() + chunk.len() > MAX_LIST_BYTES {
            return Err(unreachable(format!(
                "the status list is larger than {MAX_LIST_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The bits of a `BitstringStatusListCredential` that is the list `entry` names.
pub fn read_list(bytes: &[u8], entry: &StatusEntry) -> Result<Bitstring, StatusCheck> {
    let unreadable = |detail: String| StatusCheck::Unavailable {
        reason: "status_list_unreadable",
        detail,
    };
    let list: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| unreadable("the status list is not JSON".into()))?;
    if list["id"] != entry.list_url.as_str() {
        return Err(unreadable(
            "the status list is not the one the credential names (its id differs)".into(),
        ));
    }
    let encoded = list["credentialSubject"]["encodedList"]
        .as_str()
        .ok_or_else(|| unreadable("the status list has no encodedList".into()))?;
    Bitstring::decode(encoded).map_err(|e| unreadable(format!("the status list: {e}")))
}

/// Every trusted `ca1:s` memo of `issuer`'s list `list` in `key`'s finalized history,
/// newest first, down to (and including) the one with `given`'s bits or `max_pages` pages.
/// Trusted: the transaction succeeded, `key` paid it, and its instruction data carries the
/// memo (the history's inline summary only nominates candidates).
pub async fn anchored_versions(
    client: &ChainClient,
    key: &str,
    issuer: &IssuerId,
    list: u32,
    given: &StatusListHash,
    max_pages: u32,
) -> Result<Vec<AnchoredVersion>, ChainError> {
    const PAGE: usize = 1000;
    let ours = |memo: &Memo| match memo {
        Memo::StatusList {
            issuer: i,
            list: l,
            version,
            hash,
        } if i == issuer && *l == list => Some(AnchoredVersion {
            version: *version,
            hash: *hash,
        }),
        _ => None,
    };
    let mut found = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..max_pages.max(1) {
        let page = client
            .signatures_for_address(key, before.as_deref(), None, PAGE)
            .await?;
        for entry in &page {
            let nominated = !entry.err
                && entry
                    .memo
                    .as_deref()
                    .is_some_and(|m| decode_rpc_memo_field(m).iter().any(|m| ours(m).is_some()));
            if !nominated {
                continue;
            }
            let Some(tx) = client
                .fetch_transaction(&entry.signature, Commitment::Finalized)
                .await?
            else {
                continue;
            };
            if !tx.succeeded || tx.fee_payer != key {
                continue;
            }
            let versions: Vec<AnchoredVersion> = tx
                .memos
                .iter()
                .filter_map(|m| match domain::memo::decode(m) {
                    domain::Decoded::Ours(memo) => ours(&memo),
                    domain::Decoded::NotOurs => None,
                })
                .collect();
            let reached = versions.iter().any(|v| &v.hash == given);
            found.extend(versions);
            if reached {
                return Ok(found);
            }
        }
        if page.len() < PAGE {
            break;
        }
        before = page.last().map(|e| e.signature.clone());
    }
    Ok(found)
}

/// The status check of `entry` with `list` bytes, against every key's anchored versions.
pub async fn check(
    client: &ChainClient,
    keys: &[String],
    issuer: &IssuerId,
    entry: &StatusEntry,
    list: &[u8],
    max_pages: u32,
) -> Result<StatusCheck, ChainError> {
    let bits = match read_list(list, entry) {
        Ok(bits) => bits,
        Err(check) => return Ok(check),
    };
    let hash = bits.anchored_hash(issuer, entry.list);
    let mut anchored = Vec::new();
    for key in keys {
        anchored
            .extend(anchored_versions(client, key, issuer, entry.list, &hash, max_pages).await?);
    }
    Ok(check_status(
        judge_list(&hash, &anchored),
        bits.get(entry.index).unwrap_or(false),
    ))
}
