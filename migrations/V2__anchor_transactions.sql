-- The relay's idempotent-send bookkeeping: every signed anchor transaction is stored
-- (bytes, signature, lastValidBlockHeight) BEFORE its first send, so after any crash the
-- same bytes are rebroadcast (same signature: the chain deduplicates) instead of a new one.

ALTER TABLE outbox ADD COLUMN failures integer NOT NULL DEFAULT 0;

CREATE TABLE anchor_transactions (
    signature                text PRIMARY KEY,
    outbox_id                bigint NOT NULL REFERENCES outbox (id),
    credential_id            uuid NOT NULL REFERENCES credentials (id),
    memo                     text NOT NULL,
    tx_bytes                 bytea NOT NULL,
    last_valid_block_height  bigint NOT NULL,
    fee_lamports             bigint NOT NULL,
    -- signed: stored, maybe sent; sent: the RPC accepted it; confirmed/finalized: on chain;
    -- expired: finalized block height passed lastValidBlockHeight and it never landed;
    -- failed: it landed with an error (anchors nothing).
    status                   text NOT NULL CHECK (status IN
                               ('signed', 'sent', 'confirmed', 'finalized', 'expired', 'failed')),
    slot                     bigint,
    error                    text,
    signed_by                text NOT NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    sent_at                  timestamptz,
    confirmed_at             timestamptz,
    finalized_at             timestamptz
);
-- THE at-most-one-anchor guard: a job has at most one transaction that could still land.
-- A new one can be inserted only after the previous one was proven expired or failed.
CREATE UNIQUE INDEX anchor_transactions_one_live
    ON anchor_transactions (outbox_id) WHERE status IN ('signed', 'sent', 'confirmed');
-- Reconciler and API: the transactions of one credential.
CREATE INDEX anchor_transactions_credential ON anchor_transactions (credential_id);
