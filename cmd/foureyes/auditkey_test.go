package main

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/store"
)

// TestCheckpointerSignsOnlyVerifiedHeads: the server's checkpointer writes
// a checkpoint when the head moved, none when it did not, and none once a
// record it has not yet vouched for was edited.
func TestCheckpointerSignsOnlyVerifiedHeads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &Config{StateDir: dir}
	chain, err := auditChain(cfg, true, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "audit.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key file: %v %v", fi, err)
	}
	again, err := auditChain(cfg, false, nil)
	if err != nil || again.KeyID() != chain.KeyID() {
		t.Fatalf("the generated key does not load back: %v", err)
	}
	dbPath := filepath.Join(dir, "foureyes.db")
	db, err := store.Open(ctx, "sqlite:"+dbPath, nil, store.WithAuditChain(chain))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cpDir := filepath.Join(dir, "checkpoints")
	c := newCheckpointer(db, chain, cpDir, slog.New(slog.DiscardHandler))
	files := func() []string {
		m, _ := filepath.Glob(filepath.Join(cpDir, "checkpoint-*.json"))
		return m
	}
	appendN := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := db.AppendAudit(ctx, audit.Record{Kind: audit.KindEvaluation, Verdict: "pending"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.once(ctx))
	if len(files()) != 0 {
		t.Fatal("a checkpoint of an empty trail")
	}
	appendN(3)
	must(c.once(ctx))
	must(c.once(ctx))
	if f := files(); len(f) != 1 || !strings.Contains(f[0], "checkpoint-000000000003-") {
		t.Fatalf("after 3 records and two runs: %v", f)
	}
	raw, _ := os.ReadFile(files()[0])
	cp, err := audit.ParseCheckpoint(raw)
	if err != nil || chain.VerifyCheckpoint(cp) != nil || cp.Seq != 3 {
		t.Fatalf("checkpoint %s: %v", raw, err)
	}
	appendN(2)
	// Record 5 is edited before the checkpointer saw it.
	rawDB, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer rawDB.Close()
	for _, q := range []string{"DROP TRIGGER audit_records_no_update", "UPDATE audit_records SET verdict = 'success' WHERE seq = 5"} {
		if _, err := rawDB.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.once(ctx); err == nil || !strings.Contains(err.Error(), "no checkpoint signed") {
		t.Fatalf("edited record: %v", err)
	}
	if len(files()) != 1 {
		t.Fatalf("a checkpoint was signed over an edited record: %v", files())
	}
}
