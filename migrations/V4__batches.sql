-- Graduation day: bulk issuance requests, and Merkle batches that anchor many credentials
-- with one memo. See ARCHITECTURE.md ("Merkle batches").

-- One POST /v1/credential-batches request: what it submitted and how each item ended.
CREATE TABLE credential_batches (
    id              uuid PRIMARY KEY,
    issuer_id       text NOT NULL REFERENCES issuers (id),
    submitted       integer NOT NULL,
    accepted        integer NOT NULL,
    duplicates      integer NOT NULL,
    invalid         integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE credentials ADD COLUMN request_batch_id uuid REFERENCES credential_batches (id);
-- GET /v1/credential-batches/{id}: counts by status of the credentials a request created.
CREATE INDEX credentials_request_batch ON credentials (request_batch_id, status)
    WHERE request_batch_id IS NOT NULL;

-- Anchoring mode of an issuer; NULL follows the relay's configured default.
ALTER TABLE issuers ADD COLUMN anchor_mode text CHECK (anchor_mode IN ('single', 'merkle'));

-- A Merkle batch is sealed ONCE (members and root fixed, in one commit with the members'
-- outbox rows pointing at it) before any transaction is signed for it, and is then anchored
-- like a single job: leased, its signed transaction stored before the first send, re-signed
-- only when proven unable to land. A crash therefore resends the same batch; a member can
-- never be sealed into a second batch (anchor_batch_members.outbox_id is UNIQUE).
CREATE TABLE anchor_batches (
    id              uuid PRIMARY KEY,
    issuer_id       text NOT NULL REFERENCES issuers (id),
    member_count    integer NOT NULL CHECK (member_count >= 1),
    root            bytea NOT NULL CHECK (length(root) = 32),
    -- 'recovered': backfilled by the reconciler from a memo with no batch record; members are
    -- re-linked when their proof bundles are presented.
    origin          text NOT NULL DEFAULT 'relay' CHECK (origin IN ('relay', 'recovered')),
    attempts        integer NOT NULL DEFAULT 0,
    failures        integer NOT NULL DEFAULT 0,
    available_at    timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    locked_by       text,
    last_error      text,
    completed_at    timestamptz,
    dead_at         timestamptz,
    anchor_signature text,
    anchor_slot     bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- The relay's batch claim, as outbox_due.
CREATE INDEX anchor_batches_due ON anchor_batches (available_at, id)
    WHERE completed_at IS NULL AND dead_at IS NULL;

CREATE TABLE anchor_batch_members (
    batch_id        uuid NOT NULL REFERENCES anchor_batches (id),
    leaf_index      integer NOT NULL,
    credential_id   uuid NOT NULL REFERENCES credentials (id),
    -- NULL only for members re-linked into a recovered batch (no outbox job).
    outbox_id       bigint UNIQUE REFERENCES outbox (id),
    -- The inclusion path (domain::MerkleProof as JSON), fixed when the batch is sealed.
    proof           jsonb NOT NULL,
    PRIMARY KEY (batch_id, leaf_index)
);
-- Proof bundles and the reconciler: the batch of a credential.
CREATE UNIQUE INDEX anchor_batch_members_credential ON anchor_batch_members (credential_id);

-- A sealed member's outbox row points at its batch; the single-mode claim skips such rows.
ALTER TABLE outbox ADD COLUMN batch_id uuid REFERENCES anchor_batches (id);
-- The single-mode claim skips sealed members: keep them out of its index, so a large sealed
-- backlog waiting for finality costs the claim nothing.
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (available_at, id)
    WHERE completed_at IS NULL AND dead_at IS NULL AND batch_id IS NULL;
-- Batch sealing: due, unbatched rows of one issuer, oldest first.
CREATE INDEX outbox_unbatched ON outbox (issuer_id, id)
    WHERE completed_at IS NULL AND dead_at IS NULL AND batch_id IS NULL;
-- Completing a batch completes its members' jobs.
CREATE INDEX outbox_batch ON outbox (batch_id) WHERE batch_id IS NOT NULL;

-- Anchor transactions belong to exactly one job: an outbox row (single mode) or a batch.
ALTER TABLE anchor_transactions ALTER COLUMN outbox_id DROP NOT NULL;
ALTER TABLE anchor_transactions ALTER COLUMN credential_id DROP NOT NULL;
ALTER TABLE anchor_transactions ADD COLUMN batch_id uuid REFERENCES anchor_batches (id);
ALTER TABLE anchor_transactions ADD CONSTRAINT anchor_transactions_one_owner CHECK (
    (outbox_id IS NOT NULL AND credential_id IS NOT NULL AND batch_id IS NULL)
    OR (outbox_id IS NULL AND credential_id IS NULL AND batch_id IS NOT NULL));
-- The at-most-one-anchor guard for batches, as anchor_transactions_one_live for jobs.
CREATE UNIQUE INDEX anchor_transactions_one_live_batch
    ON anchor_transactions (batch_id) WHERE status IN ('signed', 'sent', 'confirmed');
