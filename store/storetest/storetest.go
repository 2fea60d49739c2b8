// Package storetest opens throw-away stores for tests, on SQLite and on
// PostgreSQL, so that one suite runs against both engines.
//
// PostgreSQL tests need a server: set FOUREYES_TEST_POSTGRES to a URL such
// as postgres://postgres:postgres@127.0.0.1:5432/foureyes_test?sslmode=disable
// (.ci/postgres.sh sets one up and prints it). Without it they are skipped,
// except when CI is set: then a missing server fails the run, so CI can
// never silently test SQLite only.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/store"
)

// EnvPostgres names the variable holding the PostgreSQL test server URL.
const EnvPostgres = "FOUREYES_TEST_POSTGRES"

// Env is an open test store.
type Env struct {
	Backend string
	DSN     string // opens the same database (and schema) again
	DB      *store.DB
}

// Backends are the engines a suite runs against.
func Backends() []string { return []string{"sqlite", "postgres"} }

// ForEach runs fn as a subtest per backend, each with its own fresh store.
func ForEach(t *testing.T, fn func(t *testing.T, env *Env), opts ...store.Option) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b, func(t *testing.T) {
			fn(t, Open(t, b, opts...))
		})
	}
}

// PostgresURL returns the configured server URL, skipping the test when
// there is none (failing it instead when CI is set).
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvPostgres)
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set but CI is: PostgreSQL tests must run in CI (run .ci/postgres.sh)", EnvPostgres)
		}
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. eval \"$(.ci/postgres.sh)\")", EnvPostgres)
	}
	return u
}

// Open returns a fresh, migrated store on backend, closed (and, on
// PostgreSQL, dropped) when the test ends. Each PostgreSQL test gets its own
// schema through search_path, so tests may run in parallel on one database.
func Open(t testing.TB, backend string, opts ...store.Option) *Env {
	t.Helper()
	var dsn string
	switch backend {
	case "sqlite":
		dsn = "sqlite:" + t.TempDir() + "/foureyes.db"
	case "postgres":
		dsn = postgresSchema(t, PostgresURL(t))
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	env := &Env{Backend: backend, DSN: dsn}
	env.DB = Reopen(t, env, opts...)
	return env
}

// Reopen opens another store on env's database, as a second process or
// replica would. It is closed when the test ends.
func Reopen(t testing.TB, env *Env, opts ...store.Option) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, env.DSN, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatalf("open %s store: %v", env.Backend, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// RawDB opens env's database directly, bypassing the store (tests use it
// to tamper with rows). It is closed when the test ends.
func RawDB(t testing.TB, env *Env) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", env.DSN
	if env.Backend == "sqlite" {
		driver, dsn = "sqlite", strings.TrimPrefix(env.DSN, "sqlite:")+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("raw open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// RawExec runs a statement on RawDB and fails the test if it fails.
func RawExec(t testing.TB, env *Env, query string, args ...any) {
	t.Helper()
	if _, err := RawDB(t, env).Exec(query, args...); err != nil {
		t.Fatalf("raw exec %q: %v", query, err)
	}
}

func postgresSchema(t testing.TB, base string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema on %s: %v", redact(base), err)
	}
	// Registered before Reopen's cleanup, so it runs after the store is
	// closed (cleanups run last-in first-out).
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(t, base, schema)
}

func withSearchPath(t testing.TB, base, schema string) string {
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		t.Fatalf("%s must be a postgres:// URL", EnvPostgres)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Sprintf("<unparsable %s>", EnvPostgres)
	}
	return u.Redacted()
}

// EmptyDSN names a database on backend that exists but holds no tables (a
// new SQLite file, a new PostgreSQL schema), for tests of commands that must
// not mistake it for a foureyes database.
func EmptyDSN(t testing.TB, backend string) string {
	t.Helper()
	if backend == "sqlite" {
		path := t.TempDir() + "/empty.db"
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return "sqlite:" + path
	}
	return postgresSchema(t, PostgresURL(t))
}

// Delivery reads delivery seq, with its queue state, and fails the test if
// it cannot.
func Delivery(t testing.TB, db *store.DB, seq int64) *store.LeasedDelivery {
	t.Helper()
	ld, err := db.GetDelivery(context.Background(), seq)
	if err != nil {
		t.Fatalf("delivery %d: %v", seq, err)
	}
	return ld
}
