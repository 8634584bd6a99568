//! The relay's Prometheus metrics (names are part of the alerting contract, see deploy/).

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

#[derive(Clone)]
pub struct RelayMetrics {
    pub outbox_pending: IntGauge,
    pub outbox_dead: IntGauge,
    pub outbox_oldest_pending_age: Gauge,
    pub end_to_end: Histogram,
    pub sends: IntCounterVec,
    pub steps: IntCounterVec,
    pub rebroadcasts: IntCounter,
    pub dead_letters: IntCounter,
    pub lamports_spent: IntCounter,
    pub pass_duration: Histogram,
    pub last_success: Gauge,
}

impl RelayMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            outbox_pending: IntGauge::new(
                "outbox_pending",
                "Open outbox jobs (not completed, not dead)",
            )?,
            outbox_dead: IntGauge::new(
                "outbox_dead_letter_jobs",
                "Dead-lettered jobs awaiting an operator",
            )?,
            outbox_oldest_pending_age: Gauge::new(
                "outbox_oldest_pending_age_seconds",
                "Age of the oldest open outbox job",
            )?,
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
        };
        registry.register(Box::new(m.outbox_pending.clone()))?;
        registry.register(Box::new(m.outbox_dead.clone()))?;
        registry.register(Box::new(m.outbox_oldest_pending_age.clone()))?;
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
