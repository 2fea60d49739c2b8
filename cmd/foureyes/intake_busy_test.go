package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/store"
)

// TestIntakeBusyWhileDeliveriesWait: intake reports itself busy (the
// queue's workers then yield, queue.Pool.Busy) while intakeBusy deliveries
// wait for their commit, and until intakeQuiet after.
func TestIntakeBusyWhileDeliveriesWait(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "foureyes.db")
	db, err := store.Open(ctx, "sqlite:"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A clock of the test's: under -race the 50 ms can pass between the
	// last commit and the first look.
	t0 := time.Now()
	in := &intake{db: db, notify: func() {}, now: func() time.Time { return t0 }}
	if in.busy() {
		t.Fatal("busy before any delivery")
	}
	// Another connection holds the write lock: the deliveries' group
	// commit waits for it, as it waits for a slow disk.
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range intakeBusy {
		wg.Go(func() {
			ev := bot.Event{Forge: bot.GitHub, Name: "pull_request", Kind: bot.EventChange, DeliveryID: fmt.Sprint("d", i),
				Repo: bot.Repo{FullName: "acme/app", ID: 42}, Received: time.Now(),
				Change: &bot.ChangeEvent{Number: i + 1, HeadSHA: "1111111111111111111111111111111111111111", BaseRef: "main"}}
			if _, err := in.Accept(ctx, ev); err != nil {
				t.Error(err)
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for !in.busy() {
		if time.Now().After(deadline) {
			t.Fatalf("not busy with %d deliveries waiting (%d counted)", intakeBusy, in.inFlight.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if n := in.inFlight.Load(); n != 0 {
		t.Fatalf("%d deliveries counted in flight after every one was stored", n)
	}
	// Still busy for intakeQuiet after the last burst, then not.
	if !in.busy() {
		t.Fatal("not busy right after the deliveries were stored")
	}
	in.now = func() time.Time { return t0.Add(intakeQuiet) }
	if in.busy() {
		t.Fatalf("busy %s after the deliveries were stored", intakeQuiet)
	}
}
