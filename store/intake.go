package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
)

// Group commit of intake.
//
// Every accepted delivery is committed together with its intake audit
// record before the webhook is answered. Committed one by one, each
// delivery pays a transaction of its own, and on PostgreSQL each also holds
// the audit chain's table lock across several round trips and a WAL flush:
// that capped intake at about 750/s however many senders waited. Instead
// one goroutine takes every intake waiting at that moment (up to
// maxIntakeBatch) and commits them in one transaction: one multi-row insert
// of the deliveries, one lock of the chain, one multi-row insert of the
// audit records, each chained to the one before in Go. Each caller returns only after that commit, so "202 only once
// durably stored" holds exactly as before.

// maxIntakeBatch bounds one group commit: large enough to absorb a burst of
// 32+ concurrent senders in one or two transactions, small enough that the
// statement stays far below both engines' parameter limits (8 per row).
const maxIntakeBatch = 128

// intakeTimeout bounds one group-commit transaction, so a database that
// stops answering fails the waiting senders (503, they retry) rather than
// holding them forever.
const intakeTimeout = 30 * time.Second

// ErrClosed is returned for intake submitted after Close.
var ErrClosed = errors.New("store closed")

type intakeReq struct {
	del       Delivery
	rec       *audit.Record // prepared (prepareAudit); nil: no audit record
	auditOnly bool          // an AppendAudit: rec (with write, AppendAuditWith), no delivery
	// write, when set, is a worker's small write (a fact, a completion)
	// run inside the batch; op names it in errors. It reports its own
	// outcome through its closure; an error it returns fails the batch.
	write func(context.Context, *sql.Tx) error
	op    string
	res   chan intakeRes
}

type intakeRes struct {
	inserted bool
	rec      audit.Record // the audit record as stored
	err      error
}

// intake is the group-commit goroutine's state.
type intake struct {
	ch     chan *intakeReq
	stop   chan struct{}
	exited chan struct{}
	once   sync.Once
}

func newIntake() *intake {
	return &intake{ch: make(chan *intakeReq, 4*maxIntakeBatch), stop: make(chan struct{}), exited: make(chan struct{})}
}

func (d *DB) startIntake() {
	d.in = newIntake()
	go d.runIntake(d.in)
	d.wr = d.in
	if d.dialect == postgresDialect {
		// The workers' plain writes (facts, completions) have a group
		// commit of their own on PostgreSQL, which commits in parallel
		// with intake's on another connection. They touch neither the
		// deliveries being inserted nor the audit chain, so nothing orders
		// them against intake; sharing one committer made a burst's drain
		// wait on it (busy 85% of the time, each evaluation waiting for
		// three of its commits in turn). SQLite has one writer connection:
		// there they share intake's.
		d.wr = newIntake()
		go d.runIntake(d.wr)
	}
}

func (d *DB) stopIntake() {
	for _, in := range []*intake{d.wr, d.in} {
		if in == nil {
			continue
		}
		in.once.Do(func() { close(in.stop) })
		<-in.exited
	}
}

// submitIntake hands a prepared delivery to the group-commit goroutine and
// waits for its commit.
func (d *DB) submitIntake(ctx context.Context, del Delivery, rec *audit.Record) (bool, error) {
	r := d.submit(ctx, d.in, &intakeReq{del: del, rec: rec, res: make(chan intakeRes, 1)})
	return r.inserted, r.err
}

// submitAudit appends a prepared record through the same group commit, so
// that the workers' records (evaluations, flags) take the chain's lock
// inside the batches instead of contending with them.
func (d *DB) submitAudit(ctx context.Context, rec audit.Record) (audit.Record, error) {
	r := d.submit(ctx, d.in, &intakeReq{rec: &rec, auditOnly: true, res: make(chan intakeRes, 1)})
	return r.rec, r.err
}

// submitWrite runs fn inside the next group commit of the workers' writes
// (d.wr: intake's own on SQLite) and returns once that has committed. The
// workers' writes are grouped rather than each in a transaction of its
// own: on SQLite there is one writer connection, and every worker write
// taken between two group commits made the senders waiting for the next
// one wait longer (p99 of intake at 1,000/s rose from 23 to 60 ms when
// evaluations began writing several facts each); on PostgreSQL each would
// pay a WAL flush of its own. fn runs in the group-commit goroutine,
// possibly again on its own if the batch fails, so it must set (not
// accumulate) what it reports.
func (d *DB) submitWrite(ctx context.Context, op string, fn func(context.Context, *sql.Tx) error) error {
	return d.submit(ctx, d.wr, &intakeReq{write: fn, op: op, res: make(chan intakeRes, 1)}).err
}

// submit hands req to the group commit in and waits for its answer.
func (d *DB) submit(ctx context.Context, in *intake, req *intakeReq) intakeRes {
	select {
	case <-in.stop:
		return intakeRes{err: ErrClosed}
	default:
	}
	select {
	case in.ch <- req:
	case <-in.exited:
		return intakeRes{err: ErrClosed}
	case <-ctx.Done():
		return intakeRes{err: ctx.Err()}
	}
	select {
	case r := <-req.res:
		return r
	case <-in.exited:
		// Exiting drains the channel first, so a request that made it in
		// has its answer by now unless it arrived after the last drain.
		select {
		case r := <-req.res:
			return r
		default:
			return intakeRes{err: ErrClosed}
		}
	case <-ctx.Done():
		// The commit may still happen; the sender sees an error, retries
		// and is then answered as a duplicate. Nothing is lost either way.
		return intakeRes{err: ctx.Err()}
	}
}

