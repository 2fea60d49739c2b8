-- The lease query walks unfinished deliveries in seq order looking for due
-- ones. When an installation's rate limit is spent, thousands of deliveries
-- wait (not due) at the head of the queue, and reading each of them from
-- the table made every lease cost milliseconds while holding the writer.
-- This index carries what the walk tests, so waiting rows are skipped
-- inside the index.
CREATE INDEX deliveries_open_due ON deliveries (seq, state, available_at, leased_until, order_key)
    WHERE state IN ('pending', 'leased');

-- The per-key lookups of the lease query (is an earlier delivery of this
-- key unfinished, does a later one hold a lease) use this full index on
-- PostgreSQL: see unfinished() in queue.go for why not a partial one.
CREATE INDEX deliveries_key ON deliveries (order_key, seq);
