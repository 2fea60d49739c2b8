package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
)

// Delivery states.
const (
	StatePending = "pending" // waiting to be leased (possibly not before AvailableAt)
	StateLeased  = "leased"  // a worker holds it until LeasedUntil
	StateDone    = "done"    // processed
	StateDead    = "dead"    // failed too often; waits for Requeue by hand
)

// Delivery is a webhook delivery to persist before it is acknowledged.
type Delivery struct {
	ID         string // the forge's delivery ID, unique per forge
	Forge      string
	Key        string // ordering key: deliveries of one key run one at a time, in order (e.g. github/acme/app#12)
	Kind       string
	Payload    []byte // the normalized event (JSON)
	ReceivedAt time.Time
}

// LeasedDelivery is a stored delivery with its queue state.
type LeasedDelivery struct {
	Delivery
	Seq         int64 // queue position; identifies the delivery in Complete, Retry, ...
	State       string
	Attempts    int // times leased, including the current lease
	AvailableAt time.Time
	Owner       string
	LeasedUntil time.Time
	LastError   string
	EnqueuedAt  time.Time
	FinishedAt  time.Time
}

// Stats summarizes the queue.
type Stats struct {
	Pending, Leased, Dead, Done int
	// OldestPendingAge is how long the oldest unfinished (pending or
	// leased) delivery has been waiting since it was received; 0 if none.
	OldestPendingAge time.Duration
}

// Enqueue stores d as pending, ready at once. A delivery whose (Forge, ID)
// is already stored, in any state, is not stored again: inserted is false.
// When Enqueue returns nil the delivery is committed.
func (d *DB) Enqueue(ctx context.Context, del Delivery) (inserted bool, err error) {
	return d.EnqueueAudited(ctx, del, nil)
}

// EnqueueAudited is Enqueue that, when the delivery is new, also appends
// rec to the audit trail in the same transaction: the delivery and its
// intake record are committed together or not at all. Concurrent calls
// share one transaction (group commit); each returns after its commit.
func (d *DB) EnqueueAudited(ctx context.Context, del Delivery, rec *audit.Record) (inserted bool, err error) {
	if del.ID == "" || del.Forge == "" || del.Key == "" || del.Kind == "" {
		return false, fmt.Errorf("enqueue delivery %q: id, forge, key and kind are required", del.ID)
	}
	now := d.now()
	if del.ReceivedAt.IsZero() {
		del.ReceivedAt = now
	}
	if del.Payload == nil {
		del.Payload = []byte{}
	}
	if rec != nil {
		prepared, err := d.prepareAudit(*rec)
		if err != nil {
			return false, fmt.Errorf("enqueue %s delivery %s: %w", del.Forge, del.ID, err)
		}
		rec = &prepared
	}
	// Committed by the group-commit goroutine together with whatever other
	// deliveries are waiting (see intake.go); this returns after the commit.
	return d.submitIntake(ctx, del, rec)
}

// leaseCandidates is how many ready deliveries one Lease considers. More
// than one, because on PostgreSQL another replica may be leasing the first.
const leaseCandidates = 16

// readyCond selects deliveries that may be leased now: pending and due, or
// leased with an expired lease (its worker died), and
//   - no earlier delivery of the same key is unfinished (order), and
//   - no later delivery of the same key holds a live lease (no overlap; that
//     can happen when an earlier delivery is committed after a later one, or
//     is requeued by hand).
//
// The redundant state IN terms let SQLite walk the partial indexes in seq
// order and stop at the first hit, instead of sorting the whole backlog for
// every lease. Parameters: now, now, now.
func (d *DB) readyCond() string {
	return `c.state IN ('pending', 'leased')
	AND ((c.state = 'pending' AND c.available_at <= ?) OR (c.state = 'leased' AND c.leased_until <= ?))
	AND NOT EXISTS (SELECT 1 FROM deliveries o
		WHERE o.order_key = c.order_key AND o.seq < c.seq AND ` + d.unfinished("o") + `)
	AND NOT EXISTS (SELECT 1 FROM deliveries o
		WHERE o.order_key = c.order_key AND o.seq > c.seq AND ` + d.leased("o") + ` AND o.leased_until > ?)`
}

