//! The store's own tests, against a real PostgreSQL (`testkit`): what each error means about
//! what was written, and that a reconciler repair is executed exactly as decided, in one
//! transaction. The faults are real: a TCP proxy between the pool and the server cuts the
//! connection at a chosen protocol message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use domain::api_key::ApiKey;
use domain::hash::{CredentialFields, CredentialHash, FileDigest, HashScheme, Salt};
use domain::reconcile::{decide_anchor, DriftReason, Repair};
use domain::signing::SigningKey;
use domain::{
    CredentialId, CredentialStatus, IssuedAt, IssuerId, KeyId, RecipientId, Serial, SystemRandom,
};
use serde_json::{json, Value};
use store::credentials::{IdempotencyRequest, IssueOutcome, NewCredential};
use store::issuers::NewIssuer;
use store::reconcile::TrustedAnchor;
use store::{DatabaseSettings, Store, StoreError};
use testkit::proxy::TcpProxy;

const ANCHOR_KEY: &str = "11111111111111111111111111111112";

struct World {
    _db: testkit::TestDb,
    /// Straight to the server, for setup and for reading what really happened.
    direct: Store,
    /// Through `proxy`, for the call under test.
    proxied: Store,
    proxy: TcpProxy,
    issuer: IssuerId,
    key: SigningKey,
}

async fn world() -> World {
    let db = testkit::test_db().await.expect("test database");
    let direct = Store::connect_lazy(&DatabaseSettings::new(db.url.clone())).unwrap();
    direct.migrate().await.unwrap();
    let url = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let proxy = TcpProxy::start(target).await.unwrap();
    let mut proxied_url = url.clone();
    proxied_url.set_port(Some(proxy.addr().port())).unwrap();
    let mut settings = DatabaseSettings::new(proxied_url.to_string());
    settings.max_connections = 1;
    let proxied = Store::connect_lazy(&settings).unwrap();

    let rng = SystemRandom::new();
    let issuer = IssuerId::parse("uni-store").unwrap();
    let key_id = KeyId::parse("uni-store-k1").unwrap();
    let (key, _seed) = SigningKey::generate(key_id.clone(), &rng).unwrap();
    let (_api_key, api_key_id, api_key_hash) = ApiKey::generate(&rng).unwrap();
    direct
        .create_issuer(&NewIssuer {
            id: &issuer,
            name: "Store University",
            anchor_pubkey: ANCHOR_KEY,
            api_key_id: &api_key_id,
            api_key_hash: &api_key_hash,
            signing_key_id: &key_id,
            signing_public_key: &key.public_key(),
            // The store never opens it: any bytes stand for a sealed seed here.
            sealed_seed: b"sealed",
            chain_now: None,
        })
        .await
        .unwrap();
    World {
        _db: db,
        direct,
        proxied,
        proxy,
        issuer,
        key,
    }
}

impl World {
    fn credential(&self, serial: &str) -> NewCredential {
        let id = CredentialId::new_v7();
        let fields = CredentialFields {
            file_digest: FileDigest::of(serial.as_bytes()),
            issuer: self.issuer.clone(),
            recipient: RecipientId::parse("student-1").unwrap(),
            issued_at: IssuedAt::parse_rfc3339("2026-06-30T12:00:00Z").unwrap(),
            serial: Serial::parse(serial).unwrap(),
        };
        let scheme = HashScheme::V2 {
            credential_id: id,
            salt: Salt::generate(&SystemRandom::new()).unwrap(),
            key_id: self.key.key_id().clone(),
            public_key: self.key.public_key(),
        };
        let hash = scheme.hash(&fields);
        NewCredential {
            id,
            issuer: self.issuer.clone(),
            serial: fields.serial,
            recipient: fields.recipient,
            issued_at: fields.issued_at,
            credential_type: "Diploma".into(),
            title: "BSc".into(),
            metadata: json!({}),
            file_digest: fields.file_digest,
            signature: self.key.sign_credential(scheme.format(), &hash),
            scheme,
            hash,
            key_id: self.key.key_id().clone(),
            vc: None,
            status_ordinal: None,
        }
    }

