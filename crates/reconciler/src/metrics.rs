//! The reconciler's Prometheus metrics (names fixed by the reconciler issue).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use store::reconcile::FindingKind;

#[derive(Clone)]
pub struct ReconcilerMetrics {
    pub inconsistencies: IntCounterVec,
    pub duration: Histogram,
    pub backfilled: IntCounter,
    pub last_success: IntGauge,
    pub pages: IntCounter,
    pub transactions: IntCounter,
}

impl ReconcilerMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let inconsistencies = IntCounterVec::new(
            Opts::new(
                "diploma_inconsistencies_total",
                "New disagreements between PostgreSQL and the chain, by kind",
            ),
            &["kind"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "reconciliation_duration_seconds",
                "Wall time of one reconciliation run",
            )
            .buckets(vec![0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0]),
        )?;
        let backfilled = IntCounter::new(
            "reconciler_backfilled_total",
            "Credential rows re-created from on-chain anchors",
        )?;
        let last_success = IntGauge::new(
            "reconciler_last_success_timestamp_seconds",
            "Unix time of the last run that completed",
        )?;
        let pages = IntCounter::new(
            "reconciler_pages_scanned_total",
            "getSignaturesForAddress pages read",
        )?;
        let transactions = IntCounter::new(
            "reconciler_transactions_scanned_total",
            "History entries examined",
        )?;
        registry.register(Box::new(inconsistencies.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(backfilled.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        registry.register(Box::new(pages.clone()))?;
        registry.register(Box::new(transactions.clone()))?;
        // Every kind is exported from the start so dashboards see 0, not "no data".
        for kind in [
            FindingKind::PendingAnchored,
            FindingKind::MissingRow,
            FindingKind::Drift,
            FindingKind::Forged,
            FindingKind::FailedTx,
            FindingKind::RetiredKey,
            FindingKind::MalformedKey,
        ] {
            inconsistencies.with_label_values(&[kind.as_str()]);
        }
        Ok(Self {
            inconsistencies,
            duration,
            backfilled,
            last_success,
            pages,
            transactions,
        })
    }

    pub fn finding(&self, kind: FindingKind) {
        self.inconsistencies
            .with_label_values(&[kind.as_str()])
            .inc();
    }
}
