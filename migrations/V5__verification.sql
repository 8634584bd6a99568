-- Issue #7: revocations. A revocation is recorded here and anchored through the outbox as an
-- 'anchor_revocation' job (ca1:r memo) in the same transaction; the credential becomes
-- 'revoked' only when that memo is finalized.

CREATE TABLE revocations (
    -- One revocation per credential: revoking again returns this row (idempotent).
    credential_id    uuid PRIMARY KEY REFERENCES credentials (id),
    issuer_id        text NOT NULL REFERENCES issuers (id),
    -- Why (for the registrar and the verifier page). Never written on chain: the memo carries
    -- the credential hash only (invariant 5).
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    requested_at     timestamptz NOT NULL DEFAULT now(),
    -- The finalized ca1:r transaction; NULL while the revocation is pending.
    anchor_signature text,
    anchor_slot      bigint,
    finalized_at     timestamptz,
    CONSTRAINT revocations_anchor_complete CHECK (
        (anchor_signature IS NULL) = (finalized_at IS NULL))
);
