package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
)

// AppendAudit appends rec to the audit trail and returns it as stored: Seq
// is the previous record's + 1, Time is the store clock's now if rec.Time
// is zero (always truncated to microseconds, UTC, which both engines store
// exactly), Data is canonical JSON, PrevHash is the previous record's Hash
// (audit.Genesis for the first) and Hash is the store's audit.Chain hash of
// the result (keyed when opened WithAuditChain).
//
// Appends are serialized so the chain never forks: on SQLite by the single
// write transaction, on PostgreSQL by an EXCLUSIVE table lock (which still
// lets readers through) held for the few statements of the transaction.
// That also holds across several processes sharing the database.
//
// Appends share the group commit of intake (intake.go): concurrent appends
// and deliveries are chained in one transaction under one lock.
func (d *DB) AppendAudit(ctx context.Context, rec audit.Record) (audit.Record, error) {
	prepared, err := d.prepareAudit(rec)
	if err != nil {
		return audit.Record{}, fmt.Errorf("append %s audit record: %w", rec.Kind, err)
	}
	return d.submitAudit(ctx, prepared)
}

// AppendAuditWith appends rec as AppendAudit does and writes facts as
// PutFacts does, in the same commit: either both are stored or neither. An
// evaluation ends with its audit record and the facts it learned from
// publishing (the report's ID); one commit for both is one wait less per
// evaluation, and the group commit was the drain's bottleneck.
func (d *DB) AppendAuditWith(ctx context.Context, rec audit.Record, facts map[string]map[string]string) (audit.Record, error) {
	prepared, err := d.prepareAudit(rec)
	if err != nil {
		return audit.Record{}, fmt.Errorf("append %s audit record: %w", rec.Kind, err)
	}
	n, write := d.factsWrite(facts)
	if n == 0 {
		return d.submitAudit(ctx, prepared)
	}
	r := d.submit(ctx, d.in, &intakeReq{rec: &prepared, auditOnly: true, write: write,
		op: fmt.Sprintf("append %s audit record and put %d facts", rec.Kind, n), res: make(chan intakeRes, 1)})
	return r.rec, r.err
}

// prepareAudit checks rec and fixes its time and data to what is stored,
// before any lock is taken (a bad record fails alone, not a whole batch).
func (d *DB) prepareAudit(rec audit.Record) (audit.Record, error) {
	if rec.Kind == "" {
		return audit.Record{}, errors.New("append audit record: kind is empty")
	}
	if rec.Time.IsZero() {
		rec.Time = d.now()
	}
	rec.Time = normTime(rec.Time)
	data, err := audit.CanonicalData(rec.Data)
	if err != nil {
		return audit.Record{}, fmt.Errorf("append audit record: %w", err)
	}
	rec.Data = data
	return rec, nil
}

// lockAuditSQL takes the chain's lock on PostgreSQL until the transaction
// ends. SQLite's write transaction already excludes other writers.
const lockAuditSQL = "LOCK TABLE audit_records IN EXCLUSIVE MODE"

// auditTail locks the chain (PostgreSQL) and returns the last record's seq
// and hash.
func (d *DB) auditTail(ctx context.Context, q querier) (int64, string, error) {
	if d.dialect == postgresDialect {
		if _, err := q.ExecContext(ctx, lockAuditSQL); err != nil {
			return 0, "", fmt.Errorf("lock audit_records: %w", err)
		}
	}
	return d.readTail(ctx, q)
}

// readTail returns the last record's seq and hash; the caller holds the
// chain.
func (d *DB) readTail(ctx context.Context, q querier) (int64, string, error) {
	var prevSeq int64
	prevHash := audit.Genesis
	err := d.queryRow(ctx, q, "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1").Scan(&prevSeq, &prevHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("read last audit record: %w", err)
	}
	return prevSeq, prevHash, d.checkTail(prevHash)
}

// checkTail refuses to append unkeyed records after keyed ones: an
// unkeyed record after keyed ones is what an attacker's re-hash looks
// like, and verification would reject the trail.
func (d *DB) checkTail(prevHash string) error {
	if d.chain == nil && audit.IsKeyed(prevHash) {
		return fmt.Errorf("append audit record: %w: the trail is keyed; open the store with the audit key", audit.ErrKeyRequired)
	}
	return nil
}

