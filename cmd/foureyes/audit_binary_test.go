package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/store"
)

// TestBinaryAuditKeyAndCheckpoints runs the built binary on a database
// written before audit keys existed: serve generates a key and cuts the
// trail over, checkpoints and exports are signed, and `audit verify` catches
// an edited export, a truncated export and a truncated database, and refuses
// a database that is not there.
func TestBinaryAuditKeyAndCheckpoints(t *testing.T) {
	be := newBinaryEnv(t)
	ctx := context.Background()
	dbPath := filepath.Join(be.dir, "foureyes.db")
	// A trail from before audit keys.
	old, err := store.Open(ctx, "sqlite:"+dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := old.AppendAudit(ctx, audit.Record{Kind: audit.KindDelivery, Repo: "acme/old"}); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	cmd := be.start(t)
	if !strings.Contains(be.log(), "generated the audit key") || !strings.Contains(be.log(), "audit.key") {
		t.Fatalf("no log line says where the audit key was generated:\n%s", be.log())
	}
	if fi, err := os.Stat(filepath.Join(be.dir, "audit.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit key file: %v %v", fi, err)
	}
	// At start the server keys the old trail (record 4) and signs it.
	startCP := filepath.Join(be.dir, "checkpoints", "checkpoint-000000000004-*.json")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m, _ := filepath.Glob(startCP); len(m) == 1 {
			raw, err := os.ReadFile(m[0])
			if err != nil {
				t.Fatal(err)
			}
			cp, err := audit.ParseCheckpoint(raw)
			if err != nil || be.auditChain(t).VerifyCheckpoint(cp) != nil {
				t.Fatalf("start-up checkpoint %s: %v", raw, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of the keyed trail after start:\n%s", be.log())
		}
	}
	pr, opened := be.addPR(t, 1)
	if s, err := sendGitHub(ctx, "http://"+be.addr, be.secret, "pull_request", "k-1", opened); err != nil || s != http.StatusAccepted {
		t.Fatalf("opened: %d %v", s, err)
	}
	be.waitRuns(t, []fakegithub.PR{pr}, "in_progress")

	run := func(env []string, args ...string) (string, int) {
		t.Helper()
		// Bounded: a serve that should refuse to start must not hang the test.
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c := exec.CommandContext(cctx, foureyesBinary(t), args...)
		c.Dir, c.Env = be.dir, env
		out, err := c.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	// Wait for the evaluation record, then take a checkpoint.
	var cpOut string
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, code := run(be.env, "audit", "list", "--format", "json")
		if code == 0 && strings.Contains(out, `"kind":"evaluation"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no evaluation record: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c := exec.Command(foureyesBinary(t), "audit", "checkpoint")
	c.Dir, c.Env = be.dir, be.env
	raw, err := c.Output()
	if err != nil {
		t.Fatalf("audit checkpoint: %v", err)
	}
	cpOut = string(raw)
	cp, err := audit.ParseCheckpoint([]byte(cpOut))
	if err != nil || !audit.IsKeyed(cp.Head) || cp.Seq < 6 {
		t.Fatalf("printed checkpoint %s: %v", cpOut, err)
	}
	if err := be.auditChain(t).VerifyCheckpoint(cp); err != nil {
		t.Fatalf("checkpoint not signed with the server's key: %v", err)
	}
	if out, code := run(be.env, "audit", "export", "-o", "full.jsonl"); code != 0 || !strings.Contains(out, "checkpoint of seq") {
		t.Fatalf("export: %d %s", code, out)
	}
	cmd.cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.wait(t, 15*time.Second); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	// A replica with another key refuses to extend the trail.
	wrongKey := append(append([]string(nil), be.env...), "FOUREYES_AUDIT_KEY="+strings.Repeat("w", 40))
	if out, code := run(wrongKey, "serve"); code == 0 || !strings.Contains(out, "not chained with this audit key") {
		t.Fatalf("serve with another key: %d %s", code, out)
	}
	cps, _ := filepath.Glob(filepath.Join(be.dir, "checkpoints", "checkpoint-*.json"))
	if len(cps) < 2 {
		t.Fatalf("checkpoint directory holds %v; want the one printed and the export's", cps)
	}
	cpFile := filepath.Join(be.dir, "printed-checkpoint.json")
	if err := os.WriteFile(cpFile, []byte(cpOut), 0o600); err != nil {
		t.Fatal(err)
	}

	// The honest trail, from the database and from the export.
	if out, code := run(be.env, "audit", "verify", "--checkpoint", cpFile); code != 0 || !strings.Contains(out, "intact") || !strings.Contains(out, "3 records from before the audit key") {
		t.Fatalf("verify with checkpoint: %d %s", code, out)
	}
	if out, code := run(be.env, "audit", "verify", "--file", "full.jsonl", "--checkpoint", cpFile); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify export: %d %s", code, out)
	}

	// An export edited off-site, and one missing its newest records.
	full, err := os.ReadFile(filepath.Join(be.dir, "full.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(full), "\n"), "\n")
	var edited []string
	for _, l := range lines {
		var r audit.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind == audit.KindEvaluation {
			r.Verdict = "success"
		}
		b, _ := json.Marshal(r)
		edited = append(edited, string(b)+"\n")
	}
	// The same edit smuggled in as a second "verdict" member, which some
	// JSON readers honour and others ignore.
	doubled := strings.Replace(string(full), `"kind":"evaluation"`, `"verdict":"success","kind":"evaluation"`, 1)
	for name, content := range map[string]string{
		"edited.jsonl":    strings.Join(edited, ""),
		"doubled.jsonl":   doubled,
		"truncated.jsonl": strings.Join(lines[:len(lines)-2], ""),
	} {
		if err := os.WriteFile(filepath.Join(be.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, code := run(be.env, "audit", "verify", "--file", name, "--checkpoint", cpFile); code != 1 || !strings.Contains(out, "BROKEN") {
			t.Fatalf("verify %s: %d %s", name, code, out)
		}
	}

	// The database's newest records deleted by someone with the file.
	rawDB, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER audit_records_no_delete", "DELETE FROM audit_records WHERE seq = (SELECT MAX(seq) FROM audit_records)"} {
		if _, err := rawDB.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rawDB.Close()
	if out, code := run(be.env, "audit", "verify"); code != 0 {
		t.Fatalf("a truncated trail still chains (only a checkpoint can tell): %d %s", code, out)
	}
	if out, code := run(be.env, "audit", "verify", "--checkpoint", cpFile); code != 1 || !strings.Contains(out, "shorter than the checkpoint") {
		t.Fatalf("verify a truncated trail against the checkpoint: %d %s", code, out)
	}

	// Without the key nothing is vouched for.
	noKey := append(append([]string(nil), be.env...), "FOUREYES_STATE_DIR="+t.TempDir())
	if out, code := run(noKey, "audit", "verify"); code == 0 || !strings.Contains(out, "no audit key") {
		t.Fatalf("verify without the key: %d %s", code, out)
	}
	// No database: say so, create nothing.
	for _, args := range [][]string{
		{"audit", "verify", "--database", "sqlite:missing.db"},
		{"backup", "--database", "sqlite:missing.db", "copy.db"},
	} {
		out, code := run(be.env, args...)
		if code == 0 || !strings.Contains(out, "no foureyes database") {
			t.Fatalf("%v: %d %s", args, code, out)
		}
	}
	if _, err := os.Stat(filepath.Join(be.dir, "missing.db")); !os.IsNotExist(err) {
		t.Fatalf("a command created the missing database: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(cpOut), &m); err != nil || m["signature"] == "" {
		t.Fatalf("checkpoint JSON: %v", err)
	}
}
