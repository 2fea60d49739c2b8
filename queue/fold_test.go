package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/queue"
	"github.com/foureyes-dev/foureyes/store"
	"github.com/foureyes-dev/foureyes/store/storetest"
)

// batches records what the handler was given: the newest delivery and the
// ones folded into it.
type batches struct {
	mu  sync.Mutex
	got []string
}

func (b *batches) add(d queue.Delivery) {
	ids := []string{}
	for _, f := range d.Folded {
		ids = append(ids, f.ID)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, fmt.Sprintf("%s<%v", d.ID, ids))
}

func (b *batches) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]string(nil), b.got...)
	slices.Sort(out)
	return out
}

// Deliveries of one key that waited behind each other reach the handler
// once, the newest with the rest folded in order; a kind that does not fold
// (a release-branch push) is handled alone and stops the fold.
func TestPoolFoldsWaitingDeliveries(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		push := del("a4", "A")
		push.Kind = "branch_push"
		enqueue(t, env.DB, del("a1", "A"), del("a2", "A"), del("b1", "B"), del("a3", "A"), push, del("a5", "A"))
		var b batches
		p := &queue.Pool{Store: env.DB, Clock: clk, LeaseTTL: ttl, FoldKinds: []string{"change"},
			Handler: func(ctx context.Context, d queue.Delivery) error { b.add(d); return nil }}
		start(t, p)
		waitFor(t, "all processed", allDone(env.DB, 6))
		want := []string{"a3<[a1 a2]", "a4<[]", "a5<[]", "b1<[]"}
		if got := b.list(); !slices.Equal(got, want) {
			t.Fatalf("handled %v, want %v", got, want)
		}
	})
}

// A folded batch that fails for good is handled again one by one, so only
// the delivery that cannot be handled is dead-lettered; a transient failure
// retries the whole batch.
func TestPoolFoldedPermanentFailureUnfolds(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		enqueue(t, env.DB, del("k1", "K"), del("bad", "K"), del("k3", "K"))
		var b batches
		var o outcomes
		p := &queue.Pool{Store: env.DB, Clock: clk, LeaseTTL: ttl, FoldKinds: []string{"change"},
			OnOutcome: o.add,
			Handler: func(ctx context.Context, d queue.Delivery) error {
				b.add(d)
				for _, x := range append(d.Folded, d) {
					if x.ID == "bad" {
						return queue.Permanent(errors.New("undecodable"))
					}
				}
				return nil
			}}
		start(t, p)
		waitFor(t, "two done", allDone(env.DB, 2))
		waitFor(t, "bad dead", func() bool {
			st, err := env.DB.QueueStats(context.Background(), clk.Now())
			return err == nil && st.Dead == 1
		})
		if ld := storetest.Delivery(t, env.DB, seqOf(t, env.DB, "bad")); ld.State != store.StateDead {
			t.Fatalf("bad is %s", ld.State)
		}
		want := []string{"bad<[]", "k1<[]", "k3<[]", "k3<[k1 bad]"}
		if got := b.list(); !slices.Equal(got, want) {
			t.Fatalf("handled %v, want %v", got, want)
		}
	})
}

// Without FoldKinds nothing is folded (the default).
func TestPoolDoesNotFoldByDefault(t *testing.T) {
	env := storetest.Open(t, "sqlite")
	enqueue(t, env.DB, del("x1", "X"), del("x2", "X"))
	var b batches
	p := &queue.Pool{Store: env.DB, LeaseTTL: ttl, Handler: func(ctx context.Context, d queue.Delivery) error { b.add(d); return nil }}
	start(t, p)
	waitFor(t, "both processed", allDone(env.DB, 2))
	if got := b.list(); !slices.Equal(got, []string{"x1<[]", "x2<[]"}) {
		t.Fatalf("handled %v", got)
	}
}

// A folded batch that fails for now is retried whole: every delivery in it
// waits for the backoff (its followers were leased for that, see
// store.DB.ClaimFollowers), and the retry folds them again.
func TestPoolFoldedTransientFailureRetriesTheBatch(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		enqueue(t, env.DB, del("k1", "K"), del("k2", "K"), del("k3", "K"))
		var b batches
		var o outcomes
		var calls atomic.Int32
		p := &queue.Pool{Store: env.DB, Clock: clk, LeaseTTL: ttl, FoldKinds: []string{"change"},
			OnOutcome: o.add,
			Handler: func(ctx context.Context, d queue.Delivery) error {
				b.add(d)
				if calls.Add(1) == 1 {
					return errors.New("forge unavailable")
				}
				return nil
			}}
		start(t, p)
		waitFor(t, "three retries", func() bool { return len(o.list()) >= 3 })
		for _, id := range []string{"k1", "k2", "k3"} {
			ld := storetest.Delivery(t, env.DB, seqOf(t, env.DB, id))
			if ld.State != store.StatePending || !ld.AvailableAt.After(clk.Now()) || ld.Attempts != 1 || ld.LastError == "" {
				t.Fatalf("%s after the failure: %s, available %v (now %v), attempts %d, error %q; want pending for the backoff, 1 attempt, the error",
					id, ld.State, ld.AvailableAt, clk.Now(), ld.Attempts, ld.LastError)
			}
		}
		// In steps well inside the lease (ttl), so that the retry's lease
		// does not run out under it.
		waitFor(t, "all done after the backoff", func() bool {
			clk.Advance(5 * time.Second)
			return allDone(env.DB, 3)()
		})
		if got, want := b.list(), []string{"k3<[k1 k2]", "k3<[k1 k2]"}; !slices.Equal(got, want) {
			t.Fatalf("handled %v, want %v", got, want)
		}
		waitFor(t, "six outcomes", func() bool { return len(o.list()) == 6 })
		got := o.list()
		slices.Sort(got)
		if want := []string{"k1:done", "k1:retry", "k2:done", "k2:retry", "k3:done", "k3:retry"}; !slices.Equal(got, want) {
			t.Fatalf("outcomes %v, want %v", got, want)
		}
	})
}
