package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/store"
	"github.com/foureyes-dev/foureyes/store/storetest"
)

const ttl = time.Minute

func del(id, key string) store.Delivery {
	return store.Delivery{ID: id, Forge: "github", Key: key, Kind: "change", Payload: []byte(`{"id":"` + id + `"}`)}
}

func enqueue(t *testing.T, db *store.DB, ds ...store.Delivery) {
	t.Helper()
	for _, d := range ds {
		ok, err := db.Enqueue(context.Background(), d)
		if err != nil || !ok {
			t.Fatalf("Enqueue(%s) = %v, %v", d.ID, ok, err)
		}
	}
}

// lease leases as owner and checks that it gets want ("" for nothing).
func lease(t *testing.T, db *store.DB, owner string, now time.Time, want string) *store.LeasedDelivery {
	t.Helper()
	ld, err := db.Lease(context.Background(), owner, now, ttl)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	if ld != nil {
		got = ld.ID
	}
	if got != want {
		t.Fatalf("Lease by %s = %q, want %q", owner, got, want)
	}
	return ld
}

func TestEnqueueDuplicate(t *testing.T) {
	c := newClock()
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		d := del("d1", "github/acme/app#1")
		d.ReceivedAt = c.Now()
		enqueue(t, db, d)
		dup := d
		dup.Payload = []byte(`{"other":true}`)
		if ok, err := db.Enqueue(ctx, dup); err != nil || ok {
			t.Fatalf("duplicate Enqueue = %v, %v", ok, err)
		}
		// The same delivery ID from another forge is a different delivery.
		other := d
		other.Forge = "gitlab"
		enqueue(t, db, other)
		list, err := db.ListDeliveries(ctx, store.StatePending, 10)
		must(t, err)
		if len(list) != 2 || string(list[0].Payload) != string(d.Payload) || list[0].Forge != "github" {
			t.Fatalf("stored %+v", list)
		}
		got := list[0]
		if got.Key != d.Key || got.Kind != "change" || !got.ReceivedAt.Equal(d.ReceivedAt) || got.Attempts != 0 || got.State != store.StatePending {
			t.Fatalf("round trip: %+v", got)
		}
		if _, err := db.Enqueue(ctx, store.Delivery{ID: "x"}); err == nil {
			t.Fatal("incomplete delivery accepted")
		}
		// After it is processed it is still recognised as a duplicate.
		ld := lease(t, db, "o1", c.Now(), "d1")
		must(t, db.Complete(ctx, ld.Seq, "o1"))
		if ok, err := db.Enqueue(ctx, d); err != nil || ok {
			t.Fatalf("Enqueue after done = %v, %v", ok, err)
		}
	}, store.WithClock(c.Now))
}

func TestLeaseOrderingPerKey(t *testing.T) {
	c := newClock()
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		now := c.Now()
		enqueue(t, db, del("a1", "A"), del("b1", "B"), del("a2", "A"), del("b2", "B"), del("c1", "C"))
		a1 := lease(t, db, "o1", now, "a1")
		b1 := lease(t, db, "o2", now, "b1")
		lease(t, db, "o3", now, "c1") // a2 and b2 wait for their predecessors
		lease(t, db, "o4", now, "")
		must(t, db.Complete(ctx, b1.Seq, "o2"))
		lease(t, db, "o5", now, "b2")
		must(t, db.Complete(ctx, a1.Seq, "o1"))
		a2 := lease(t, db, "o6", now, "a2")
		if a2.Attempts != 1 || a2.Owner != "o6" || !a2.LeasedUntil.Equal(now.Add(ttl)) || a2.State != store.StateLeased {
			t.Fatalf("leased %+v", a2)
		}
	}, store.WithClock(c.Now))
}

// A delivery that sits before a live lease of the same key (it was
// requeued by hand, or committed late) must wait for that lease to end.
func TestLeaseNoOverlapWithLaterLease(t *testing.T) {
	c := newClock()
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		now := c.Now()
		enqueue(t, db, del("a1", "A"), del("a2", "A"))
		a1 := lease(t, db, "o1", now, "a1")
		must(t, db.DeadLetter(ctx, a1.Seq, "o1", "boom"))
		a2 := lease(t, db, "o2", now, "a2")
		must(t, db.Requeue(ctx, a1.Seq))
		lease(t, db, "o3", now, "")
		must(t, db.Complete(ctx, a2.Seq, "o2"))
		lease(t, db, "o4", now, "a1")
	}, store.WithClock(c.Now))
}

