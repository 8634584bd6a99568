-- W3C Bitstring Status List (issue #20): every credential gets a bit in one of its issuer's
-- status lists; each published version of a list is signed (by the issuer-api) and anchored
-- by a `ca1:s` memo (by the relay, as a job like a Merkle batch). See ARCHITECTURE.md
-- ("Status lists") and domain::status_list.

-- Each issuer's next free ordinal. The API reserves blocks of ordinals from it (a short
-- autocommit UPDATE, not part of the issuing transaction, so the row is never held while a
-- credential is signed): an ordinal reserved and never used leaves a bit that stays 0.
CREATE TABLE status_list_counters (
    issuer_id     text PRIMARY KEY REFERENCES issuers (id),
    next_ordinal  bigint NOT NULL DEFAULT 0 CHECK (next_ordinal >= 0)
);

-- The credential's ordinal (list = ordinal / 131072, index = ordinal % 131072), recorded in
-- the issuing transaction. NULL for credentials issued before this migration and for rows
-- rebuilt from the chain.
-- The CHECK is added NOT VALID (every existing row is NULL): no full scan under the
-- ACCESS EXCLUSIVE lock of ALTER TABLE on a large credentials table.
ALTER TABLE credentials ADD COLUMN status_ordinal bigint;
ALTER TABLE credentials ADD CONSTRAINT credentials_status_ordinal_check
    CHECK (status_ordinal >= 0) NOT VALID;
CREATE UNIQUE INDEX credentials_status_ordinal ON credentials (issuer_id, status_ordinal)
    WHERE status_ordinal IS NOT NULL;

-- A list exists once an ordinal in it was reserved. `dirty_since`: its bits changed (a
-- revocation, or the list is new) and no version states them yet; the publisher waits for
-- the debounce after the first change, so a burst of revocations makes one version.
CREATE TABLE status_lists (
    issuer_id    text NOT NULL REFERENCES issuers (id),
    list_no      bigint NOT NULL CHECK (list_no BETWEEN 0 AND 4294967295),
    dirty_since  timestamptz,
    -- Counts changes of its bits. The publisher reads it (with the bits, one snapshot) and
    -- records a version only if what it read is newer than the last recorded state
    -- (`published_changes`): two publishers never record versions out of order, so bits only
    -- gain ones. The list stays dirty unless nothing changed meanwhile.
    changes      bigint NOT NULL DEFAULT 0,
    published_changes bigint NOT NULL DEFAULT -1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer_id, list_no)
);
CREATE INDEX status_lists_dirty ON status_lists (dirty_since) WHERE dirty_since IS NOT NULL;

-- Every revocation recorded (by the API, or restored from the chain by the reconciler)
-- changes its credential's list: one rule for both paths. 131072 is
-- domain::status_list::LIST_SIZE (a store test checks they agree).
CREATE FUNCTION status_list_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE status_lists l SET changes = l.changes + 1, dirty_since = coalesce(l.dirty_since, now())
    FROM credentials c
    WHERE c.id = NEW.credential_id AND c.status_ordinal IS NOT NULL
      AND l.issuer_id = c.issuer_id AND l.list_no = c.status_ordinal / 131072;
    RETURN NEW;
END;
$$;
CREATE TRIGGER revocations_change_status_list AFTER INSERT ON revocations
    FOR EACH ROW EXECUTE FUNCTION status_list_changed();

-- One published version of a list: what it states (bits_hash, the anchored hash), the signed
-- list credential as served, and its anchoring job (the lease columns, as anchor_batches).
-- A version is served once its anchor is finalized (completed_at).
CREATE TABLE status_list_versions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issuer_id        text NOT NULL,
    list_no          bigint NOT NULL,
    version          integer NOT NULL CHECK (version >= 1),
    bits_hash        bytea NOT NULL CHECK (length(bits_hash) = 32),
    revoked_count    integer NOT NULL CHECK (revoked_count >= 0),
    -- The signed BitstringStatusListCredential, byte for byte as served. NULL only for a
    -- version rebuilt from the chain ('recovered') until the publisher re-signs its bits.
    credential       text,
    credential_sha256 bytea CHECK (length(credential_sha256) = 32),
    origin           text NOT NULL DEFAULT 'publisher' CHECK (origin IN ('publisher', 'recovered')),
    attempts         integer NOT NULL DEFAULT 0,
    failures         integer NOT NULL DEFAULT 0,
    available_at     timestamptz NOT NULL DEFAULT now(),
    locked_until     timestamptz,
    locked_by        text,
    last_error       text,
    completed_at     timestamptz,
    dead_at          timestamptz,
    anchor_signature text,
    anchor_slot      bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (issuer_id, list_no) REFERENCES status_lists (issuer_id, list_no),
    CHECK (origin = 'recovered' OR credential IS NOT NULL),
    -- The same bits are the same statement: one row each (bits only ever gain ones).
    UNIQUE (issuer_id, list_no, bits_hash)
);
-- The relay's claim, as anchor_batches_due.
CREATE INDEX status_list_versions_due ON status_list_versions (available_at, id)
    WHERE completed_at IS NULL AND dead_at IS NULL;
-- Serving: the newest anchored version of a list.
CREATE INDEX status_list_versions_served ON status_list_versions (issuer_id, list_no, version DESC)
    WHERE completed_at IS NOT NULL;

-- Anchor transactions gain a third owner: a status list version.
ALTER TABLE anchor_transactions ADD COLUMN status_list_version_id bigint
    REFERENCES status_list_versions (id);
ALTER TABLE anchor_transactions DROP CONSTRAINT anchor_transactions_one_owner;
-- NOT VALID, then VALIDATE: the scan of existing rows runs under a lock that lets writes go on.
ALTER TABLE anchor_transactions ADD CONSTRAINT anchor_transactions_one_owner CHECK (
    (outbox_id IS NOT NULL AND credential_id IS NOT NULL AND batch_id IS NULL
        AND status_list_version_id IS NULL)
    OR (outbox_id IS NULL AND credential_id IS NULL AND batch_id IS NOT NULL
        AND status_list_version_id IS NULL)
    OR (outbox_id IS NULL AND credential_id IS NULL AND batch_id IS NULL
        AND status_list_version_id IS NOT NULL)) NOT VALID;
ALTER TABLE anchor_transactions VALIDATE CONSTRAINT anchor_transactions_one_owner;
CREATE UNIQUE INDEX anchor_transactions_one_live_status_list
    ON anchor_transactions (status_list_version_id) WHERE status IN ('signed', 'sent', 'confirmed');

-- The reconciler's status-list findings: a version anchored on chain the database did not
-- know (restored), and a list whose newest servable version is not the newest anchored one.
ALTER TABLE reconciliation_findings DROP CONSTRAINT reconciliation_findings_kind_check;
ALTER TABLE reconciliation_findings ADD CONSTRAINT reconciliation_findings_kind_check
    CHECK (kind IN ('pending_anchored', 'missing_row', 'drift', 'forged', 'failed_tx',
                    'retired_key', 'malformed_key', 'status_list_recovered',
                    'status_list_stale'));