// appendAuditTx links rec to the last record and inserts it within tx.
func (d *DB) appendAuditTx(ctx context.Context, tx *sql.Tx, rec audit.Record) (audit.Record, error) {
	rec, err := d.prepareAudit(rec)
	if err != nil {
		return audit.Record{}, err
	}
	prevSeq, prevHash, err := d.auditTail(ctx, tx)
	if err != nil {
		return audit.Record{}, err
	}
	out := d.linkAudit(rec, prevSeq, prevHash)
	if err := d.insertAudit(ctx, tx, []audit.Record{out}); err != nil {
		return audit.Record{}, err
	}
	return out, nil
}

// linkAudit chains a prepared rec after (prevSeq, prevHash) with the
// store's chain (keyed when opened WithAuditChain). It is the one place the
// store chains a record, for single appends and group commits alike.
func (d *DB) linkAudit(rec audit.Record, prevSeq int64, prevHash string) audit.Record {
	return d.chain.Link(rec, prevSeq, prevHash)
}

// insertAudit inserts linked records within tx, which must hold the chain
// (auditTail), in one statement.
// insertAuditPG appends records in one statement whose text does not
// depend on how many there are, like insertDeliveriesPG: one prepared
// statement per connection instead of one per batch size, and 13 array
// parameters instead of 13 per record.
const insertAuditPG = `INSERT INTO audit_records
	(seq, time, kind, forge, repo, change, head_sha, delivery_id, policy_digest, verdict, data, prev_hash, hash)
	SELECT * FROM unnest(?::bigint[], ?::timestamptz[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[],
		?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])`

