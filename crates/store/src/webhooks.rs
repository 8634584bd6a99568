//! Webhooks (issue #24): endpoints, the deliveries the V14 triggers record in the transaction
//! of each status change, and the delivery worker's lease per endpoint.
//!
//! Events are never written from Rust for credential changes: the triggers see every path
//! (relay, reconciler, operator requeue) in the very transaction of the change. This module
//! stores endpoints, a test event, and what `domain::webhook::after_attempt` decided about an
//! attempt.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::webhook::NextStep;
use domain::IssuerId;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{Store, StoreError};

/// An endpoint as stored (its secrets stay sealed).
#[derive(Debug, Clone)]
pub struct EndpointRecord {
    pub id: Uuid,
    pub issuer: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret_sealed: Vec<u8>,
    pub previous_sealed: Option<Vec<u8>>,
    pub previous_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str = "id, issuer_id, url, event_types, enabled, disabled_reason, \
    secret_sealed, previous_sealed, previous_expires_at, created_at, updated_at";

fn endpoint(row: &Row) -> Result<EndpointRecord, StoreError> {
    Ok(EndpointRecord {
        id: row.try_get(0)?,
        issuer: row.try_get(1)?,
        url: row.try_get(2)?,
        event_types: row.try_get(3)?,
        enabled: row.try_get(4)?,
        disabled_reason: row.try_get(5)?,
        secret_sealed: row.try_get(6)?,
        previous_sealed: row.try_get(7)?,
        previous_expires_at: row.try_get(8)?,
        created_at: row.try_get(9)?,
        updated_at: row.try_get(10)?,
    })
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first attempt or a retry.
    Pending,
    Delivered,
    /// A dead letter: the schedule ran out, or the receiver answered 410.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    fn sql(self) -> &'static str {
        match self {
            DeliveryState::Pending => "d.delivered_at IS NULL AND d.dead_at IS NULL",
            DeliveryState::Delivered => "d.delivered_at IS NOT NULL",
            DeliveryState::Failed => "d.dead_at IS NOT NULL",
        }
    }
}

/// A delivery as listed to its issuer.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub dead_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.event_id, ev.event_type, d.attempts, d.available_at, \
    d.delivered_at, d.dead_at, d.last_status, d.last_error, d.created_at";

fn delivery(row: &Row) -> Result<DeliveryRecord, StoreError> {
    let delivered_at: Option<DateTime<Utc>> = row.try_get(5)?;
    let dead_at: Option<DateTime<Utc>> = row.try_get(6)?;
    let state = match (delivered_at, dead_at) {
        (Some(_), _) => DeliveryState::Delivered,
        (None, Some(_)) => DeliveryState::Failed,
        (None, None) => DeliveryState::Pending,
    };
    Ok(DeliveryRecord {
        id: row.try_get(0)?,
        event_id: row.try_get(1)?,
        event_type: row.try_get(2)?,
        attempts: row.try_get(3)?,
        next_attempt_at: match state {
            DeliveryState::Pending => Some(row.try_get(4)?),
            _ => None,
        },
        delivered_at,
        dead_at,
        last_status: row.try_get(7)?,
        last_error: row.try_get(8)?,
        created_at: row.try_get(9)?,
        state,
    })
}

/// What a PATCH changes (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// An endpoint leased to one worker, with what it needs to deliver.
#[derive(Debug, Clone)]
pub struct LeasedEndpoint {
    pub id: Uuid,
    pub issuer: String,
    pub url: String,
    pub secret_sealed: Vec<u8>,
    /// The previous secret while its grace period lasts.
    pub previous_sealed: Option<Vec<u8>>,
}

fn leased(row: &Row) -> Result<LeasedEndpoint, StoreError> {
    Ok(LeasedEndpoint {
        id: row.try_get(0)?,
        issuer: row.try_get(1)?,
        url: row.try_get(2)?,
        secret_sealed: row.try_get(3)?,
        previous_sealed: row.try_get(4)?,
    })
}

