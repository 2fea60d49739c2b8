package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/queue"
	"github.com/foureyes-dev/foureyes/store"
	"github.com/foureyes-dev/foureyes/store/storetest"
)

// The real store is a queue.Store.
var _ queue.Store = (*store.DB)(nil)

const ttl = time.Minute

func del(id, key string) store.Delivery {
	return store.Delivery{ID: id, Forge: "github", Key: key, Kind: "change", Payload: []byte(`{"id":"` + id + `"}`)}
}

func enqueue(t *testing.T, db *store.DB, ds ...store.Delivery) {
	t.Helper()
	for _, d := range ds {
		if _, err := db.Enqueue(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
}

// start runs p until the test ends (or stop is called) and returns stop,
// which cancels Run and waits for it to return.
func start(t *testing.T, p *queue.Pool) (stop func()) {
	return startWith(t, p, nil)
}

// startWith is start for pools on a fake clock: stop keeps advancing clk so
// that a handler stuck by a failing test cannot hold Run past its grace.
func startWith(t *testing.T, p *queue.Pool, clk *fakeClock) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			deadline := time.After(20 * time.Second)
			for {
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("Run: %v", err)
					}
					return
				case <-deadline:
					t.Errorf("Run did not return after cancel")
					return
				case <-time.After(10 * time.Millisecond):
					if clk != nil {
						clk.Advance(time.Minute)
					}
				}
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// forEachWithClock runs fn per backend with a fresh fake clock that the
// store uses too (a clock shared by subtests would keep stale timers).
func forEachWithClock(t *testing.T, fn func(t *testing.T, env *storetest.Env, clk *fakeClock)) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			clk := newFakeClock()
			fn(t, storetest.Open(t, b, store.WithClock(clk.Now)), clk)
		})
	}
}

func seqOf(t *testing.T, db *store.DB, id string) int64 {
	t.Helper()
	all, err := db.ListDeliveries(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		if d.ID == id {
			return d.Seq
		}
	}
	t.Fatalf("delivery %s not stored", id)
	return 0
}

func allDone(db *store.DB, n int) func() bool {
	return func() bool {
		st, err := db.QueueStats(context.Background(), time.Now())
		return err == nil && st.Done == n
	}
}

// outcomes records OnOutcome calls.
type outcomes struct {
	mu  sync.Mutex
	got []string
}

func (o *outcomes) add(d queue.Delivery, oc queue.Outcome, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, fmt.Sprintf("%s:%s", d.ID, oc))
}

func (o *outcomes) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.got...)
}

func TestPoolDuplicateProcessedOnce(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		var calls atomic.Int32
		p := &queue.Pool{Store: env.DB, Clock: clk, LeaseTTL: ttl, Handler: func(ctx context.Context, d queue.Delivery) error {
			calls.Add(1)
			return nil
		}}
		start(t, p)
		for i := 0; i < 3; i++ {
			ok, err := env.DB.Enqueue(context.Background(), del("d1", "K"))
			if err != nil || ok != (i == 0) {
				t.Fatalf("Enqueue #%d = %v, %v", i, ok, err)
			}
			p.Notify()
		}
		waitFor(t, "d1 processed", allDone(env.DB, 1))
		if ok, _ := env.DB.Enqueue(context.Background(), del("d1", "K")); ok {
			t.Fatal("redelivery after processing stored again")
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("handler ran %d times", n)
		}
	})
}

// keyTracker checks that a key never runs twice at once and records the
// order of each key's deliveries.
type keyTracker struct {
	t      *testing.T
	mu     sync.Mutex
	active map[string]string
	order  map[string][]string
	count  map[string]int
}

func newKeyTracker(t *testing.T) *keyTracker {
	return &keyTracker{t: t, active: map[string]string{}, order: map[string][]string{}, count: map[string]int{}}
}

func (k *keyTracker) begin(d queue.Delivery) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if other, busy := k.active[d.Key]; busy {
		k.t.Errorf("%s started while %s of key %s is running", d.ID, other, d.Key)
	}
	k.active[d.Key] = d.ID
	k.order[d.Key] = append(k.order[d.Key], d.ID)
	k.count[d.ID]++
}

