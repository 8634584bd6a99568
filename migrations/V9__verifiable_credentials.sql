-- Every credential is also a W3C Verifiable Credential (Open Badges 3.0, issue #19), made and
-- signed at issuance and kept as the exact text handed out, so its bytes never change (a
-- wallet may have stored them). NULL for credentials issued before this release and for
-- rows recovered from a proof bundle: GET /v1/credentials/{id}/vc answers vc_not_available.
-- The VC carries the salt (its recipient identityHash is salted with it): erasing a salt
-- (crypto-shredding, docs/proof-bundle.md) must erase the VC too, or the recipient could
-- still be brute-forced from it.
ALTER TABLE credentials ADD COLUMN vc text,
    ADD CONSTRAINT credentials_vc_needs_salt CHECK (vc IS NULL OR salt IS NOT NULL);
