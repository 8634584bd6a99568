-- Initial schema: issuers and their keys, credentials, the transactional outbox,
-- and idempotency keys. Every index names the query that needs it.

CREATE TABLE issuers (
    -- Opaque slug (domain::IssuerId). It appears in on-chain memos, so it never carries personal data.
    id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    name            text NOT NULL,
    -- Base58 public key of the Solana key that pays for and signs this issuer's anchors.
    -- Verifiers trust an anchor only when its fee payer equals this key (invariant 4).
    anchor_pubkey   text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE issuer_signing_keys (
    issuer_id       text NOT NULL REFERENCES issuers (id),
    key_id          text NOT NULL,
    public_key      bytea NOT NULL CHECK (length(public_key) = 32),
    -- Ed25519 seed sealed (ChaCha20-Poly1305) under the service master key: a dump of this
    -- database alone cannot sign credentials. NULL for keys held only outside the database.
    sealed_seed     bytea,
    valid_from      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz,
    PRIMARY KEY (issuer_id, key_id)
);
-- Issuance signs with "the" active key of an issuer: at most one may be unretired.
CREATE UNIQUE INDEX issuer_signing_keys_one_active
    ON issuer_signing_keys (issuer_id) WHERE retired_at IS NULL;

CREATE TABLE api_keys (
    -- The public id embedded in the key text (cak_<id>_<secret>): the lookup is by id, then
    -- the secret's hash is compared in constant time. The plaintext is never stored.
    id              text PRIMARY KEY,
    issuer_id       text NOT NULL REFERENCES issuers (id),
    secret_hash     bytea NOT NULL CHECK (length(secret_hash) = 32),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

CREATE TABLE credentials (
    -- UUIDv7: time-ordered, so keyset pagination by id lists newest first without a sort column.
    id               uuid PRIMARY KEY,
    issuer_id        text NOT NULL REFERENCES issuers (id),
    -- Hash inputs. Nullable only for rows the reconciler backfilled from the chain
    -- (status 'recovered'), which know just what the memo proves.
    serial           text,
    recipient_id     text,
    issued_at        timestamptz,
    credential_type  text,
    title            text,
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    file_digest      bytea CHECK (length(file_digest) = 32),
    credential_hash  bytea NOT NULL CHECK (length(credential_hash) = 32),
    signing_key_id   text,
    signature        bytea CHECK (length(signature) = 64),
    status           text NOT NULL CHECK (status IN
                       ('queued', 'submitted', 'confirmed', 'finalized', 'failed', 'recovered', 'revoked')),
    anchor_signature text,
    anchor_slot      bigint,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finalized_at     timestamptz,
    CONSTRAINT credentials_complete_unless_recovered CHECK (
        status = 'recovered' OR (serial IS NOT NULL AND recipient_id IS NOT NULL AND issued_at IS NOT NULL
            AND credential_type IS NOT NULL AND title IS NOT NULL AND file_digest IS NOT NULL
            AND signing_key_id IS NOT NULL AND signature IS NOT NULL)),
    -- A serial identifies one credential of an issuer: re-issuing it is a duplicate or a conflict.
    CONSTRAINT credentials_issuer_serial UNIQUE (issuer_id, serial),
    FOREIGN KEY (issuer_id, signing_key_id) REFERENCES issuer_signing_keys (issuer_id, key_id)
);
-- GET /v1/credentials (no filter): WHERE issuer_id = $1 AND id < $cursor ORDER BY id DESC.
CREATE INDEX credentials_issuer_id_desc ON credentials (issuer_id, id DESC);
-- GET /v1/credentials?recipient_id=: same keyset walk restricted to one recipient.
CREATE INDEX credentials_issuer_recipient ON credentials (issuer_id, recipient_id, id DESC);
-- GET /v1/credentials?status=: same keyset walk restricted to one status.
CREATE INDEX credentials_issuer_status ON credentials (issuer_id, status, id DESC);
-- Verification by content: POST /v1/verify looks a credential up by its hash.
CREATE INDEX credentials_hash ON credentials (credential_hash);

CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('anchor_credential', 'anchor_revocation')),
    credential_id   uuid NOT NULL REFERENCES credentials (id),
    issuer_id       text NOT NULL REFERENCES issuers (id),
    -- Claim bookkeeping: a lease (locked_until/locked_by), never a row lock held across RPC calls.
    attempts        integer NOT NULL DEFAULT 0,
    available_at    timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    locked_by       text,
    last_error      text,
    completed_at    timestamptz,
    dead_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- The relay's claim: WHERE completed_at IS NULL AND dead_at IS NULL AND available_at <= now()
-- ORDER BY id. Partial, so finished rows (the vast majority over time) cost nothing to skip.
CREATE INDEX outbox_due ON outbox (available_at, id) WHERE completed_at IS NULL AND dead_at IS NULL;
-- outbox_pending / oldest-pending-age metrics scan only open rows.
CREATE INDEX outbox_open_created ON outbox (created_at) WHERE completed_at IS NULL;
-- At most one open anchoring job per credential and kind: a duplicate enqueue is a bug.
CREATE UNIQUE INDEX outbox_one_open_job ON outbox (credential_id, kind) WHERE completed_at IS NULL;

CREATE TABLE idempotency_keys (
    issuer_id        text NOT NULL REFERENCES issuers (id),
    key              text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the parsed request (file digest + fields), so a replay of the same logical
    -- request with a different multipart boundary still matches.
    request_hash     bytea NOT NULL,
    response_status  smallint,
    response_body    jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer_id, key)
);
-- Expiry sweep of old idempotency keys: DELETE ... WHERE created_at < now() - retention.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