/// A delivery due now, with the event's fixed body.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub event_id: Uuid,
    pub attempts: i32,
    pub body: String,
}

/// The most deliveries one page lists.
pub const MAX_DELIVERY_PAGE: i64 = 200;
/// The most endpoints an issuer may register (a tenant cannot make the worker's claim scan
/// unbounded).
pub const MAX_ENDPOINTS_PER_ISSUER: i64 = 20;

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Store {
    /// Registers an endpoint, unless the issuer has [`MAX_ENDPOINTS_PER_ISSUER`] already
    /// (`None`). The count and the insert are one transaction under the issuer's row lock.
    pub async fn create_webhook_endpoint(
        &self,
        issuer: &IssuerId,
        id: Uuid,
        url: &str,
        event_types: &[String],
        enabled: bool,
        secret_sealed: &[u8],
    ) -> Result<Option<EndpointRecord>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT 1 FROM issuers WHERE id = $1 FOR UPDATE",
            &[&issuer.as_str()],
        )
        .await?;
        let count: i64 = tx
            .query_one(
                "SELECT count(*) FROM webhook_endpoints WHERE issuer_id = $1",
                &[&issuer.as_str()],
            )
            .await?
            .try_get(0)?;
        if count >= MAX_ENDPOINTS_PER_ISSUER {
            return Ok(None);
        }
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO webhook_endpoints (id, issuer_id, url, event_types, enabled, \
                       disabled_reason, secret_sealed) \
                     VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 THEN NULL ELSE 'client' END, $6) \
                     RETURNING {ENDPOINT_COLUMNS}"
                ),
                &[
                    &id,
                    &issuer.as_str(),
                    &url,
                    &event_types,
                    &enabled,
                    &secret_sealed,
                ],
            )
            .await?;
        let created = endpoint(&row)?;
        crate::error::commit(tx).await?;
        Ok(Some(created))
    }

    pub async fn list_webhook_endpoints(
        &self,
        issuer: &IssuerId,
    ) -> Result<Vec<EndpointRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE issuer_id = $1 \
                     ORDER BY created_at, id"
                ),
                &[&issuer.as_str()],
            )
            .await?;
        rows.iter().map(endpoint).collect()
    }

    pub async fn get_webhook_endpoint(
        &self,
        issuer: &IssuerId,
        id: Uuid,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                     WHERE issuer_id = $1 AND id = $2"
                ),
                &[&issuer.as_str(), &id],
            )
            .await?;
        row.as_ref().map(endpoint).transpose()
    }

    /// Applies a PATCH. Enabling clears why it was disabled (a 410 included): its pending
    /// deliveries go out again.
    pub async fn update_webhook_endpoint(
        &self,
        issuer: &IssuerId,
        id: Uuid,
        change: &EndpointChange,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE webhook_endpoints SET url = coalesce($3, url), \
                       event_types = coalesce($4, event_types), \
                       enabled = coalesce($5, enabled), \
                       disabled_reason = CASE WHEN $5 IS NULL THEN disabled_reason \
                                              WHEN $5 THEN NULL ELSE 'client' END, \
                       updated_at = now() \
                     WHERE issuer_id = $1 AND id = $2 RETURNING {ENDPOINT_COLUMNS}"
                ),
                &[
                    &issuer.as_str(),
                    &id,
                    &change.url,
                    &change.event_types,
                    &change.enabled,
                ],
            )
            .await?;
        row.as_ref().map(endpoint).transpose()
    }

    /// Deletes an endpoint and its deliveries (the events stay, for the other endpoints).
    pub async fn delete_webhook_endpoint(
        &self,
        issuer: &IssuerId,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM webhook_endpoints WHERE issuer_id = $1 AND id = $2",
                &[&issuer.as_str(), &id],
            )
            .await?;
        Ok(n == 1)
    }

    /// Makes `new_sealed` the secret; the current one stays valid for `grace` (deliveries are
    /// signed with both meanwhile). A secret still in its grace period is replaced.
    pub async fn rotate_webhook_secret(
        &self,
        issuer: &IssuerId,
        id: Uuid,
        new_sealed: &[u8],
        grace: Duration,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE webhook_endpoints SET previous_sealed = secret_sealed, \
                       previous_expires_at = now() + $4 * interval '1 millisecond', \
                       secret_sealed = $3, updated_at = now() \
                     WHERE issuer_id = $1 AND id = $2 RETURNING {ENDPOINT_COLUMNS}"
                ),
                &[&issuer.as_str(), &id, &new_sealed, &millis(grace)],
            )
            .await?;
        row.as_ref().map(endpoint).transpose()
    }

    /// Records a `webhook.test` event for one endpoint and its delivery: `(event, delivery)`,
    /// or `None` when the issuer has no such endpoint.
    pub async fn record_webhook_test(
        &self,
        issuer: &IssuerId,
        endpoint: Uuid,
        body: &str,
    ) -> Result<Option<(Uuid, i64)>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "WITH e AS (SELECT id FROM webhook_endpoints WHERE issuer_id = $1 AND id = $2 \
                   FOR KEY SHARE), \
                 ev AS (INSERT INTO webhook_events (issuer_id, event_type, body) \
                        SELECT $1, 'webhook.test', $3 FROM e RETURNING id) \
                 INSERT INTO webhook_deliveries (event_id, endpoint_id) \
                 SELECT ev.id, e.id FROM ev, e RETURNING event_id, id",
                &[&issuer.as_str(), &endpoint, &body],
            )
            .await?;
        match row {
            Some(row) => Ok(Some((row.try_get(0)?, row.try_get(1)?))),
            None => Ok(None),
        }
    }

    /// One page of an endpoint's deliveries, newest first (`before`: the last id of the
    /// previous page). `None` when the issuer has no such endpoint.
    pub async fn list_webhook_deliveries(
        &self,
        issuer: &IssuerId,
        endpoint: Uuid,
        state: Option<DeliveryState>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Option<Vec<DeliveryRecord>>, StoreError> {
        let client = self.client().await?;
        let owned = client
            .query_opt(
                "SELECT 1 FROM webhook_endpoints WHERE issuer_id = $1 AND id = $2",
                &[&issuer.as_str(), &endpoint],
            )
            .await?;
        if owned.is_none() {
            return Ok(None);
        }
        let filter = state.map_or("true", DeliveryState::sql);
        let rows = client
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d \
                     JOIN webhook_events ev ON ev.id = d.event_id \
                     WHERE d.endpoint_id = $1 AND d.id < coalesce($2, 9223372036854775807) \
                       AND {filter} \
                     ORDER BY d.id DESC LIMIT $3"
                ),
                &[&endpoint, &before, &limit.clamp(1, MAX_DELIVERY_PAGE)],
            )
            .await?;
        rows.iter()
            .map(delivery)
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Replays a delivery now, with a fresh schedule and the same `webhook-id`. `None` when the
    /// issuer has no such delivery.
    pub async fn retry_webhook_delivery(
        &self,
        issuer: &IssuerId,
        endpoint: Uuid,
        delivery_id: i64,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "WITH d AS (UPDATE webhook_deliveries d SET dead_at = NULL, \
                       delivered_at = NULL, attempts = 0, available_at = now(), updated_at = now() \
                     FROM webhook_endpoints e \
                     WHERE d.id = $3 AND d.endpoint_id = $2 AND e.id = d.endpoint_id \
                       AND e.issuer_id = $1 RETURNING d.*) \
                     SELECT {DELIVERY_COLUMNS} FROM d JOIN webhook_events ev ON ev.id = d.event_id"
                ),
                &[&issuer.as_str(), &endpoint, &delivery_id],
            )
            .await?;
        row.as_ref().map(delivery).transpose()
    }

    /// Leases up to `limit` enabled endpoints with a delivery due, skipping `busy` (already
    /// being delivered to by this worker), any another worker holds, and beyond `per_issuer`
    /// endpoints of one issuer leased at once (counting every worker's leases; two claims
    /// running at the same instant may pass it briefly): one tenant's many slow receivers
    /// cannot take every slot. Longest-waiting first.
    pub async fn claim_webhook_endpoints(
        &self,
        worker: &str,
        lease: Duration,
        limit: i64,
        per_issuer: i64,
        busy: &[Uuid],
    ) -> Result<Vec<LeasedEndpoint>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "UPDATE webhook_endpoints w SET locked_until = now() + $2 * interval '1 millisecond', \
                   locked_by = $1 \
                 WHERE w.id IN ( \
                   SELECT r.id FROM ( \
                     SELECT c.id, c.locked_until, \
                       row_number() OVER (PARTITION BY c.issuer_id \
                                          ORDER BY c.locked_until NULLS FIRST, c.id) \
                       + (SELECT count(*) FROM webhook_endpoints h \
                          WHERE h.issuer_id = c.issuer_id AND h.locked_by IS NOT NULL \
                            AND h.locked_until > now()) AS nth \
                     FROM (SELECT e.id, e.issuer_id, e.locked_until FROM webhook_endpoints e \
                           WHERE e.enabled AND (e.locked_until IS NULL OR e.locked_until < now()) \
                             AND NOT e.id = ANY ($4) \
                             AND EXISTS (SELECT 1 FROM webhook_deliveries d \
                                         WHERE d.endpoint_id = e.id AND d.delivered_at IS NULL \
                                           AND d.dead_at IS NULL AND d.available_at <= now()) \
                           FOR NO KEY UPDATE SKIP LOCKED) c) r \
                   WHERE r.nth <= $5 \
                   ORDER BY r.locked_until NULLS FIRST, r.id LIMIT $3) \
                 RETURNING w.id, w.issuer_id, w.url, w.secret_sealed, \
                   CASE WHEN w.previous_expires_at > now() THEN w.previous_sealed END",
                &[&worker, &millis(lease), &limit, &busy, &per_issuer],
            )
            .await?;
        rows.iter().map(leased).collect()
    }

    /// Extends this worker's lease and reads the endpoint again (a PATCHed URL or a rotated
    /// secret applies from the next wave); `None` when the lease is lost (expired and taken,
    /// disabled, or deleted): the worker stops delivering to the endpoint.
    pub async fn extend_webhook_lease(
        &self,
        endpoint: Uuid,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<LeasedEndpoint>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "UPDATE webhook_endpoints w SET locked_until = now() + $3 * interval '1 millisecond' \
                 WHERE id = $1 AND locked_by = $2 AND enabled \
                 RETURNING w.id, w.issuer_id, w.url, w.secret_sealed, \
                   CASE WHEN w.previous_expires_at > now() THEN w.previous_sealed END",
                &[&endpoint, &worker, &millis(lease)],
            )
            .await?;
        row.as_ref().map(leased).transpose()
    }

    pub async fn release_webhook_endpoint(
        &self,
        endpoint: Uuid,
        worker: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                // `now()`, not NULL: the claim takes the longest-waiting endpoints first
                // (NULLS FIRST, then oldest), so one just served goes to the back.
                "UPDATE webhook_endpoints SET locked_until = now(), locked_by = NULL \
                 WHERE id = $1 AND locked_by = $2",
                &[&endpoint, &worker],
            )
            .await?;
        Ok(())
    }

    /// The endpoint's deliveries due now, oldest first.
    pub async fn due_webhook_deliveries(
        &self,
        endpoint: Uuid,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT d.id, d.event_id, d.attempts, ev.body FROM webhook_deliveries d \
                 JOIN webhook_events ev ON ev.id = d.event_id \
                 WHERE d.endpoint_id = $1 AND d.delivered_at IS NULL AND d.dead_at IS NULL \
                   AND d.available_at <= now() \
                 ORDER BY d.available_at, d.id LIMIT $2",
                &[&endpoint, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DueDelivery {
                    id: row.try_get(0)?,
                    event_id: row.try_get(1)?,
                    attempts: row.try_get(2)?,
                    body: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// Executes what `domain::webhook::after_attempt` decided about one attempt. `Gone` also
    /// disables the endpoint. Fenced by the attempts count the attempt was made at: a delivery
    /// delivered meanwhile (a replica's duplicate) or replayed by hand (attempts back to 0)
    /// is left as it is.
    pub async fn record_webhook_attempt(
        &self,
        delivery_id: i64,
        attempts_before: i32,
        endpoint: Uuid,
        step: NextStep,
        status: Option<u16>,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let status = status.map(i32::from);
        let note: Option<String> = note.map(|n| n.chars().take(256).collect());
        let (delivered, dead, delay_ms) = match step {
            NextStep::Delivered => (true, false, 0.0),
            NextStep::Gone | NextStep::DeadLetter => (false, true, 0.0),
            NextStep::RetryIn(delay) => (false, false, millis(delay)),
        };
        client
            .execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $2, \
                   last_error = $3, \
                   delivered_at = CASE WHEN $4 THEN now() END, \
                   dead_at = CASE WHEN $5 THEN now() END, \
                   available_at = now() + $6 * interval '1 millisecond', updated_at = now() \
                 WHERE id = $1 AND delivered_at IS NULL AND dead_at IS NULL AND attempts = $7",
                &[
                    &delivery_id,
                    &status,
                    &note,
                    &delivered,
                    &dead,
                    &delay_ms,
                    &attempts_before,
                ],
            )
            .await?;
        if step == NextStep::Gone {
            client
                .execute(
                    "UPDATE webhook_endpoints SET enabled = false, disabled_reason = 'gone', \
                       locked_until = NULL, locked_by = NULL, updated_at = now() WHERE id = $1",
                    &[&endpoint],
                )
                .await?;
        }
        Ok(())
    }

    /// Deletes up to `limit` deliveries delivered or dead for longer than `retention`, then the
    /// events older than that with no delivery left: how many deliveries and events went. One
    /// transaction per call; the worker calls it until it returns fewer than `limit`.
    pub async fn purge_webhook_history(
        &self,
        retention: Duration,
        limit: i64,
    ) -> Result<(u64, u64), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let deliveries = tx
            .execute(
                "DELETE FROM webhook_deliveries WHERE id IN ( \
                   SELECT id FROM webhook_deliveries \
                   WHERE (delivered_at IS NOT NULL OR dead_at IS NOT NULL) \
                     AND coalesce(delivered_at, dead_at) < now() - $1 * interval '1 millisecond' \
                   LIMIT $2)",
                &[&millis(retention), &limit],
            )
            .await?;
        let events = tx
            .execute(
                "DELETE FROM webhook_events WHERE id IN ( \
                   SELECT ev.id FROM webhook_events ev \
                   WHERE ev.created_at < now() - $1 * interval '1 millisecond' \
                     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = ev.id) \
                   LIMIT $2)",
                &[&millis(retention), &limit],
            )
            .await?;
        crate::error::commit(tx).await?;
        Ok((deliveries, events))
    }

    /// Seconds since the oldest delivery still pending to an enabled endpoint was recorded
    /// (0 when none): `webhook_oldest_pending_age_seconds`.
    pub async fn oldest_pending_webhook_age(&self) -> Result<f64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT coalesce(extract(epoch FROM now() - min(d.created_at))::float8, 0) \
                 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 WHERE d.delivered_at IS NULL AND d.dead_at IS NULL AND e.enabled",
                &[],
            )
            .await?;
        Ok(row.try_get(0)?)
    }
}