func (k *keyTracker) end(d queue.Delivery) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.active, d.Key)
}

func (k *keyTracker) check(keys, perKey int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := 0; i < keys; i++ {
		for j := 0; j < perKey; j++ {
			id := fmt.Sprintf("k%d-%03d", i, j)
			if k.count[id] != 1 {
				k.t.Errorf("%s processed %d times", id, k.count[id])
			}
		}
		got := k.order[fmt.Sprintf("K%d", i)]
		for j, id := range got {
			if want := fmt.Sprintf("k%d-%03d", i, j); id != want {
				k.t.Fatalf("key K%d ran out of order: %v", i, got)
			}
		}
	}
}

func enqueueKeys(t *testing.T, db *store.DB, keys, perKey int) {
	t.Helper()
	for j := 0; j < perKey; j++ {
		for i := 0; i < keys; i++ {
			enqueue(t, db, del(fmt.Sprintf("k%d-%03d", i, j), fmt.Sprintf("K%d", i)))
		}
	}
}

func TestPoolPerKeyOrdering(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		const keys, perKey = 4, 10
		enqueueKeys(t, env.DB, keys, perKey)
		tr := newKeyTracker(t)
		// The first deliveries of K0 and K1 wait for each other: the test
		// only passes if different keys really run in parallel.
		arrived := map[string]chan struct{}{"k0-000": make(chan struct{}), "k1-000": make(chan struct{})}
		partner := map[string]string{"k0-000": "k1-000", "k1-000": "k0-000"}
		p := &queue.Pool{Store: env.DB, Clock: clk, LeaseTTL: ttl, Workers: 4,
			Handler: func(ctx context.Context, d queue.Delivery) error {
				tr.begin(d)
				defer tr.end(d)
				if ch, ok := arrived[d.ID]; ok {
					close(ch)
					select {
					case <-arrived[partner[d.ID]]:
					case <-time.After(20 * time.Second):
						t.Errorf("%s: keys K0 and K1 never ran in parallel", d.ID)
					}
				}
				// A store round trip while "working" gives a wrongly
				// scheduled sibling time to show up.
				_, err := env.DB.Facts(ctx, d.Key)
				return err
			}}
		start(t, p)
		p.Notify()
		waitFor(t, "all deliveries processed", allDone(env.DB, keys*perKey))
		tr.check(keys, perKey)
	})
}

// countingStore lets a test see that the pool looked for work.
type countingStore struct {
	queue.Store
	leases  atomic.Int32
	renewal error // returned by RenewLease when set
}

func (c *countingStore) Lease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (*store.LeasedDelivery, error) {
	defer c.leases.Add(1)
	return c.Store.Lease(ctx, owner, now, ttl)
}

func (c *countingStore) RenewLease(ctx context.Context, seq int64, owner string, until time.Time) error {
	if c.renewal != nil {
		return c.renewal
	}
	return c.Store.RenewLease(ctx, seq, owner, until)
}

