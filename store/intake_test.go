package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/store"
	"github.com/foureyes-dev/foureyes/store/storetest"
	"github.com/jackc/pgx/v5"
)

// enqueueAudited enqueues d with its intake audit record, as the server's
// webhook intake does.
func enqueueAudited(ctx context.Context, db *store.DB, d store.Delivery) (bool, error) {
	rec := audit.Record{Kind: audit.KindDelivery, Forge: d.Forge, DeliveryID: d.ID}
	return db.EnqueueAudited(ctx, d, &rec)
}

// concurrently runs fn(0) to fn(n-1) at once and fails t with their first
// error.
func concurrently(t *testing.T, n int, fn func(g int) error) {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			if err := fn(g); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Many senders at once share group commits. Each delivery must be stored
// once, exactly one of the senders of a repeated ID is told it was new, each
// new delivery has exactly one intake record, and the chain still verifies
// with the records of concurrent single appends (evaluations) interleaved.
func TestGroupCommitConcurrentIntake(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		const senders, ids = 48, 300
		var newCount [ids]atomic.Int32
		concurrently(t, senders+1, func(s int) error {
			if s == senders {
				for i := 0; i < 50; i++ {
					if _, err := db.AppendAudit(ctx, evalRecord(i)); err != nil {
						return err
					}
				}
				return nil
			}
			// Every sender sends every third ID: each ID is sent by 16
			// senders, many of them in the same batch.
			for i := s % 3; i < ids; i += 3 {
				ok, err := enqueueAudited(ctx, db, del(fmt.Sprintf("d%03d", i), fmt.Sprintf("github/acme/app#%d", i%7)))
				if err != nil {
					return err
				}
				if ok {
					newCount[i].Add(1)
				}
			}
			return nil
		})
		for i := range newCount {
			if n := newCount[i].Load(); n != 1 {
				t.Errorf("delivery d%03d reported new %d times, want 1", i, n)
			}
		}
		list, err := db.ListDeliveries(ctx, store.StatePending, 1000)
		must(t, err)
		if len(list) != ids {
			t.Fatalf("stored %d deliveries, want %d", len(list), ids)
		}
		n, err := db.VerifyAudit(ctx)
		if err != nil {
			t.Fatalf("chain after concurrent group commits: %v", err)
		}
		if n != ids+50 {
			t.Fatalf("audit records = %d, want %d intake + 50 evaluations", n, ids)
		}
		recs, err := db.AuditRecords(ctx, store.AuditFilter{})
		must(t, err)
		seen := map[string]int{}
		for _, r := range recs {
			if r.Kind == audit.KindDelivery {
				seen[r.DeliveryID]++
			}
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("delivery %s has %d intake records", id, c)
			}
		}
	})
}

// Two replicas take intake at once on one database: each group commit
// reads the chain's tail in the statement that inserts its deliveries, and
// that read must see what the other replica committed while this one
// waited for the chain's lock. A stale tail would reuse a seq (the insert
// fails) or fork the chain (verification fails).
func TestGroupCommitTwoReplicasShareTheChain(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		replicas := []*store.DB{env.DB, storetest.Reopen(t, env)}
		const senders, each = 16, 40
		concurrently(t, senders, func(s int) error {
			for i := 0; i < each; i++ {
				d := del(fmt.Sprintf("r%02d-%03d", s, i), fmt.Sprintf("github/acme/app#%d", i%5))
				if _, err := enqueueAudited(ctx, replicas[s%2], d); err != nil {
					return err
				}
			}
			return nil
		})
		n, err := env.DB.VerifyAudit(ctx)
		if err != nil || n != senders*each {
			t.Fatalf("verify = %d, %v; want %d records", n, err, senders*each)
		}
	})
}

// A delivery the database refuses (PostgreSQL text cannot hold NUL) fails
// its own sender only, even when it shares a group commit with others.
func TestGroupCommitBadDeliveryFailsAlone(t *testing.T) {
	env := storetest.Open(t, "postgres")
	ctx := context.Background()
	var wg sync.WaitGroup
	var bad atomic.Int32
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("ok-%d", i)
			if i%16 == 0 {
				id = fmt.Sprintf("bad\x00%d", i)
			}
			_, err := enqueueAudited(ctx, env.DB, del(id, "github/acme/app#1"))
			switch {
			case i%16 == 0 && err != nil:
				bad.Add(1)
			case err != nil:
				errs <- err
			case i%16 == 0:
				errs <- errors.New("a delivery ID with a NUL byte was accepted")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if bad.Load() != 4 {
		t.Fatalf("%d bad deliveries failed, want 4", bad.Load())
	}
	list, err := env.DB.ListDeliveries(ctx, store.StatePending, 100)
	must(t, err)
	if len(list) != 60 {
		t.Fatalf("stored %d deliveries, want the 60 good ones", len(list))
	}
	if n, err := env.DB.VerifyAudit(ctx); err != nil || n != 60 {
		t.Fatalf("VerifyAudit = %d, %v", n, err)
	}
}

// Close lets intake already submitted finish and refuses what comes after.
func TestIntakeAfterClose(t *testing.T) {
	env := storetest.Open(t, "sqlite")
	must(t, env.DB.Close())
	_, err := env.DB.Enqueue(context.Background(), del("late", "github/acme/app#1"))
	if !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Enqueue after Close = %v, want ErrClosed", err)
	}
}

