package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/foureyes-dev/foureyes/store"
)

// Pool leases deliveries from a Store and runs them through Handler. Fill in
// the fields, then call Run; zero fields take the documented defaults. A
// Pool must not be copied after first use.
type Pool struct {
	Store   Store
	Handler Handler
	// Workers is how many deliveries run at once (default 4).
	Workers int
	// LeaseTTL is how long a lease lasts without renewal (default 1m). A
	// crashed worker's delivery is taken over after at most this long.
	// Running handlers renew their lease every LeaseTTL/3.
	LeaseTTL time.Duration
	// MaxAttempts is how many times a delivery is tried before it is
	// dead-lettered (default 8). A delivery whose worker keeps crashing
	// also counts its attempts (they are counted when leased).
	MaxAttempts int
	// Backoff returns the delay before retry n (n=1 after the first
	// failure); default DefaultBackoff().Delay.
	Backoff func(attempt int) time.Duration
	// PollInterval bounds how long the pool, when idle, waits before
	// looking for work again without a Notify (default 500ms); one idle
	// worker at a time polls. Polling catches retries coming due, expired
	// leases and work enqueued by other replicas.
	PollInterval time.Duration
	// ShutdownGrace is how long Run lets running handlers finish after its
	// context is cancelled; then their contexts are cancelled and their
	// deliveries released (default 10s).
	ShutdownGrace time.Duration
	// Clock defaults to SystemClock.
	Clock  Clock
	Logger *slog.Logger
	// Owner prefixes lease owners (default host-pid-random). Each lease
	// gets a unique owner: Owner/N.
	Owner string

	// OnDeadLetter is called after a delivery was dead-lettered (e.g. to
	// append an audit record and bump a metric).
	OnDeadLetter func(d Delivery, err error)
	// OnOutcome is called once per leased delivery with its outcome and
	// how long the handler ran (for metrics).
	OnOutcome func(d Delivery, o Outcome, took time.Duration)

	// FoldKinds turns on coalescing: when a delivery of one of these kinds
	// is leased, the deliveries of its key of these kinds queued right
	// behind it, ready now, are leased with it (up to MaxFold in all) and
	// handed to Handler as one: the newest as the Delivery, the others in
	// Delivery.Folded, oldest first. Needs a Store with LeaseBatch
	// (*store.DB); otherwise nothing is folded.
	FoldKinds []string
	// MaxFold bounds one folded batch (default 64).
	MaxFold int

	// Busy, when set, reports that the process is busy taking deliveries
	// in. While it is, only one worker leases; the others wait until it is
	// not (checking every busyRecheck). Taking a delivery in is what cannot
	// wait: a forge gives up on a delivery it waited too long for (GitHub
	// after 10 s) and does not send it again by itself. A delivery stored
	// can wait, and the deliveries of one change that wait together are
	// judged in one evaluation (FoldKinds). One worker keeps leasing, so
	// verdicts still come under sustained load.
	Busy func() bool

	initOnce sync.Once
	wake     chan struct{}
	seq      atomic.Int64
	polling  atomic.Bool // an idle worker is polling (idle)
}

func (p *Pool) init() {
	p.initOnce.Do(func() { p.wake = make(chan struct{}, 1) })
}

