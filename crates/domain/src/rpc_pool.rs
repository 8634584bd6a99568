//! Several RPC endpoints (issue #23): which one to ask first, and what their answers
//! together may be taken to mean.
//!
//! One provider that stalls, refuses or falls behind must not stop anchoring, and one that
//! lies must not be able to make the relay anchor twice, mark an anchor final that never
//! landed, or make a verifier say valid. The rules, each a pure function the `chain` adapter
//! executes:
//!
//! - [`rank`]: the order endpoints are tried in. Healthy ones first (in the operator's
//!   order), then slow, then lagging (finalized slot more than a margin behind the best),
//!   then failing ones (last call failed, or `getHealth` said so), which are still tried
//!   last so that an outage of every other endpoint finds the one that came back.
//! - [`merged_status`]: a signature's status from every endpoint that answered. Unknown only
//!   when a quorum of the configured endpoints answered and none has seen it (an endpoint
//!   that hides a landed transaction cannot make the relay sign a second one); final or
//!   failed only when a quorum agree (an endpoint cannot make a transaction that never
//!   landed final, nor a landed one failed, on its own); anything short of that is "seen,
//!   not settled", and the relay waits.
//! - [`expiry_height`]: the finalized block height an expiry is judged against. The lowest
//!   any endpoint reports, and none unless a quorum of the configured endpoints answered: an
//!   endpoint cannot hurry an expiry (the only path to a second signature) by inflating it.
//! - [`agreed`], [`majority`]: a value read for a verdict must be the same from a quorum of
//!   endpoints and a strict majority of those asked; short of that it is a disagreement
//!   (inconclusive), never a verdict.
//! - [`best_slot`]: lag is measured against the second highest finalized slot, so one
//!   endpoint reporting a slot far ahead cannot make the honest ones lag.
//!
//! What this cannot stop: when every endpoint but a lying one is unreachable, the lying one
//! is all there is for sends and plain reads; a quorum of answers is asked for where a wrong
//! answer costs most (absence, expiry, finality, failure, verdicts), so that case is a pause
//! there, not a wrong decision. With two endpoints, one that is down pauses those decisions
//! too: three tolerate one endpoint down or lying.

/// What the pool knows of one endpoint, from its calls and the health probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointHealth {
    /// What `getHealth` said at the last probe (`None`: not probed yet).
    pub reported_healthy: Option<bool>,
    /// Calls failed in a row for a reason of the endpoint's (transport, timeout, 5xx, rate
    /// limit, a node behind); any success resets it.
    pub consecutive_failures: u32,
    /// Its newest finalized slot at the last probe.
    pub finalized_slot: Option<u64>,
    /// Moving average of its successful calls' latency, in milliseconds.
    pub latency_ms: Option<u64>,
}

/// How an endpoint stands, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Standing {
    Healthy,
    /// Answers, but slower on average than the configured bound.
    Slow,
    /// Its finalized slot is more than the margin behind the best endpoint's.
    Lagging,
    /// Its last call failed, or `getHealth` said it is unhealthy.
    Failing,
}

impl Standing {
    /// Stable snake_case name (metrics, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Healthy => "healthy",
            Standing::Slow => "slow",
            Standing::Lagging => "lagging",
            Standing::Failing => "failing",
        }
    }
}

/// Thresholds of [`standing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolPolicy {
    /// Finalized slots an endpoint may trail the best one by before it counts as lagging.
    pub lag_margin_slots: u64,
    /// Average latency above which an endpoint counts as slow.
    pub slow_ms: u64,
}

/// How `endpoint` stands among endpoints whose best finalized slot is `best_slot`.
pub fn standing(endpoint: &EndpointHealth, best_slot: Option<u64>, policy: PoolPolicy) -> Standing {
    if endpoint.consecutive_failures > 0 || endpoint.reported_healthy == Some(false) {
        return Standing::Failing;
    }
    if let (Some(slot), Some(best)) = (endpoint.finalized_slot, best_slot) {
        if slot.saturating_add(policy.lag_margin_slots) < best {
            return Standing::Lagging;
        }
    }
    if endpoint.latency_ms.is_some_and(|ms| ms > policy.slow_ms) {
        return Standing::Slow;
    }
    Standing::Healthy
}