// unfinished and leased are the state tests of the per-key lookups (of
// alias t). On SQLite they name the partial indexes' states. On PostgreSQL
// they are spelled so that no partial index can serve them, which leaves
// the planner one sensible path, deliveries_key (order_key, seq). The
// partial indexes' statistics lag: after a burst from an idle queue the
// planner believed them empty, chose to scan deliveries_open once per
// candidate instead of looking the key up, and each lease took 100-150 ms
// where it takes 1-2 ms (the burst's workers sat idle waiting for leases).
func (d *DB) unfinished(t string) string {
	if d.dialect == postgresDialect {
		return t + ".state <> 'done' AND " + t + ".state <> 'dead'"
	}
	return t + ".state IN ('pending', 'leased')"
}

func (d *DB) leased(t string) string {
	if d.dialect == postgresDialect {
		return t + ".state <> 'pending' AND " + t + ".state <> 'done' AND " + t + ".state <> 'dead'"
	}
	return t + ".state = 'leased'"
}

// Lease claims the oldest ready delivery for owner until now+ttl and
// returns it, or nil, nil when nothing is ready. owner must be unique per
// lease (not just per process): Complete and Retry trust it to tell this
// lease from a later one of the same delivery.
//
// On SQLite candidates are found from a reader and each is rechecked and
// claimed, in one statement, in the write transaction, which excludes
// every other writer. On PostgreSQL replicas lease concurrently: for each
// candidate Lease takes a transaction-scoped advisory lock on its ordering
// key without waiting (held: another replica is leasing that key right
// now, skip it), then rechecks and claims the candidate in one statement,
// whose snapshot is taken after the lock. The key lock closes the race in
// which two replicas each see a different delivery of one key as ready;
// locking only the key being claimed leaves the other candidates free for
// other replicas.
func (d *DB) Lease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (*LeasedDelivery, error) {
	ls, err := d.LeaseBatch(ctx, owner, now, ttl, 1, nil)
	if err != nil || len(ls) == 0 {
		return nil, err
	}
	return ls[0], nil
}

