-- Webhooks (issue #24): endpoints per issuer, events recorded by triggers in the very
-- transaction of the change they report (so no change is lost or announced before it
-- commits), and one delivery per (event, endpoint), leased per endpoint by the issuer-api's
-- delivery worker. See ARCHITECTURE.md ("Webhooks") and domain::webhook.

CREATE TABLE webhook_endpoints (
    id                   uuid PRIMARY KEY,
    issuer_id            text NOT NULL REFERENCES issuers (id),
    url                  text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    event_types          text[] NOT NULL,
    enabled              boolean NOT NULL DEFAULT true,
    -- Why it was disabled: 'gone' (the receiver answered 410) or 'client' (PATCH).
    disabled_reason      text,
    -- The secret's 32 bytes sealed under the API's master key (domain::sealed, AAD binding
    -- it to this endpoint); the previous one stays valid until previous_expires_at.
    secret_sealed        bytea NOT NULL,
    previous_sealed      bytea,
    previous_expires_at  timestamptz,
    -- The worker's lease: one worker delivers to an endpoint at a time (at most
    -- webhooks.concurrency_per_endpoint requests in flight).
    locked_until         timestamptz,
    locked_by            text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((previous_sealed IS NULL) = (previous_expires_at IS NULL))
);
CREATE INDEX webhook_endpoints_issuer ON webhook_endpoints (issuer_id, created_at);

-- One event: its body is fixed when recorded, so every attempt and replay sends the same
-- bytes under the same webhook-id (`msg_` + id).
CREATE TABLE webhook_events (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    issuer_id   text NOT NULL,
    event_type  text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Retention: events whose deliveries are all purged (or that had none) go after
-- webhooks.retention_days.
CREATE INDEX webhook_events_created ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid NOT NULL REFERENCES webhook_events (id),
    endpoint_id   uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempts      integer NOT NULL DEFAULT 0,
    available_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    dead_at       timestamptz,
    -- The last answer: its status, and at most 256 characters of its body or of the error.
    last_status   integer,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id)
);
-- The worker's claim and each endpoint's due deliveries.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, available_at, id)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
-- The age of the oldest pending delivery (webhook_oldest_pending_age_seconds).
CREATE INDEX webhook_deliveries_pending_age ON webhook_deliveries (created_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
-- Retention: deliveries delivered or dead for longer than webhooks.retention_days.
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (coalesce(delivered_at, dead_at))
    WHERE delivered_at IS NOT NULL OR dead_at IS NOT NULL;
-- GET /v1/webhooks/{id}/deliveries, newest first.
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);

-- A bulk request reports its completion once.
ALTER TABLE credential_batches ADD COLUMN completed_event_at timestamptz;

