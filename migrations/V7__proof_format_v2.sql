-- Proof format v2 (issue #17): the credential id and a random per-credential salt enter the
-- credential hash. Every credential keeps the format it was issued in, so its bundle is
-- rebuilt exactly as it was signed and anchored.
--
-- proof_format: 1 or 2; NULL only for rows the reconciler backfilled from the chain, which
-- know no hash inputs until a bundle re-links them. Adding the column with a default fills
-- existing rows without a table rewrite (PostgreSQL >= 11); the default is then dropped so
-- every new row states its format explicitly.
ALTER TABLE credentials ADD COLUMN proof_format smallint DEFAULT 1
    CHECK (proof_format IN (1, 2));
UPDATE credentials SET proof_format = NULL WHERE signature IS NULL;
ALTER TABLE credentials ALTER COLUMN proof_format DROP DEFAULT;
-- salt: 32 random bytes, v2 only. It is the one secret that links the public on-chain hash to
-- the person: deleting it (crypto-shredding, for an erasure request) leaves the anchor and
-- the revocation history intact but makes the hash unlinkable to its inputs.
ALTER TABLE credentials ADD COLUMN salt bytea CHECK (octet_length(salt) = 32);
ALTER TABLE credentials ADD CONSTRAINT credentials_salt_only_v2
    CHECK (salt IS NULL OR proof_format = 2);
ALTER TABLE credentials ADD CONSTRAINT credentials_format_known_when_signed
    CHECK (signature IS NULL OR proof_format IS NOT NULL);