/// The finalized slot lag is measured against: the second highest among endpoints that are
/// not failing (the highest when only one reports). Not the highest: one endpoint reporting a
/// slot far ahead would make every honest one lag and itself the first asked.
pub fn best_slot(endpoints: &[EndpointHealth]) -> Option<u64> {
    let mut slots: Vec<u64> = endpoints
        .iter()
        .filter(|e| e.consecutive_failures == 0 && e.reported_healthy != Some(false))
        .filter_map(|e| e.finalized_slot)
        .collect();
    slots.sort_unstable_by(|a, b| b.cmp(a));
    slots.get(1).or(slots.first()).copied()
}

/// Each endpoint's standing, in configuration order.
pub fn standings(endpoints: &[EndpointHealth], policy: PoolPolicy) -> Vec<Standing> {
    let best = best_slot(endpoints);
    endpoints
        .iter()
        .map(|e| standing(e, best, policy))
        .collect()
}

/// The order to try endpoints in (indexes into `endpoints`): by standing, then failing ones
/// by fewest failures in a row, then in configuration order (the operator's preference). Every
/// endpoint appears exactly once.
pub fn rank(endpoints: &[EndpointHealth], policy: PoolPolicy) -> Vec<usize> {
    let standings = standings(endpoints, policy);
    let mut order: Vec<usize> = (0..endpoints.len()).collect();
    order.sort_by_key(|&i| {
        let failures = match standings[i] {
            Standing::Failing => endpoints[i].consecutive_failures,
            _ => 0,
        };
        (standings[i], failures, i)
    });
    order
}

/// How many answers a decision that a wrong answer would make costly needs: two when two or
/// more endpoints are configured (one to catch the other), else the one there is.
pub fn quorum(configured: usize) -> usize {
    configured.min(2)
}

/// A signature's status from the `reports` of the endpoints that answered, out of
/// `configured`: each `None` (unknown to that endpoint) or its level (`L` ordered weakest
/// first: processed, confirmed, finalized) and whether the transaction failed. `None` is
/// "unknown", the only answer that lets the relay consider a new signature; anything else is
/// a level and a failure flag:
///
/// - Fewer than [`quorum`]`(configured)` answers: `floor` (processed), not failed, whatever
///   they say. Neither absence nor finality nor failure rests on one endpoint's word.
/// - Unknown only when a quorum answered and none has seen it.
/// - Seen, but the answers differ on whether it failed: `floor`, not failed (wait).
/// - Otherwise the highest level a quorum of the answers reach, and the failure they agree
///   on; seen by fewer than a quorum: `floor`.
///
/// So one endpoint can neither hide a transaction another has seen, nor make one final or
/// failed alone; two that contradict each other pause the decision, a third outvotes a liar.
pub fn merged_status<L: Ord + Copy>(
    reports: &[Option<(L, bool)>],
    configured: usize,
    floor: L,
) -> Option<(L, bool)> {
    let needed = quorum(configured.max(reports.len()));
    if reports.len() < needed {
        return Some((floor, false));
    }
    let seen: Vec<(L, bool)> = reports.iter().flatten().copied().collect();
    let first = *seen.first()?;
    if seen.iter().any(|(_, failed)| *failed != first.1) {
        return Some((floor, false));
    }
    let mut levels: Vec<L> = seen.iter().map(|(l, _)| *l).collect();
    levels.sort_unstable_by(|a, b| b.cmp(a));
    Some(match levels.get(needed.saturating_sub(1)) {
        Some(level) => (*level, first.1),
        None => (floor, false),
    })
}

/// The finalized block height to judge expiry against, from the `heights` the endpoints
/// answered out of `configured`: the lowest, and 0 (nothing has expired) when fewer than
/// [`quorum`] answered.
pub fn expiry_height(heights: &[u64], configured: usize) -> u64 {
    if heights.len() < quorum(configured).max(1) {
        return 0;
    }
    heights.iter().copied().min().unwrap_or(0)
}

/// Answers that differ: the value cannot be trusted for a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disagreement {
    /// Indexes (into the answers) of the first two that differ.
    pub first: usize,
    pub second: usize,
}

/// The value every answer agrees on, or the first two that differ. `None` when there is no
/// answer at all.
pub fn agreed<T: PartialEq>(answers: &[T]) -> Result<Option<&T>, Disagreement> {
    let Some(first) = answers.first() else {
        return Ok(None);
    };
    match answers.iter().position(|a| a != first) {
        Some(second) => Err(Disagreement { first: 0, second }),
        None => Ok(Some(first)),
    }
}