func TestLeaseExpiryAndOwnership(t *testing.T) {
	c := newClock()
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		now := c.Now()
		enqueue(t, db, del("a1", "A"), del("a2", "A"))
		first := lease(t, db, "crashed", now, "a1")
		// The worker "crashes": it never completes. Until the lease
		// expires nobody else gets a1 (nor a2, which waits for it).
		lease(t, db, "o2", now.Add(ttl-time.Second), "")
		second := lease(t, db, "o2", now.Add(ttl), "a1")
		if second.Seq != first.Seq || second.Attempts != 2 {
			t.Fatalf("takeover %+v", second)
		}
		if err := db.Complete(ctx, first.Seq, "crashed"); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("stale Complete = %v", err)
		}
		if err := db.Retry(ctx, first.Seq, "crashed", now, "x"); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("stale Retry = %v", err)
		}
		if err := db.RenewLease(ctx, first.Seq, "crashed", now.Add(time.Hour)); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("stale RenewLease = %v", err)
		}
		// Renewal keeps the lease alive past the original expiry.
		must(t, db.RenewLease(ctx, second.Seq, "o2", now.Add(3*ttl)))
		lease(t, db, "o3", now.Add(2*ttl+time.Second), "")
		must(t, db.Complete(ctx, second.Seq, "o2"))
		if err := db.Complete(ctx, second.Seq, "o2"); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("double Complete = %v", err)
		}
		lease(t, db, "o3", now, "a2")
	}, store.WithClock(c.Now))
}

// A lease lasts ttl from when it is made. A worker reads its clock and
// then may wait for the write connection; a lease made with that earlier
// time ended early, and one made after a wait longer than ttl was over at
// once: another worker took the same delivery while the first ran it
// (TestPoolCrashRecovery with -race caught it once workers leased
// concurrently).
func TestLeaseFromAStaleClockReading(t *testing.T) {
	c := newClock()
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		db := env.DB
		enqueue(t, db, del("a1", "A"))
		read := c.Now()
		c.Advance(2 * ttl) // the wait
		got := lease(t, db, "slow", read, "a1")
		if want := c.Now().Add(ttl); got.LeasedUntil.Before(want) {
			t.Fatalf("leased until %v, want %v (ttl after the lease was made)", got.LeasedUntil, want)
		}
		lease(t, db, "other", c.Now(), "")
	}, store.WithClock(c.Now))
}

func TestRetryDeadLetterRequeue(t *testing.T) {
	c := newClock()
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		now := c.Now()
		d := del("a1", "A")
		d.ReceivedAt = now
		enqueue(t, db, d)
		ld := lease(t, db, "o1", now, "a1")
		must(t, db.Retry(ctx, ld.Seq, "o1", now.Add(10*time.Second), "forge 502"))
		lease(t, db, "o2", now.Add(9*time.Second), "")
		ld = lease(t, db, "o2", now.Add(10*time.Second), "a1")
		if ld.Attempts != 2 || ld.LastError != "forge 502" {
			t.Fatalf("after retry: %+v", ld)
		}
		// Release (shutdown) does not use up an attempt.
		must(t, db.Release(ctx, ld.Seq, "o2", now))
		ld = lease(t, db, "o3", now.Add(10*time.Second), "a1")
		if ld.Attempts != 2 {
			t.Fatalf("release counted an attempt: %d", ld.Attempts)
		}
		must(t, db.DeadLetter(ctx, ld.Seq, "o3", "gave up: forge 502"))
		lease(t, db, "o4", now.Add(time.Hour), "")

		c.Advance(time.Minute)
		st, err := db.QueueStats(ctx, c.Now())
		must(t, err)
		if st != (store.Stats{Dead: 1}) {
			t.Fatalf("stats %+v", st)
		}
		dead, err := db.ListDeliveries(ctx, store.StateDead, 10)
		must(t, err)
		if len(dead) != 1 || dead[0].ID != "a1" || dead[0].LastError != "gave up: forge 502" || dead[0].FinishedAt.IsZero() {
			t.Fatalf("dead letters %+v", dead)
		}
		if err := db.Requeue(ctx, 999); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Requeue(missing) = %v", err)
		}
		must(t, db.Requeue(ctx, ld.Seq))
		if err := db.Requeue(ctx, ld.Seq); !errors.Is(err, store.ErrWrongState) {
			t.Fatalf("Requeue(pending) = %v", err)
		}
		st, err = db.QueueStats(ctx, c.Now())
		must(t, err)
		if st.Pending != 1 || st.Dead != 0 || st.OldestPendingAge != time.Minute {
			t.Fatalf("stats after requeue %+v", st)
		}
		ld = lease(t, db, "o5", c.Now(), "a1")
		if ld.Attempts != 1 {
			t.Fatalf("requeue kept attempts: %d", ld.Attempts)
		}
		must(t, db.Complete(ctx, ld.Seq, "o5"))
		got, err := db.GetDelivery(ctx, ld.Seq)
		must(t, err)
		if got.State != store.StateDone {
			t.Fatalf("state %s", got.State)
		}
		all, err := db.ListDeliveries(ctx, "", 0)
		must(t, err)
		if len(all) != 1 {
			t.Fatalf("list all: %d", len(all))
		}
		c.Advance(time.Hour)
		n, err := db.PurgeDone(ctx, c.Now())
		must(t, err)
		if n != 1 {
			t.Fatalf("purged %d", n)
		}
		if _, err := db.GetDelivery(ctx, ld.Seq); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after purge: %v", err)
		}
	}, store.WithClock(c.Now))
}