func TestPoolCrashRecovery(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		ctx := context.Background()
		enqueue(t, env.DB, del("a1", "A"), del("a2", "A"))
		// A worker leases a1 and "crashes": it never reports back.
		crashed, err := env.DB.Lease(ctx, "crashed-worker/1", clk.Now(), ttl)
		if err != nil || crashed == nil || crashed.ID != "a1" {
			t.Fatalf("crashed lease = %+v, %v", crashed, err)
		}

		tr := newKeyTracker(t)
		var attempts sync.Map
		cs := &countingStore{Store: env.DB}
		p := &queue.Pool{Store: cs, Clock: clk, LeaseTTL: ttl, Handler: func(ctx context.Context, d queue.Delivery) error {
			tr.begin(d)
			defer tr.end(d)
			attempts.Store(d.ID, d.Attempt)
			return nil
		}}
		start(t, p)
		p.Notify()
		// The pool looks, but a1 is leased and a2 must wait for it.
		waitFor(t, "pool to look for work", func() bool { return cs.leases.Load() >= 1 })
		clk.Advance(ttl - time.Second)
		p.Notify()
		waitFor(t, "pool to look again", func() bool { return cs.leases.Load() >= 2 })
		if st := storetest.Delivery(t, env.DB, crashed.Seq); st.State != store.StateLeased || st.Owner != "crashed-worker/1" {
			t.Fatalf("taken over before the lease expired: %+v", st)
		}
		// Once the lease expires (per the fake clock) the pool takes it.
		clk.Advance(time.Second)
		p.Notify()
		waitFor(t, "both deliveries processed", allDone(env.DB, 2))
		if got := tr.order["A"]; len(got) != 2 || got[0] != "a1" || got[1] != "a2" {
			t.Fatalf("order %v", got)
		}
		if a, _ := attempts.Load("a1"); a != 2 {
			t.Fatalf("a1 attempt = %v, want 2", a)
		}
		if err := env.DB.Complete(ctx, crashed.Seq, "crashed-worker/1"); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("crashed worker completing = %v", err)
		}
	})
}

func TestPoolRetryBackoffDeadLetterRequeue(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		ctx := context.Background()
		enqueue(t, env.DB, del("a1", "A"))
		seq := seqOf(t, env.DB, "a1")
		var fail atomic.Bool
		fail.Store(true)
		var calls atomic.Int32
		var oc outcomes
		dead := make(chan error, 1)
		cs := &countingStore{Store: env.DB}
		p := &queue.Pool{
			Store: cs, Clock: clk, LeaseTTL: ttl, MaxAttempts: 3,
			Backoff: func(n int) time.Duration { return time.Duration(n) * 10 * time.Second },
			Handler: func(ctx context.Context, d queue.Delivery) error {
				calls.Add(1)
				if fail.Load() {
					return fmt.Errorf("forge answered 502 on attempt %d", d.Attempt)
				}
				return nil
			},
			OnOutcome:    oc.add,
			OnDeadLetter: func(d queue.Delivery, err error) { dead <- err },
		}
		start(t, p)
		p.Notify()
		for attempt := 1; attempt <= 2; attempt++ {
			waitFor(t, fmt.Sprintf("attempt %d to fail", attempt), func() bool {
				// calls first: once the handler ran, the lease is visible.
				return calls.Load() == int32(attempt) && storetest.Delivery(t, env.DB, seq).State == store.StatePending
			})
			st := storetest.Delivery(t, env.DB, seq)
			wantAt := clk.Now().Add(time.Duration(attempt) * 10 * time.Second)
			if !st.AvailableAt.Equal(wantAt) || st.Attempts != attempt {
				t.Fatalf("after attempt %d: available %v (want %v), attempts %d", attempt, st.AvailableAt, wantAt, st.Attempts)
			}
			// Not a moment before the backoff is over...
			clk.Advance(time.Duration(attempt)*10*time.Second - time.Second)
			looked := cs.leases.Load()
			p.Notify()
			waitFor(t, "pool to look for work", func() bool { return cs.leases.Load() > looked })
			if n := calls.Load(); n != int32(attempt) {
				t.Fatalf("retried %v early", time.Second)
			}
			clk.Advance(time.Second)
			p.Notify()
		}
		select {
		case err := <-dead:
			if err == nil || err.Error() != "forge answered 502 on attempt 3" {
				t.Fatalf("dead-letter cause %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("not dead-lettered")
		}
		if n := calls.Load(); n != 3 {
			t.Fatalf("handler ran %d times", n)
		}
		list, err := env.DB.ListDeliveries(ctx, store.StateDead, 10)
		if err != nil || len(list) != 1 || list[0].ID != "a1" || list[0].LastError != "forge answered 502 on attempt 3" {
			t.Fatalf("dead letters %+v, %v", list, err)
		}
		st, err := env.DB.QueueStats(ctx, clk.Now())
		if err != nil || st.Dead != 1 || st.Pending != 0 {
			t.Fatalf("stats %+v, %v", st, err)
		}

		// Fixed by hand, retried by hand.
		fail.Store(false)
		if err := env.DB.Requeue(ctx, seq); err != nil {
			t.Fatal(err)
		}
		p.Notify()
		waitFor(t, "requeued delivery processed", allDone(env.DB, 1))
		// OnOutcome runs just after the store update.
		waitFor(t, "fourth outcome", func() bool { return len(oc.list()) == 4 })
		want := []string{"a1:retry", "a1:retry", "a1:dead", "a1:done"}
		if got := oc.list(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("outcomes %v, want %v", got, want)
		}
	})
}

