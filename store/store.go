// Package store persists what foureyes must not lose: the durable delivery
// queue, small facts remembered between events, release reports and the
// hash-chained audit trail. One implementation serves two engines through
// database/sql: SQLite (modernc.org/sqlite, the embedded default) and
// PostgreSQL (pgx v5), so that several replicas can share one database.
//
// Queries are written once with ? placeholders and rebound to $n for
// PostgreSQL. The few places where the engines differ (row locking, advisory
// locks, the time column type) are marked.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/foureyes-dev/foureyes/audit"
)

// Errors callers branch on.
var (
	// ErrNotFound: no such row.
	ErrNotFound = errors.New("not found")
	// ErrLeaseLost: the delivery is no longer leased by this owner (the
	// lease expired and another worker took it, or it was released).
	ErrLeaseLost = errors.New("lease lost")
	// ErrWrongState: the delivery is not in the state the operation needs
	// (e.g. Requeue of a delivery that is not dead).
	ErrWrongState = errors.New("delivery in wrong state")
)

type dialect int

const (
	sqliteDialect dialect = iota + 1
	postgresDialect
)

func (d dialect) String() string {
	if d == postgresDialect {
		return "postgres"
	}
	return "sqlite"
}

// DB is an open store. It is safe for concurrent use.
type DB struct {
	dialect dialect
	// w runs every write and every transaction. On SQLite it is a single
	// connection: SQLite has one writer at a time, and queueing writers in
	// Go instead of in SQLite's busy handler avoids SQLITE_BUSY and is
	// faster under concurrency.
	w *sql.DB
	// r runs plain reads. On SQLite it is a separate pool, so that reads
	// (WAL readers never block the writer) do not wait behind writes. On
	// PostgreSQL r == w.
	r   *sql.DB
	log *slog.Logger
	now func() time.Time
	// wStmts and rStmts are the prepared statements of w and r (SQLite).
	wStmts, rStmts stmtCache
	in             *intake // group commit of EnqueueAudited and AppendAudit (intake.go)
	wr             *intake // group commit of the workers' plain writes: d.in on SQLite (intake.go)
	// chain links new audit records; nil links them unkeyed, which
	// appendAuditTx refuses once the trail is keyed.
	chain *audit.Chain
	// mustExist: refuse to create a database (offline commands).
	mustExist bool
}

// Option configures Open.
type Option func(*DB)

// WithClock replaces time.Now for the times the store assigns itself
// (audit record times, enqueue times, finish times). Tests pass a fake clock.
func WithClock(now func() time.Time) Option {
	return func(d *DB) { d.now = now }
}

// WithAuditChain keys the audit records this store appends and verifies
// (see audit.Chain). The server always passes it; a store without it cannot
// append to a keyed trail.
func WithAuditChain(c *audit.Chain) Option {
	return func(d *DB) { d.chain = c }
}

// ErrNoDatabase: MustExist was given and there is no foureyes database at
// the named place.
var ErrNoDatabase = errors.New("no foureyes database")

// MustExist makes Open fail with ErrNoDatabase instead of creating a new,
// empty database: a command that reads the trail (verify, backup) must never
// call an empty database it just created intact.
func MustExist() Option {
	return func(d *DB) { d.mustExist = true }
}

// Open connects to the database named by dsn and applies pending
// migrations. dsn is "sqlite:PATH" (e.g. sqlite:foureyes.db) or a
// postgres:// or postgresql:// URL. logger may be nil.
func Open(ctx context.Context, dsn string, logger *slog.Logger, opts ...Option) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &DB{log: logger, now: time.Now}
	for _, o := range opts {
		o(d)
	}
	var err error
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		err = d.openSQLite(strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		err = d.openPostgres(dsn)
	default:
		return nil, fmt.Errorf("open store: unsupported database %q: want sqlite:PATH or postgres://", redact(dsn))
	}
	if err != nil {
		return nil, err
	}
	if err := d.Ping(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("open store %s: %w", redact(dsn), err)
	}
	if d.mustExist {
		if err := d.checkSchema(ctx); err != nil {
			d.Close()
			return nil, fmt.Errorf("open store %s: %w", redact(dsn), err)
		}
	}
	if err := d.migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	d.startIntake()
	return d, nil
}

