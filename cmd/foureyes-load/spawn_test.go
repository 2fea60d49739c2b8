package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSpawnBurstCrash runs the tool as a user runs it: a built foureyes
// binary, a small burst, kill -9 after the last answer and a restart on
// the same SQLite file. What the report says is checked against the fake
// GitHub the tool drives: every pull request's final verdict, and the
// restart counted.
func TestSpawnBurstCrash(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "foureyes")
	if out, err := exec.Command("go", "build", "-o", bin, "../foureyes").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"--spawn", bin, "--n", "60", "--changes", "12", "--concurrency", "8", "--crash", "--json", "--drain", "60s"}
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var rep struct {
		Accepted int `json:"accepted"`
		Burst    struct {
			Changes      int     `json:"changes"`
			Correct      int     `json:"final_verdicts_correct"`
			FinalAfterS  float64 `json:"final_after_last_delivery_s"`
			AfterCrash   bool    `json:"after_crash"`
			FinalAtCrash int     `json:"final_at_crash"`
			Requests     int     `json:"forge_requests"`
		} `json:"burst"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout.String())
	}
	b := rep.Burst
	if rep.Accepted != 60 || b.Changes != 12 || !b.AfterCrash {
		t.Fatalf("accepted %d, changes %d, after crash %v; want 60, 12, true\n%s", rep.Accepted, b.Changes, b.AfterCrash, stdout.String())
	}
	if b.Correct != 12 || b.FinalAfterS < 0 || b.Requests == 0 {
		t.Fatalf("after the restart %d of 12 final (%.2f s, %d requests): the killed server's work was lost\n%s",
			b.Correct, b.FinalAfterS, b.Requests, stdout.String())
	}
}