func TestPoolPermanentAndPanic(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		enqueue(t, env.DB, del("bad", "A"), del("boom", "B"))
		var oc outcomes
		p := &queue.Pool{Store: env.DB, Clock: clk, LeaseTTL: ttl, OnOutcome: oc.add,
			Backoff: func(int) time.Duration { return time.Hour },
			Handler: func(ctx context.Context, d queue.Delivery) error {
				if d.ID == "bad" {
					return queue.Permanent(errors.New("payload does not decode"))
				}
				panic("nil map")
			}}
		start(t, p)
		p.Notify()
		waitFor(t, "both handled", func() bool { return len(oc.list()) == 2 })
		bad := storetest.Delivery(t, env.DB, seqOf(t, env.DB, "bad"))
		if bad.State != store.StateDead || bad.Attempts != 1 || bad.LastError != "permanent: payload does not decode" {
			t.Fatalf("permanent error: %+v", bad)
		}
		boom := storetest.Delivery(t, env.DB, seqOf(t, env.DB, "boom"))
		if boom.State != store.StatePending || len(boom.LastError) < 20 || boom.LastError[:20] != "handler panic: nil m" {
			t.Fatalf("panic: %+v", boom)
		}
	})
}

func TestPoolAbandonedTooOftenIsDeadLettered(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		ctx := context.Background()
		enqueue(t, env.DB, del("poison", "A"))
		// Three workers in a row crash on it.
		for i := 0; i < 3; i++ {
			if ld, err := env.DB.Lease(ctx, fmt.Sprintf("crashed/%d", i), clk.Now(), ttl); err != nil || ld == nil {
				t.Fatalf("lease %d: %v %v", i, ld, err)
			}
			clk.Advance(ttl)
		}
		var calls atomic.Int32
		dead := make(chan error, 1)
		p := &queue.Pool{Store: env.DB, Clock: clk, LeaseTTL: ttl, MaxAttempts: 3,
			OnDeadLetter: func(d queue.Delivery, err error) { dead <- err },
			Handler:      func(context.Context, queue.Delivery) error { calls.Add(1); return nil }}
		start(t, p)
		p.Notify()
		select {
		case err := <-dead:
			if err.Error() != "abandoned 3 times (worker crashed or lease expired while handling)" {
				t.Fatalf("cause %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("not dead-lettered")
		}
		if calls.Load() != 0 {
			t.Fatal("poison delivery ran again")
		}
	})
}