-- domain::webhook::EventType::for_status_change, the one rule (a store test compares them
-- for every pair of statuses).
CREATE FUNCTION webhook_event_for_status(old_status text, new_status text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN old_status IS NOT DISTINCT FROM new_status THEN NULL
        WHEN new_status = 'finalized' THEN 'credential.finalized'
        WHEN new_status = 'failed' THEN 'credential.failed'
        WHEN new_status = 'recovered' THEN 'credential.recovered'
    END
$$;

-- Records events about credentials (`ids`, `types`, `signatures`, `slots` pairwise) and their
-- deliveries to every enabled endpoint of the credential's issuer subscribed to the type.
-- Nothing is recorded for an issuer without such an endpoint. A non-NULL signature and slot
-- replace the credential's anchor (a revocation reports its own transaction).
CREATE FUNCTION webhook_record_credential_events(ids uuid[], types text[], signatures text[], slots bigint[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WITH events AS (
        INSERT INTO webhook_events (issuer_id, event_type, body)
        SELECT c.issuer_id, t.event_type, jsonb_build_object(
                'type', t.event_type,
                'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                'data', jsonb_build_object(
                    'credential_id', c.id,
                    'issuer_id', c.issuer_id,
                    'serial', c.serial,
                    'status', CASE WHEN t.event_type = 'credential.revoked' THEN 'revoked' ELSE c.status END,
                    'anchor_signature', coalesce(t.signature, c.anchor_signature),
                    'anchor_slot', coalesce(t.slot, c.anchor_slot),
                    'request_batch_id', c.request_batch_id,
                    'error', CASE WHEN t.event_type = 'credential.failed' THEN left(c.last_error, 256) END,
                    'url', '/v1/credentials/' || c.id))::text
        FROM unnest(ids, types, signatures, slots) AS t(id, event_type, signature, slot)
        JOIN credentials c ON c.id = t.id
        WHERE t.event_type IS NOT NULL AND EXISTS (
            SELECT 1 FROM webhook_endpoints e
            WHERE e.issuer_id = c.issuer_id AND e.enabled AND t.event_type = ANY (e.event_types))
        RETURNING id, issuer_id, event_type)
    -- FOR KEY SHARE: an endpoint deleted meanwhile (DELETE /v1/webhooks/{id}) is waited for
    -- and skipped, never a foreign-key error that would abort the relay's finalization.
    INSERT INTO webhook_deliveries (event_id, endpoint_id)
    SELECT ev.id, e.id FROM events ev
    JOIN webhook_endpoints e ON e.issuer_id = ev.issuer_id AND e.enabled
        AND ev.event_type = ANY (e.event_types)
    FOR KEY SHARE OF e;
END;
$$;

-- credential_batch.completed for every request batch in `batches` whose credentials are now
-- all anchored. The batch rows are locked in id order (no deadlock between two finalizers);
-- once a lock is granted, the next statement sees what the holder committed, so of two
-- transactions finalizing a request's last credentials, the second to commit reports it.
CREATE FUNCTION webhook_record_batch_events(batches uuid[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    b record;
    ev uuid;
BEGIN
    FOR b IN
        SELECT cb.id, cb.issuer_id, cb.accepted FROM credential_batches cb
        WHERE cb.id = ANY (batches) AND cb.completed_event_at IS NULL
          AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.issuer_id = cb.issuer_id
                      AND e.enabled AND 'credential_batch.completed' = ANY (e.event_types))
        ORDER BY cb.id FOR UPDATE OF cb
    LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM credentials c WHERE c.request_batch_id = b.id
            AND c.status IN ('queued', 'submitted', 'confirmed', 'failed'));
        UPDATE credential_batches SET completed_event_at = now()
            WHERE id = b.id AND completed_event_at IS NULL;
        CONTINUE WHEN NOT FOUND;
        INSERT INTO webhook_events (issuer_id, event_type, body)
        VALUES (b.issuer_id, 'credential_batch.completed', jsonb_build_object(
            'type', 'credential_batch.completed',
            'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'data', jsonb_build_object(
                'batch_id', b.id,
                'issuer_id', b.issuer_id,
                'status', 'completed',
                'credentials', (SELECT count(*) FROM credentials c WHERE c.request_batch_id = b.id),
                'url', '/v1/credential-batches/' || b.id))::text)
        RETURNING id INTO ev;
        INSERT INTO webhook_deliveries (event_id, endpoint_id)
        SELECT ev, e.id FROM webhook_endpoints e WHERE e.issuer_id = b.issuer_id AND e.enabled
            AND 'credential_batch.completed' = ANY (e.event_types)
        FOR KEY SHARE OF e;
    END LOOP;
END;
$$;

-- Statement-level triggers with transition tables: one call per statement however many rows
-- it changed (a Merkle batch finalizes thousands at once). While no endpoint is enabled the
-- call returns after one probe; PostgreSQL still keeps the statement's old and new rows for
-- it (transition tables cannot be limited to a column), a copy per updated row.
CREATE FUNCTION webhook_credentials_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[];
    types text[];
    batches uuid[];
BEGIN
    -- Nothing to do unless an issuer of these rows has an enabled endpoint: first whether any
    -- issuer has one (no endpoint at all: one probe of an empty table), then these rows'
    -- issuers (one index probe each; the common case is one issuer).
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled)
       OR NOT EXISTS (SELECT 1 FROM (SELECT DISTINCT issuer_id FROM new_rows) n
                      JOIN webhook_endpoints e ON e.issuer_id = n.issuer_id AND e.enabled) THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(n.id), array_agg(webhook_event_for_status(o.status, n.status))
    INTO ids, types
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE webhook_event_for_status(o.status, n.status) IS NOT NULL;
    IF ids IS NOT NULL THEN
        PERFORM webhook_record_credential_events(ids, types,
            array_fill(NULL::text, ARRAY[cardinality(ids)]),
            array_fill(NULL::bigint, ARRAY[cardinality(ids)]));
    END IF;
    SELECT array_agg(DISTINCT n.request_batch_id) INTO batches
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.request_batch_id IS NOT NULL AND n.status IS DISTINCT FROM o.status
      AND n.status IN ('finalized', 'revoked', 'recovered');
    IF batches IS NOT NULL THEN
        PERFORM webhook_record_batch_events(batches);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER credentials_webhook_events AFTER UPDATE ON credentials
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_credentials_updated();

-- An inserted row is reported only when the reconciler backfills it ('recovered'; issuance
-- inserts 'queued'): a row-level trigger whose WHEN (the inlined rule) is false for every
-- other insert, so bulk issuance (COPY, tens of
-- thousands of rows a second) builds no transition table and calls no function.
CREATE FUNCTION webhook_credential_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        PERFORM webhook_record_credential_events(ARRAY[NEW.id],
            ARRAY[webhook_event_for_status(NULL, NEW.status)], ARRAY[NULL::text], ARRAY[NULL::bigint]);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER credentials_webhook_inserted AFTER INSERT ON credentials
    FOR EACH ROW WHEN (webhook_event_for_status(NULL, NEW.status) IS NOT NULL)
    EXECUTE FUNCTION webhook_credential_inserted();

-- credential.revoked: when a revocation gains its finalized anchor (the relay, or the
-- reconciler finding it on chain; the credential turns 'revoked' in the same transaction).
CREATE FUNCTION webhook_revocations_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[];
    sigs text[];
    slots bigint[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(n.credential_id), array_agg(n.anchor_signature), array_agg(n.anchor_slot)
        INTO ids, sigs, slots
        FROM new_rows n JOIN old_rows o ON o.credential_id = n.credential_id
        WHERE o.anchor_signature IS NULL AND n.anchor_signature IS NOT NULL;
    ELSE
        SELECT array_agg(n.credential_id), array_agg(n.anchor_signature), array_agg(n.anchor_slot)
        INTO ids, sigs, slots
        FROM new_rows n WHERE n.anchor_signature IS NOT NULL;
    END IF;
    IF ids IS NOT NULL THEN
        PERFORM webhook_record_credential_events(ids,
            array_fill('credential.revoked'::text, ARRAY[cardinality(ids)]), sigs, slots);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER revocations_webhook_updated AFTER UPDATE ON revocations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_revocations_changed();
CREATE TRIGGER revocations_webhook_inserted AFTER INSERT ON revocations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_revocations_changed();
