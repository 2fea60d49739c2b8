package store

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// ErrBackupUnsupported is returned by Backup on PostgreSQL.
var ErrBackupUnsupported = errors.New("backup not supported by this engine")

// Backup writes a consistent copy of a SQLite database to path while the
// service keeps running. VACUUM INTO reads one snapshot (WAL readers do not
// block the writer) and writes a compact, self-contained database file; it
// refuses to overwrite, so path must not exist.
//
// PostgreSQL has its own tools: use pg_dump (e.g. pg_dump -Fc -f
// foureyes.dump "$DATABASE_URL") or continuous archiving.
func (d *DB) Backup(ctx context.Context, path string) error {
	if d.dialect != sqliteDialect {
		return fmt.Errorf("backup: %w: on PostgreSQL use pg_dump -Fc -f FILE \"$DATABASE_URL\"", ErrBackupUnsupported)
	}
	if path == "" {
		return errors.New("backup: empty path")
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("backup to %s: file exists", path)
	}
	// Run on a reader connection so intake and workers keep writing.
	if _, err := d.r.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	return nil
}