func TestPoolShutdown(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		enqueue(t, env.DB, del("quick", "A"), del("stuck", "B"))
		quickSeq, stuckSeq := seqOf(t, env.DB, "quick"), seqOf(t, env.DB, "stuck")
		running := make(chan string, 2)
		finishQuick := make(chan struct{})
		var oc outcomes
		p := &queue.Pool{Store: env.DB, Clock: clk, LeaseTTL: ttl, ShutdownGrace: 5 * time.Second, OnOutcome: oc.add,
			Handler: func(ctx context.Context, d queue.Delivery) error {
				running <- d.ID
				if d.ID == "quick" {
					<-finishQuick
					return nil
				}
				<-ctx.Done() // "stuck" runs until it is told to stop
				return ctx.Err()
			}}
		stop := start(t, p)
		p.Notify()
		<-running
		<-running
		stopped := make(chan struct{})
		go func() { stop(); close(stopped) }()
		// In-flight work may finish during the grace period.
		close(finishQuick)
		waitFor(t, "quick to complete", func() bool { return storetest.Delivery(t, env.DB, quickSeq).State == store.StateDone })
		// The stuck one is cancelled when the grace period is over, and
		// its delivery released without using up an attempt. Run cannot
		// return before the fake clock has moved by the grace period.
		advanced := time.Duration(0)
		waitFor(t, "Run to return", func() bool {
			select {
			case <-stopped:
				return true
			default:
			}
			clk.Advance(time.Second)
			advanced += time.Second
			return false
		})
		if advanced < 5*time.Second {
			t.Fatalf("Run returned after %v of simulated time, before the 5s grace period", advanced)
		}
		st := storetest.Delivery(t, env.DB, stuckSeq)
		if st.State != store.StatePending || st.Attempts != 0 {
			t.Fatalf("stuck delivery after shutdown: %+v", st)
		}
		want := map[string]bool{"quick:done": true, "stuck:released": true}
		for _, o := range oc.list() {
			if !want[o] {
				t.Fatalf("outcomes %v", oc.list())
			}
		}
	})
}

func TestPoolRenewsLease(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		ctx := context.Background()
		enqueue(t, env.DB, del("long", "A"))
		seq := seqOf(t, env.DB, "long")
		release := make(chan struct{})
		started := make(chan struct{})
		p := &queue.Pool{Store: env.DB, Clock: clk, LeaseTTL: 30 * time.Second,
			Handler: func(ctx context.Context, d queue.Delivery) error {
				close(started)
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}}
		startWith(t, p, clk)
		p.Notify()
		<-started
		first := storetest.Delivery(t, env.DB, seq).LeasedUntil
		// Each step passes the renewal period (ttl/3); together they pass
		// the original expiry.
		for i := 1; i <= 4; i++ {
			clk.waitTimer(t, 10*time.Second)
			clk.Advance(11 * time.Second)
			want := clk.Now().Add(30 * time.Second)
			waitFor(t, fmt.Sprintf("renewal %d", i), func() bool {
				return !storetest.Delivery(t, env.DB, seq).LeasedUntil.Before(want)
			})
		}
		if !clk.Now().After(first) {
			t.Fatal("test did not pass the original expiry")
		}
		if ld, err := env.DB.Lease(ctx, "other", clk.Now(), ttl); err != nil || ld != nil {
			t.Fatalf("renewed lease taken over: %v %v", ld, err)
		}
		close(release)
		waitFor(t, "long delivery done", allDone(env.DB, 1))
	})
}

func TestPoolCancelsHandlerWhenLeaseLost(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		enqueue(t, env.DB, del("a1", "A"))
		cs := &countingStore{Store: env.DB, renewal: store.ErrLeaseLost}
		started := make(chan struct{})
		var oc outcomes
		p := &queue.Pool{Store: cs, Clock: clk, LeaseTTL: 30 * time.Second, OnOutcome: oc.add,
			Handler: func(ctx context.Context, d queue.Delivery) error {
				close(started)
				<-ctx.Done()
				return ctx.Err()
			}}
		startWith(t, p, clk)
		p.Notify()
		<-started
		clk.waitTimer(t, 10*time.Second)
		clk.Advance(10 * time.Second)
		waitFor(t, "handler cancelled", func() bool { return len(oc.list()) == 1 })
		if got := oc.list()[0]; got != "a1:lease_lost" {
			t.Fatalf("outcome %s", got)
		}
	})
}

