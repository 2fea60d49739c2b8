// Package queue runs stored deliveries through a handler with a pool of
// workers: at least once, one at a time and in order per ordering key,
// with retries (exponential backoff, full jitter), a dead-letter state and
// recovery of work abandoned by a crashed worker (its lease expires).
//
// Durability lives in the store (see package store); this package holds no
// work in memory that is not leased in the database, so killing the process
// loses nothing: leases expire and another worker or replica takes over.
package queue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/store"
)

// Store is what the pool needs from the durable queue. *store.DB
// implements it; seq identifies a stored delivery, owner a lease.
type Store interface {
	Lease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (*store.LeasedDelivery, error)
	Complete(ctx context.Context, seq int64, owner string) error
	Retry(ctx context.Context, seq int64, owner string, at time.Time, errMsg string) error
	Release(ctx context.Context, seq int64, owner string, at time.Time) error
	RenewLease(ctx context.Context, seq int64, owner string, until time.Time) error
	DeadLetter(ctx context.Context, seq int64, owner, errMsg string) error
}

// Delivery is what a handler gets: the stored delivery without queue
// bookkeeping.
type Delivery struct {
	Seq        int64  // queue position (the store's ID for it)
	ID         string // the forge's delivery ID
	Forge      string
	Key        string
	Kind       string
	Payload    []byte
	ReceivedAt time.Time
	Attempt    int // 1 for the first try
	// Folded are the deliveries of the same key that waited right behind
	// each other and are handled together with this one, the newest
	// (Pool.FoldKinds), oldest first; nil when nothing was folded. They
	// complete, retry or fail together with it.
	Folded []Delivery
}

// Handler processes one delivery. A nil error completes it; an error
// retries it later unless it is Permanent. Handlers must honour ctx: it is
// cancelled when the lease is lost or the shutdown grace period ends.
// Handlers must be idempotent: a delivery can run more than once (a crash
// after the work but before Complete).
type Handler func(ctx context.Context, d Delivery) error

type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the delivery is dead-lettered
// at once (e.g. a payload that cannot be decoded).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type deferredError struct {
	err error
	at  time.Time
}

func (e *deferredError) Error() string { return "deferred: " + e.err.Error() }
func (e *deferredError) Unwrap() error { return e.err }

// Defer marks err as "not now, but at at": the delivery is put back,
// ready at at, without counting the attempt (e.g. waiting for a forge's
// rate limit to reset). An at in the past retries at once.
func Defer(err error, at time.Time) error {
	if err == nil {
		return nil
	}
	return &deferredError{err: err, at: at}
}

// deferredUntil returns the time of a Defer error.
func deferredUntil(err error) (time.Time, bool) {
	var d *deferredError
	if errors.As(err, &d) {
		return d.at, true
	}
	return time.Time{}, false
}

// IsPermanent reports whether err (or an error it wraps) was made by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Clock is the time source of the pool; tests use a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now is time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// After is time.After.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Backoff computes retry delays: exponential from Base, capped at Cap, with
// full jitter (a uniform random delay between 0 and the exponential value),
// which spreads out retries of many deliveries that failed together (a
// forge outage) instead of sending them back in waves.
type Backoff struct {
	Base, Cap time.Duration
	// Rand returns a number in [0, 1); nil means math/rand/v2.Float64.
	Rand func() float64
}

// DefaultBackoff is 2s doubling up to 10 minutes, with full jitter.
func DefaultBackoff() Backoff { return Backoff{Base: 2 * time.Second, Cap: 10 * time.Minute} }

// Delay is the wait before retry number attempt (1 after the first failure).
func (b Backoff) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	ceiling := float64(b.Base) * math.Pow(2, float64(attempt-1))
	if ceiling > float64(b.Cap) || math.IsInf(ceiling, 0) {
		ceiling = float64(b.Cap)
	}
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	return time.Duration(r() * ceiling)
}

// Outcome is what happened to a leased delivery, for metrics.
type Outcome string

// Outcomes reported to Pool.OnOutcome.
const (
	OutcomeDone      Outcome = "done"       // handled and completed
	OutcomeRetry     Outcome = "retry"      // failed, will be retried
	OutcomeDead      Outcome = "dead"       // dead-lettered
	OutcomeReleased  Outcome = "released"   // given back unfinished at shutdown
	OutcomeLeaseLost Outcome = "lease_lost" // another worker took it over
	OutcomeDeferred  Outcome = "deferred"   // put back until a given time (Defer), attempt not counted
)

// errText turns a handler error into what the store keeps: bounded in
// size, valid UTF-8 and without NUL bytes (PostgreSQL text rejects both).
func errText(err error) string {
	const limit = 2000
	s := fmt.Sprint(err)
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}