func (d *DB) insertAudit(ctx context.Context, tx querier, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if d.dialect == postgresDialect {
		n := len(recs)
		seqs, changes := make([]int64, n), make([]int64, n)
		times := make([]time.Time, n)
		kinds, forges, repos, heads, deliveries := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		digests, verdicts, prevs, hashes := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		data := make([]*string, n) // NULL when a record has none
		for i, r := range recs {
			seqs[i], times[i], kinds[i], forges[i], repos[i], changes[i] = r.Seq, normTime(r.Time), r.Kind, r.Forge, r.Repo, int64(r.Change)
			heads[i], deliveries[i], digests[i], verdicts[i] = r.HeadSHA, r.DeliveryID, r.PolicyDigest, r.Verdict
			prevs[i], hashes[i] = r.PrevHash, r.Hash
			if len(r.Data) > 0 {
				s := string(r.Data)
				data[i] = &s
			}
		}
		if _, err := d.exec(ctx, tx, insertAuditPG, seqs, times, kinds, forges, repos, changes, heads, deliveries,
			digests, verdicts, data, prevs, hashes); err != nil {
			return fmt.Errorf("insert audit records %d-%d: %w", recs[0].Seq, recs[len(recs)-1].Seq, err)
		}
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO audit_records
		(seq, time, kind, forge, repo, change, head_sha, delivery_id, policy_digest, verdict, data, prev_hash, hash) VALUES `)
	args := make([]any, 0, 13*len(recs))
	for i, out := range recs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		var dataCol any
		if len(out.Data) > 0 {
			dataCol = string(out.Data)
		}
		args = append(args, out.Seq, d.t(out.Time), out.Kind, out.Forge, out.Repo, out.Change, out.HeadSHA, out.DeliveryID,
			out.PolicyDigest, out.Verdict, dataCol, out.PrevHash, out.Hash)
	}
	if _, err := d.exec(ctx, tx, q.String(), args...); err != nil {
		return fmt.Errorf("insert audit records %d-%d: %w", recs[0].Seq, recs[len(recs)-1].Seq, err)
	}
	return nil
}

// AuditFilter selects audit records. Zero fields do not filter.
type AuditFilter struct {
	Repo     string    // exact repository, e.g. acme/app
	Since    time.Time // records at or after
	Until    time.Time // records before
	AfterSeq int64     // records with a greater seq (for paging)
	Limit    int       // at most this many (0: all)
}

const auditColumns = `seq, time, kind, forge, repo, change, head_sha, delivery_id, policy_digest, verdict, data, prev_hash, hash`

// AuditRecords returns the records matching f in seq order.
func (d *DB) AuditRecords(ctx context.Context, f AuditFilter) ([]audit.Record, error) {
	var where []string
	var args []any
	if f.Repo != "" {
		where = append(where, "repo = ?")
		args = append(args, f.Repo)
	}
	if !f.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, d.t(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "time < ?")
		args = append(args, d.t(f.Until))
	}
	if f.AfterSeq > 0 {
		where = append(where, "seq > ?")
		args = append(args, f.AfterSeq)
	}
	q := "SELECT " + auditColumns + " FROM audit_records"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := d.query(ctx, d.r, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read audit records: %w", err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("read audit records: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit records: %w", err)
	}
	return out, nil
}

// auditPage bounds how many records EachAudit reads per query, so that a
// verify of a long trail neither holds a connection (and, on SQLite, an old
// WAL snapshot) for its whole duration nor loads the trail into memory.
const auditPage = 1000

// EachAudit calls fn for every record in seq order, stopping at fn's first
// error (returned as is). Records appended during the walk may or may not
// be included.
func (d *DB) EachAudit(ctx context.Context, fn func(audit.Record) error) error {
	return d.EachAuditAfter(ctx, 0, fn)
}

// EachAuditAfter is EachAudit over the records with a seq greater than after.
func (d *DB) EachAuditAfter(ctx context.Context, after int64, fn func(audit.Record) error) error {
	for {
		page, err := d.AuditRecords(ctx, AuditFilter{AfterSeq: after, Limit: auditPage})
		if err != nil {
			return err
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < auditPage {
			return nil
		}
		after = page[len(page)-1].Seq
	}
}

// VerifyAudit walks the whole trail through an audit.Verifier (keyed with
// the store's chain, if any) and returns the number of records verified and
// the first problem (*audit.ChainError).
func (d *DB) VerifyAudit(ctx context.Context) (int, error) {
	v := audit.NewVerifier(d.chain)
	err := d.VerifyAuditWith(ctx, v)
	return v.Count(), err
}

// VerifyAuditWith feeds v every record after v's head (all of them for a
// new Verifier) and then calls v.End. Verifying again later with the same v
// continues where it stopped.
func (d *DB) VerifyAuditWith(ctx context.Context, v *audit.Verifier) error {
	after, _ := v.Head()
	if err := d.EachAuditAfter(ctx, after, v.Add); err != nil {
		return err
	}
	return v.End()
}

// AuditHead returns the seq and hash of the newest record (0 and
// audit.Genesis when the trail is empty).
func (d *DB) AuditHead(ctx context.Context) (int64, string, error) {
	var seq int64
	hash := audit.Genesis
	err := d.queryRow(ctx, d.r, "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1").Scan(&seq, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("read audit head: %w", err)
	}
	return seq, hash, nil
}

// KeyAudit is the cut-over to a keyed trail: when the newest record is
// unkeyed it appends rec (chained with the store's key), so that every
// unkeyed record of an existing database is vouched for by the keyed record
// after it. It reports whether it appended.
func (d *DB) KeyAudit(ctx context.Context, rec audit.Record) (bool, error) {
	if d.chain == nil {
		return false, fmt.Errorf("key audit trail: %w", audit.ErrKeyRequired)
	}
	appended := false
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		if d.dialect == postgresDialect {
			if _, err := tx.ExecContext(ctx, "LOCK TABLE audit_records IN EXCLUSIVE MODE"); err != nil {
				return fmt.Errorf("lock audit_records: %w", err)
			}
		}
		var hash string
		err := d.queryRow(ctx, tx, "SELECT hash FROM audit_records ORDER BY seq DESC LIMIT 1").Scan(&hash)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && audit.IsKeyed(hash)) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read last audit record: %w", err)
		}
		if _, err := d.appendAuditTx(ctx, tx, rec); err != nil {
			return err
		}
		appended = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("key audit trail: %w", err)
	}
	return appended, nil
}

func scanAudit(rows *sql.Rows) (audit.Record, error) {
	var r audit.Record
	var t dbTime
	var data sql.NullString
	if err := rows.Scan(&r.Seq, &t, &r.Kind, &r.Forge, &r.Repo, &r.Change, &r.HeadSHA, &r.DeliveryID,
		&r.PolicyDigest, &r.Verdict, &data, &r.PrevHash, &r.Hash); err != nil {
		return r, err
	}
	r.Time = t.T
	if data.Valid && data.String != "" {
		r.Data = json.RawMessage(data.String)
	}
	return r, nil
}
