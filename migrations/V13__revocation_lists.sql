-- Issue #18: an issuer in Merkle mode anchors its revocations in lists, up to ten per
-- transaction (`ca1:v` memos, domain::memo), instead of one `ca1:r` transaction each. A list
-- is sealed ONCE, exactly like a Merkle batch: its members (their outbox rows, in id order)
-- are fixed in one commit before any transaction is signed for it, so a crash resends the
-- same list and a revocation can never be sealed into two. See ARCHITECTURE.md
-- ("Revocation lists") for why a list and not a Merkle root.
CREATE TABLE revocation_batches (
    id               uuid PRIMARY KEY,
    issuer_id        text NOT NULL REFERENCES issuers (id),
    member_count     integer NOT NULL CHECK (member_count BETWEEN 1 AND 10),
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
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- The relay's claim, as anchor_batches_due.
CREATE INDEX revocation_batches_due ON revocation_batches (available_at, id)
    WHERE completed_at IS NULL AND dead_at IS NULL;

-- A sealed revocation's outbox row points at its list; the single-mode claim skips it.
ALTER TABLE outbox ADD COLUMN revocation_batch_id uuid REFERENCES revocation_batches (id);
CREATE INDEX outbox_revocation_batch ON outbox (revocation_batch_id)
    WHERE revocation_batch_id IS NOT NULL;
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (available_at, id)
    WHERE completed_at IS NULL AND dead_at IS NULL AND batch_id IS NULL
      AND revocation_batch_id IS NULL;

-- Anchor transactions gain a fourth owner: a revocation list.
ALTER TABLE anchor_transactions ADD COLUMN revocation_batch_id uuid
    REFERENCES revocation_batches (id);
ALTER TABLE anchor_transactions DROP CONSTRAINT anchor_transactions_one_owner;
ALTER TABLE anchor_transactions ADD CONSTRAINT anchor_transactions_one_owner CHECK (
    (outbox_id IS NOT NULL AND credential_id IS NOT NULL AND batch_id IS NULL
        AND status_list_version_id IS NULL AND revocation_batch_id IS NULL)
    OR (outbox_id IS NULL AND credential_id IS NULL AND batch_id IS NOT NULL
        AND status_list_version_id IS NULL AND revocation_batch_id IS NULL)
    OR (outbox_id IS NULL AND credential_id IS NULL AND batch_id IS NULL
        AND status_list_version_id IS NOT NULL AND revocation_batch_id IS NULL)
    OR (outbox_id IS NULL AND credential_id IS NULL AND batch_id IS NULL
        AND status_list_version_id IS NULL AND revocation_batch_id IS NOT NULL)) NOT VALID;
ALTER TABLE anchor_transactions VALIDATE CONSTRAINT anchor_transactions_one_owner;
-- The at-most-one-anchor guard for lists, as for jobs, batches and list versions.
CREATE UNIQUE INDEX anchor_transactions_one_live_revocation_batch
    ON anchor_transactions (revocation_batch_id) WHERE status IN ('signed', 'sent', 'confirmed');