// Notify wakes an idle worker to look for work now (the webhook handler
// calls it after Enqueue). It never blocks; safe to call before Run.
func (p *Pool) Notify() {
	p.init()
	select {
	case p.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// config is a Pool with defaults applied, so Run never reads a zero field.
type config struct {
	workers      int
	ttl          time.Duration
	maxAttempts  int
	backoff      func(int) time.Duration
	poll         time.Duration
	grace        time.Duration
	clock        Clock
	log          *slog.Logger
	owner        string
	onDeadLetter func(Delivery, error)
	onOutcome    func(Delivery, Outcome, time.Duration)
	fold         []string
	maxFold      int
	busy         func() bool
}

func (p *Pool) config() (config, error) {
	if p.Store == nil || p.Handler == nil {
		return config{}, errors.New("queue pool: Store and Handler are required")
	}
	c := config{
		workers: p.Workers, ttl: p.LeaseTTL, maxAttempts: p.MaxAttempts, backoff: p.Backoff,
		poll: p.PollInterval, grace: p.ShutdownGrace, clock: p.Clock, log: p.Logger, owner: p.Owner,
		onDeadLetter: p.OnDeadLetter, onOutcome: p.OnOutcome, fold: p.FoldKinds, maxFold: p.MaxFold,
		busy: p.Busy,
	}
	if c.maxFold <= 0 {
		c.maxFold = 64
	}
	if _, ok := p.Store.(BatchStore); !ok {
		c.fold = nil
	}
	if c.workers <= 0 {
		c.workers = 4
	}
	if c.ttl <= 0 {
		c.ttl = time.Minute
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = 8
	}
	if c.backoff == nil {
		c.backoff = DefaultBackoff().Delay
	}
	if c.poll <= 0 {
		c.poll = 500 * time.Millisecond
	}
	if c.grace <= 0 {
		c.grace = 10 * time.Second
	}
	if c.clock == nil {
		c.clock = SystemClock{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.owner == "" {
		c.owner = defaultOwner()
	}
	if c.onDeadLetter == nil {
		c.onDeadLetter = func(Delivery, error) {}
	}
	if c.onOutcome == nil {
		c.onOutcome = func(Delivery, Outcome, time.Duration) {}
	}
	return c, nil
}

func defaultOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// storeTimeout bounds store calls made after Run's context is cancelled
// (completing or releasing in-flight work during shutdown).
const storeTimeout = 10 * time.Second

// Run processes deliveries until ctx is cancelled, then stops leasing,
// waits up to ShutdownGrace for running handlers, cancels the rest and
// releases their deliveries, and returns nil. It returns an error only for
// a misconfigured Pool.
func (p *Pool) Run(ctx context.Context) error {
	cfg, err := p.config()
	if err != nil {
		return err
	}
	p.init()
	// Handlers outlive ctx by up to the grace period, so their context is
	// detached from it and cancelled separately.
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	// storeCtx is for store calls that must still happen after ctx is
	// cancelled (each call adds its own timeout).
	storeCtx := context.WithoutCancel(ctx)

	// Each worker leases its own work. A single loop leasing for all of
	// them was the drain's bottleneck on PostgreSQL: a lease is a
	// transaction of several round trips, one at a time, so finished
	// workers queued for the next lease while the database had room
	// (measured: the loop busy 85% of a burst's drain).
	var running sync.WaitGroup
	cfg.log.Info("queue workers started", "workers", cfg.workers, "owner", cfg.owner)
	for i := range cfg.workers {
		running.Add(1)
		go func() {
			defer running.Done()
			p.work(ctx, handlerCtx, storeCtx, cfg, i > 0)
		}()
	}
	<-ctx.Done()

	drained := make(chan struct{})
	go func() { running.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-cfg.clock.After(cfg.grace):
		cfg.log.Warn("shutdown grace period over: cancelling running handlers", "grace", cfg.grace)
		cancelHandlers()
		<-drained
	}
	cfg.log.Info("queue workers stopped", "owner", cfg.owner)
	return nil
}

// work is one worker: lease, process, repeat until ctx is cancelled. A
// worker that yields waits while cfg.busy reports the process busy.
func (p *Pool) work(ctx, handlerCtx, storeCtx context.Context, cfg config, yields bool) {
	for ctx.Err() == nil {
		if yields && cfg.busy != nil && cfg.busy() {
			select {
			case <-ctx.Done():
			case <-time.After(busyRecheck):
			}
			continue
		}
		owner := fmt.Sprintf("%s/%d", cfg.owner, p.seq.Add(1))
		lds, err := p.lease(ctx, cfg, owner)
		if err != nil || len(lds) == 0 {
			if err != nil && ctx.Err() == nil {
				cfg.log.Error("lease delivery", "err", err)
			}
			p.idle(ctx, cfg)
			continue
		}
		// There may be more: let an idle worker look (each wakes the next,
		// so a burst reaches every worker).
		p.Notify()
		p.process(handlerCtx, storeCtx, ctx, cfg, lds, owner)
		// Finishing a delivery may make the next one of its key ready.
		p.Notify()
	}
}

// busyRecheck is how often a worker that yields to intake (Pool.Busy)
// looks again: short against an evaluation, long against the check.
const busyRecheck = 5 * time.Millisecond

// idle waits for a wake-up. One idle worker at a time also polls, for
// deliveries no Notify announces (enqueued by another replica): with every
// idle worker polling, an idle replica ran a lease transaction per worker
// per poll interval. The poller gives the duty up when it wakes; if it then
// finds work it notifies (work), and the idle worker that wakes takes the
// duty over when it finds none.
func (p *Pool) idle(ctx context.Context, cfg config) {
	if !p.polling.CompareAndSwap(false, true) {
		select {
		case <-ctx.Done():
		case <-p.wake:
		}
		return
	}
	defer p.polling.Store(false)
	select {
	case <-ctx.Done():
	case <-p.wake:
	case <-cfg.clock.After(cfg.poll):
	}
}

func toDelivery(ld *store.LeasedDelivery) Delivery {
	return Delivery{
		Seq: ld.Seq, ID: ld.ID, Forge: ld.Forge, Key: ld.Key, Kind: ld.Kind,
		Payload: ld.Payload, ReceivedAt: ld.ReceivedAt, Attempt: ld.Attempts,
	}
}

func isDeferred(err error) bool {
	_, ok := deferredUntil(err)
	return ok
}

// BatchStore is a Store that can lease several deliveries of one key at
// once (see Pool.FoldKinds).
type BatchStore interface {
	// LeaseBatch leases the first delivery it returns; the others, its
	// followers, are returned pending, under the first's lease.
	LeaseBatch(ctx context.Context, owner string, now time.Time, ttl time.Duration, max int, fold []string) ([]*store.LeasedDelivery, error)
	// ClaimFollowers leases followers to owner while owner holds first.
	ClaimFollowers(ctx context.Context, first int64, followers []int64, owner string) error
}

func (p *Pool) lease(ctx context.Context, cfg config, owner string) ([]*store.LeasedDelivery, error) {
	if len(cfg.fold) > 0 {
		return p.Store.(BatchStore).LeaseBatch(ctx, owner, cfg.clock.Now(), cfg.ttl, cfg.maxFold, cfg.fold)
	}
	ld, err := p.Store.Lease(ctx, owner, cfg.clock.Now(), cfg.ttl)
	if err != nil || ld == nil {
		return nil, err
	}
	return []*store.LeasedDelivery{ld}, nil
}

// process runs leased deliveries (one, or a folded batch of one key,
// oldest first) and records their outcomes. runCtx is Run's context: once
// it is cancelled and handlerCtx too, the handler was cut short by shutdown
// and the deliveries are released, not retried.
func (p *Pool) process(handlerCtx, storeCtx, runCtx context.Context, cfg config, lds []*store.LeasedDelivery, owner string) {
	sctx := func() (context.Context, context.CancelFunc) { return context.WithTimeout(storeCtx, storeTimeout) }
	logOf := func(d Delivery) *slog.Logger {
		return cfg.log.With("seq", d.Seq, "delivery", d.ID, "forge", d.Forge, "key", d.Key, "kind", d.Kind, "attempt", d.Attempt)
	}
	// Only the first is leased; the others are its followers (see
	// store.DB.LeaseBatch), under its lease.
	first := toDelivery(lds[0])
	if first.Attempt > cfg.maxAttempts {
		// Leased more often than allowed without ever failing cleanly:
		// its workers crashed or lost the lease each time. Do not run it
		// again. Its followers stay pending; the next lease takes them.
		err := fmt.Errorf("abandoned %d times (worker crashed or lease expired while handling)", first.Attempt-1)
		p.deadLetter(sctx, cfg, logOf(first), first, owner, err, 0)
		return
	}
	until := lds[0].LeasedUntil
	ds := []Delivery{first}
	for _, ld := range lds[1:] {
		ds = append(ds, toDelivery(ld))
	}
	seqs := make([]int64, len(ds))
	for i, d := range ds {
		seqs[i] = d.Seq
	}
	newest := ds[len(ds)-1]
	if len(ds) > 1 {
		newest.Folded = append([]Delivery(nil), ds[:len(ds)-1]...)
	}
	log := logOf(newest)
	if len(ds) > 1 {
		log = log.With("folded", len(ds)-1)
	}

	hctx, cancel := context.WithCancel(handlerCtx)
	lost := make(chan struct{})
	renewDone := make(chan struct{})
	go p.renew(hctx, storeCtx, cancel, cfg, log, seqs[0], owner, until, lost, renewDone)

	start := cfg.clock.Now()
	err := callHandler(hctx, p.Handler, newest)
	if err != nil && IsPermanent(err) && len(ds) > 1 && runCtx.Err() == nil {
		// One of the folded deliveries cannot be handled at all: run them
		// one by one (still under this lease) so that only that one is
		// dead-lettered.
		log.Warn("folded deliveries failed permanently; handling them one by one", "err", err)
		errs := make([]error, len(ds))
		for i, d := range ds {
			errs[i] = callHandler(hctx, p.Handler, d)
		}
		took := cfg.clock.Now().Sub(start)
		shutdownCut := runCtx.Err() != nil && handlerCtx.Err() != nil
		cancel()
		<-renewDone
		if !p.claimFollowers(sctx, cfg, log, ds, owner, took, lost) {
			return
		}
		for i, d := range ds {
			p.finish(sctx, cfg, logOf(d), d, owner, errs[i], took, shutdownCut, lost)
		}
		return
	}
	took := cfg.clock.Now().Sub(start)
	shutdownCut := runCtx.Err() != nil && handlerCtx.Err() != nil
	cancel()
	<-renewDone
	if bc, ok := p.Store.(BatchCompleter); ok && err == nil && len(ds) > 1 && !isClosed(lost) {
		ctx, cancelStore := sctx()
		cerr := bc.CompleteBatch(ctx, seqs, owner)
		cancelStore()
		if cerr == nil {
			log.Debug("folded deliveries processed", "took", took)
			for _, d := range ds {
				cfg.onOutcome(d, OutcomeDone, took)
			}
			return
		}
		// The lease was lost meanwhile: finishing one by one tells.
		log.Warn("complete folded deliveries", "err", cerr)
	}
	if !p.claimFollowers(sctx, cfg, log, ds, owner, took, lost) {
		return
	}
	for _, d := range ds {
		p.finish(sctx, cfg, logOf(d), d, owner, err, took, shutdownCut, lost)
	}
}

// claimFollowers leases the followers of a folded batch (ds[1:]) to owner
// so that each can be finished on its own (retried, released,
// dead-lettered). It reports false when they cannot be: the first's lease
// was lost, and whoever holds it now runs them all again; or the store
// failed, and they run again once the first's lease runs out.
func (p *Pool) claimFollowers(sctx func() (context.Context, context.CancelFunc), cfg config, log *slog.Logger,
	ds []Delivery, owner string, took time.Duration, lost chan struct{}) bool {
	if len(ds) < 2 || isClosed(lost) {
		return true // nothing to claim, or finish reports each lost lease
	}
	fc, ok := p.Store.(BatchStore)
	if !ok {
		return true
	}
	seqs := make([]int64, 0, len(ds)-1)
	for _, d := range ds[1:] {
		seqs = append(seqs, d.Seq)
	}
	ctx, cancel := sctx()
	defer cancel()
	err := fc.ClaimFollowers(ctx, ds[0].Seq, seqs, owner)
	if err == nil {
		return true
	}
	if errors.Is(err, store.ErrLeaseLost) {
		log.Warn("lease lost while handling folded deliveries", "err", err)
		for _, d := range ds {
			cfg.onOutcome(d, OutcomeLeaseLost, took)
		}
		return false
	}
	log.Error("claim folded deliveries to finish them one by one; they run again when the lease ends", "err", err)
	return false
}

// BatchCompleter is a Store that completes a folded batch in one step.
type BatchCompleter interface {
	CompleteBatch(ctx context.Context, seqs []int64, owner string) error
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// finish records the outcome of one delivery of a lease.
func (p *Pool) finish(sctx func() (context.Context, context.CancelFunc), cfg config, log *slog.Logger,
	d Delivery, owner string, err error, took time.Duration, shutdownCut bool, lost chan struct{}) {
	select {
	case <-lost:
		// Someone else holds the delivery now; whatever we report would be
		// rejected (ErrLeaseLost) and they will run it.
		log.Warn("lease lost while handling delivery", "err", err)
		cfg.onOutcome(d, OutcomeLeaseLost, took)
		return
	default:
	}

	ctx, cancelStore := sctx()
	defer cancelStore()
	switch {
	case err == nil:
		if err := p.Store.Complete(ctx, d.Seq, owner); err != nil {
			// The work is done but may run again (at least once).
			log.Error("complete delivery", "err", err)
			if errors.Is(err, store.ErrLeaseLost) {
				cfg.onOutcome(d, OutcomeLeaseLost, took)
			}
			return
		}
		log.Debug("delivery processed", "took", took)
		cfg.onOutcome(d, OutcomeDone, took)
	case shutdownCut:
		if err := p.Store.Release(ctx, d.Seq, owner, cfg.clock.Now()); err != nil {
			log.Error("release delivery at shutdown", "err", err)
			return
		}
		log.Info("delivery released at shutdown", "err", err)
		cfg.onOutcome(d, OutcomeReleased, took)
	case isDeferred(err):
		at, _ := deferredUntil(err)
		if now := cfg.clock.Now(); at.Before(now) {
			at = now
		}
		if rerr := p.Store.Release(ctx, d.Seq, owner, at); rerr != nil {
			log.Error("defer delivery", "err", rerr, "handler_err", err)
			return
		}
		log.Info("delivery deferred", "err", err, "until", at)
		cfg.onOutcome(d, OutcomeDeferred, took)
	case IsPermanent(err) || d.Attempt >= cfg.maxAttempts:
		p.deadLetter(sctx, cfg, log, d, owner, err, took)
	default:
		delay := cfg.backoff(d.Attempt)
		at := cfg.clock.Now().Add(delay)
		if rerr := p.Store.Retry(ctx, d.Seq, owner, at, errText(err)); rerr != nil {
			log.Error("schedule retry", "err", rerr, "handler_err", err)
			return
		}
		log.Warn("delivery failed, will retry", "err", err, "retry_in", delay)
		cfg.onOutcome(d, OutcomeRetry, took)
	}
}

func (p *Pool) deadLetter(sctx func() (context.Context, context.CancelFunc), cfg config, log *slog.Logger, d Delivery, owner string, cause error, took time.Duration) {
	ctx, cancel := sctx()
	defer cancel()
	if err := p.Store.DeadLetter(ctx, d.Seq, owner, errText(cause)); err != nil {
		log.Error("dead-letter delivery", "err", err, "handler_err", cause)
		return
	}
	log.Error("delivery dead-lettered; retry it by hand once the cause is fixed", "err", cause, "permanent", IsPermanent(cause))
	cfg.onOutcome(d, OutcomeDead, took)
	cfg.onDeadLetter(d, cause)
}

// callHandler turns a handler panic into an error, so one bad delivery
// cannot take down the process (and, through crash loops, the queue).
func callHandler(ctx context.Context, h Handler, d Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return h(ctx, d)
}

// renew extends the lease every ttl/3 while the handler runs. If the lease
// is lost, or cannot be renewed before it expires (database unreachable),
// it cancels the handler, because another worker may start the same
// delivery and two runs of one key must not overlap.
func (p *Pool) renew(hctx, storeCtx context.Context, cancel context.CancelFunc, cfg config, log *slog.Logger,
	seq int64, owner string, until time.Time, lost, done chan struct{}) {
	defer close(done)
	every := cfg.ttl / 3
	for {
		select {
		case <-hctx.Done():
			return
		case <-cfg.clock.After(every):
		}
		now := cfg.clock.Now()
		ctx, c := context.WithTimeout(storeCtx, storeTimeout)
		err := p.Store.RenewLease(ctx, seq, owner, now.Add(cfg.ttl))
		c()
		switch {
		case err == nil:
			until = now.Add(cfg.ttl)
		case errors.Is(err, store.ErrLeaseLost):
			close(lost)
			cancel()
			return
		default:
			log.Warn("renew lease", "err", err)
			if !cfg.clock.Now().Before(until) {
				close(lost)
				cancel()
				return
			}
		}
	}
}
