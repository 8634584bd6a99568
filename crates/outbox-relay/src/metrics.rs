//! The relay's Prometheus metrics (names are part of the alerting contract, see deploy/).

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry,
};
use service_shell::probes::BacklogGauges;

#[derive(Clone)]
pub struct RelayMetrics {
    pub backlog: BacklogGauges,
    pub end_to_end: Histogram,
    pub sends: IntCounterVec,
    pub steps: IntCounterVec,
    pub rebroadcasts: IntCounter,
    pub dead_letters: IntCounter,
    pub lamports_spent: IntCounter,
    pub pass_duration: Histogram,
    pub last_success: Gauge,
    pub batches_sealed: IntCounter,
    pub credentials_batched: IntCounter,
    /// Revocation lists (`ca1:v`) sealed.
    pub revocation_lists_sealed: IntCounter,
    /// New transactions deferred because their issuer reached its spend budget.
    pub spend_deferrals: IntCounterVec,
    /// Share of each issuer's hourly and daily lamport budget used (`domain::spend::budget_used`),
    /// for the issuers whose transactions the last pass priced.
    pub spend_budget_used: GaugeVec,
}

impl RelayMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            backlog: BacklogGauges::register(registry)?,
            end_to_end: Histogram::with_opts(
                HistogramOpts::new(
                    "outbox_end_to_end_seconds",
                    "Time from credential commit to its anchor being finalized",
                )
                .buckets(vec![
                    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0,
                ]),
            )?,
            sends: IntCounterVec::new(
                Opts::new("relay_sends_total", "Anchor transaction sends by result"),
                &["result"],
            )?,
            steps: IntCounterVec::new(
                Opts::new("relay_steps_total", "Job steps taken by the relay, by step"),
                &["step"],
            )?,
            rebroadcasts: IntCounter::new(
                "relay_rebroadcasts_total",
                "Stored transactions sent again (same bytes, same signature)",
            )?,
            dead_letters: IntCounter::new("relay_dead_letters_total", "Jobs moved to failed")?,
            lamports_spent: IntCounter::new(
                "relay_lamports_spent_total",
                "Fees of finalized anchor transactions, in lamports",
            )?,
            pass_duration: Histogram::with_opts(HistogramOpts::new(
                "relay_pass_duration_seconds",
                "Duration of one claim-and-advance pass",
            ))?,
            last_success: Gauge::new(
                "relay_last_success_timestamp_seconds",
                "Unix time of the last pass that completed without error",
            )?,
            batches_sealed: IntCounter::new(
                "relay_batches_sealed_total",
                "Merkle batches sealed (members and root fixed)",
            )?,
            credentials_batched: IntCounter::new(
                "relay_batched_credentials_total",
                "Credentials sealed into Merkle batches",
            )?,
            revocation_lists_sealed: IntCounter::new(
                "relay_revocation_lists_sealed_total",
                "Revocation lists (ca1:v memos, up to ten revocations each) sealed",
            )?,
            spend_deferrals: IntCounterVec::new(
                Opts::new(
                    "relay_spend_deferrals_total",
                    "New anchor transactions deferred because the issuer reached its lamport budget",
                ),
                &["issuer"],
            )?,
            spend_budget_used: GaugeVec::new(
                Opts::new(
                    "relay_spend_budget_used_ratio",
                    "Share of the issuer's lamport budget used in the trailing window (1 = all of it)",
                ),
                &["issuer", "window"],
            )?,
        };
        registry.register(Box::new(m.spend_deferrals.clone()))?;
        registry.register(Box::new(m.spend_budget_used.clone()))?;
        registry.register(Box::new(m.batches_sealed.clone()))?;
        registry.register(Box::new(m.revocation_lists_sealed.clone()))?;
        registry.register(Box::new(m.credentials_batched.clone()))?;
        registry.register(Box::new(m.end_to_end.clone()))?;
        registry.register(Box::new(m.sends.clone()))?;
        registry.register(Box::new(m.steps.clone()))?;
        registry.register(Box::new(m.rebroadcasts.clone()))?;
        registry.register(Box::new(m.dead_letters.clone()))?;
        registry.register(Box::new(m.lamports_spent.clone()))?;
        registry.register(Box::new(m.pass_duration.clone()))?;
        registry.register(Box::new(m.last_success.clone()))?;
        Ok(m)
    }
}