// LeaseBatch is Lease that, when the delivery it claims has a kind in
// fold, also returns the deliveries of the same key queued right behind it
// that are ready now and of a kind in fold, up to max in all, oldest first
// (coalescing: the caller processes them as one). It stops at the first
// delivery of the key that is not ready or not foldable, so order per key
// holds. It returns nil, nil when nothing is ready.
//
// Only the first is leased (to owner until now+ttl); the others, its
// followers, are returned pending. The first's lease is theirs too: no
// delivery of a key is ready while an earlier one is unfinished
// (readyCond), so no other lease can take a follower while the first is
// held. CompleteBatch finishes them all; ClaimFollowers leases them when
// they must be finished one by one. Not claiming them saves an UPDATE of
// every follower in every folded lease: the most expensive statement of a
// burst's drain on PostgreSQL (0.8 ms a lease for about 10 rows, and their
// dead index entries, which the next leases walk).
func (d *DB) LeaseBatch(ctx context.Context, owner string, now time.Time, ttl time.Duration, max int, fold []string) ([]*LeasedDelivery, error) {
	if owner == "" || ttl <= 0 {
		return nil, errors.New("lease: owner and a positive ttl are required")
	}
	var pre []candidate
	if d.dialect == sqliteDialect {
		// Looking for work reads the queue, and on SQLite a search inside
		// the write transaction would hold the one writer connection for
		// it, which intake's group commits wait for: search from a reader
		// first, then recheck and claim in a short write transaction.
		var err error
		if pre, err = d.findReady(ctx, d.r, d.t(now), leaseCandidates); err != nil {
			return nil, fmt.Errorf("lease for %s: %w", owner, err)
		}
		if len(pre) == 0 {
			return nil, nil
		}
	}
	var batch []*LeasedDelivery
	var firstContended time.Time
	for {
		contended := false
		err := d.txWith(ctx, d.leasePrelude(), func(tx querier) error {
			batch = nil
			// The caller read its clock before waiting for the write
			// connection. A lease made with that time would end early, by
			// as long as the wait, and if the wait was longer than ttl the
			// lease would be over when made: another worker would take the
			// same delivery while this one runs it (seen with several
			// workers leasing at once, the clock moving during the wait).
			if t := d.now(); t.After(now) {
				now = t
			}
			first, held, err := d.leaseOne(ctx, tx, owner, now, ttl, pre)
			contended = held
			if err != nil || first == nil {
				return err
			}
			batch = append(batch, first)
			if max <= 1 || !slices.Contains(fold, first.Kind) {
				return nil
			}
			// Inside the same transaction (on PostgreSQL under the key's
			// advisory lock): the first is leased when they are read.
			more, err := d.readFollowers(ctx, tx, first, d.t(now), max-1, fold)
			batch = append(batch, more...)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("lease for %s: %w", owner, err)
		}
		// Nothing claimed, but a ready delivery's key was locked by another
		// lease. That lease may itself claim nothing (it was rechecking a
		// delivery it found before it was done): then both would report
		// "nothing ready", both workers would sleep until the next poll,
		// and the delivery would wait with them (seen: every worker asleep
		// with the queue full, TestPoolPerKeyOrdering on PostgreSQL). The
		// other lease ends within a few round trips; look again after it.
		if len(batch) > 0 || !contended {
			return batch, nil
		}
		if firstContended.IsZero() {
			firstContended = time.Now()
		} else if time.Since(firstContended) > leaseContendedWait {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lease for %s: %w", owner, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// leaseContendedWait bounds how long LeaseBatch keeps looking again after
// finding every ready delivery's key locked by other leases: far longer
// than a lease transaction, far shorter than the workers' poll.
const leaseContendedWait = 100 * time.Millisecond

// readFollowers returns, after first, the deliveries of its key that are
// ready now and foldable, stopping at the first one that is not (not due:
// a retry waiting for its backoff; another kind; or leased), oldest first.
func (d *DB) readFollowers(ctx context.Context, tx querier, first *LeasedDelivery, now any, max int, fold []string) ([]*LeasedDelivery, error) {
	if len(fold) == 0 || max <= 0 {
		return nil, nil
	}
	args := []any{first.Key, first.Seq, max, now}
	for _, k := range fold {
		args = append(args, k)
	}
	rows, err := d.query(ctx, tx, `WITH f AS (
			SELECT `+deliveryColumns+` FROM deliveries
			WHERE order_key = ? AND seq > ? AND `+d.unfinished("deliveries")+` ORDER BY seq LIMIT ?)
		SELECT `+deliveryColumns+` FROM f
		WHERE seq < COALESCE((SELECT MIN(seq) FROM f WHERE NOT (state = 'pending' AND available_at <= ?) OR kind NOT IN (?`+strings.Repeat(", ?", len(fold)-1)+`)), 9223372036854775807)
		ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("find deliveries to fold: %w", err)
	}
	return scanDeliveries(rows, "find deliveries to fold")
}

// ClaimFollowers leases to owner, until the lease of first ends, the
// followers LeaseBatch returned with first (see there), so that each can
// be finished on its own (Complete, Retry, ...). It fails with
// ErrLeaseLost, and claims none, unless owner still holds first.
func (d *DB) ClaimFollowers(ctx context.Context, first int64, followers []int64, owner string) error {
	if len(followers) == 0 {
		return nil
	}
	var held bool
	var n int64
	err := d.submitWrite(ctx, fmt.Sprintf("claim %d folded deliveries", len(followers)), func(ctx context.Context, tx querier) error {
		held, n = false, 0
		var until dbTime
		err := d.queryRow(ctx, tx, "SELECT leased_until FROM deliveries WHERE seq = ? AND state = 'leased' AND lease_owner = ?", first, owner).Scan(&until)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		held = true
		args := []any{owner, d.t(until.T)}
		for _, s := range followers {
			args = append(args, s)
		}
		res, err := d.exec(ctx, tx, "UPDATE deliveries SET state = 'leased', lease_owner = ?, leased_until = ?, attempts = attempts + 1 WHERE seq IN (?"+
			strings.Repeat(", ?", len(followers)-1)+") AND state = 'pending'", args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return err
	}
	if !held {
		return fmt.Errorf("claim deliveries folded with %d: %d no longer leased by %s: %w", first, first, owner, ErrLeaseLost)
	}
	if int(n) != len(followers) {
		return fmt.Errorf("claim deliveries folded with %d: %d of %d no longer pending: %w", first, len(followers)-int(n), len(followers), ErrLeaseLost)
	}
	return nil
}

// leaseOne claims the oldest ready delivery within tx (see Lease). On
// SQLite, pre holds the candidates LeaseBatch found before the transaction
// began; on PostgreSQL they are found here.
//
// contended reports that a candidate was skipped because another
// transaction held its key's lock (PostgreSQL).
func (d *DB) leaseOne(ctx context.Context, tx querier, owner string, now time.Time, ttl time.Duration, pre []candidate) (ld *LeasedDelivery, contended bool, err error) {
	nowV := d.t(now)
	cands := pre
	if d.dialect == postgresDialect {
		if cands, err = d.findReady(ctx, tx, nowV, leaseCandidates); err != nil {
			return nil, false, err
		}
	}
	for _, c := range cands {
		if d.dialect == postgresDialect {
			got, err := d.lockKey(ctx, tx, c.key)
			if err != nil {
				return nil, false, err
			}
			if !got {
				contended = true
				continue
			}
		}
		leased, err := d.claimReady(ctx, tx, c.seq, owner, nowV, now.Add(ttl))
		if err != nil {
			return nil, false, err
		}
		if leased != nil {
			return leased, false, nil
		}
		// Taken, or no longer ready, since it was found.
	}
	return nil, contended, nil // none, or all taken just now
}

// leasePrelude runs at the start of every lease transaction, in BEGIN's
// round trip.
//
// On PostgreSQL it allows index scans only, for the lease's queries. Each
// lease and completion updates indexed columns, so during a burst the
// deliveries indexes fill with dead entries faster than autovacuum
// (naptime 1 min) removes them, and the statistics of the table that was
// idle before the burst say it is almost empty. Planned with those, two
// plans cost a burst most of its time (both seen with EXPLAIN ANALYZE and
// auto_explain mid-burst):
//   - a bitmap scan of the whole due range plus a sort, instead of the
//     ordered index scan that stops after the window: it visits every dead
//     entry on every lease, and unlike an index scan never marks them dead
//     for the next one (6-9 ms, 1.0 ms with the index scan);
//   - the generic plan of the prepared statement, made once while the
//     table was nearly empty and kept for the connection's life, which
//     tests "no later delivery of the key is leased" with a sequential scan
//     per candidate (25-37 ms per lease with 8 workers; the leases are one
//     at a time, so the workers idled).
//
// set_config(..., true) lasts until the transaction ends.
func (d *DB) leasePrelude() string {
	if d.dialect != postgresDialect {
		return ""
	}
	return "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true)"
}

// findReady returns up to limit ready deliveries, in lease order (see
// dueCond), from the first window of due deliveries that holds any.
func (d *DB) findReady(ctx context.Context, q querier, now any, limit int) ([]candidate, error) {
	after := cursor{at: d.t(time.Time{})}
	for {
		cands, err := d.readyCandidates(ctx, q, after, now, limit)
		if err != nil || len(cands) > 0 {
			return cands, err
		}
		// Nothing ready among the oldest leaseWindow due deliveries (e.g.
		// a long backlog of one key): slide on, past the window's last.
		var lastAt dbTime
		var lastSeq int64
		err = d.queryRow(ctx, q, `SELECT available_at, seq FROM deliveries
			WHERE state IN ('pending', 'leased') AND (available_at, seq) > (?, ?) AND available_at <= ? AND `+dueCond+`
			ORDER BY available_at, seq LIMIT 1 OFFSET ?`,
			after.at, after.seq, now, now, now, leaseWindow-1).Scan(&lastAt, &lastSeq)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil // the window was the last one
		}
		if err != nil {
			return nil, fmt.Errorf("find ready deliveries: %w", err)
		}
		after = cursor{at: d.t(lastAt.T), seq: lastSeq}
	}
}

// cursor is a position in the lease order (available_at, seq).
type cursor struct {
	at  any
	seq int64
}

// leaseWindow bounds how many due deliveries one lease query looks at.
// Without it, a planner without fresh statistics (PostgreSQL right after a
// burst, before autovacuum analyzes) may evaluate the ordering checks for
// the whole backlog and sort it on every lease.
const leaseWindow = 256

// dueCond selects deliveries whose time has come: pending and available,
// or leased with an expired lease. Parameters: now, now.
//
// The lease order is (available_at, seq), not seq alone: a delivery
// waiting (a retry's backoff, a spent rate limit) has its available_at in
// the future, so it sorts after every due one and the scan of
// deliveries_open_due never walks past it. In seq order, once an
// installation's budget was spent, every lease walked all the deliveries
// deferred until the reset: a sixth of the server's CPU at 1,000/s. For
// new deliveries available_at is the receive time, so the order is still
// arrival order; per key, order is by seq (readyCond). Every due delivery
// has available_at <= now (a leased one was available when it was
// claimed), which bounds the index range: the scan stops at the first
// delivery still waiting.
const dueCond = `((state = 'pending' AND available_at <= ?) OR (state = 'leased' AND leased_until <= ?))`

type candidate struct {
	seq int64
	key string
}

// readyCandidates returns up to limit ready deliveries, in lease order,
// among the leaseWindow first due ones after the cursor.
func (d *DB) readyCandidates(ctx context.Context, q querier, after cursor, now any, limit int) ([]candidate, error) {
	rows, err := d.query(ctx, q, `SELECT c.seq, c.order_key FROM (
			SELECT seq, order_key, state, available_at, leased_until FROM deliveries
			WHERE state IN ('pending', 'leased') AND (available_at, seq) > (?, ?) AND available_at <= ? AND `+dueCond+`
			ORDER BY available_at, seq LIMIT ?) c
		WHERE `+d.readyCond()+` ORDER BY c.available_at, c.seq LIMIT ?`, after.at, after.seq, now, now, now, leaseWindow, now, now, now, limit)
	if err != nil {
		return nil, fmt.Errorf("find ready deliveries: %w", err)
	}
	defer rows.Close()
	var cands []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.seq, &c.key); err != nil {
			return nil, fmt.Errorf("find ready deliveries: %w", err)
		}
		cands = append(cands, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find ready deliveries: %w", err)
	}
	return cands, nil
}

// lockKey takes the transaction-scoped advisory lock of an ordering key on
// PostgreSQL, without waiting; false: another transaction holds it.
//
// Advisory locks are database-wide: the lock ID combines the OID of this
// schema's deliveries table (high 32 bits) with the key's hash, so
// deployments or tests in other schemas of the same database never contend
// for it.
func (d *DB) lockKey(ctx context.Context, tx querier, key string) (bool, error) {
	var got bool
	if err := d.queryRow(ctx, tx, `SELECT pg_try_advisory_xact_lock(
			('deliveries'::regclass::oid::bigint << 32) | (hashtext(?)::bigint & 4294967295))`,
		key).Scan(&got); err != nil {
		return false, fmt.Errorf("lock key %s: %w", key, err)
	}
	return got, nil
}

// claimReady leases candidate seq if it is still ready (readyCond), and
// returns it; nil if it is not. The candidate was found before: on SQLite
// from a reader, before the write transaction began; on PostgreSQL before
// its key's lock was taken. This statement starts after both, so on
// PostgreSQL its snapshot is fresh: it sees every lease of the key that
// committed before the lock was granted. (A row being updated by another
// transaction, which on PostgreSQL can only be its lease's owner finishing
// it, is waited for and rechecked.)
func (d *DB) claimReady(ctx context.Context, tx querier, seq int64, owner string, now any, until time.Time) (*LeasedDelivery, error) {
	// attempts counts leases, not failures: a delivery that crashes its
	// worker every time must still end up dead rather than loop forever.
	rows, err := d.query(ctx, tx, `UPDATE deliveries AS c SET state = 'leased', lease_owner = ?, leased_until = ?, attempts = attempts + 1
		WHERE c.seq = ? AND `+d.readyCond()+`
		RETURNING `+deliveryColumns, owner, d.t(until), seq, now, now, now)
	if err != nil {
		return nil, fmt.Errorf("claim delivery %d: %w", seq, err)
	}
	out, err := scanDeliveries(rows, fmt.Sprintf("claim delivery %d", seq))
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out[0], nil
}

const deliveryColumns = `seq, forge, delivery_id, order_key, kind, payload, received_at, enqueued_at,
	state, attempts, available_at, lease_owner, leased_until, last_error, finished_at`

// scanDeliveries reads delivery rows (deliveryColumns, from a SELECT or an
// UPDATE ... RETURNING), oldest first, and closes them.
func scanDeliveries(rows *sql.Rows, what string) ([]*LeasedDelivery, error) {
	defer rows.Close()
	var out []*LeasedDelivery
	for rows.Next() {
		ld, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, ld)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// RETURNING follows no order.
	slices.SortFunc(out, func(a, b *LeasedDelivery) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

func scanDelivery(rows *sql.Rows) (*LeasedDelivery, error) {
	var ld LeasedDelivery
	var received, enqueued, available, until, finished dbTime
	if err := rows.Scan(&ld.Seq, &ld.Forge, &ld.ID, &ld.Key, &ld.Kind, &ld.Payload, &received, &enqueued,
		&ld.State, &ld.Attempts, &available, &ld.Owner, &until, &ld.LastError, &finished); err != nil {
		return nil, err
	}
	ld.ReceivedAt, ld.EnqueuedAt, ld.AvailableAt = received.T, enqueued.T, available.T
	ld.LeasedUntil, ld.FinishedAt = until.T, finished.T
	return &ld, nil
}

// leasedUpdate runs an UPDATE guarded by the lease (state leased, this
// owner) and maps "no row" to ErrLeaseLost.
func (d *DB) leasedUpdate(ctx context.Context, op string, seq int64, owner, set string, args ...any) error {
	args = append(args, seq, owner)
	var n int64
	err := d.submitWrite(ctx, fmt.Sprintf("%s delivery %d", op, seq), func(ctx context.Context, tx querier) error {
		res, err := d.exec(ctx, tx, "UPDATE deliveries SET "+set+
			" WHERE seq = ? AND state = 'leased' AND lease_owner = ?", args...)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("rows affected: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s delivery %d by %s: %w", op, seq, owner, ErrLeaseLost)
	}
	return nil
}

// Complete marks a leased delivery done. It fails with ErrLeaseLost if
// owner no longer holds the lease. A lease that expired but was not taken
// over can still be completed: the work was done.
func (d *DB) Complete(ctx context.Context, seq int64, owner string) error {
	return d.leasedUpdate(ctx, "complete", seq, owner,
		"state = 'done', finished_at = ?, leased_until = NULL, last_error = ''", d.t(d.now()))
}

// Retry puts a leased delivery back to pending, not before at, recording
// errMsg. The attempt was already counted by Lease.
func (d *DB) Retry(ctx context.Context, seq int64, owner string, at time.Time, errMsg string) error {
	return d.leasedUpdate(ctx, "retry", seq, owner,
		"state = 'pending', available_at = ?, leased_until = NULL, last_error = ?", d.t(at), errMsg)
}

// Release gives a leased delivery back without counting the attempt (a
// worker shutting down before it could finish), ready at at.
func (d *DB) Release(ctx context.Context, seq int64, owner string, at time.Time) error {
	return d.leasedUpdate(ctx, "release", seq, owner,
		"state = 'pending', available_at = ?, leased_until = NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END",
		d.t(at))
}

// RenewLease extends a lease that owner still holds to until.
func (d *DB) RenewLease(ctx context.Context, seq int64, owner string, until time.Time) error {
	return d.leasedUpdate(ctx, "renew lease of", seq, owner, "leased_until = ?", d.t(until))
}

// DeadLetter parks a leased delivery as dead with errMsg; it stays there
// until Requeue.
func (d *DB) DeadLetter(ctx context.Context, seq int64, owner, errMsg string) error {
	return d.leasedUpdate(ctx, "dead-letter", seq, owner,
		"state = 'dead', finished_at = ?, leased_until = NULL, last_error = ?", d.t(d.now()), errMsg)
}

// Requeue makes a dead delivery pending again, ready now, with a fresh
// attempt budget (manual retry). It fails with ErrNotFound or ErrWrongState.
func (d *DB) Requeue(ctx context.Context, seq int64) error {
	res, err := d.exec(ctx, d.w, `UPDATE deliveries SET state = 'pending', available_at = ?, attempts = 0,
		lease_owner = '', finished_at = NULL WHERE seq = ? AND state = 'dead'`, d.t(d.now()), seq)
	if err != nil {
		return fmt.Errorf("requeue delivery %d: %w", seq, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("requeue delivery %d: rows affected: %w", seq, err)
	} else if n == 1 {
		return nil
	}
	var state string
	err = d.queryRow(ctx, d.r, "SELECT state FROM deliveries WHERE seq = ?", seq).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("requeue delivery %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("requeue delivery %d: %w", seq, err)
	}
	return fmt.Errorf("requeue delivery %d: it is %s, not dead: %w", seq, state, ErrWrongState)
}

// GetDelivery returns one delivery by its queue seq, or ErrNotFound.
func (d *DB) GetDelivery(ctx context.Context, seq int64) (*LeasedDelivery, error) {
	rows, err := d.query(ctx, d.r, "SELECT "+deliveryColumns+" FROM deliveries WHERE seq = ?", seq)
	if err != nil {
		return nil, fmt.Errorf("read delivery %d: %w", seq, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read delivery %d: %w", seq, err)
		}
		return nil, fmt.Errorf("delivery %d: %w", seq, ErrNotFound)
	}
	ld, err := scanDelivery(rows)
	if err != nil {
		return nil, fmt.Errorf("read delivery %d: %w", seq, err)
	}
	return ld, nil
}

// ListDeliveries returns up to limit deliveries in state (all states if
// ""): oldest first for pending and leased (the order they will run),
// newest first otherwise (recent failures matter most). limit <= 0 means
// 100.
func (d *DB) ListDeliveries(ctx context.Context, state string, limit int) ([]LeasedDelivery, error) {
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT " + deliveryColumns + " FROM deliveries"
	var args []any
	order := " ORDER BY seq DESC"
	switch state {
	case "":
	case StatePending, StateLeased:
		// The IN term selects the partial index (see the migration).
		q += " WHERE state IN ('pending', 'leased') AND state = ?"
		args = append(args, state)
		order = " ORDER BY seq"
	default:
		q += " WHERE state IN ('done', 'dead') AND state = ?"
		args = append(args, state)
	}
	q += order + " LIMIT ?"
	args = append(args, limit)
	rows, err := d.query(ctx, d.r, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s deliveries: %w", state, err)
	}
	defer rows.Close()
	var out []LeasedDelivery
	for rows.Next() {
		ld, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s deliveries: %w", state, err)
		}
		out = append(out, *ld)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s deliveries: %w", state, err)
	}
	return out, nil
}

// QueueStats counts deliveries per state; OldestPendingAge is measured at
// now.
func (d *DB) QueueStats(ctx context.Context, now time.Time) (Stats, error) {
	var s Stats
	// Two index-only counts instead of one GROUP BY, so that the partial
	// indexes are used.
	rows, err := d.query(ctx, d.r, `SELECT state, COUNT(*) FROM deliveries WHERE state IN ('pending', 'leased') GROUP BY state
		UNION ALL SELECT state, COUNT(*) FROM deliveries WHERE state IN ('done', 'dead') GROUP BY state`)
	if err != nil {
		return s, fmt.Errorf("queue stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return s, fmt.Errorf("queue stats: %w", err)
		}
		switch state {
		case StatePending:
			s.Pending = n
		case StateLeased:
			s.Leased = n
		case StateDead:
			s.Dead = n
		case StateDone:
			s.Done = n
		}
	}
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("queue stats: %w", err)
	}
	var oldest dbTime
	if err := d.queryRow(ctx, d.r,
		"SELECT MIN(received_at) FROM deliveries WHERE state IN ('pending', 'leased')").Scan(&oldest); err != nil {
		return s, fmt.Errorf("queue stats: oldest pending: %w", err)
	}
	if !oldest.T.IsZero() && now.After(oldest.T) {
		s.OldestPendingAge = now.Sub(oldest.T)
	}
	return s, nil
}

// PurgeDone deletes done deliveries finished before before and returns how
// many. Their IDs are then forgotten: a redelivery older than the retention
// would be processed again (harmless, processing is idempotent).
func (d *DB) PurgeDone(ctx context.Context, before time.Time) (int64, error) {
	res, err := d.exec(ctx, d.w, "DELETE FROM deliveries WHERE state IN ('done', 'dead') AND state = 'done' AND finished_at < ?", d.t(before))
	if err != nil {
		return 0, fmt.Errorf("purge done deliveries: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge done deliveries: rows affected: %w", err)
	}
	return n, nil
}

// ReclaimLeases makes every leased delivery pending again, ready at now,
// and returns how many. It is for SQLite at server start: one process owns
// the SQLite file, so a lease still held when it starts belongs to a process
// that died (kill -9, power loss) and waiting for it to expire (the lease
// TTL) would only delay the work. The attempt stays counted, so a delivery
// that keeps killing its process still ends up dead-lettered. On
// PostgreSQL several replicas share the queue and a lease may belong to a
// live one: nothing is reclaimed and leases run out as usual.
func (d *DB) ReclaimLeases(ctx context.Context, now time.Time) (int64, error) {
	if d.dialect != sqliteDialect {
		return 0, nil
	}
	res, err := d.exec(ctx, d.w, `UPDATE deliveries SET state = 'pending', available_at = ?, leased_until = NULL,
		last_error = 'reclaimed at start: the process holding the lease had died'
		WHERE state IN ('pending', 'leased') AND state = 'leased'`, d.t(now))
	if err != nil {
		return 0, fmt.Errorf("reclaim leases: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("reclaim leases: rows affected: %w", err)
	}
	return n, nil
}

// CompleteBatch is Complete for a folded batch: seqs[0] leased by owner,
// the others the followers LeaseBatch returned with it, pending (or leased
// to owner by ClaimFollowers). One transaction: if owner no longer holds
// seqs[0] it fails with ErrLeaseLost and completes none.
func (d *DB) CompleteBatch(ctx context.Context, seqs []int64, owner string) error {
	if len(seqs) == 0 {
		return nil
	}
	set := "UPDATE deliveries SET state = 'done', finished_at = ?, leased_until = NULL, last_error = '' WHERE "
	now := d.t(d.now())
	args := []any{now}
	for _, s := range seqs[1:] {
		args = append(args, s)
	}
	args = append(args, owner)
	var held bool
	var n int64
	err := d.submitWrite(ctx, fmt.Sprintf("complete %d deliveries", len(seqs)), func(ctx context.Context, tx querier) error {
		held, n = false, 0
		res, err := d.exec(ctx, tx, set+"seq = ? AND state = 'leased' AND lease_owner = ?", now, seqs[0], owner)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		held = true
		if len(seqs) == 1 {
			return nil
		}
		res, err = d.exec(ctx, tx, set+"seq IN (?"+strings.Repeat(", ?", len(seqs)-2)+
			") AND (state = 'pending' OR (state = 'leased' AND lease_owner = ?))", args...)
		if err != nil {
			return err
		}
		more, err := res.RowsAffected()
		n += more
		return err
	})
	if err != nil {
		return err
	}
	if !held {
		return fmt.Errorf("complete %d deliveries by %s: %d no longer leased: %w", len(seqs), owner, seqs[0], ErrLeaseLost)
	}
	if int(n) != len(seqs) {
		return fmt.Errorf("complete %d deliveries by %s: %d no longer leased or pending: %w", len(seqs), owner, len(seqs)-int(n), ErrLeaseLost)
	}
	return nil
}
