//! The relay's decision for one outbox job, as a pure function of what the database and
//! the chain say. All the "never anchor twice" reasoning lives here, where it is exhaustively
//! tested; the relay only gathers the inputs and carries the decision out.
//!
//! The rule that makes re-signing safe: a transaction whose blockhash expired can never be
//! processed once the *finalized* block height is past its `lastValidBlockHeight`; if the
//! signature is still unknown (with `searchTransactionHistory`) at that point, it never landed
//! and never will, so a new transaction cannot make a second anchor.

/// What the chain says about the live transaction's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainTxState {
    /// Unknown to the node, including its transaction history.
    NotFound,
    /// Landed but failed (`err != null`): it anchors nothing — but only a *finalized*
    /// failure is final: a failure seen on a minority fork could still be replaced by a
    /// success on the main fork while the blockhash is valid.
    Failed {
        error: String,
        finalized: bool,
    },
    /// Seen at `processed` commitment only.
    Processed {
        slot: u64,
    },
    Confirmed {
        slot: u64,
    },
    Finalized {
        slot: u64,
    },
}

/// The live (signed, maybe sent) transaction of a job, as stored before its first send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveTx {
    pub last_valid_block_height: u64,
}

/// What to do next for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorStep {
    /// No live transaction: build, sign, store, then send a new one.
    SignAndSend,
    /// The live transaction is unknown but may still land: send the same bytes again.
    Rebroadcast,
    /// The live transaction can never land: mark it expired, then sign a new one.
    ExpireAndResign,
    /// The live transaction landed with an error: record it, then sign a new one.
    RecordFailureAndResign { error: String },
    /// Seen but not yet confirmed: check again soon.
    Wait,
    /// Confirmed: record it and check again for finality.
    MarkConfirmed { slot: u64 },
    /// Finalized: complete the job.
    Finalize { slot: u64 },
}

/// `live`: the stored live transaction, if any. `state`: the chain's view of it (ignored
/// without a live transaction). `finalized_block_height`: the block height at `finalized`
/// commitment, read *after* the signature status, so an expiry decision never races a landing.
pub fn next_anchor_step(
    live: Option<LiveTx>,
    state: &ChainTxState,
    finalized_block_height: u64,
) -> AnchorStep {
    let Some(live) = live else {
        return AnchorStep::SignAndSend;
    };
    match state {
        ChainTxState::Finalized { slot } => AnchorStep::Finalize { slot: *slot },
        ChainTxState::Confirmed { slot } => AnchorStep::MarkConfirmed { slot: *slot },
        ChainTxState::Processed { .. } => AnchorStep::Wait,
        ChainTxState::Failed {
            error,
            finalized: true,
        } => AnchorStep::RecordFailureAndResign {
            error: error.clone(),
        },
        ChainTxState::Failed {
            finalized: false, ..
        } => AnchorStep::Wait,
        ChainTxState::NotFound if finalized_block_height > live.last_valid_block_height => {
            AnchorStep::ExpireAndResign
        }
        ChainTxState::NotFound => AnchorStep::Rebroadcast,
    }
}