// TestConcurrentLeasing hammers Lease from many goroutines and two handles
// and checks the invariants directly: every delivery is leased exactly once
// and no two deliveries of one key are ever leased at the same time.
func TestConcurrentLeasing(t *testing.T) {
	c := newClock()
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		dbs := []*store.DB{env.DB, storetest.Reopen(t, env, store.WithClock(c.Now))}
		const keys, perKey = 5, 20
		for i := 0; i < perKey; i++ {
			for k := 0; k < keys; k++ {
				enqueue(t, env.DB, del(fmt.Sprintf("k%d-%02d", k, i), fmt.Sprintf("K%d", k)))
			}
		}
		var mu sync.Mutex
		active := map[string]string{} // key -> delivery
		done := map[string]int{}
		order := map[string][]string{}
		// progress is closed and replaced on every completion, so idle
		// workers wait for a change instead of spinning on Lease.
		progress := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				db := dbs[w%2]
				for n := 0; ; n++ {
					mu.Lock()
					wait := progress
					mu.Unlock()
					owner := fmt.Sprintf("w%d-%d", w, n)
					ld, err := db.Lease(ctx, owner, c.Now(), time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					if ld == nil {
						mu.Lock()
						finished := len(done) == keys*perKey
						mu.Unlock()
						if finished {
							return
						}
						select {
						case <-wait:
						case <-time.After(30 * time.Second):
							t.Error("no progress")
							return
						}
						continue
					}
					mu.Lock()
					if other, busy := active[ld.Key]; busy {
						t.Errorf("%s leased while %s of the same key is leased", ld.ID, other)
					}
					active[ld.Key] = ld.ID
					mu.Unlock()
					// "Work" while holding the lease: a round trip widens
					// the window in which an overlap would be seen.
					if _, err := db.GetDelivery(ctx, ld.Seq); err != nil {
						t.Error(err)
					}
					mu.Lock()
					delete(active, ld.Key)
					done[ld.ID]++
					order[ld.Key] = append(order[ld.Key], ld.ID)
					mu.Unlock()
					if err := db.Complete(ctx, ld.Seq, owner); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					close(progress)
					progress = make(chan struct{})
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		if len(done) != keys*perKey {
			t.Fatalf("%d of %d processed", len(done), keys*perKey)
		}
		for id, n := range done {
			if n != 1 {
				t.Errorf("%s leased %d times", id, n)
			}
		}
		for k := 0; k < keys; k++ {
			ids := order[fmt.Sprintf("K%d", k)]
			for i, id := range ids {
				if want := fmt.Sprintf("k%d-%02d", k, i); id != want {
					t.Fatalf("key K%d order %v", k, ids)
				}
			}
		}
	}, store.WithClock(c.Now))
}

