-- Anchoring keys with validity windows (issue #17). An issuer anchors with one key at a time;
-- `admin rotate-anchor-key` retires the active key and activates the next at the same instant.
-- A memo paid by a key after its retirement does not speak for the issuer (verifier and
-- reconciler: domain::anchor_keys). This table replaces issuers.anchor_pubkey as the one
-- place an issuer's anchoring keys are kept.
CREATE TABLE issuer_anchor_keys (
    issuer_id   text NOT NULL REFERENCES issuers (id),
    -- Base58 of a 32-byte Solana public key (checked in full by the application; the
    -- pattern keeps anything else out of the table).
    pubkey      text NOT NULL CHECK (pubkey ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    valid_from  timestamptz NOT NULL,
    retired_at  timestamptz,
    PRIMARY KEY (issuer_id, pubkey),
    CHECK (retired_at IS NULL OR retired_at >= valid_from)
);
-- The relay, the proof endpoint and the profile read "the" active key: at most one.
CREATE UNIQUE INDEX issuer_anchor_keys_one_active
    ON issuer_anchor_keys (issuer_id) WHERE retired_at IS NULL;
-- The reconciler groups issuers by key.
CREATE INDEX issuer_anchor_keys_pubkey ON issuer_anchor_keys (pubkey);

-- Existing keys become active keys valid since their issuer was created. A value not even
-- shaped like a key is left out: such an issuer has no anchoring key until one is rotated in
-- (`admin rotate-anchor-key`), and its verifications say so.
INSERT INTO issuer_anchor_keys (issuer_id, pubkey, valid_from)
    SELECT id, anchor_pubkey, created_at FROM issuers
    WHERE anchor_pubkey ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$';

ALTER TABLE issuers DROP COLUMN anchor_pubkey;

-- Two new reconciler findings: a memo paid by an issuer's key after the issuer retired it
-- (never trusted), and a stored anchoring key the reconciler could not even scan.
ALTER TABLE reconciliation_findings DROP CONSTRAINT reconciliation_findings_kind_check;
ALTER TABLE reconciliation_findings ADD CONSTRAINT reconciliation_findings_kind_check
    CHECK (kind IN ('pending_anchored', 'missing_row', 'drift', 'forged', 'failed_tx',
                    'retired_key', 'malformed_key'));

-- The anchoring key that pays for (and signs) each stored transaction, so a proof bundle names
-- the key that actually paid even after a rotation. NULL for transactions stored before this
-- migration: each issuer had exactly one key then, its active key now.
ALTER TABLE anchor_transactions ADD COLUMN payer text;
