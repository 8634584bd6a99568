//! The credential status machine, and the status of one anchoring transaction.
//!
//! `transition` is the single definition of which status changes are legal. The store does
//! not re-implement it: it applies an event with a guarded update
//! (`UPDATE ... SET status = <target> WHERE status = ANY(allowed_sources(event))`), so two
//! racing workers (a relay and the reconciler, or two relay replicas) can never move a row
//! along an edge this function forbids, and a lost race shows up as "0 rows updated".
//!
//! Several edges are deliberately idempotent (re-submitting, re-confirming, re-finalizing,
//! re-observing, re-revoking) because every worker in this system delivers at least once.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a credential is in its anchoring life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialStatus {
    /// Row and outbox entry committed; waiting for the relay.
    Queued,
    /// A signed transaction is stored and has been sent.
    Submitted,
    /// The anchor transaction reached `confirmed` commitment.
    Confirmed,
    /// The anchor transaction is finalized.
    Finalized,
    /// Dead-lettered after too many attempts or a permanent error; an operator may requeue.
    Failed,
    /// Backfilled by the reconciler from an anchor found on chain with no row.
    Recovered,
    /// The revocation memo itself is anchored.
    Revoked,
}

impl CredentialStatus {
    pub const ALL: [CredentialStatus; 7] = [
        CredentialStatus::Queued,
        CredentialStatus::Submitted,
        CredentialStatus::Confirmed,
        CredentialStatus::Finalized,
        CredentialStatus::Failed,
        CredentialStatus::Recovered,
        CredentialStatus::Revoked,
    ];

    /// The stable text stored in Postgres and shown by the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialStatus::Queued => "queued",
            CredentialStatus::Submitted => "submitted",
            CredentialStatus::Confirmed => "confirmed",
            CredentialStatus::Finalized => "finalized",
            CredentialStatus::Failed => "failed",
            CredentialStatus::Recovered => "recovered",
            CredentialStatus::Revoked => "revoked",
        }
    }

    /// True when a finalized anchor of the credential exists on chain (a verifier can rely on
    /// it). A revoked credential was anchored before being revoked.
    pub const fn is_anchored(self) -> bool {
        matches!(
            self,
            CredentialStatus::Finalized | CredentialStatus::Recovered | CredentialStatus::Revoked
        )
    }

    /// True when the relay has nothing more to do for the credential: it is anchored, or
    /// dead-lettered (only an operator's `Requeued` brings a failed row back). `Submitted` and
    /// `Confirmed` are not terminal: the relay still tracks them to finality.
    pub const fn is_terminal_for_relay(self) -> bool {
        matches!(
            self,
            CredentialStatus::Finalized
                | CredentialStatus::Failed
                | CredentialStatus::Recovered
                | CredentialStatus::Revoked
        )
    }

    /// The status a credential is created with when the reconciler backfills it from the
    /// chain. `Backfilled` is a creation, never a transition of an existing row.
    pub const fn initial_for_backfill() -> CredentialStatus {
        CredentialStatus::Recovered
    }
}

impl fmt::Display for CredentialStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown credential status {0:?}")]
pub struct UnknownStatus(String);

impl FromStr for CredentialStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        CredentialStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            // Bound the echoed text: it may come from a request.
            .ok_or_else(|| UnknownStatus(s.chars().take(32).collect()))
    }
}

/// Where one stored anchoring transaction is (`anchor_transactions.status`). A job has at
/// most one *live* transaction — one that may still land — and the relay never signs a
/// second while it has one (`domain::anchoring`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnchorTxStatus {
    /// Stored before its first send; maybe sent.
    Signed,
    /// The RPC accepted it.
    Sent,
    /// Seen at `confirmed` commitment.
    Confirmed,
    /// Finalized: the anchor.
    Finalized,
    /// The finalized block height passed its last valid height and it never landed.
    Expired,
    /// It landed with an error: it anchors nothing.
    Failed,
}

impl AnchorTxStatus {
    pub const ALL: [AnchorTxStatus; 6] = [
        AnchorTxStatus::Signed,
        AnchorTxStatus::Sent,
        AnchorTxStatus::Confirmed,
        AnchorTxStatus::Finalized,
        AnchorTxStatus::Expired,
        AnchorTxStatus::Failed,
    ];