// Group commits chain with the store's key: the trail verifies with the
// key and not without it, and a store opened without the key refuses to
// add unkeyed records to the keyed trail, even inside a batch.
func TestGroupCommitKeyedChain(t *testing.T) {
	chain, err := audit.NewChain([]byte("0123456789abcdef0123456789abcdef"))
	must(t, err)
	env := storetest.Open(t, "sqlite", store.WithAuditChain(chain))
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := enqueueAudited(ctx, env.DB, del(fmt.Sprintf("k%d", i), "github/acme/app#1")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, err := env.DB.VerifyAudit(ctx); err != nil || n != 40 {
		t.Fatalf("keyed VerifyAudit = %d, %v", n, err)
	}
	var v audit.Verifier
	if err := env.DB.EachAudit(ctx, v.Add); err == nil {
		t.Fatal("a keyed trail verified without the key")
	}
	unkeyed, err := store.Open(ctx, env.DSN, nil)
	must(t, err)
	defer unkeyed.Close()
	if _, err := enqueueAudited(ctx, unkeyed, del("plain", "github/acme/app#2")); !errors.Is(err, audit.ErrKeyRequired) {
		t.Fatalf("unkeyed intake into a keyed trail: %v, want ErrKeyRequired", err)
	}
}

// AppendAuditWith stores the record and the facts in one commit: both or
// neither, even when the request shares a group commit with others.
func TestAppendAuditWithIsOneCommit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		rec := audit.Record{Kind: audit.KindEvaluation, Forge: "github", Repo: "acme/app", Change: 1, HeadSHA: "h1", Verdict: "success"}
		got, err := env.DB.AppendAuditWith(ctx, rec, map[string]map[string]string{
			"report/acme/app#1": {"h1": "run-1"}, "verdict/acme/app#1": {"h1": "{}"}})
		must(t, err)
		if got.Seq != 1 || got.Hash == "" {
			t.Fatalf("record as stored: %+v", got)
		}
		f, err := env.DB.Facts(ctx, "report/acme/app#1")
		must(t, err)
		if f["h1"] != "run-1" {
			t.Fatalf("facts after AppendAuditWith: %v", f)
		}
		if env.Backend != "postgres" {
			return
		}
		// PostgreSQL text cannot hold NUL: the facts fail, so the record
		// must not be stored either, even sharing a group commit.
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				value := fmt.Sprintf("run-%d", i)
				if i == 3 {
					value = "bad\x00"
				}
				r := rec
				r.HeadSHA = fmt.Sprintf("h%d", i+10)
				_, errs[i] = env.DB.AppendAuditWith(ctx, r, map[string]map[string]string{"report/acme/app#1": {r.HeadSHA: value, "x" + r.HeadSHA: "y"}})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if (err != nil) != (i == 3) {
				t.Fatalf("AppendAuditWith %d: %v", i, err)
			}
		}
		f, err = env.DB.Facts(ctx, "report/acme/app#1")
		must(t, err)
		if _, ok := f["xh13"]; ok || len(f) != 1+2*7 {
			t.Fatalf("facts: %v (want those of the 7 good records only)", f)
		}
		if n, err := env.DB.VerifyAudit(ctx); err != nil || n != 8 {
			t.Fatalf("VerifyAudit = %d, %v; want 8 records (1 + the 7 good ones)", n, err)
		}
	})
}

// A group commit whose transaction PostgreSQL aborted fails, even when no
// statement's error reached it: PostgreSQL answers COMMIT of an aborted
// transaction with ROLLBACK, not with an error.
func TestGroupCommitReportsARolledBackCommit(t *testing.T) {
	env := storetest.Open(t, "postgres")
	ctx := context.Background()
	err := env.DB.SubmitWrite(ctx, "swallow an error", func(ctx context.Context, q store.Querier) error {
		_, _ = q.ExecContext(ctx, "SELECT 1/0")
		return nil
	})
	if !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Fatalf("write in an aborted transaction: err = %v, want %v", err, pgx.ErrTxCommitRollback)
	}
	if err := env.DB.PutFact(ctx, "s", "k", "v"); err != nil {
		t.Fatalf("the next group commit: %v", err)
	}
}
