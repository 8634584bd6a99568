//! Embedded SQL migrations (refinery) from the workspace's `migrations/` folder.
//!
//! Run at issuer-api start-up and by the `migrate` commands. Replicas starting together are
//! serialised by a session advisory lock so two runners never apply the same file.

use crate::{Store, StoreError};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Arbitrary constant naming the migration lock (pg advisory locks are keyed by i64).
const MIGRATION_LOCK_KEY: i64 = 0x6361_6d69_6772_6174; // "camigrat"

impl Store {
    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let mut object = self.client().await?;
        let client: &mut tokio_postgres::Client = &mut object;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await?;
        let report = embedded::migrations::runner().run_async(client).await;
        // Unlock even when the run failed; a dropped connection releases it anyway.
        let unlock = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
            .await;
        let report = report?;
        unlock?;
        Ok(report.applied_migrations().len())
    }

    /// Applies migrations up to and including `version` only. For upgrade tests: they build
    /// the schema an older release ran, fill it the way that release did, then `migrate`.
    pub async fn migrate_to(&self, version: u32) -> Result<usize, StoreError> {
        let mut object = self.client().await?;
        let client: &mut tokio_postgres::Client = &mut object;
        let report = embedded::migrations::runner()
            .set_target(refinery::Target::Version(version))
            .run_async(client)
            .await?;
        Ok(report.applied_migrations().len())
    }

    /// True when every embedded migration has been applied (readiness: a pod running newer
    /// code than the schema must not take traffic).
    pub async fn migrations_current(&self) -> Result<bool, StoreError> {
        let latest_embedded = embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| m.version())
            .max()
            .unwrap_or(0);
        let mut object = self.client().await?;
        let client: &mut tokio_postgres::Client = &mut object;
        let applied = embedded::migrations::runner()
            .get_last_applied_migration_async(client)
            .await?;
        Ok(applied.map(|m| m.version()).unwrap_or(0) >= latest_embedded)
    }
}