    /// The statuses of a transaction that may still land.
    pub const LIVE: [AnchorTxStatus; 3] = [
        AnchorTxStatus::Signed,
        AnchorTxStatus::Sent,
        AnchorTxStatus::Confirmed,
    ];

    /// [`Self::LIVE`] as an SQL list, for `status IN <list>`. A literal rather than a bound
    /// array because the partial unique indexes (`migrations/V2`, `V4`) carry this same
    /// predicate, and PostgreSQL uses a partial index only for a predicate it can prove at
    /// plan time. A test keeps the three in step.
    pub const LIVE_SQL: &'static str = "('signed', 'sent', 'confirmed')";

    pub fn is_live(self) -> bool {
        Self::LIVE.contains(&self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AnchorTxStatus::Signed => "signed",
            AnchorTxStatus::Sent => "sent",
            AnchorTxStatus::Confirmed => "confirmed",
            AnchorTxStatus::Finalized => "finalized",
            AnchorTxStatus::Expired => "expired",
            AnchorTxStatus::Failed => "failed",
        }
    }
}

/// Something that happened to one stored anchor transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnchorTxEvent {
    /// The RPC accepted its first send.
    Sent,
    /// The relay saw it at `confirmed` commitment.
    Confirmed,
    /// Seen `finalized` on chain, by the relay tracking it or by the reconciler in the
    /// anchoring key's history: the chain is the truth, whatever the row said (the
    /// reconciler may have retired it as superseded a moment before the relay looked).
    Finalized,
    /// The relay proved it cannot land: it failed on chain, or its blockhash expired below
    /// the finalized height (`domain::anchoring`).
    Failed,
    Expired,
    /// The reconciler found another transaction of the same job finalized: this one is
    /// retired so the relay never rebroadcasts it.
    Superseded,
}

impl AnchorTxEvent {
    pub const ALL: [AnchorTxEvent; 6] = [
        AnchorTxEvent::Sent,
        AnchorTxEvent::Confirmed,
        AnchorTxEvent::Finalized,
        AnchorTxEvent::Failed,
        AnchorTxEvent::Expired,
        AnchorTxEvent::Superseded,
    ];
}

impl AnchorTxStatus {
    /// The status after `event`, or `None` if the event is not legal in `self`.
    pub fn after(self, event: AnchorTxEvent) -> Option<AnchorTxStatus> {
        use AnchorTxEvent as E;
        use AnchorTxStatus as S;
        Some(match (self, event) {
            (S::Signed, E::Sent) => S::Sent,
            (S::Signed | S::Sent, E::Confirmed) => S::Confirmed,
            (_, E::Finalized) => S::Finalized,
            (S::Signed | S::Sent | S::Confirmed, E::Failed) => S::Failed,
            (S::Signed | S::Sent | S::Confirmed, E::Expired | E::Superseded) => S::Expired,
            _ => return None,
        })
    }

    /// The statuses from which `event` is legal, for the store's guarded updates (explicit,
    /// so a test can check them against `after`).
    pub const fn sources(event: AnchorTxEvent) -> &'static [AnchorTxStatus] {
        use AnchorTxEvent as E;
        use AnchorTxStatus as S;
        match event {
            E::Sent => &[S::Signed],
            E::Confirmed => &[S::Signed, S::Sent],
            E::Finalized => &Self::ALL,
            E::Failed | E::Expired | E::Superseded => &Self::LIVE,
        }
    }
}

impl fmt::Display for AnchorTxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AnchorTxStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        AnchorTxStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.chars().take(32).collect()))
    }
}

/// Something that happened to a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusEvent {
    /// The relay stored and sent a signed anchor transaction (also: rebroadcast, re-sign).
    TxSubmitted,
    /// The anchor transaction reached `confirmed`.
    TxConfirmed,
    /// The anchor transaction reached `finalized`.
    TxFinalized,
    /// Max attempts reached or a permanent error.
    DeadLettered,
    /// An operator retries a failed credential.
    Requeued,
    /// The reconciler saw the finalized anchor on chain.
    ObservedOnChain,
    /// The reconciler created the row from the chain (creation only, see
    /// `CredentialStatus::initial_for_backfill`).
    Backfilled,
    /// The revocation memo is anchored.
    RevocationAnchored,
}

