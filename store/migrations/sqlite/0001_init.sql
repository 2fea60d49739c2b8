-- Durable delivery queue. seq orders deliveries (per-key ordering follows it);
-- (forge, delivery_id) deduplicates redeliveries. Finished rows are kept
-- (state done/dead) so that a late redelivery is still recognised; PurgeDone
-- trims them.
CREATE TABLE deliveries (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    forge        TEXT    NOT NULL,
    delivery_id  TEXT    NOT NULL,
    order_key    TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    payload      BLOB    NOT NULL,
    received_at  TEXT    NOT NULL,
    enqueued_at  TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'leased', 'done', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    available_at TEXT    NOT NULL,
    lease_owner  TEXT    NOT NULL DEFAULT '',
    leased_until TEXT,
    last_error   TEXT    NOT NULL DEFAULT '',
    finished_at  TEXT,
    UNIQUE (forge, delivery_id)
);
-- Finding ready work and checking a key's predecessors only ever look at
-- unfinished rows: partial indexes stay small however many rows are done.
-- SQLite uses a partial index only when the query repeats its WHERE terms
-- literally, hence the redundant "state IN (...)" terms in the queries.
CREATE INDEX deliveries_open ON deliveries (seq) WHERE state IN ('pending', 'leased');
CREATE INDEX deliveries_open_key ON deliveries (order_key, seq) WHERE state IN ('pending', 'leased');
CREATE INDEX deliveries_leased ON deliveries (order_key, seq) WHERE state = 'leased';
CREATE INDEX deliveries_finished ON deliveries (state, seq) WHERE state IN ('done', 'dead');

CREATE TABLE facts (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE reports (
    forge      TEXT NOT NULL,
    repo       TEXT NOT NULL,
    tag        TEXT NOT NULL,
    data       BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (forge, repo, tag)
);

-- Append-only, hash-chained audit trail (see package audit). seq is assigned
-- by the store as previous seq + 1 inside the append transaction, never by
-- AUTOINCREMENT, so that it has no gaps.
CREATE TABLE audit_records (
    seq           INTEGER PRIMARY KEY,
    time          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    forge         TEXT    NOT NULL DEFAULT '',
    repo          TEXT    NOT NULL DEFAULT '',
    change        INTEGER NOT NULL DEFAULT 0,
    head_sha      TEXT    NOT NULL DEFAULT '',
    delivery_id   TEXT    NOT NULL DEFAULT '',
    policy_digest TEXT    NOT NULL DEFAULT '',
    verdict       TEXT    NOT NULL DEFAULT '',
    data          TEXT,
    prev_hash     TEXT    NOT NULL,
    hash          TEXT    NOT NULL
);
CREATE INDEX audit_records_repo ON audit_records (repo, seq);
CREATE INDEX audit_records_time ON audit_records (time);

-- Guard against accidental edits. Whoever can drop a trigger can also edit
-- rows; the hash chain is what detects that.
CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit_records is append-only');
END;
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit_records is append-only');
END;