/// The value a strict majority of `answers` give, and at least [`quorum`]`(configured)` of
/// them: two honest endpoints outvote one liar among three, and a tie is no answer. `None`
/// when there is none.
pub fn majority<T: PartialEq>(answers: &[T], configured: usize) -> Option<&T> {
    let needed = quorum(configured).max(answers.len() / 2 + 1);
    answers
        .iter()
        .find(|candidate| answers.iter().filter(|a| a == candidate).count() >= needed)
}

/// A moving average of latency: the new sample weighs a quarter, so one slow call does not
/// make an endpoint slow, a run of them does.
pub fn next_latency(previous: Option<u64>, sample_ms: u64) -> u64 {
    match previous {
        None => sample_ms,
        Some(p) => (p.saturating_mul(3).saturating_add(sample_ms)) / 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: PoolPolicy = PoolPolicy {
        lag_margin_slots: 100,
        slow_ms: 2_000,
    };

    fn healthy(slot: u64) -> EndpointHealth {
        EndpointHealth {
            reported_healthy: Some(true),
            consecutive_failures: 0,
            finalized_slot: Some(slot),
            latency_ms: Some(5),
        }
    }

    #[test]
    fn standings_of_each_kind() {
        let failing = EndpointHealth {
            consecutive_failures: 1,
            ..healthy(1_000)
        };
        let unhealthy = EndpointHealth {
            reported_healthy: Some(false),
            ..healthy(1_000)
        };
        let slow = EndpointHealth {
            latency_ms: Some(2_001),
            ..healthy(1_000)
        };
        let endpoints = [
            healthy(1_000),
            failing,
            unhealthy,
            healthy(899),
            healthy(900),
            slow,
        ];
        assert_eq!(
            standings(&endpoints, POLICY),
            vec![
                Standing::Healthy,
                Standing::Failing,
                Standing::Failing,
                Standing::Lagging,
                Standing::Healthy,
                Standing::Slow,
            ]
        );
        assert_eq!(rank(&endpoints, POLICY), vec![0, 4, 5, 3, 2, 1]);
    }

    #[test]
    fn a_failing_endpoint_far_ahead_does_not_make_the_others_lag() {
        // A lying endpoint reporting a slot far ahead is ignored once it fails; while it
        // answers, it can only push the others down the order, never out of it.
        let liar = EndpointHealth {
            consecutive_failures: 2,
            ..healthy(u64::MAX)
        };
        assert_eq!(
            standings(&[healthy(10), liar], POLICY),
            vec![Standing::Healthy, Standing::Failing]
        );
    }

    #[test]
    fn a_status_needs_a_quorum_to_be_final_failed_or_unknown() {
        // 0 processed, 1 confirmed, 2 finalized; `true`: the transaction failed
        let m = |r: &[Option<(u8, bool)>], configured| merged_status(r, configured, 0);
        let (fin, fin_err) = (Some((2, false)), Some((2, true)));
        assert_eq!(m(&[], 1), Some((0, false)));
        assert_eq!(m(&[None], 1), None);
        assert_eq!(m(&[fin], 1), fin);
        // Two configured, one answered: nothing rests on it, whatever it says.
        for only in [None, fin, fin_err] {
            assert_eq!(m(&[only], 2), Some((0, false)));
        }
        assert_eq!(m(&[None, None], 2), None);
        // One of two says final, the other does not know it: seen, not final.
        assert_eq!(m(&[fin, None], 2), Some((0, false)));
        assert_eq!(m(&[fin, Some((1, false))], 2), Some((1, false)));
        assert_eq!(m(&[fin, fin], 2), fin);
        // They differ on the failure: wait.
        assert_eq!(m(&[fin_err, fin], 2), Some((0, false)));
        assert_eq!(m(&[fin_err, fin_err], 2), fin_err);
        // A third endpoint outvotes the one that hides it and the one that invents it.
        assert_eq!(m(&[None, fin, fin], 3), fin);
        assert_eq!(m(&[fin, None, None], 3), Some((0, false)));
        assert_eq!(m(&[fin, fin, None], 3), fin);
    }

    #[test]
    fn a_majority_and_a_quorum_or_no_answer() {
        assert_eq!(majority::<u8>(&[], 2), None);
        assert_eq!(majority(&[7], 1), Some(&7));
        assert_eq!(majority(&[7], 2), None);
        assert_eq!(majority(&[7, 8], 2), None);
        assert_eq!(majority(&[7, 7], 2), Some(&7));
        assert_eq!(majority(&[8, 7, 7], 3), Some(&7));
        assert_eq!(majority(&[8, 7, 7, 8], 4), None);
    }

    #[test]
    fn one_endpoint_far_ahead_does_not_make_the_others_lag() {
        let liar = healthy(u64::MAX / 2);
        assert_eq!(
            standings(&[liar, healthy(1_000), healthy(990)], POLICY),
            vec![Standing::Healthy, Standing::Healthy, Standing::Healthy]
        );
    }

    #[test]
    fn expiry_waits_for_a_quorum_and_takes_the_lowest_height() {
        assert_eq!(expiry_height(&[500], 1), 500);
        assert_eq!(expiry_height(&[500], 2), 0);
        assert_eq!(expiry_height(&[500, 400], 2), 400);
        assert_eq!(expiry_height(&[900, 400], 3), 400);
        assert_eq!(expiry_height(&[], 1), 0);
    }

    #[test]
    fn agreement_is_all_equal() {
        assert_eq!(agreed::<u8>(&[]), Ok(None));
        assert_eq!(agreed(&[3, 3, 3]), Ok(Some(&3)));
        assert_eq!(
            agreed(&[3, 3, 4]),
            Err(Disagreement {
                first: 0,
                second: 2
            })
        );
    }

    fn endpoint() -> impl Strategy<Value = EndpointHealth> {
        (
            proptest::option::of(any::<bool>()),
            0u32..4,
            proptest::option::of(0u64..10_000),
            proptest::option::of(0u64..5_000),
        )
            .prop_map(|(h, f, s, l)| EndpointHealth {
                reported_healthy: h,
                consecutive_failures: f,
                finalized_slot: s,
                latency_ms: l,
            })
    }

    proptest! {
        #[test]
        fn rank_is_a_permutation_ordered_by_standing(
            endpoints in proptest::collection::vec(endpoint(), 0..6)
        ) {
            let order = rank(&endpoints, POLICY);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            prop_assert_eq!(sorted, (0..endpoints.len()).collect::<Vec<_>>());
            let s = standings(&endpoints, POLICY);
            for pair in order.windows(2) {
                prop_assert!(s[pair[0]] <= s[pair[1]]);
            }
        }

        /// No decision rests on fewer than a quorum: unknown only when a quorum answered
        /// and none saw it; a level above the floor, or a failure, only when a quorum of the
        /// answers report at least that level and agree on the failure.
        #[test]
        fn no_single_endpoint_decides_finality_failure_or_absence(
            reports in proptest::collection::vec(
                proptest::option::of((0u8..3, any::<bool>())), 0..5),
            extra in 0usize..3,
        ) {
            let configured = reports.len() + extra;
            let q = quorum(configured);
            let merged = merged_status(&reports, configured, 0);
            let seen: Vec<(u8, bool)> = reports.iter().flatten().copied().collect();
            match merged {
                None => {
                    prop_assert!(reports.len() >= q && seen.is_empty());
                }
                Some((level, failed)) => {
                    if level > 0 || failed {
                        let backing = seen
                            .iter()
                            .filter(|(l, f)| *l >= level && *f == failed)
                            .count();
                        prop_assert!(backing >= q);
                        prop_assert!(seen.iter().all(|(_, f)| *f == failed));
                    }
                }
            }
        }

        /// No endpoint can raise the expiry height above what another reported.
        #[test]
        fn expiry_height_is_never_above_any_answer(
            heights in proptest::collection::vec(any::<u64>(), 0..5),
            configured in 1usize..5,
        ) {
            let h = expiry_height(&heights, configured);
            prop_assert!(heights.iter().all(|x| h <= *x));
            if heights.len() < quorum(configured) {
                prop_assert_eq!(h, 0);
            }
        }

        #[test]
        fn latency_average_stays_between_its_inputs(p in 0u64..1_000_000, s in 0u64..1_000_000) {
            let n = next_latency(Some(p), s);
            prop_assert!(n >= p.min(s) && n <= p.max(s));
        }
    }
}
