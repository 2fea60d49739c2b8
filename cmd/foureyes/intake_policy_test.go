package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/store"
)

// policyForge counts policy reads; it reuses branch reads like the GitLab
// adapter (bot.BranchPolicyReuse).
type policyForge struct{ reads int }

func (f *policyForge) Policy(context.Context, bot.Repo, string) (bot.PolicyFile, error) {
	f.reads++
	return bot.PolicyFile{}, nil
}
func (f *policyForge) Change(context.Context, bot.ChangeRef, []string) (*bot.Change, error) {
	return nil, nil
}
func (f *policyForge) Publish(context.Context, bot.Report) (string, error) { return "", nil }
func (f *policyForge) OpenChanges(context.Context, bot.Repo, string) ([]bot.ChangeRef, error) {
	return nil, nil
}
func (f *policyForge) ReusesBranchPolicy() {}

// TestIntakeRecordsBranchPush: accepting a push stops the reuse of the
// branch's stored policy at once, before any worker has processed the
// push. Otherwise an evaluation queued under another key could be judged
// by the policy from before the push while the push waits in the queue.
func TestIntakeRecordsBranchPush(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "foureyes.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	in := &intake{db: db, notify: func() {}}
	repo := bot.Repo{FullName: "acme/app", ID: 42}
	push := func(id, after string) {
		t.Helper()
		ev := bot.Event{Forge: bot.GitLab, Name: "Push Hook", Kind: bot.EventBranchPush, DeliveryID: id, Repo: repo,
			Received: time.Now(), Push: &bot.PushEvent{Ref: "refs/heads/main", After: after}}
		if _, err := in.Accept(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	f := &policyForge{}
	read := func() {
		t.Helper()
		if _, err := bot.BranchPolicy(ctx, db, f, bot.GitLab, repo, "main", time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	push("p1", "1111111111111111111111111111111111111111")
	read()
	read()
	if f.reads != 1 {
		t.Fatalf("after one push, two evaluations read the policy %d times; want 1 (the second reuses it)", f.reads)
	}
	push("p2", "2222222222222222222222222222222222222222") // accepted, not processed
	read()
	if f.reads != 2 {
		t.Fatalf("an evaluation after an accepted push reused the policy read before it (reads %d, want 2)", f.reads)
	}
}