func (d *DB) runIntake(in *intake) {
	defer close(in.exited)
	batch := make([]*intakeReq, 0, maxIntakeBatch)
	for {
		var first *intakeReq
		select {
		case first = <-in.ch:
		case <-in.stop:
			// Finish what was submitted before Close.
			for {
				select {
				case r := <-in.ch:
					d.commitIntake(append(batch[:0], r))
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxIntakeBatch {
			select {
			case r := <-in.ch:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		d.commitIntake(batch)
	}
}

// commitIntake commits batch and answers every request in it. If the group
// transaction fails and holds more than one request, each is retried in a
// transaction of its own, so that one bad delivery (say, a byte PostgreSQL
// rejects) cannot fail the others sharing its commit.
func (d *DB) commitIntake(batch []*intakeReq) {
	ctx, cancel := context.WithTimeout(context.Background(), intakeTimeout)
	defer cancel()
	res, err := d.intakeTx(ctx, batch)
	if err != nil && len(batch) > 1 {
		for _, r := range batch {
			one, err := d.intakeTx(ctx, []*intakeReq{r})
			if err != nil {
				r.res <- intakeRes{err: wrapIntake(r, err)}
				continue
			}
			r.res <- one[0]
		}
		return
	}
	for i, r := range batch {
		if err != nil {
			r.res <- intakeRes{err: wrapIntake(r, err)}
			continue
		}
		r.res <- res[i]
	}
}

func wrapIntake(r *intakeReq, err error) error {
	if r.write != nil {
		return fmt.Errorf("%s: %w", r.op, err)
	}
	if r.auditOnly {
		return fmt.Errorf("append %s audit record: %w", r.rec.Kind, err)
	}
	return fmt.Errorf("enqueue %s delivery %s: %w", r.del.Forge, r.del.ID, err)
}

// intakeTx stores batch in one transaction and reports, per request,
// whether its delivery was new and the audit record stored. A delivery ID
// already stored, or repeated earlier in the batch, is not inserted again
// and gets no audit record.
func (d *DB) intakeTx(ctx context.Context, batch []*intakeReq) ([]intakeRes, error) {
	out := make([]intakeRes, len(batch))
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		inserted := make([]bool, len(batch))
		for i := range out {
			out[i] = intakeRes{}
		}
		type id struct{ forge, id string }
		first := make(map[id]int, len(batch))
		rows := make([]int, 0, len(batch))
		for i, r := range batch {
			if r.auditOnly {
				inserted[i] = true
				continue
			}
			if r.write != nil {
				continue
			}
			k := id{r.del.Forge, r.del.ID}
			if _, dup := first[k]; dup {
				continue
			}
			first[k] = i
			rows = append(rows, i)
		}
		now := d.t(d.now())
		var q strings.Builder
		q.WriteString(`INSERT INTO deliveries
			(forge, delivery_id, order_key, kind, payload, received_at, enqueued_at, state, available_at) VALUES `)
		args := make([]any, 0, 8*len(rows))
		for n, i := range rows {
			if n > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, 'pending', ?)")
			del := batch[i].del
			// available_at is the receive time rather than now, so that a
			// caller whose clock is behind the store's still sees the
			// delivery as ready.
			args = append(args, del.Forge, del.ID, del.Key, del.Kind, del.Payload, d.t(del.ReceivedAt), now, d.t(del.ReceivedAt))
		}
		q.WriteString(" ON CONFLICT (forge, delivery_id) DO NOTHING RETURNING forge, delivery_id")
		if len(rows) == 0 {
			if err := d.auditBatch(ctx, tx, batch, inserted, out); err != nil {
				return err
			}
			return runWrites(ctx, tx, batch)
		}
		res, err := d.query(ctx, tx, q.String(), args...)
		if err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
		for res.Next() {
			var k id
			if err := res.Scan(&k.forge, &k.id); err != nil {
				res.Close()
				return fmt.Errorf("insert deliveries: %w", err)
			}
			if i, ok := first[k]; ok {
				inserted[i] = true
			}
		}
		if err := res.Close(); err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
		if err := res.Err(); err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
		if err := d.auditBatch(ctx, tx, batch, inserted, out); err != nil {
			return err
		}
		return runWrites(ctx, tx, batch)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// runWrites runs the batch's worker writes, in the order they were taken.
func runWrites(ctx context.Context, tx *sql.Tx, batch []*intakeReq) error {
	for _, r := range batch {
		if r.write == nil {
			continue
		}
		if err := r.write(ctx, tx); err != nil {
			return wrapIntake(r, err)
		}
	}
	return nil
}

// auditBatch appends the audit records of the requests that need one and
// fills out.
func (d *DB) auditBatch(ctx context.Context, tx *sql.Tx, batch []*intakeReq, inserted []bool, out []intakeRes) error {
	// The audit records follow the order the senders were taken in,
	// each linked to the one before: one lock and one read of the
	// chain's tail for the whole batch.
	locked := false
	recs := make([]audit.Record, 0, len(batch))
	var prevSeq int64
	var prevHash string
	for i, r := range batch {
		out[i].inserted = inserted[i]
		if !inserted[i] || r.rec == nil {
			continue
		}
		if !locked {
			var err error
			if prevSeq, prevHash, err = d.auditTail(ctx, tx); err != nil {
				return err
			}
			locked = true
		}
		rec := d.linkAudit(*r.rec, prevSeq, prevHash)
		out[i].rec = rec
		recs = append(recs, rec)
		prevSeq, prevHash = rec.Seq, rec.Hash
	}
	return d.insertAudit(ctx, tx, recs)
}
