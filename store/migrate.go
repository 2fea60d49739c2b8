package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migrations are numbered SQL files per dialect (NNNN_name.sql). A released
// migration is never edited: add a new one. Each runs in its own
// transaction (both engines have transactional DDL) together with its row in
// schema_migrations, so a crash leaves it either applied or not.
//
//go:embed migrations
var migrationsFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrateLockKey is the PostgreSQL advisory lock that serializes replicas
// migrating the same database at once.
const migrateLockKey = 0x666f7572_6d696772 // "fourmigr"

func loadMigrations(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations %s: %w", dir, err)
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s/%s: name must start with a positive number and _", dir, name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, v)
		}
		seen[v] = name
		b, err := fs.ReadFile(migrationsFS, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

func (d *DB) lockMigrations(ctx context.Context, tx *sql.Tx) error {
	if d.dialect != postgresDialect {
		return nil // the immediate write transaction already excludes others
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLockKey)); err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}
	return nil
}

func (d *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations("migrations/" + d.dialect.String())
	if err != nil {
		return err
	}
	bootstrap := `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`
	if d.dialect == postgresDialect {
		bootstrap = `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)`
	}
	applied := map[int]bool{}
	err = d.inTx(ctx, func(tx *sql.Tx) error {
		if err := d.lockMigrations(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, bootstrap); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				return fmt.Errorf("read schema_migrations: %w", err)
			}
			applied[v] = true
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("migrate %s: %w", d.dialect, err)
	}
	known := map[int]bool{}
	for _, m := range ms {
		known[m.version] = true
		if applied[m.version] {
			continue
		}
		if err := d.applyMigration(ctx, m); err != nil {
			return err
		}
	}
	for v := range applied {
		if !known[v] {
			// A newer binary migrated this database (e.g. mid rolling
			// deploy). Migrations are additive, so carry on, but say so.
			d.log.Warn("database has a migration this binary does not know", "version", v)
		}
	}
	return nil
}

func (d *DB) applyMigration(ctx context.Context, m migration) error {
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		if err := d.lockMigrations(ctx, tx); err != nil {
			return err
		}
		// Another replica may have applied it while we waited for the lock.
		var n int
		if err := d.queryRow(ctx, tx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&n); err != nil {
			return fmt.Errorf("check schema_migrations: %w", err)
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return err
		}
		_, err := d.exec(ctx, tx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.version, m.name, d.t(d.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("apply migration %s (%s): %w", m.name, d.dialect, err)
	}
	d.log.Info("applied database migration", "version", m.version, "name", m.name, "dialect", d.dialect.String())
	return nil
}