// At start on SQLite the leases of the dead process come back at once; on
// PostgreSQL another replica may hold them, so they are left to expire.
func TestReclaimLeases(t *testing.T) {
	c := newClock()
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		d := del("r1", "github/acme/app#1")
		d.ReceivedAt = c.Now()
		enqueue(t, db, d, del("r2", "github/acme/app#2"))
		ld := lease(t, db, "dead-owner", c.Now(), "r1")
		n, err := db.ReclaimLeases(ctx, c.Now())
		must(t, err)
		if env.Backend == "postgres" {
			if n != 0 {
				t.Fatalf("PostgreSQL reclaimed %d leases", n)
			}
			lease(t, db, "o2", c.Now(), "r2")
			return
		}
		if n != 1 {
			t.Fatalf("reclaimed %d, want 1", n)
		}
		// Well before the lease TTL runs out, another owner gets it.
		got := lease(t, db, "o2", c.Now(), "r1")
		if got.Seq != ld.Seq || got.Attempts != 2 {
			t.Fatalf("re-leased %+v, want seq %d on its second attempt", got, ld.Seq)
		}
		if err := db.Complete(ctx, ld.Seq, "dead-owner"); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("the dead owner completed: %v", err)
		}
	}, store.WithClock(c.Now))
}

// LeaseBatch folds the foldable deliveries queued right behind the first
// one of its key, and stops at the first it may not take: order per key
// still holds and other keys stay free for other workers.
func TestLeaseBatchFoldsOneKey(t *testing.T) {
	c := newClock()
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		k := "github/acme/app#1"
		push := del("p", k)
		push.Kind = "branch_push"
		enqueue(t, db, del("a", k), del("b", k), del("other", "github/acme/app#2"), del("c", k), push, del("d", k))
		fold := []string{"change"}
		got, err := db.LeaseBatch(ctx, "o1", c.Now(), ttl, 10, fold)
		must(t, err)
		ids := func(ls []*store.LeasedDelivery) (s []string) {
			for _, l := range ls {
				s = append(s, l.ID)
			}
			return s
		}
		if fmt.Sprint(ids(got)) != "[a b c]" {
			t.Fatalf("first batch = %v, want [a b c] (stopping before the push)", ids(got))
		}
		// The next lease takes the other key: k is busy.
		next, err := db.LeaseBatch(ctx, "o2", c.Now(), ttl, 10, fold)
		must(t, err)
		if fmt.Sprint(ids(next)) != "[other]" {
			t.Fatalf("second batch = %v", ids(next))
		}
		var seqs []int64
		for _, l := range got {
			seqs = append(seqs, l.Seq)
		}
		must(t, db.CompleteBatch(ctx, seqs, "o1"))
		if err := db.CompleteBatch(ctx, seqs, "o1"); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("completing done deliveries again: %v", err)
		}
		if err := db.CompleteBatch(ctx, []int64{next[0].Seq}, "o1"); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("completing another owner's delivery: %v", err)
		}
		// A kind that does not fold is leased alone.
		one, err := db.LeaseBatch(ctx, "o3", c.Now(), ttl, 10, fold)
		must(t, err)
		if fmt.Sprint(ids(one)) != "[p]" {
			t.Fatalf("third batch = %v", ids(one))
		}
		must(t, db.Retry(ctx, one[0].Seq, "o3", c.Now(), "boom"))
		// max bounds the batch; a retry not yet due is not folded.
		r, err := db.LeaseBatch(ctx, "o4", c.Now(), ttl, 10, fold)
		must(t, err)
		if fmt.Sprint(ids(r)) != "[p]" {
			t.Fatalf("fourth batch = %v", ids(r))
		}
	}, store.WithClock(c.Now))
}