// TestTwoPoolsShareOneDatabase runs two pools, each with its own store
// handle (as two replicas would), on one database: every delivery is
// processed exactly once, in order per key, never two of a key at once.
func TestTwoPoolsShareOneDatabase(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		const keys, perKey = 10, 20
		enqueueKeys(t, env.DB, keys, perKey)
		tr := newKeyTracker(t)
		var byPool [2]atomic.Int32
		pools := make([]*queue.Pool, 2)
		for i := range pools {
			db := env.DB
			if i == 1 {
				db = storetest.Reopen(t, env)
			}
			pools[i] = &queue.Pool{
				Store: db, LeaseTTL: ttl, Workers: 3, Owner: fmt.Sprintf("replica%d", i),
				// Real time here: replicas only learn of each other's
				// progress by polling.
				PollInterval: 2 * time.Millisecond,
				Handler: func(ctx context.Context, d queue.Delivery) error {
					tr.begin(d)
					defer tr.end(d)
					byPool[i].Add(1)
					// Work takes time: a change's waiting deliveries are
					// leased together, so instant handlers let the replica
					// started first finish every key before the second
					// one polls, which proves nothing about sharing.
					time.Sleep(2 * time.Millisecond)
					_, err := db.Facts(ctx, d.Key)
					return err
				},
			}
		}
		// Both replicas run before either is told of the work.
		for _, p := range pools {
			start(t, p)
		}
		for _, p := range pools {
			p.Notify()
		}
		waitFor(t, "all deliveries processed", allDone(env.DB, keys*perKey))
		tr.check(keys, perKey)
		t.Logf("replica0 processed %d, replica1 %d", byPool[0].Load(), byPool[1].Load())
		if byPool[0].Load() == 0 || byPool[1].Load() == 0 {
			t.Errorf("one replica did all the work: %d / %d", byPool[0].Load(), byPool[1].Load())
		}
	})
}

func TestBackoff(t *testing.T) {
	top := queue.Backoff{Base: 2 * time.Second, Cap: 10 * time.Minute, Rand: func() float64 { return 0.999999 }}
	for _, c := range []struct {
		attempt int
		max     time.Duration
	}{{1, 2 * time.Second}, {2, 4 * time.Second}, {5, 32 * time.Second}, {9, 512 * time.Second}, {10, 10 * time.Minute}, {1000, 10 * time.Minute}} {
		got := top.Delay(c.attempt)
		if got > c.max || got < c.max*99/100 {
			t.Errorf("Delay(%d) = %v, want just under %v", c.attempt, got, c.max)
		}
	}
	zero := queue.Backoff{Base: 2 * time.Second, Cap: time.Minute, Rand: func() float64 { return 0 }}
	if d := zero.Delay(3); d != 0 {
		t.Errorf("full jitter with rand 0 = %v", d)
	}
	def := queue.DefaultBackoff()
	for i := 0; i < 100; i++ {
		if d := def.Delay(3); d < 0 || d >= 8*time.Second {
			t.Fatalf("default Delay(3) = %v", d)
		}
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad payload")
	err := fmt.Errorf("decode: %w", queue.Permanent(base))
	if !queue.IsPermanent(err) || !errors.Is(err, base) {
		t.Fatal("Permanent lost through wrapping")
	}
	if queue.IsPermanent(base) || queue.Permanent(nil) != nil {
		t.Fatal("IsPermanent/Permanent(nil)")
	}
	if err := (&queue.Pool{}).Run(context.Background()); err == nil {
		t.Fatal("Run without Store/Handler")
	}
}

// concurrentLeases is a Store whose Lease waits until the given number of
// leases are asked for at once (or a timeout passes), and remembers the
// most it saw.
type concurrentLeases struct {
	queue.Store
	want  int32
	in    atomic.Int32
	most  atomic.Int32
	ready chan struct{}
	once  sync.Once
}

func (c *concurrentLeases) Lease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (*store.LeasedDelivery, error) {
	n := c.in.Add(1)
	defer c.in.Add(-1)
	for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
	}
	if n >= c.want {
		c.once.Do(func() { close(c.ready) })
	}
	select {
	case <-c.ready:
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
	}
	return c.Store.Lease(ctx, owner, now, ttl)
}

