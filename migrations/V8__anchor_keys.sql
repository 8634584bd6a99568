-- Anchoring keys with validity windows (issue #17). An issuer anchors with one key at a time;
-- `admin rotate-anchor-key` retires the active key and activates the next at the same instant.
-- A memo paid by a key after its retirement does not speak for the issuer (verifier and
-- reconciler: domain::anchor_keys). This table replaces issuers.anchor_pubkey as the one
-- place an issuer's anchoring keys are kept; that column stays only as a mirror of the active
-- key for processes of the previous release during a rolling upgrade (a later release drops
-- it), written by create-issuer and rotate-anchor-key and read by nothing here.
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


-- Two new reconciler findings: a memo paid by an issuer's key after the issuer retired it
-- (never trusted), and a stored anchoring key the reconciler could not even scan.
ALTER TABLE reconciliation_findings DROP CONSTRAINT reconciliation_findings_kind_check;
ALTER TABLE reconciliation_findings ADD CONSTRAINT reconciliation_findings_kind_check
    CHECK (kind IN ('pending_anchored', 'missing_row', 'drift', 'forged', 'failed_tx',
                    'retired_key', 'malformed_key'));

-- The anchoring key that pays for (and signs) each stored transaction, so a proof bundle names
-- the key that actually paid even after a rotation. Transactions stored before this migration
-- were paid by their issuer's one key: filled in from it here (a credential's or a batch's
-- issuer). Rows the reconciler rebuilt from the chain have no stored transaction; their bundle
-- names the key whose window holds their block time (domain::anchor_keys::key_at).
ALTER TABLE anchor_transactions ADD COLUMN payer text;
UPDATE anchor_transactions t SET payer = i.anchor_pubkey
    FROM credentials c JOIN issuers i ON i.id = c.issuer_id
    WHERE t.payer IS NULL AND t.batch_id IS NULL AND t.credential_id = c.id;
UPDATE anchor_transactions t SET payer = i.anchor_pubkey
    FROM anchor_batches b JOIN issuers i ON i.id = b.issuer_id
    WHERE t.payer IS NULL AND t.batch_id = b.id;