impl StatusEvent {
    pub const ALL: [StatusEvent; 8] = [
        StatusEvent::TxSubmitted,
        StatusEvent::TxConfirmed,
        StatusEvent::TxFinalized,
        StatusEvent::DeadLettered,
        StatusEvent::Requeued,
        StatusEvent::ObservedOnChain,
        StatusEvent::Backfilled,
        StatusEvent::RevocationAnchored,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            StatusEvent::TxSubmitted => "tx_submitted",
            StatusEvent::TxConfirmed => "tx_confirmed",
            StatusEvent::TxFinalized => "tx_finalized",
            StatusEvent::DeadLettered => "dead_lettered",
            StatusEvent::Requeued => "requeued",
            StatusEvent::ObservedOnChain => "observed_on_chain",
            StatusEvent::Backfilled => "backfilled",
            StatusEvent::RevocationAnchored => "revocation_anchored",
        }
    }

    /// The status every legal application of this event leads to (each event has exactly
    /// one target), or `None` for `Backfilled`, which never applies to an existing row.
    pub const fn target(self) -> Option<CredentialStatus> {
        use CredentialStatus as S;
        match self {
            StatusEvent::TxSubmitted => Some(S::Submitted),
            StatusEvent::TxConfirmed => Some(S::Confirmed),
            StatusEvent::TxFinalized | StatusEvent::ObservedOnChain => Some(S::Finalized),
            StatusEvent::Requeued => Some(S::Queued),
            StatusEvent::DeadLettered => Some(S::Failed),
            StatusEvent::RevocationAnchored => Some(S::Revoked),
            StatusEvent::Backfilled => None,
        }
    }
}

impl fmt::Display for StatusEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event that is not legal in the credential's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event {event} is not allowed for a credential in status {from}")]
pub struct InvalidTransition {
    pub from: CredentialStatus,
    pub event: StatusEvent,
}

/// The status after `event`, or `InvalidTransition` if the event is not legal in `from`.
pub fn transition(
    from: CredentialStatus,
    event: StatusEvent,
) -> Result<CredentialStatus, InvalidTransition> {
    use CredentialStatus as S;
    use StatusEvent as E;
    let to = match (from, event) {
        // Re-submitting (rebroadcast of the stored bytes, or a re-sign) is idempotent.
        (S::Queued | S::Submitted, E::TxSubmitted) => S::Submitted,
        (S::Submitted | S::Confirmed, E::TxConfirmed) => S::Confirmed,
        (S::Submitted | S::Confirmed | S::Finalized, E::TxFinalized) => S::Finalized,
        (S::Queued | S::Submitted, E::DeadLettered) => S::Failed,
        (S::Failed, E::Requeued) => S::Queued,
        // The chain is the truth: an anchor seen finalized settles any non-anchored state,
        // including a dead-lettered one (the relay sent it, then gave up too early).
        (
            S::Queued | S::Submitted | S::Confirmed | S::Failed | S::Finalized,
            E::ObservedOnChain,
        ) => S::Finalized,
        (S::Finalized | S::Recovered | S::Revoked, E::RevocationAnchored) => S::Revoked,
        _ => return Err(InvalidTransition { from, event }),
    };
    Ok(to)
}

