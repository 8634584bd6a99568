-- Each issuer's spend in the trailing hour and day (`store::outbox::lamports_spent`, read once
-- per issuer per relay pass with a budget set, and `lamports_spent_by_issuer`, the relay's
-- budget gauges every 30 s) selects anchor transactions of the last day: without an index that
-- is a scan of every transaction ever sent.
--
-- A plain CREATE INDEX blocks writes to anchor_transactions while it builds. On a large live
-- table, create it by hand first with
-- `CREATE INDEX CONCURRENTLY IF NOT EXISTS anchor_transactions_created_at ...` (same
-- definition): this migration then finds it and does nothing (see V11 for an INVALID one).
CREATE INDEX IF NOT EXISTS anchor_transactions_created_at
    ON anchor_transactions (created_at);