/// How long to leave a job before looking at it again after `step`. A transaction just sent
/// is checked again after `track` (confirmation takes about a second); one that has just
/// become confirmed is left for `finality_hint` (finality is ~32 slots, ~13 s, later) and then
/// checked every `track`, so finality is noticed within `track` without a database write per
/// job every `track` for 13 s.
pub fn recheck_after(
    step: &AnchorStep,
    already_confirmed: bool,
    track: std::time::Duration,
    finality_hint: std::time::Duration,
) -> std::time::Duration {
    match step {
        AnchorStep::MarkConfirmed { .. } if !already_confirmed => finality_hint.max(track),
        _ => track,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_first_confirmation_waits_for_the_finality_hint_then_polls_at_track() {
        use std::time::Duration;
        let (t, h) = (Duration::from_millis(400), Duration::from_secs(10));
        let confirmed = AnchorStep::MarkConfirmed { slot: 1 };
        assert_eq!(recheck_after(&confirmed, false, t, h), h);
        assert_eq!(recheck_after(&confirmed, true, t, h), t);
        for step in [
            AnchorStep::SignAndSend,
            AnchorStep::Rebroadcast,
            AnchorStep::Wait,
        ] {
            assert_eq!(recheck_after(&step, false, t, h), t);
        }
        // A hint shorter than the track interval never makes checks more frequent.
        assert_eq!(recheck_after(&confirmed, false, t, Duration::ZERO), t);
    }

    const LIVE: Option<LiveTx> = Some(LiveTx {
        last_valid_block_height: 100,
    });

    #[test]
    fn without_a_live_tx_the_job_signs_a_new_one_whatever_the_chain_says() {
        for state in [
            ChainTxState::NotFound,
            ChainTxState::Finalized { slot: 1 },
            ChainTxState::Failed {
                error: "x".into(),
                finalized: true,
            },
        ] {
            assert_eq!(next_anchor_step(None, &state, 0), AnchorStep::SignAndSend);
        }
    }

    #[test]
    fn unknown_tx_is_rebroadcast_until_the_finalized_height_passes_its_last_valid_height() {
        assert_eq!(
            next_anchor_step(LIVE, &ChainTxState::NotFound, 50),
            AnchorStep::Rebroadcast
        );
        // Equal is still valid: the blockhash is usable up to and including lastValidBlockHeight.
        assert_eq!(
            next_anchor_step(LIVE, &ChainTxState::NotFound, 100),
            AnchorStep::Rebroadcast
        );
        assert_eq!(
            next_anchor_step(LIVE, &ChainTxState::NotFound, 101),
            AnchorStep::ExpireAndResign
        );
    }

    #[test]
    fn landed_transactions_are_followed_never_resigned() {
        assert_eq!(
            next_anchor_step(LIVE, &ChainTxState::Processed { slot: 5 }, 1_000),
            AnchorStep::Wait
        );
        assert_eq!(
            next_anchor_step(LIVE, &ChainTxState::Confirmed { slot: 5 }, 1_000),
            AnchorStep::MarkConfirmed { slot: 5 }
        );
        assert_eq!(
            next_anchor_step(LIVE, &ChainTxState::Finalized { slot: 5 }, 1_000),
            AnchorStep::Finalize { slot: 5 }
        );
        assert_eq!(
            next_anchor_step(
                LIVE,
                &ChainTxState::Failed {
                    error: "e".into(),
                    finalized: true
                },
                0
            ),
            AnchorStep::RecordFailureAndResign { error: "e".into() }
        );
        // A failure not yet finalized may be a minority fork: wait, do not re-sign.
        assert_eq!(
            next_anchor_step(
                LIVE,
                &ChainTxState::Failed {
                    error: "e".into(),
                    finalized: false
                },
                1_000
            ),
            AnchorStep::Wait
        );
    }

    proptest! {
        /// The safety property: a new transaction is only ever signed when the live one
        /// cannot anchor (it does not exist, failed, or can no longer land).
        #[test]
        fn never_resigns_while_the_live_tx_could_still_anchor(
            lvbh in 0u64..1_000, height in 0u64..1_000, slot in 0u64..1_000, kind in 0u8..6
        ) {
            let state = match kind {
                0 => ChainTxState::NotFound,
                1 => ChainTxState::Failed { error: "e".into(), finalized: true },
                5 => ChainTxState::Failed { error: "e".into(), finalized: false },
                2 => ChainTxState::Processed { slot },
                3 => ChainTxState::Confirmed { slot },
                _ => ChainTxState::Finalized { slot },
            };
            let live = Some(LiveTx { last_valid_block_height: lvbh });
            let step = next_anchor_step(live, &state, height);
            let resigns = matches!(step, AnchorStep::SignAndSend | AnchorStep::ExpireAndResign | AnchorStep::RecordFailureAndResign { .. });
            if resigns {
                let cannot_anchor = matches!(state, ChainTxState::Failed { finalized: true, .. })
                    || (state == ChainTxState::NotFound && height > lvbh);
                prop_assert!(cannot_anchor, "{state:?} {height} {lvbh} -> {step:?}");
            }
        }
    }
}
