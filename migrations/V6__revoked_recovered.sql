-- A credential rebuilt from the chain ('recovered') holds only what its memo proves: no
-- serial, recipient, dates, file digest or signature. Its revocation memo can be on chain too
-- (revoked after the backup the database was restored from), and the registrar can revoke a
-- recovered credential: 'revoked' must then allow the same missing fields. Before this, both
-- the reconciler's and the relay's move to 'revoked' failed this check for such a row.
ALTER TABLE credentials DROP CONSTRAINT credentials_complete_unless_recovered;
ALTER TABLE credentials ADD CONSTRAINT credentials_complete_unless_recovered CHECK (
    status IN ('recovered', 'revoked')
    OR (serial IS NOT NULL AND recipient_id IS NOT NULL AND issued_at IS NOT NULL
        AND credential_type IS NOT NULL AND title IS NOT NULL AND file_digest IS NOT NULL
        AND signing_key_id IS NOT NULL AND signature IS NOT NULL));
