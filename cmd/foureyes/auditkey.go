package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/store"
)

// auditKeyFile is the name of the generated audit key in the state directory.
const auditKeyFile = "audit.key"

// checkpointInterval is how often serve signs a checkpoint of the trail.
const checkpointInterval = time.Hour

func auditKeyPath(cfg *Config) string { return filepath.Join(cfg.StateDir, auditKeyFile) }

// auditChain returns the chain keyed by FOUREYES_AUDIT_KEY, else by the key
// file in the state directory. With generate (serve), a missing key file is
// created (0600) and logged; without it (offline commands) a missing key is
// an error, since verifying without the key proves nothing.
func auditChain(cfg *Config, generate bool, logger *slog.Logger) (*audit.Chain, error) {
	if len(cfg.AuditKey) > 0 {
		return audit.NewChain(cfg.AuditKey)
	}
	path := auditKeyPath(cfg)
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if fi, serr := os.Stat(path); serr == nil && fi.Mode().Perm()&0o077 != 0 && logger != nil {
			logger.Warn("the audit key file is readable by other users: chmod 600 it", "path", path, "mode", fi.Mode().Perm().String())
		}
		c, err := audit.NewChain([]byte(strings.TrimSpace(string(raw))))
		if err != nil {
			return nil, fmt.Errorf("audit key %s: %w", path, err)
		}
		return c, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read audit key: %w", err)
	case !generate:
		return nil, fmt.Errorf("no audit key: set FOUREYES_AUDIT_KEY or FOUREYES_AUDIT_KEY_FILE, or FOUREYES_STATE_DIR to the directory where serve generated %s (looked for %s)", auditKeyFile, path)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("generate audit key: %w", err)
	}
	key := hex.EncodeToString(b[:])
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("generate audit key: %w", err)
	}
	// O_EXCL: a replica starting at the same moment on a shared state
	// directory must not overwrite the key the other one already uses.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return auditChain(cfg, false, logger)
	}
	if err != nil {
		return nil, fmt.Errorf("generate audit key: %w", err)
	}
	_, werr := f.WriteString(key + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write audit key %s: %w", path, err)
	}
	c, err := audit.NewChain([]byte(key))
	if err != nil {
		return nil, err
	}
	if logger != nil {
		logger.Warn("generated the audit key: back it up outside this host; without it the trail cannot be verified", "path", path, "key_id", c.KeyID())
	}
	return c, nil
}

// writeCheckpoint stores cp in dir as checkpoint-SEQ-TIME.json and returns
// the path. It writes a temporary file and renames it, so that a shipper
// picking up new files never reads half a checkpoint.
func writeCheckpoint(dir string, cp audit.Checkpoint) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint directory: %w", err)
	}
	name := fmt.Sprintf("checkpoint-%012d-%s.json", cp.Seq, cp.Time.UTC().Format("20060102T150405Z"))
	path := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, ".checkpoint-*")
	if err != nil {
		return "", fmt.Errorf("write checkpoint: %w", err)
	}
	_, werr := tmp.Write(audit.MarshalCheckpoint(cp))
	if err := errors.Join(werr, tmp.Chmod(0o644), tmp.Sync(), tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("write checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("write checkpoint: %w", err)
	}
	return path, nil
}

// readCheckpoint parses a checkpoint file and checks it was signed with
// chain's key.
func readCheckpoint(path string, chain *audit.Chain) (audit.Checkpoint, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	cp, err := audit.ParseCheckpoint(raw)
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := chain.VerifyCheckpoint(cp); err != nil {
		return audit.Checkpoint{}, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return cp, nil
}

// checkpointer signs checkpoints of the trail a server writes. It verifies
// incrementally: each run checks only the records appended since the last
// one, so an hourly checkpoint of a long trail stays cheap, and a checkpoint
// is only ever signed over records that verified.
type checkpointer struct {
	db     *store.DB
	chain  *audit.Chain
	dir    string
	logger *slog.Logger
	v      *audit.Verifier
	signed int64 // seq of the last checkpoint written
}

func newCheckpointer(db *store.DB, chain *audit.Chain, dir string, logger *slog.Logger) *checkpointer {
	return &checkpointer{db: db, chain: chain, dir: dir, logger: logger, v: audit.NewVerifier(chain)}
}

// once verifies what is new and, when the head moved, writes a checkpoint.
func (c *checkpointer) once(ctx context.Context) error {
	if err := c.db.VerifyAuditWith(ctx, c.v); err != nil {
		return fmt.Errorf("audit trail does not verify, no checkpoint signed: %w", err)
	}
	seq, head := c.v.Head()
	if seq == 0 || seq == c.signed {
		return nil
	}
	path, err := writeCheckpoint(c.dir, c.chain.Checkpoint(seq, head, time.Now()))
	if err != nil {
		return err
	}
	c.signed = seq
	c.logger.Info("audit checkpoint written", "seq", seq, "path", path)
	return nil
}

// run writes a checkpoint now and every checkpointInterval until ctx ends.
func (c *checkpointer) run(ctx context.Context) {
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		if err := c.once(ctx); err != nil && ctx.Err() == nil {
			c.logger.Error("audit checkpoint", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// keyAuditTrail appends the cut-over record when the trail's newest record
// is unkeyed (a database from before audit keys), so that every record
// before it is vouched for by a keyed one.
func keyAuditTrail(ctx context.Context, db *store.DB, chain *audit.Chain, logger *slog.Logger) error {
	// A server started with another key than the trail's (a replica that
	// generated its own) would append records nobody can verify: refuse.
	if seq, head, err := db.AuditHead(ctx); err != nil {
		return fmt.Errorf("audit trail: %w", err)
	} else if audit.IsKeyed(head) {
		last, err := db.AuditRecords(ctx, store.AuditFilter{AfterSeq: seq - 1, Limit: 1})
		if err != nil {
			return fmt.Errorf("audit trail: %w", err)
		}
		if len(last) != 1 || chain.Hash(last[0]) != last[0].Hash {
			return fmt.Errorf("audit trail: the newest record (seq %d) is not chained with this audit key (key_id %s): "+
				"FOUREYES_AUDIT_KEY or STATE_DIR/%s is not the key this database was written with (every replica needs the same key), "+
				"or the record was edited; run `foureyes audit verify` with the right key", seq, chain.KeyID(), auditKeyFile)
		}
	}
	data := fmt.Appendf(nil, `{"key_id":%q}`, chain.KeyID())
	appended, err := db.KeyAudit(ctx, audit.Record{Kind: audit.KindKeyed, Data: data})
	if err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	if appended {
		seq, _, _ := db.AuditHead(ctx)
		logger.Info("audit trail is keyed from here on; earlier records stay verifiable as unkeyed", "cut_over_seq", seq, "key_id", chain.KeyID())
	}
	return nil
}
