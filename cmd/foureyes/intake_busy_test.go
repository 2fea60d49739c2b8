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

func changeEvent(i int) bot.Event {
	return bot.Event{Forge: bot.GitHub, Name: "pull_request", Kind: bot.EventChange, DeliveryID: fmt.Sprint("d", i),
		Repo: bot.Repo{FullName: "acme/app", ID: 42}, Received: time.Now(),
		Change: &bot.ChangeEvent{Number: i + 1, HeadSHA: "1111111111111111111111111111111111111111", BaseRef: "main"}}
}

func openIntake(t *testing.T) (*intake, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "foureyes.db")
	db, err := store.Open(context.Background(), "sqlite:"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &intake{db: db, notify: func() {}}, path
}

// TestIntakeBusyAtAHighRate: intake reports itself busy (the queue's
// workers then yield, queue.Pool.Busy) once arrivalsBusy deliveries arrive
// within one window, and until intakeQuiet after the last of them.
func TestIntakeBusyAtAHighRate(t *testing.T) {
	ctx := context.Background()
	in, _ := openIntake(t)
	// The test's clock: a window starts at t0.
	t0 := time.Unix(0, 0).Add(1000 * arrivalWindow)
	now := t0
	in.now = func() time.Time { return now }
	step := arrivalWindow / (2 * arrivalsBusy)
	for i := range arrivalsBusy - 1 {
		if _, err := in.Accept(ctx, changeEvent(i)); err != nil {
			t.Fatal(err)
		}
		now = now.Add(step)
	}
	if in.busy() {
		t.Fatalf("busy after %d deliveries in one window", arrivalsBusy-1)
	}
	if _, err := in.Accept(ctx, changeEvent(arrivalsBusy)); err != nil {
		t.Fatal(err)
	}
	if !in.busy() {
		t.Fatalf("not busy after %d deliveries in one window", arrivalsBusy)
	}
	last := now
	now = last.Add(intakeQuiet - time.Millisecond)
	if !in.busy() {
		t.Fatalf("not busy %s after the last of them", intakeQuiet-time.Millisecond)
	}
	now = last.Add(intakeQuiet)
	if in.busy() {
		t.Fatalf("busy %s after the last of them", intakeQuiet)
	}
	// The same number spread over two windows is a lower rate.
	now = now.Add(10 * arrivalWindow).Truncate(arrivalWindow).Add(arrivalWindow / 2)
	for i := range arrivalsBusy - 1 {
		if _, err := in.Accept(ctx, changeEvent(100+i)); err != nil {
			t.Fatal(err)
		}
		if i == arrivalsBusy/2 {
			now = now.Add(arrivalWindow / 2) // into the next window
		}
	}
	if in.busy() {
		t.Fatal("busy after deliveries spread over two windows")
	}
}

// TestIntakeNotBusyWhileTheDatabaseIsSlow: deliveries that wait for a slow
// commit are not a high rate. Yielding to them would leave one worker
// evaluating while the CPU, which yielding is meant to free, sits idle.
func TestIntakeNotBusyWhileTheDatabaseIsSlow(t *testing.T) {
	ctx := context.Background()
	in, path := openIntake(t)
	// Another connection holds the write lock: the deliveries' group
	// commit waits for it, as for a database in another zone.
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
	const waiting = 8
	for i := range waiting {
		wg.Go(func() {
			if _, err := in.Accept(ctx, changeEvent(i)); err != nil {
				t.Error(err)
			}
		})
		time.Sleep(arrivalWindow / arrivalsBusy * 2) // half the busy rate
	}
	if in.busy() {
		t.Errorf("busy with %d deliveries waiting for a slow commit, arriving at half the busy rate", waiting)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