// Only the first of a folded batch is leased; its followers are returned
// pending, and are still nobody else's while the first's lease holds. When
// that lease runs out, the next lease takes them all again. ClaimFollowers
// and CompleteBatch act only while the first is held.
func TestLeaseBatchFollowersRideOnTheFirstsLease(t *testing.T) {
	c := newClock()
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		k := "github/acme/app#1"
		enqueue(t, db, del("a", k), del("b", k), del("c", k))
		fold := []string{"change"}
		got, err := db.LeaseBatch(ctx, "o1", c.Now(), ttl, 10, fold)
		must(t, err)
		if len(got) != 3 || got[0].State != store.StateLeased || got[1].State != store.StatePending || got[2].State != store.StatePending {
			t.Fatalf("batch = %d deliveries, want a leased with b and c pending", len(got))
		}
		if ld, err := db.LeaseBatch(ctx, "o2", c.Now(), ttl, 10, fold); err != nil || len(ld) != 0 {
			t.Fatalf("second lease while a is held = %d deliveries, %v; want none", len(ld), err)
		}
		// The first's lease runs out: o3 takes a, b and c.
		c.Advance(ttl + time.Second)
		again, err := db.LeaseBatch(ctx, "o3", c.Now(), ttl, 10, fold)
		must(t, err)
		if len(again) != 3 || again[0].ID != "a" || again[0].Attempts != 2 {
			t.Fatalf("lease after expiry = %d deliveries (first attempt %d), want a (attempt 2), b, c", len(again), again[0].Attempts)
		}
		seqs := []int64{again[0].Seq, again[1].Seq, again[2].Seq}
		// o1 holds nothing any more.
		if err := db.ClaimFollowers(ctx, seqs[0], seqs[1:], "o1"); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("ClaimFollowers by the expired owner: %v, want ErrLeaseLost", err)
		}
		if err := db.CompleteBatch(ctx, seqs, "o1"); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("CompleteBatch by the expired owner: %v, want ErrLeaseLost", err)
		}
		for _, s := range seqs[1:] {
			if st := storetest.Delivery(t, db, s); st.State != store.StatePending {
				t.Fatalf("follower %d is %s after the expired owner's calls, want pending", s, st.State)
			}
		}
		// o3 claims b, then completes the batch (c still pending).
		must(t, db.ClaimFollowers(ctx, seqs[0], seqs[1:2], "o3"))
		if st := storetest.Delivery(t, db, seqs[1]); st.State != store.StateLeased || st.Owner != "o3" || !st.LeasedUntil.Equal(again[0].LeasedUntil) {
			t.Fatalf("claimed follower: %s by %q until %v, want leased by o3 until %v", st.State, st.Owner, st.LeasedUntil, again[0].LeasedUntil)
		}
		must(t, db.CompleteBatch(ctx, seqs, "o3"))
		for _, s := range seqs {
			if st := storetest.Delivery(t, db, s); st.State != store.StateDone {
				t.Fatalf("delivery %d is %s after CompleteBatch, want done", s, st.State)
			}
		}
	}, store.WithClock(c.Now))
}

// The run of followers a batch folds stops at the first one that is not
// due, even with due ones behind it: folding those would run them before
// the one waiting for its retry, out of the key's order.
func TestLeaseBatchStopsAtAFollowerNotDue(t *testing.T) {
	c := newClock()
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		k := "github/acme/app#1"
		enqueue(t, db, del("a", k), del("b", k), del("c", k))
		// a is dead-lettered, b waits for a retry in a minute, and a is
		// requeued by hand: a is ready, b is not due, c is.
		a := lease(t, db, "o1", c.Now(), "a")
		must(t, db.DeadLetter(ctx, a.Seq, "o1", "boom"))
		b := lease(t, db, "o2", c.Now(), "b")
		must(t, db.Retry(ctx, b.Seq, "o2", c.Now().Add(time.Minute), "later"))
		must(t, db.Requeue(ctx, a.Seq))
		got, err := db.LeaseBatch(ctx, "o3", c.Now(), ttl, 10, []string{"change"})
		must(t, err)
		if len(got) != 1 || got[0].ID != "a" {
			var ids []string
			for _, l := range got {
				ids = append(ids, l.ID)
			}
			t.Fatalf("batch = %v, want [a]: b is not due, and c comes after it", ids)
		}
		// Once b is due, the next batch folds b and c.
		must(t, db.Complete(ctx, got[0].Seq, "o3"))
		c.Advance(2 * time.Minute)
		next, err := db.LeaseBatch(ctx, "o4", c.Now(), ttl, 10, []string{"change"})
		must(t, err)
		if len(next) != 2 || next[0].ID != "b" || next[1].ID != "c" {
			t.Fatalf("batch after the retry is due = %d deliveries, want [b c]", len(next))
		}
	}, store.WithClock(c.Now))
}

// A lease that finds the key of the only ready delivery locked by another
// lease (which may be about to claim nothing: it was rechecking a delivery
// it found before that one was done) looks again once that lease ends,
// rather than reporting nothing ready and leaving its worker asleep until
// the next poll.
func TestLeaseWaitsOutAnotherLeasesKeyLock(t *testing.T) {
	env := storetest.Open(t, "postgres")
	ctx := context.Background()
	enqueue(t, env.DB, del("d1", "K"))
	raw := storetest.RawDB(t, env)
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The key lock a concurrent lease of K holds (store.lockKey).
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_xact_lock(
		('deliveries'::regclass::oid::bigint << 32) | (hashtext('K')::bigint & 4294967295))`); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(20*time.Millisecond, func() { _, _ = conn.ExecContext(ctx, `ROLLBACK`) })
	ld, err := env.DB.Lease(ctx, "w", time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ld == nil || ld.ID != "d1" {
		t.Fatalf("lease while another lease held the key for 20ms = %+v, want d1", ld)
	}
}