// TestPoolWorkersLeaseConcurrently: every worker leases its own work. A
// lease is a transaction of several round trips, and with one loop
// leasing for all workers the finished ones queued behind it while the
// database had room: that loop was a burst's bottleneck on PostgreSQL.
func TestPoolWorkersLeaseConcurrently(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		const workers = 4
		for i := range workers {
			enqueue(t, env.DB, del(fmt.Sprintf("d%d", i), fmt.Sprintf("K%d", i)))
		}
		cs := &concurrentLeases{Store: env.DB, want: workers, ready: make(chan struct{})}
		p := &queue.Pool{Store: cs, Workers: workers, LeaseTTL: ttl,
			Handler: func(context.Context, queue.Delivery) error { return nil }}
		start(t, p)
		select {
		case <-cs.ready:
		case <-time.After(10 * time.Second):
			t.Fatalf("at most %d leases at once, want %d (one per worker)", cs.most.Load(), workers)
		}
		waitFor(t, "all done", allDone(env.DB, workers))
	})
}

// An idle pool polls with one worker, not all of them: each poll interval
// costs one lease transaction per replica, however many workers it has.
// The poll still finds work that no Notify announced (another replica's),
// and a Notify still reaches the workers that do not poll.
func TestPoolIdleWorkersPollOnce(t *testing.T) {
	forEachWithClock(t, func(t *testing.T, env *storetest.Env, clk *fakeClock) {
		const workers, polls = 4, 10
		cs := &countingStore{Store: env.DB}
		done := make(chan string, 4)
		p := &queue.Pool{Store: cs, Clock: clk, LeaseTTL: ttl, Workers: workers, PollInterval: time.Second,
			Handler: func(_ context.Context, d queue.Delivery) error { done <- d.ID; return nil }}
		start(t, p)
		waitFor(t, "every worker's first lease", func() bool { return cs.leases.Load() >= workers })
		for i := 1; i <= polls; i++ {
			clk.waitTimer(t, time.Second)
			clk.Advance(time.Second)
			waitFor(t, fmt.Sprintf("poll %d", i), func() bool { return cs.leases.Load() >= int32(workers+i) })
		}
		time.Sleep(50 * time.Millisecond)
		if n := cs.leases.Load(); n > workers+polls+1 {
			t.Fatalf("%d leases for %d polls of an idle pool of %d workers, want at most %d", n, polls, workers, workers+polls+1)
		}
		// Work enqueued elsewhere (no Notify) is found by the poll...
		enqueue(t, env.DB, del("remote", "R"))
		clk.waitTimer(t, time.Second)
		clk.Advance(time.Second)
		if id := <-done; id != "remote" {
			t.Fatalf("processed %s", id)
		}
		// ...and a Notify wakes a worker without waiting for it.
		enqueue(t, env.DB, del("local", "L"))
		p.Notify()
		select {
		case id := <-done:
			if id != "local" {
				t.Fatalf("processed %s", id)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a notified delivery waited for the poll")
		}
	})
}

// While Busy reports the process busy taking deliveries in, one worker
// runs handlers and the others wait; once it does not, they all run.
func TestPoolYieldsToBusyIntake(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		const workers = 4
		for i := range 2 * workers {
			enqueue(t, env.DB, del(fmt.Sprintf("d%d", i), fmt.Sprintf("K%d", i)))
		}
		var busy atomic.Bool
		busy.Store(true)
		var running, most, ran atomic.Int64
		release := make(chan struct{})
		p := &queue.Pool{Store: env.DB, Workers: workers, LeaseTTL: ttl, Busy: busy.Load,
			Handler: func(ctx context.Context, _ queue.Delivery) error {
				n := running.Add(1)
				defer running.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				ran.Add(1)
				select {
				case <-release:
				case <-time.After(20 * time.Millisecond):
				}
				return nil
			}}
		start(t, p)
		waitFor(t, "three handlers run while busy", func() bool { return ran.Load() >= 3 })
		if m := most.Load(); m != 1 {
			t.Fatalf("while busy, %d handlers ran at once, want 1", m)
		}
		// Not busy: the other workers lease too.
		busy.Store(false)
		waitFor(t, "handlers run side by side", func() bool { return most.Load() >= 2 })
		close(release)
		waitFor(t, "all done", allDone(env.DB, 2*workers))
	})
}