func (d *DB) openSQLite(path string) error {
	// Accept sqlite:///abs/path as well as sqlite:/abs/path and sqlite:rel.
	path = strings.TrimPrefix(path, "//")
	if path == "" || strings.ContainsAny(path, "?#") || strings.Contains(path, ":memory:") {
		// An in-memory database would silently lose every accepted event
		// and cannot be shared by the reader and writer pools.
		return fmt.Errorf("open store: invalid sqlite path %q (want a file path without ? or #)", path)
	}
	d.dialect = sqliteDialect
	if d.mustExist {
		// Opening a missing file would create it.
		if fi, err := os.Stat(path); err != nil || fi.IsDir() {
			return fmt.Errorf("open store: %w at %s: the file does not exist (check FOUREYES_DATABASE or --database and the working directory)", ErrNoDatabase, path)
		}
	}
	// busy_timeout matters only for other processes (foureyes backup, audit
	// CLI) since this process has one writer connection. synchronous=NORMAL
	// in WAL mode survives process crashes (kill -9); only an OS crash or
	// power loss can lose the last transactions.
	common := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	// wal_autocheckpoint(100): SQLite checkpoints inside the commit that
	// grows the WAL past this many pages, and every sender waiting on that
	// group commit waits with it. At the default 1,000 pages each such
	// commit copied 4 MB and intake's p99 at 1,000/s was 20-30 ms; at 4,000
	// it was 52-61 ms, at 100 pages 13 ms (the same copying, in smaller
	// steps; the WAL stays under 1 MB).
	w, err := sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(100)&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// The writer connection is opened first (by Ping) so that WAL mode is
	// set before any reader connects.
	r, err := sql.Open("sqlite", path+"?"+common)
	if err != nil {
		w.Close()
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	d.w, d.r = w, r
	return nil
}

func (d *DB) openPostgres(dsn string) error {
	d.dialect = postgresDialect
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("open postgres %s: %w", redact(dsn), err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	d.w, d.r = db, db
	return nil
}

// checkSchema fails with ErrNoDatabase when the database has never been
// migrated: an empty file or an empty PostgreSQL database is not a trail.
func (d *DB) checkSchema(ctx context.Context) error {
	q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
	if d.dialect == postgresDialect {
		q = "SELECT COUNT(*) FROM (SELECT to_regclass('schema_migrations') AS t) s WHERE t IS NOT NULL"
	}
	var n int
	if err := d.r.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return fmt.Errorf("look for the schema: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: the database exists but foureyes never wrote to it (no schema_migrations table)", ErrNoDatabase)
	}
	return nil
}

// Close closes the database.
func (d *DB) Close() error {
	d.stopIntake()
	errs := []error{d.wStmts.close(), d.rStmts.close()}
	if d.r != nil && d.r != d.w {
		errs = append(errs, d.r.Close())
	}
	if d.w != nil {
		errs = append(errs, d.w.Close())
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers (for readiness probes: the webhook
// must answer 503 when it cannot persist).
func (d *DB) Ping(ctx context.Context) error {
	if err := d.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", d.dialect, err)
	}
	return nil
}

// Dialect is "sqlite" or "postgres".
func (d *DB) Dialect() string { return d.dialect.String() }

// redact hides a password in a URL for error messages and logs.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.Redacted()
}

// rebind turns ? placeholders into $1, $2, ... for PostgreSQL. It skips
// quoted strings and identifiers; the queries in this package contain no
// other ? characters.
func (d *DB) rebind(q string) string {
	if d.dialect != postgresDialect || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (d *DB) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	if st := d.stmt(ctx, q, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.ExecContext(ctx, d.rebind(query), args...)
}

func (d *DB) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	if st := d.stmt(ctx, q, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.QueryContext(ctx, d.rebind(query), args...)
}

func (d *DB) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	if st := d.stmt(ctx, q, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.QueryRowContext(ctx, d.rebind(query), args...)
}

// Prepared statements (SQLite).
//
// modernc.org/sqlite parses every statement it is handed, and under load
// parsing was a sixth of the server's CPU: the lease query alone is parsed
// once per lease. So on SQLite each query text is prepared once per pool and
// reused (database/sql then prepares it once per connection, and a
// transaction reuses its connection's statement). pgx already caches its
// prepared statements per connection, so PostgreSQL does not need this.
//
// maxStmts bounds the cache: a few statements are built with a varying
// number of rows (a group commit's multi-row insert), and a statement
// beyond the bound is run unprepared rather than held forever.
const maxStmts = 256

type stmtCache struct {
	mu   sync.Mutex
	m    map[string]*sql.Stmt
	want map[string]bool // seen inside a transaction, to prepare before the next
}

// stmt returns the prepared statement of query on q's pool, or nil when it
// is not (yet) to be used prepared: PostgreSQL, a full cache, a failed
// prepare (the plain path then reports the error), or a query first seen
// inside a transaction. Preparing on the pool needs a connection of its
// own, and the writer has one connection, which that transaction holds; so
// such a query is noted and prepared by the next inTx before it begins.
func (d *DB) stmt(ctx context.Context, q querier, query string) *sql.Stmt {
	if d.dialect != sqliteDialect {
		return nil
	}
	cache := &d.wStmts
	tx, inTx := q.(*sql.Tx)
	if db, ok := q.(*sql.DB); ok && db != d.w {
		cache = &d.rStmts
	}
	cache.mu.Lock()
	st, ok := cache.m[query]
	full := len(cache.m)+len(cache.want) >= maxStmts
	if !ok && inTx && !full {
		if cache.want == nil {
			cache.want = map[string]bool{}
		}
		cache.want[query] = true
	}
	cache.mu.Unlock()
	if !ok && !inTx && !full {
		st = cache.prepare(ctx, q.(*sql.DB), query)
	}
	if st == nil {
		return nil
	}
	if inTx {
		return tx.StmtContext(ctx, st)
	}
	return st
}

// prepareWanted prepares on pool the queries noted inside transactions.
func (c *stmtCache) prepareWanted(ctx context.Context, pool *sql.DB) {
	c.mu.Lock()
	want := c.want
	c.want = nil
	c.mu.Unlock()
	for q := range want {
		c.prepare(ctx, pool, q)
	}
}

// prepare prepares query on pool and caches it. The lock is not held while
// preparing: that waits for a connection, which a transaction may hold
// while it looks up statements here.
func (c *stmtCache) prepare(ctx context.Context, pool *sql.DB, query string) *sql.Stmt {
	// Without the caller's cancellation: the statement outlives this call.
	st, err := pool.PrepareContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok {
		_ = st.Close() // another caller prepared it meanwhile
		return prev
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.m {
		errs = append(errs, st.Close())
	}
	c.m = nil
	return errors.Join(errs...)
}

// inTx runs fn in a write transaction and commits it if fn returns nil.
func (d *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if d.dialect == sqliteDialect {
		d.wStmts.prepareWanted(ctx, d.w)
	}
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the fn error is the one that matters
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Times are stored with microsecond precision (PostgreSQL's), always UTC:
// as timestamptz on PostgreSQL and as fixed-width RFC 3339 text on SQLite,
// which sorts and compares correctly as text and stays readable in the
// sqlite3 shell.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// t converts a time into the column representation of the dialect.
func (d *DB) t(t time.Time) any {
	t = normTime(t)
	if d.dialect == sqliteDialect {
		return t.Format(sqliteTimeLayout)
	}
	return t
}

// dbTime scans a time column of either dialect; NULL scans as the zero time.
type dbTime struct{ T time.Time }

func (s *dbTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		s.T = time.Time{}
	case time.Time:
		s.T = x.UTC()
	case string:
		return s.parse(x)
	case []byte:
		return s.parse(string(x))
	default:
		return fmt.Errorf("scan time: unexpected %T", v)
	}
	return nil
}

func (s *dbTime) parse(v string) error {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("scan time %q: %w", v, err)
	}
	s.T = t.UTC()
	return nil
}
