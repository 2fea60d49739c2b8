-- The lease query walks unfinished deliveries in (available_at, seq) order
-- looking for due ones (see dueCond in queue.go): deliveries waiting for a
-- retry or a rate-limit reset sort after every due one and are never
-- walked. The index carries what the walk tests, so it reads no table rows.
CREATE INDEX deliveries_open_due ON deliveries (available_at, seq, state, leased_until, order_key)
    WHERE state IN ('pending', 'leased');

-- The per-key lookups of the lease query (is an earlier delivery of this
-- key unfinished, does a later one hold a lease) use this full index on
-- PostgreSQL: see unfinished() in queue.go for why not a partial one.
CREATE INDEX deliveries_key ON deliveries (order_key, seq);
