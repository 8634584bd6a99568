-- The reconciler's state: how far each anchoring key's history has been scanned, and every
-- disagreement between PostgreSQL and the chain it has seen (invariant 3: recorded in the
-- database, not only counted in metrics).

CREATE TABLE reconciler_checkpoints (
    -- Base58 anchoring key whose getSignaturesForAddress history was scanned.
    anchor_pubkey   text PRIMARY KEY,
    -- Newest finalized signature seen: the next scan pages back `until` it.
    last_signature  text NOT NULL,
    last_slot       bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reconciliation_findings (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN
                      ('pending_anchored', 'missing_row', 'drift', 'forged', 'failed_tx')),
    -- The on-chain transaction the finding is about (for drift: the signature the row claims).
    signature       text NOT NULL,
    slot            bigint,
    credential_id   uuid,
    issuer_id       text,
    detail          text NOT NULL DEFAULT '',
    detected_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz
);
-- Idempotent recording: INSERT ... ON CONFLICT (kind, signature, credential_id) DO NOTHING,
-- so re-scanning the same window (or two overlapping runs) never duplicates a finding.
-- NULLS NOT DISTINCT (PostgreSQL 15+) so findings without a credential (a forged memo that
-- names no credential of ours) are deduplicated too.
CREATE UNIQUE INDEX reconciliation_findings_once
    ON reconciliation_findings (kind, signature, credential_id) NULLS NOT DISTINCT;
-- Operators' view of what is still open: WHERE resolved_at IS NULL ORDER BY detected_at DESC.
CREATE INDEX reconciliation_findings_open
    ON reconciliation_findings (detected_at DESC) WHERE resolved_at IS NULL;
-- Drift check: credentials finalized in the window,
-- WHERE status = 'finalized' AND finalized_at >= $since AND anchor_signature IS NOT NULL.
CREATE INDEX credentials_finalized_at
    ON credentials (finalized_at) WHERE status = 'finalized';
