-- `reconciler run-once --since "slot N"` (the runbook's restore step) selects the finalized
-- credentials anchored at or after a slot: without an index that is a scan of the whole
-- credentials table (about 30 GB at 10 M credentials). Partial like credentials_finalized_at:
-- only finalized rows carry a slot the reconciler asks about.
--
-- A plain CREATE INDEX blocks writes to credentials while it builds (seconds per million
-- rows). On a large live table, create it by hand first with
-- `CREATE INDEX CONCURRENTLY IF NOT EXISTS credentials_finalized_slot ...` (same definition):
-- this migration then finds it and does nothing. A CONCURRENTLY build that failed leaves an
-- INVALID index of that name, which this would skip and the planner never uses: check
-- `SELECT indisvalid FROM pg_index WHERE indexrelid = 'credentials_finalized_slot'::regclass`
-- and drop an invalid one before migrating.
CREATE INDEX IF NOT EXISTS credentials_finalized_slot
    ON credentials (anchor_slot) WHERE status = 'finalized';