    async fn count(&self, sql: &str, id: &CredentialId) -> i64 {
        let client = self.direct.pool().get().await.unwrap();
        client.query_one(sql, &[id.as_uuid()]).await.unwrap().get(0)
    }
}

fn render(outcome: &IssueOutcome) -> (u16, Value) {
    match outcome {
        IssueOutcome::Created(r) => (202, json!({ "id": r.id.to_string() })),
        _ => (200, json!({})),
    }
}

const REQUEST_HASH: [u8; 32] = [7; 32];

#[tokio::test]
async fn a_connection_lost_during_commit_is_outcome_unknown_and_a_retry_learns_it_committed() {
    let w = world().await;
    let new = w.credential("S-LOST");
    let idempotency = || {
        Some(IdempotencyRequest {
            key: "commit-lost",
            request_hash: &REQUEST_HASH,
        })
    };
    // Warm the pooled connection, so the cut hits the issuing transaction's COMMIT.
    w.proxied.ping().await.unwrap();
    // The simple-query message tokio-postgres sends for COMMIT: `Q`, length 11, text.
    w.proxy.drop_after_forwarding(b"Q\0\0\0\x0bCOMMIT\0");
    let err = w
        .proxied
        .issue_credential(&new, idempotency(), render)
        .await
        .expect_err("the answer to COMMIT never arrives");
    assert!(w.proxy.trigger_fired());
    assert!(
        matches!(err, StoreError::OutcomeUnknown(_)),
        "a lost COMMIT must not read as 'nothing happened': {err:?}"
    );
    assert!(err.is_unavailable(), "still retryable");
    // It did commit: the credential and its outbox row, together. The server acts on the
    // COMMIT it received; the client may have seen its connection close a moment before.
    let mut committed = 0;
    for _ in 0..50 {
        committed = w
            .count("SELECT count(*) FROM credentials WHERE id = $1", &new.id)
            .await;
        if committed == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(committed, 1, "the COMMIT that reached the server committed");
    assert_eq!(
        w.count(
            "SELECT count(*) FROM outbox WHERE credential_id = $1",
            &new.id
        )
        .await,
        1
    );
    // The retry the API asks for (same Idempotency-Key) answers what happened, writing nothing.
    w.proxy.set_enabled(true);
    let mut retried = None;
    for _ in 0..5 {
        // The pool may hand out the cut connection once more before it notices.
        match w
            .proxied
            .issue_credential(&new, idempotency(), render)
            .await
        {
            Ok(outcome) => {
                retried = Some(outcome);
                break;
            }
            Err(e) if e.is_unavailable() => continue,
            Err(e) => panic!("{e:?}"),
        }
    }
    match retried.expect("the retry gets an answer") {
        IssueOutcome::Replayed { status, body } => {
            assert_eq!(status, 202);
            assert_eq!(body["id"], new.id.to_string());
        }
        other => panic!("expected the stored answer, got {other:?}"),
    }
    assert_eq!(
        w.count(
            "SELECT count(*) FROM outbox WHERE credential_id = $1",
            &new.id
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_connection_lost_before_commit_is_unavailable_and_nothing_was_written() {
    let w = world().await;
    let new = w.credential("S-BEFORE");
    w.proxied.ping().await.unwrap();
    // The outbox INSERT reaches the server inside the open transaction; the connection is
    // cut before COMMIT is ever sent, so the server rolls the transaction back.
    w.proxy.drop_after_forwarding(b"INSERT INTO outbox");
    let err = w
        .proxied
        .issue_credential(&new, None, render)
        .await
        .expect_err("the connection is cut mid-transaction");
    assert!(w.proxy.trigger_fired());
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    // The server notices the closed socket and rolls back: poll briefly for its session to end.
    for _ in 0..50 {
        let sessions: i64 = w
            .direct
            .pool()
            .get()
            .await
            .unwrap()
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if sessions == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        w.count("SELECT count(*) FROM credentials WHERE id = $1", &new.id)
            .await,
        0
    );
    assert_eq!(
        w.count(
            "SELECT count(*) FROM outbox WHERE credential_id = $1",
            &new.id
        )
        .await,
        0
    );
}

fn anchor<'a>(
    issuer: &'a IssuerId,
    credential: CredentialId,
    hash: CredentialHash,
    signature: &'a str,
) -> TrustedAnchor<'a> {
    TrustedAnchor {
        issuer,
        credential,
        hash,
        signature,
        slot: 42,
        block_time: None,
    }
}

#[tokio::test]
async fn a_repair_is_executed_as_decided_and_a_second_run_finds_nothing_to_do() {
    let w = world().await;
    let signature = bs58::encode([5u8; 64]).into_string();
    // Backfill: no row; the store writes exactly the recovered row and one finding.
    let lost = CredentialId::new_v7();
    let hash = CredentialHash::from_bytes([9; 32]);
    let trusted = anchor(&w.issuer, lost, hash, &signature);
    let first = w
        .direct
        .repair_anchor(&trusted, |row| decide_anchor(&trusted.claim(), row))
        .await
        .unwrap();
    assert_eq!(first.repair, Repair::Backfill);
    assert!(first.new_finding);
    let row = w.direct.credential_by_id(&lost).await.unwrap().unwrap();
    assert_eq!(row.status, CredentialStatus::Recovered);
    assert_eq!(row.hash, hash);
    let again = w
        .direct
        .repair_anchor(&trusted, |row| decide_anchor(&trusted.claim(), row))
        .await
        .unwrap();
    assert_eq!(again.repair, Repair::Consistent);
    assert!(!again.new_finding);

    // Finalize: a queued credential, its outbox job completed in the same transaction.
    let new = w.credential("S-PENDING");
    w.direct.issue_credential(&new, None, render).await.unwrap();
    let pending = anchor(&w.issuer, new.id, new.hash, &signature);
    let done = w
        .direct
        .repair_anchor(&pending, |row| {
            assert_eq!(row.map(|r| r.status), Some(CredentialStatus::Queued));
            decide_anchor(&pending.claim(), row)
        })
        .await
        .unwrap();
    assert_eq!(done.repair, Repair::Finalize);
    let row = w.direct.credential_by_id(&new.id).await.unwrap().unwrap();
    assert_eq!(row.status, CredentialStatus::Finalized);
    assert_eq!(
        w.count(
            "SELECT count(*) FROM outbox WHERE credential_id = $1 AND completed_at IS NULL",
            &new.id
        )
        .await,
        0
    );

    // Drift: recorded, nothing else written (another hash under the same id).
    let other = anchor(
        &w.issuer,
        new.id,
        CredentialHash::from_bytes([1; 32]),
        &signature,
    );
    let drift = w
        .direct
        .repair_anchor(&other, |row| decide_anchor(&other.claim(), row))
        .await
        .unwrap();
    assert_eq!(drift.repair, Repair::Drift(DriftReason::RecordDisagrees));
    assert_eq!(
        w.direct
            .credential_by_id(&new.id)
            .await
            .unwrap()
            .unwrap()
            .hash,
        new.hash
    );

    // A decision with no meaning for a credential anchor writes nothing at all.
    let lost_too = CredentialId::new_v7();
    let odd = anchor(&w.issuer, lost_too, hash, &signature);
    let err = w
        .direct
        .repair_anchor(&odd, |_| Repair::MarkRevoked)
        .await
        .expect_err("MarkRevoked is for revocations");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(w
        .direct
        .credential_by_id(&lost_too)
        .await
        .unwrap()
        .is_none());
    let findings = w
        .count(
            "SELECT count(*) FROM reconciliation_findings WHERE credential_id = $1",
            &lost_too,
        )
        .await;
    assert_eq!(findings, 0);
}

/// Status lists (issue #20) in the store: ordinals reserved in blocks, a revocation marks its
/// list changed (the trigger's list size is `domain`'s), a version is recorded only against
/// the change counter it was computed from, and only an anchored version is served.
#[tokio::test]
async fn a_status_list_version_is_recorded_only_for_the_state_it_was_signed_from() {
    use domain::status_list::{Bitstring, StatusOrdinal, LIST_SIZE};
    use store::status_lists::{Recorded, SignedList};
    let w = world().await;
    let store = &w.direct;
    // Two reservations are disjoint and consecutive; the list they fall in now exists, dirty.
    let a = store.reserve_status_ordinals(&w.issuer, 3).await.unwrap();
    let b = store.reserve_status_ordinals(&w.issuer, 2).await.unwrap();
    assert_eq!((a.get(), b.get()), (0, 3));
    assert_eq!(
        store
            .dirty_status_lists(std::time::Duration::ZERO, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // A credential in the SECOND list: the trigger must find list 1, not list 0.
    let far = StatusOrdinal::new(u64::from(LIST_SIZE) + 7).unwrap();
    store
        .reserve_status_ordinals(&w.issuer, LIST_SIZE)
        .await
        .unwrap();
    let mut c = w.credential("S-FAR");
    c.status_ordinal = Some(far);
    store
        .issue_credential(&c, None, |_| (202, json!({})))
        .await
        .unwrap();
    let before = store.status_list_state(&w.issuer, 1).await.unwrap();
    assert!(before.revoked.is_empty());
    store
        .revoke_credential(&w.issuer, &c.id, "test")
        .await
        .unwrap();
    let after = store.status_list_state(&w.issuer, 1).await.unwrap();
    assert_eq!(after.revoked, vec![7]);
    assert_eq!(after.changes, before.changes + 1);
    assert_eq!(
        store.status_list_state(&w.issuer, 0).await.unwrap().revoked,
        Vec::<u32>::new()
    );

    let bits = Bitstring::with_set(after.revoked.iter().copied());
    let signed = SignedList {
        version: 1,
        hash: bits.anchored_hash(&w.issuer, 1),
        revoked_count: 1,
        credential: "{\"list\":1}",
        credential_sha256: [9; 32],
    };
    assert_eq!(
        store
            .record_status_version(&w.issuer, 1, after.changes, Some(&signed), false)
            .await
            .unwrap(),
        Recorded::NewVersion
    );
    // A slower publisher's version of the state before the revocation, recorded after it:
    // refused (it would be a newer version with fewer ones), nothing written.
    let empty = Bitstring::zeros();
    let stale = SignedList {
        version: 2,
        hash: empty.anchored_hash(&w.issuer, 1),
        revoked_count: 0,
        credential: "{\"list\":1,\"stale\":true}",
        credential_sha256: [8; 32],
    };
    assert_eq!(
        store
            .record_status_version(&w.issuer, 1, before.changes, Some(&stale), false)
            .await
            .unwrap(),
        Recorded::Changed
    );
    assert_eq!(
        store
            .status_list_state(&w.issuer, 1)
            .await
            .unwrap()
            .versions
            .len(),
        1
    );
    // Recorded but not anchored: not served, and a relay can claim it.
    assert!(store
        .served_status_list(&w.issuer, 1)
        .await
        .unwrap()
        .is_none());
    let jobs = store
        .claim_due_status_lists("test", 10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].memo().unwrap().encode(),
        format!("ca1:s:{}:1:1:{}", w.issuer, signed.hash.to_base58())
    );
    let fence = jobs[0].fence("test");
    store
        .complete_finalized(fence, "sig-1", 42)
        .await
        .unwrap()
        .expect("fence holds");
    let served = store
        .served_status_list(&w.issuer, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((served.version, served.hash), (1, signed.hash));
    assert_eq!(served.credential, "{\"list\":1}");
    assert!(store
        .dirty_status_lists(std::time::Duration::ZERO, 10)
        .await
        .unwrap()
        .iter()
        .all(|l| l.list != 1));
}

/// After a failover to an asynchronous standby or a restore, the counter of status ordinals
/// can be behind ordinals that API replicas reserved on the lost database and still hand out
/// from memory. The database state of that moment is built by hand here (the counter set
/// back under a credential's ordinal), because a real failover produces it only by chance;
/// `crash::postgres_failover_with_an_asynchronous_standby…` produces it for real.
#[tokio::test]
async fn a_status_ordinal_in_use_is_refused_and_never_reserved_again() {
    use domain::status_list::StatusOrdinal;
    use store::credentials::NewBulk;
    let w = world().await;
    let store = &w.direct;
    assert_eq!(
        store
            .reserve_status_ordinals(&w.issuer, 64)
            .await
            .unwrap()
            .get(),
        0
    );
    // A replica hands out ordinal 40 from its block; then the database forgets the block.
    let mut used = w.credential("S-FROM-MEMORY");
    used.status_ordinal = StatusOrdinal::new(40);
    store.issue_credential(&used, None, render).await.unwrap();
    let client = store.pool().get().await.unwrap();
    client
        .execute(
            "UPDATE status_list_counters SET next_ordinal = 10 WHERE issuer_id = $1",
            &[&w.issuer.as_str()],
        )
        .await
        .unwrap();

    // A second use of 40, single or bulk, is refused with its own error and writes nothing.
    let mut again = w.credential("S-SECOND-40");
    again.status_ordinal = StatusOrdinal::new(40);
    let err = store
        .issue_credential(&again, None, render)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StatusOrdinalTaken), "{err:?}");
    let mut fine = w.credential("S-BULK-FINE");
    fine.status_ordinal = StatusOrdinal::new(41);
    let items = [fine, again.clone()];
    let bulk = NewBulk {
        request_id: uuid::Uuid::now_v7(),
        issuer: &w.issuer,
        submitted: 2,
        invalid: 0,
        items: &items,
    };
    let err = store
        .issue_bulk(&bulk, None, |_| (200, json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StatusOrdinalTaken), "{err:?}");
    let written: i64 = client
        .query_one(
            "SELECT count(*) FROM credentials WHERE issuer_id = $1",
            &[&w.issuer.as_str()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(written, 1, "nothing of the refused single or bulk request");

    // The next reservation starts past 40, not at the counter's 10.
    let next = store.reserve_status_ordinals(&w.issuer, 5).await.unwrap();
    assert_eq!(next.get(), 41);
    assert_eq!(
        store
            .reserve_status_ordinals(&w.issuer, 1)
            .await
            .unwrap()
            .get(),
        46
    );
}

/// The trigger's rule (`webhook_event_for_status`, migration V14) is
/// `domain::webhook::EventType::for_status_change` for every pair of statuses, insertion
/// included: one rule, checked where it is duplicated.
#[tokio::test]
async fn the_webhook_trigger_reports_exactly_the_status_changes_the_domain_rule_does() {
    use domain::webhook::EventType;
    let w = world().await;
    let client = w.direct.pool().get().await.unwrap();
    let olds = std::iter::once(None).chain(CredentialStatus::ALL.into_iter().map(Some));
    for old in olds {
        for new in CredentialStatus::ALL {
            let sql: Option<String> = client
                .query_one(
                    "SELECT webhook_event_for_status($1, $2)",
                    &[&old.map(CredentialStatus::as_str), &new.as_str()],
                )
                .await
                .unwrap()
                .get(0);
            let rule = EventType::for_status_change(old, new).map(|t| t.as_str().to_string());
            assert_eq!(sql, rule, "{old:?} -> {new:?}");
        }
    }
}

/// Events are recorded by the status change's own statement, for subscribed enabled
/// endpoints only, and a bulk request's completion once.
#[tokio::test]
async fn status_changes_record_webhook_deliveries_in_their_own_transaction() {
    let w = world().await;
    let client = w.direct.pool().get().await.unwrap();
    let a = w.credential("WH-1");
    let b = w.credential("WH-2");
    for c in [&a, &b] {
        let issued = w.direct.issue_credential(c, None, render).await.unwrap();
        assert!(matches!(issued, IssueOutcome::Created(_)));
    }
    let count = |sql: &'static str| {
        let client = &client;
        async move {
            let n: i64 = client.query_one(sql, &[]).await.unwrap().get(0);
            n
        }
    };
    // No endpoint: nothing recorded.
    client
        .execute(
            "UPDATE credentials SET status = 'finalized', anchor_signature = 'sig-a', \
               anchor_slot = 7, finalized_at = now() WHERE id = $1",
            &[a.id.as_uuid()],
        )
        .await
        .unwrap();
    assert_eq!(count("SELECT count(*) FROM webhook_events").await, 0);
    // Two endpoints: one subscribed to finalized, one disabled.
    for (enabled, types) in [
        (true, vec!["credential.finalized"]),
        (false, vec!["credential.finalized"]),
    ] {
        client
            .execute(
                "INSERT INTO webhook_endpoints (id, issuer_id, url, event_types, enabled, secret_sealed) \
                 VALUES (gen_random_uuid(), $1, 'https://portal.example.edu/h', $2, $3, '\\x00')",
                &[&w.issuer.as_str(), &types, &enabled],
            )
            .await
            .unwrap();
    }
    // A change that is not reported, then one that is, rolled back: nothing.
    client
        .execute(
            "UPDATE credentials SET status = 'submitted' WHERE id = $1",
            &[b.id.as_uuid()],
        )
        .await
        .unwrap();
    client.execute("BEGIN", &[]).await.unwrap();
    client
        .execute(
            "UPDATE credentials SET status = 'finalized', anchor_signature = 'sig-b', \
               anchor_slot = 8, finalized_at = now() WHERE id = $1",
            &[b.id.as_uuid()],
        )
        .await
        .unwrap();
    client.execute("ROLLBACK", &[]).await.unwrap();
    assert_eq!(count("SELECT count(*) FROM webhook_events").await, 0);
    client
        .execute(
            "UPDATE credentials SET status = 'finalized', anchor_signature = 'sig-b', \
               anchor_slot = 8, finalized_at = now() WHERE id = $1",
            &[b.id.as_uuid()],
        )
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT ev.event_type, ev.body, count(*) OVER () FROM webhook_events ev \
             JOIN webhook_deliveries d ON d.event_id = ev.id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "credential.finalized");
    let body: Value = serde_json::from_str(&row.get::<_, String>(1)).unwrap();
    assert_eq!(body["type"], "credential.finalized");
    assert_eq!(body["data"]["credential_id"], b.id.to_string());
    assert_eq!(body["data"]["anchor_signature"], "sig-b");
    assert_eq!(body["data"]["anchor_slot"], 8);
    assert_eq!(body["data"]["status"], "finalized");
    assert_eq!(
        row.get::<_, i64>(2),
        1,
        "one delivery: the disabled endpoint gets none"
    );
    // Re-finalizing (an idempotent edge) reports nothing new.
    client
        .execute(
            "UPDATE credentials SET status = 'finalized' WHERE id = $1",
            &[b.id.as_uuid()],
        )
        .await
        .unwrap();
    assert_eq!(count("SELECT count(*) FROM webhook_events").await, 1);
    // A row the reconciler backfills from the chain is reported as recovered; the endpoint
    // subscribed to finalized only gets nothing, one subscribed to recovered gets it.
    client
        .execute(
            "UPDATE webhook_endpoints SET event_types = '{credential.recovered}' WHERE enabled",
            &[],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO credentials (id, issuer_id, credential_hash, status, anchor_signature, anchor_slot) \
             VALUES (gen_random_uuid(), $1, decode(repeat('ab', 32), 'hex'), 'recovered', 'sig-r', 9)",
            &[&w.issuer.as_str()],
        )
        .await
        .unwrap();
    let body: String = client
        .query_one(
            "SELECT body FROM webhook_events WHERE event_type = 'credential.recovered'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["data"]["status"], "recovered");
    assert_eq!(body["data"]["anchor_signature"], "sig-r");
    assert_eq!(count("SELECT count(*) FROM webhook_deliveries").await, 2);
    // A dead-lettered credential is reported with its error.
    client
        .execute(
            "UPDATE webhook_endpoints SET event_types = '{credential.failed}' WHERE enabled",
            &[],
        )
        .await
        .unwrap();
    let c = w.credential("WH-3");
    w.direct.issue_credential(&c, None, render).await.unwrap();
    client
        .execute(
            "UPDATE credentials SET status = 'failed', last_error = 'insufficient funds' WHERE id = $1",
            &[c.id.as_uuid()],
        )
        .await
        .unwrap();
    let body: String = client
        .query_one(
            "SELECT body FROM webhook_events WHERE event_type = 'credential.failed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["data"]["credential_id"], c.id.to_string());
    assert_eq!(body["data"]["status"], "failed");
    assert_eq!(body["data"]["error"], "insufficient funds");
    assert_eq!(count("SELECT count(*) FROM webhook_deliveries").await, 3);
}

/// The worker's claim leases at most `per_issuer` endpoints of one issuer across workers
/// (one tenant's slow receivers cannot take every slot) and the rest to others; the purge
/// deletes only what was delivered or dead before the retention, then events left with no
/// delivery, never a pending one.
#[tokio::test]
async fn the_claim_caps_each_issuer_and_the_purge_keeps_what_is_pending() {
    use std::time::Duration;
    let w = world().await;
    let client = w.direct.pool().get().await.unwrap();
    client
        .execute(
            "INSERT INTO issuers (id, name) VALUES ('uni-other', 'Other')",
            &[],
        )
        .await
        .unwrap();
    // Three endpoints of ours and one of the other issuer, each with one due delivery.
    for (issuer, n) in [(w.issuer.as_str(), 3), ("uni-other", 1)] {
        for _ in 0..n {
            client
                .execute(
                    "WITH e AS (INSERT INTO webhook_endpoints (id, issuer_id, url, event_types, secret_sealed) \
                       VALUES (gen_random_uuid(), $1, 'https://x.example/h', '{credential.finalized}', '\\x00') RETURNING id), \
                     ev AS (INSERT INTO webhook_events (issuer_id, event_type, body) VALUES ($1, 'webhook.test', '{}') RETURNING id) \
                     INSERT INTO webhook_deliveries (event_id, endpoint_id) SELECT ev.id, e.id FROM ev, e",
                    &[&issuer],
                )
                .await
                .unwrap();
        }
    }
    let lease = Duration::from_secs(30);
    let first = w
        .direct
        .claim_webhook_endpoints("worker-1", lease, 10, 2, &[])
        .await
        .unwrap();
    let ours = |claimed: &[store::webhooks::LeasedEndpoint]| {
        claimed
            .iter()
            .filter(|e| e.issuer == w.issuer.as_str())
            .count()
    };
    assert_eq!(ours(&first), 2, "at most 2 of one issuer");
    assert_eq!(first.len(), 3, "and the other issuer's");
    let second = w
        .direct
        .claim_webhook_endpoints("worker-2", lease, 10, 2, &[])
        .await
        .unwrap();
    assert!(
        second.is_empty(),
        "the cap counts every worker's leases: {second:?}"
    );
    // Released, the third endpoint of ours can be leased.
    w.direct
        .release_webhook_endpoint(first[0].id, "worker-1")
        .await
        .unwrap();
    let third = w
        .direct
        .claim_webhook_endpoints("worker-2", lease, 10, 2, &[])
        .await
        .unwrap();
    assert_eq!(third.len(), 1);

    // Purge: one delivery delivered 40 days ago, one dead 40 days ago, one delivered now, one
    // pending 40 days old; retention 30 days.
    client
        .execute(
            "WITH d AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM webhook_deliveries) \
             UPDATE webhook_deliveries w SET \
               delivered_at = CASE d.n WHEN 1 THEN now() - interval '40 days' WHEN 3 THEN now() END, \
               dead_at = CASE d.n WHEN 2 THEN now() - interval '40 days' END, \
               created_at = now() - interval '40 days' \
             FROM d WHERE d.id = w.id",
            &[],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE webhook_events SET created_at = now() - interval '40 days'",
            &[],
        )
        .await
        .unwrap();
    let (deliveries, events) = w
        .direct
        .purge_webhook_history(Duration::from_secs(30 * 86_400), 100)
        .await
        .unwrap();
    assert_eq!((deliveries, events), (2, 2));
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL AND dead_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 1, "the pending delivery is kept however old");
    let total: i64 = client
        .query_one("SELECT count(*) FROM webhook_deliveries", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 2);
    // A second run finds nothing.
    assert_eq!(
        w.direct
            .purge_webhook_history(Duration::from_secs(30 * 86_400), 100)
            .await
            .unwrap(),
        (0, 0)
    );
}
