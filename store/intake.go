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
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
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
	write func(context.Context, querier) error
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
func (d *DB) submitWrite(ctx context.Context, op string, fn func(context.Context, querier) error) error {
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
	type id struct{ forge, id string }
	first := make(map[id]int, len(batch))
	rows := make([]int, 0, len(batch))
	audits := false
	for i, r := range batch {
		audits = audits || r.rec != nil
		if r.auditOnly || r.write != nil {
			continue
		}
		k := id{r.del.Forge, r.del.ID}
		if _, dup := first[k]; dup {
			continue
		}
		first[k] = i
		rows = append(rows, i)
	}
	out := make([]intakeRes, len(batch))
	err := d.groupTx(ctx, audits, func(q querier) error {
		inserted := make([]bool, len(batch))
		for i, r := range batch {
			out[i] = intakeRes{}
			inserted[i] = r.auditOnly
		}
		tail := func() (int64, string, error) { return d.auditTail(ctx, q) }
		if len(rows) > 0 {
			ins, err := d.insertDeliveries(ctx, q, batch, rows, audits)
			if err != nil {
				return fmt.Errorf("insert deliveries: %w", err)
			}
			for _, k := range ins.keys {
				if i, ok := first[id{k[0], k[1]}]; ok {
					inserted[i] = true
				}
			}
			if ins.tailRead {
				tail = func() (int64, string, error) { return ins.tailSeq, ins.tailHash, d.checkTail(ins.tailHash) }
			}
		} else if d.dialect == postgresDialect && audits {
			// groupTx took the chain's lock already.
			tail = func() (int64, string, error) { return d.readTail(ctx, q) }
		}
		if err := d.auditBatch(ctx, q, batch, inserted, out, tail); err != nil {
			return err
		}
		return runWrites(ctx, q, batch)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// groupTx runs fn in a transaction on the write connection. On PostgreSQL
// it begins, and when lockAudit is set also locks the audit chain, in one
// round trip; database/sql's BeginTx would spend one on BEGIN alone. Under
// a closed-loop burst every round trip waits for the database to get a CPU
// the senders share: intake went from 1,178-1,205/s to 1,332-1,389/s when
// its group commit went from six round trips to four (docs/benchmarks.md).
func (d *DB) groupTx(ctx context.Context, lockAudit bool, fn func(querier) error) error {
	prelude := ""
	if lockAudit && d.dialect == postgresDialect {
		// On SQLite the write transaction already excludes every other
		// writer.
		prelude = lockAuditSQL
	}
	return d.txWith(ctx, prelude, fn)
}

// txWith runs fn in a transaction on the write connection. On PostgreSQL
// the statement prelude (without arguments; "" for none) runs in BEGIN's
// round trip. On SQLite prelude must be "".
func (d *DB) txWith(ctx context.Context, prelude string, fn func(querier) error) error {
	if d.dialect != postgresDialect {
		if prelude != "" {
			return errors.New("begin: a transaction prelude is for PostgreSQL only")
		}
		return d.inTx(ctx, func(tx *sql.Tx) error { return fn(tx) })
	}
	conn, err := d.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// A connection given back in a transaction (say, ROLLBACK failed too)
	// is discarded by pgx's ResetSession, not reused.
	defer conn.Close()
	begin := "BEGIN"
	if prelude != "" {
		begin = "BEGIN; " + prelude
	}
	// No arguments: pgx sends it with the simple protocol, both
	// statements in one message.
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(conn); err != nil {
		_, _ = conn.ExecContext(ctx, "ROLLBACK") // fn's error is the one that matters
		return err
	}
	return conn.Raw(func(dc any) error {
		// PostgreSQL answers COMMIT of a failed transaction with ROLLBACK,
		// not an error; pgx's own Commit checks the tag, and so must this.
		tag, err := dc.(*stdlib.Conn).Conn().Exec(ctx, "COMMIT")
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		if tag.String() == "ROLLBACK" {
			return fmt.Errorf("commit: %w", pgx.ErrTxCommitRollback)
		}
		return nil
	})
}

// insertedDeliveries is what insertDeliveries learned: the (forge, delivery ID) of
// each new delivery, and on PostgreSQL the chain's tail, read in the same
// statement.
type insertedDeliveries struct {
	keys     [][2]string
	tailRead bool
	tailSeq  int64
	tailHash string
}

// insertDeliveriesPG inserts the deliveries in one statement whose text
// does not depend on the batch's size (one prepared statement, not one per
// size), and, when the chain is locked, returns the chain's tail from the
// same statement: its snapshot is taken after the lock, so no record
// appended by another replica is missed.
const insertDeliveriesPG = `WITH ins AS (
	INSERT INTO deliveries (forge, delivery_id, order_key, kind, payload, received_at, enqueued_at, state, available_at)
	SELECT u.forge, u.id, u.key, u.kind, u.payload, u.received, ?, 'pending', u.received
	FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::bytea[], ?::timestamptz[]) WITH ORDINALITY
		AS u(forge, id, key, kind, payload, received, n)
	ORDER BY u.n
	ON CONFLICT (forge, delivery_id) DO NOTHING
	RETURNING forge, delivery_id)
SELECT false, forge, delivery_id, 0::bigint, '' FROM ins`

const insertDeliveriesTailPG = insertDeliveriesPG + `
UNION ALL
(SELECT true, '', '', seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1)`

func (d *DB) insertDeliveries(ctx context.Context, q querier, batch []*intakeReq, rows []int, locked bool) (insertedDeliveries, error) {
	var out insertedDeliveries
	now := d.t(d.now())
	var res *sql.Rows
	var err error
	if d.dialect == postgresDialect {
		n := len(rows)
		forges, ids, keys, kinds := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		payloads, received := make([][]byte, n), make([]time.Time, n)
		for j, i := range rows {
			del := batch[i].del
			forges[j], ids[j], keys[j], kinds[j] = del.Forge, del.ID, del.Key, del.Kind
			payloads[j], received[j] = del.Payload, normTime(del.ReceivedAt)
		}
		query := insertDeliveriesPG
		if locked {
			query = insertDeliveriesTailPG
		}
		// available_at is the receive time rather than now, so that a
		// caller whose clock is behind the store's still sees the delivery
		// as ready.
		res, err = d.query(ctx, q, query, now, forges, ids, keys, kinds, payloads, received)
	} else {
		var b strings.Builder
		b.WriteString(`INSERT INTO deliveries
			(forge, delivery_id, order_key, kind, payload, received_at, enqueued_at, state, available_at) VALUES `)
		args := make([]any, 0, 8*len(rows))
		for n, i := range rows {
			if n > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, 'pending', ?)")
			del := batch[i].del
			args = append(args, del.Forge, del.ID, del.Key, del.Kind, del.Payload, d.t(del.ReceivedAt), now, d.t(del.ReceivedAt))
		}
		b.WriteString(" ON CONFLICT (forge, delivery_id) DO NOTHING RETURNING false, forge, delivery_id, 0, ''")
		res, err = d.query(ctx, q, b.String(), args...)
	}
	if err != nil {
		return out, err
	}
	defer res.Close()
	for res.Next() {
		var isTail bool
		var forge, id, hash string
		var seq int64
		if err := res.Scan(&isTail, &forge, &id, &seq, &hash); err != nil {
			return out, err
		}
		if isTail {
			out.tailRead, out.tailSeq, out.tailHash = true, seq, hash
			continue
		}
		out.keys = append(out.keys, [2]string{forge, id})
	}
	if err := res.Err(); err != nil {
		return out, err
	}
	if locked && d.dialect == postgresDialect && !out.tailRead {
		// The chain is empty.
		out.tailRead, out.tailHash = true, audit.Genesis
	}
	return out, res.Close()
}

// runWrites runs the batch's worker writes, in the order they were taken.
func runWrites(ctx context.Context, q querier, batch []*intakeReq) error {
	for _, r := range batch {
		if r.write == nil {
			continue
		}
		if err := r.write(ctx, q); err != nil {
			return wrapIntake(r, err)
		}
	}
	return nil
}

// auditBatch links the audit records of the requests that need one, fills
// out and inserts them. The records follow the order the senders were
// taken in, each linked to the one before: one lock and one read of the
// chain's tail (tail, called at most once) for the whole batch.
func (d *DB) auditBatch(ctx context.Context, q querier, batch []*intakeReq, inserted []bool, out []intakeRes, tail func() (int64, string, error)) error {
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
			if prevSeq, prevHash, err = tail(); err != nil {
				return err
			}
			locked = true
		}
		rec := d.linkAudit(*r.rec, prevSeq, prevHash)
		out[i].rec = rec
		recs = append(recs, rec)
		prevSeq, prevHash = rec.Seq, rec.Hash
	}
	return d.insertAudit(ctx, q, recs)
}
