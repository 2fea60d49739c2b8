-- See migrations/sqlite/0001_init.sql for the commentary; the schema is the
-- same with PostgreSQL types.
CREATE TABLE deliveries (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    forge        TEXT        NOT NULL,
    delivery_id  TEXT        NOT NULL,
    order_key    TEXT        NOT NULL,
    kind         TEXT        NOT NULL,
    payload      BYTEA       NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    enqueued_at  TIMESTAMPTZ NOT NULL,
    state        TEXT        NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'leased', 'done', 'dead')),
    attempts     INTEGER     NOT NULL DEFAULT 0,
    available_at TIMESTAMPTZ NOT NULL,
    lease_owner  TEXT        NOT NULL DEFAULT '',
    leased_until TIMESTAMPTZ,
    last_error   TEXT        NOT NULL DEFAULT '',
    finished_at  TIMESTAMPTZ,
    UNIQUE (forge, delivery_id)
);
CREATE INDEX deliveries_open ON deliveries (seq) WHERE state IN ('pending', 'leased');
CREATE INDEX deliveries_open_key ON deliveries (order_key, seq) WHERE state IN ('pending', 'leased');
CREATE INDEX deliveries_leased ON deliveries (order_key, seq) WHERE state = 'leased';
CREATE INDEX deliveries_finished ON deliveries (state, seq) WHERE state IN ('done', 'dead');

CREATE TABLE facts (
    scope      TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    value      TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE reports (
    forge      TEXT        NOT NULL,
    repo       TEXT        NOT NULL,
    tag        TEXT        NOT NULL,
    data       BYTEA       NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (forge, repo, tag)
);

-- data is TEXT, not JSONB: JSONB normalizes numbers and key order, and the
-- stored bytes must stay exactly what was hashed.
CREATE TABLE audit_records (
    seq           BIGINT      PRIMARY KEY,
    time          TIMESTAMPTZ NOT NULL,
    kind          TEXT        NOT NULL,
    forge         TEXT        NOT NULL DEFAULT '',
    repo          TEXT        NOT NULL DEFAULT '',
    change        BIGINT      NOT NULL DEFAULT 0,
    head_sha      TEXT        NOT NULL DEFAULT '',
    delivery_id   TEXT        NOT NULL DEFAULT '',
    policy_digest TEXT        NOT NULL DEFAULT '',
    verdict       TEXT        NOT NULL DEFAULT '',
    data          TEXT,
    prev_hash     TEXT        NOT NULL,
    hash          TEXT        NOT NULL
);
CREATE INDEX audit_records_repo ON audit_records (repo, seq);
CREATE INDEX audit_records_time ON audit_records (time);

CREATE FUNCTION audit_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_records is append-only';
END;
$$;
CREATE TRIGGER audit_records_no_update BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only();