/// The statuses from which `event` is legal, for the store's guarded updates. Kept as explicit
/// lists (not derived from `transition`) so a test can check the two agree.
pub const fn allowed_sources(event: StatusEvent) -> &'static [CredentialStatus] {
    use CredentialStatus as S;
    match event {
        StatusEvent::TxSubmitted => &[S::Queued, S::Submitted],
        StatusEvent::TxConfirmed => &[S::Submitted, S::Confirmed],
        StatusEvent::TxFinalized => &[S::Submitted, S::Confirmed, S::Finalized],
        StatusEvent::DeadLettered => &[S::Queued, S::Submitted],
        StatusEvent::Requeued => &[S::Failed],
        StatusEvent::ObservedOnChain => &[
            S::Queued,
            S::Submitted,
            S::Confirmed,
            S::Failed,
            S::Finalized,
        ],
        StatusEvent::Backfilled => &[],
        StatusEvent::RevocationAnchored => &[S::Finalized, S::Recovered, S::Revoked],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn anchor_tx_sources_are_exactly_the_statuses_where_the_event_is_legal() {
        for event in AnchorTxEvent::ALL {
            let legal: Vec<AnchorTxStatus> = AnchorTxStatus::ALL
                .into_iter()
                .filter(|s| s.after(event).is_some())
                .collect();
            let mut sources = AnchorTxStatus::sources(event).to_vec();
            sources.sort_by_key(|s| s.as_str());
            let mut legal = legal;
            legal.sort_by_key(|s| s.as_str());
            assert_eq!(sources, legal, "{event:?}");
        }
        // A transaction that is no longer live never comes back to life except by the chain.
        for status in AnchorTxStatus::ALL.into_iter().filter(|s| !s.is_live()) {
            for event in AnchorTxEvent::ALL {
                if let Some(next) = status.after(event) {
                    assert!(
                        !next.is_live(),
                        "{status:?} --{event:?}--> {next:?} revives a transaction"
                    );
                }
            }
        }
    }

    #[test]
    fn anchor_tx_statuses_round_trip_and_the_live_sql_list_is_the_live_set() {
        for status in AnchorTxStatus::ALL {
            assert_eq!(status.as_str().parse::<AnchorTxStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::from(status.as_str())
            );
        }
        let listed: Vec<String> = AnchorTxStatus::LIVE
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        assert_eq!(AnchorTxStatus::LIVE_SQL, format!("({})", listed.join(", ")));
        let live: Vec<_> = AnchorTxStatus::ALL
            .into_iter()
            .filter(|s| s.is_live())
            .collect();
        assert_eq!(live, AnchorTxStatus::LIVE);
        // The partial unique indexes "one live transaction per job" carry the same list.
        for migration in ["V2__anchor_transactions.sql", "V4__batches.sql"] {
            let path = format!(
                "{}/../../migrations/{migration}",
                env!("CARGO_MANIFEST_DIR")
            );
            let sql = std::fs::read_to_string(&path).unwrap();
            assert!(
                sql.contains(&format!("WHERE status IN {}", AnchorTxStatus::LIVE_SQL)),
                "{migration}"
            );
        }
        assert!("pending".parse::<AnchorTxStatus>().is_err());
    }

    use super::*;
    use CredentialStatus::*;
    use StatusEvent::*;

    /// Every (status, event) pair, written out by hand. `None` = invalid transition.
    const TABLE: [(CredentialStatus, StatusEvent, Option<CredentialStatus>); 56] = [
        (Queued, TxSubmitted, Some(Submitted)),
        (Queued, TxConfirmed, None),
        (Queued, TxFinalized, None),
        (Queued, DeadLettered, Some(Failed)),
        (Queued, Requeued, None),
        (Queued, ObservedOnChain, Some(Finalized)),
        (Queued, Backfilled, None),
        (Queued, RevocationAnchored, None),
        (Submitted, TxSubmitted, Some(Submitted)),
        (Submitted, TxConfirmed, Some(Confirmed)),
        (Submitted, TxFinalized, Some(Finalized)),
        (Submitted, DeadLettered, Some(Failed)),
        (Submitted, Requeued, None),
        (Submitted, ObservedOnChain, Some(Finalized)),
        (Submitted, Backfilled, None),
        (Submitted, RevocationAnchored, None),
        (Confirmed, TxSubmitted, None),
        (Confirmed, TxConfirmed, Some(Confirmed)),
        (Confirmed, TxFinalized, Some(Finalized)),
        (Confirmed, DeadLettered, None),
        (Confirmed, Requeued, None),
        (Confirmed, ObservedOnChain, Some(Finalized)),
        (Confirmed, Backfilled, None),
        (Confirmed, RevocationAnchored, None),
        (Finalized, TxSubmitted, None),
        (Finalized, TxConfirmed, None),
        (Finalized, TxFinalized, Some(Finalized)),
        (Finalized, DeadLettered, None),
        (Finalized, Requeued, None),
        (Finalized, ObservedOnChain, Some(Finalized)),
        (Finalized, Backfilled, None),
        (Finalized, RevocationAnchored, Some(Revoked)),
        (Failed, TxSubmitted, None),
        (Failed, TxConfirmed, None),
        (Failed, TxFinalized, None),
        (Failed, DeadLettered, None),
        (Failed, Requeued, Some(Queued)),
        (Failed, ObservedOnChain, Some(Finalized)),
        (Failed, Backfilled, None),
        (Failed, RevocationAnchored, None),
        (Recovered, TxSubmitted, None),
        (Recovered, TxConfirmed, None),
        (Recovered, TxFinalized, None),
        (Recovered, DeadLettered, None),
        (Recovered, Requeued, None),
        (Recovered, ObservedOnChain, None),
        (Recovered, Backfilled, None),
        (Recovered, RevocationAnchored, Some(Revoked)),
        (Revoked, TxSubmitted, None),
        (Revoked, TxConfirmed, None),
        (Revoked, TxFinalized, None),
        (Revoked, DeadLettered, None),
        (Revoked, Requeued, None),
        (Revoked, ObservedOnChain, None),
        (Revoked, Backfilled, None),
        (Revoked, RevocationAnchored, Some(Revoked)),
    ];

    #[test]
    fn transition_table_is_exhaustive_and_exact() {
        let mut seen = std::collections::HashSet::new();
        for (from, event, expected) in TABLE {
            assert!(seen.insert((from, event)), "duplicate row {from} {event}");
            let actual = transition(from, event);
            match expected {
                Some(to) => assert_eq!(actual, Ok(to), "{from} --{event}-->"),
                None => assert_eq!(
                    actual,
                    Err(InvalidTransition { from, event }),
                    "{from} --{event}-->"
                ),
            }
        }
        assert_eq!(
            seen.len(),
            CredentialStatus::ALL.len() * StatusEvent::ALL.len()
        );
    }

    #[test]
    fn allowed_sources_and_target_agree_with_transition() {
        for event in StatusEvent::ALL {
            for from in CredentialStatus::ALL {
                let allowed = allowed_sources(event).contains(&from);
                match transition(from, event) {
                    Ok(to) => {
                        assert!(allowed, "{from} missing from allowed_sources({event})");
                        assert_eq!(event.target(), Some(to), "{event}");
                    }
                    Err(_) => assert!(!allowed, "{from} wrongly in allowed_sources({event})"),
                }
            }
        }
    }

    #[test]
    fn backfill_is_creation_only() {
        assert_eq!(CredentialStatus::initial_for_backfill(), Recovered);
        assert!(allowed_sources(Backfilled).is_empty());
        assert_eq!(Backfilled.target(), None);
        assert!(CredentialStatus::initial_for_backfill().is_anchored());
    }

    #[test]
    fn status_text_round_trips() {
        for status in CredentialStatus::ALL {
            assert_eq!(status.as_str().parse::<CredentialStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{}\"", status.as_str())
            );
            assert_eq!(status.to_string(), status.as_str());
        }
        assert!("Queued".parse::<CredentialStatus>().is_err());
        assert!("pending_blockchain".parse::<CredentialStatus>().is_err());
        for event in StatusEvent::ALL {
            assert_eq!(
                serde_json::to_string(&event).unwrap(),
                format!("\"{}\"", event.as_str())
            );
        }
    }

    #[test]
    fn anchored_and_relay_terminal_sets() {
        let anchored: Vec<_> = CredentialStatus::ALL
            .into_iter()
            .filter(|s| s.is_anchored())
            .collect();
        assert_eq!(anchored, vec![Finalized, Recovered, Revoked]);
        let terminal: Vec<_> = CredentialStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal_for_relay())
            .collect();
        assert_eq!(terminal, vec![Finalized, Failed, Recovered, Revoked]);
    }

    #[test]
    fn invalid_transition_names_both_sides() {
        let err = transition(Revoked, TxSubmitted).unwrap_err();
        assert_eq!(
            err.to_string(),
            "event tx_submitted is not allowed for a credential in status revoked"
        );
    }
}
