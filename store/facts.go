package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// upsertFact sets one fact, overwriting. Parameters: scope, key, value,
// updated_at.
const upsertFact = `INSERT INTO facts (scope, key, value, updated_at) VALUES (?, ?, ?, ?)
	ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`

// upsertFactsPG is upsertFact for many facts (PostgreSQL). Parameters:
// updated_at, then the scopes, keys and values as arrays of one length,
// with no scope/key twice (ON CONFLICT may touch a row once per statement).
const upsertFactsPG = `INSERT INTO facts (scope, key, value, updated_at)
	SELECT u.scope, u.key, u.value, ? FROM unnest(?::text[], ?::text[], ?::text[]) AS u(scope, key, value)
	ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`

// PutFact sets scope/key to value, overwriting any previous value. It is
// committed with the next group commit (intake.go) and returns after it.
func (d *DB) PutFact(ctx context.Context, scope, key, value string) error {
	now := d.t(d.now())
	return d.submitWrite(ctx, "put fact "+scope+"/"+key, func(ctx context.Context, tx querier) error {
		_, err := d.exec(ctx, tx, upsertFact, scope, key, value, now)
		return err
	})
}

// PutFacts sets every scope/key of facts (scope -> key -> value) to its
// value in one commit, overwriting as PutFact does: an evaluation that
// learns several facts pays one group commit for them, not one each.
func (d *DB) PutFacts(ctx context.Context, facts map[string]map[string]string) error {
	n, write := d.factsWrite(facts)
	if n == 0 {
		return nil
	}
	return d.submitWrite(ctx, fmt.Sprintf("put %d facts", n), write)
}

// factsWrite returns how many facts there are and the write that upserts
// them inside a group commit's transaction (nil when there are none).
func (d *DB) factsWrite(facts map[string]map[string]string) (int, func(context.Context, querier) error) {
	type fact struct{ scope, key, value string }
	var all []fact
	for scope, kv := range facts {
		for k, v := range kv {
			all = append(all, fact{scope, k, v})
		}
	}
	if len(all) == 0 {
		return 0, nil
	}
	// A fixed order, so that two replicas writing overlapping facts lock
	// the rows in the same order (PostgreSQL) and cannot deadlock.
	slices.SortFunc(all, func(a, b fact) int {
		return cmp.Or(strings.Compare(a.scope, b.scope), strings.Compare(a.key, b.key))
	})
	now := d.t(d.now())
	if d.dialect == postgresDialect && len(all) > 1 {
		// One statement for all of them: on PostgreSQL each statement is a
		// round trip inside the group commit's transaction, and an
		// evaluation's dozen facts one by one cost more server CPU than
		// the lease search.
		scopes, keys, values := make([]string, len(all)), make([]string, len(all)), make([]string, len(all))
		for i, f := range all {
			scopes[i], keys[i], values[i] = f.scope, f.key, f.value
		}
		return len(all), func(ctx context.Context, tx querier) error {
			_, err := d.exec(ctx, tx, upsertFactsPG, now, scopes, keys, values)
			return err
		}
	}
	return len(all), func(ctx context.Context, tx querier) error {
		for _, f := range all {
			if _, err := d.exec(ctx, tx, upsertFact, f.scope, f.key, f.value, now); err != nil {
				return fmt.Errorf("%s/%s: %w", f.scope, f.key, err)
			}
		}
		return nil
	}
}

// PutFactIfAbsent stores scope/key = value unless the key already exists,
// and reports whether it stored it. Exactly one of several concurrent
// callers gets true, which makes it an idempotency key ("this push was
// already flagged").
func (d *DB) PutFactIfAbsent(ctx context.Context, scope, key, value string) (bool, error) {
	now := d.t(d.now())
	var stored bool
	err := d.submitWrite(ctx, "put fact if absent "+scope+"/"+key, func(ctx context.Context, tx querier) error {
		res, err := d.exec(ctx, tx, `INSERT INTO facts (scope, key, value, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (scope, key) DO NOTHING`, scope, key, value, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("rows affected: %w", err)
		}
		stored = n == 1
		return nil
	})
	return stored, err
}

// Facts returns every key and value of scope (an empty map if none).
func (d *DB) Facts(ctx context.Context, scope string) (map[string]string, error) {
	rows, err := d.query(ctx, d.r, "SELECT key, value FROM facts WHERE scope = ?", scope)
	if err != nil {
		return nil, fmt.Errorf("read facts %s: %w", scope, err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("read facts %s: %w", scope, err)
		}
		m[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read facts %s: %w", scope, err)
	}
	return m, nil
}

// factsInChunk bounds the scopes of one FactsIn query, far below both
// engines' parameter limits.
const factsInChunk = 500

// FactsIn returns every key and value of each of scopes, as Facts does for
// one (every scope asked for has an entry, empty if it holds nothing). One
// query instead of one per scope: an evaluation reads the push records of
// every commit of its change, and each query is a round trip and server
// CPU on PostgreSQL, where a burst's drain was CPU-bound.
func (d *DB) FactsIn(ctx context.Context, scopes []string) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string, len(scopes))
	for _, sc := range scopes {
		out[sc] = map[string]string{}
	}
	uniq := make([]string, 0, len(out))
	for sc := range out {
		uniq = append(uniq, sc)
	}
	for len(uniq) > 0 {
		chunk := uniq[:min(len(uniq), factsInChunk)]
		uniq = uniq[len(chunk):]
		args := make([]any, 0, len(chunk)+1)
		if d.dialect == postgresDialect {
			// Planned for each call (an unnamed statement), not once per
			// connection. The cached generic plan was made while the facts
			// table was nearly empty, as it is before a burst, and kept a
			// sequential scan: 1.4 ms per call with 3,000 facts, against
			// 0.05 ms through the primary key (pg_stat_statements over the
			// closed-loop intake run).
			args = append(args, pgx.QueryExecModeExec)
		}
		for _, sc := range chunk {
			args = append(args, sc)
		}
		rows, err := d.query(ctx, d.r, "SELECT scope, key, value FROM facts WHERE scope IN (?"+strings.Repeat(", ?", len(chunk)-1)+")", args...)
		if err != nil {
			return nil, fmt.Errorf("read facts of %d scopes: %w", len(chunk), err)
		}
		for rows.Next() {
			var sc, k, v string
			if err := rows.Scan(&sc, &k, &v); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read facts of %d scopes: %w", len(chunk), err)
			}
			out[sc][k] = v
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read facts of %d scopes: %w", len(chunk), err)
		}
	}
	return out, nil
}

// DeleteFact removes scope/key; deleting a missing key is not an error.
func (d *DB) DeleteFact(ctx context.Context, scope, key string) error {
	return d.submitWrite(ctx, "delete fact "+scope+"/"+key, func(ctx context.Context, tx querier) error {
		_, err := d.exec(ctx, tx, "DELETE FROM facts WHERE scope = ? AND key = ?", scope, key)
		return err
	})
}

// SaveReport stores (or replaces) the release report of a tag.
func (d *DB) SaveReport(ctx context.Context, forge, repo, tag string, data []byte) error {
	if data == nil {
		data = []byte{} // the column is NOT NULL
	}
	_, err := d.exec(ctx, d.w, `INSERT INTO reports (forge, repo, tag, data, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (forge, repo, tag) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
		forge, repo, tag, data, d.t(d.now()))
	if err != nil {
		return fmt.Errorf("save report %s %s@%s: %w", forge, repo, tag, err)
	}
	return nil
}

// Report returns the stored report of a tag, or an error wrapping
// ErrNotFound.
func (d *DB) Report(ctx context.Context, forge, repo, tag string) ([]byte, error) {
	var data []byte
	err := d.queryRow(ctx, d.r, "SELECT data FROM reports WHERE forge = ? AND repo = ? AND tag = ?",
		forge, repo, tag).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("report %s %s@%s: %w", forge, repo, tag, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read report %s %s@%s: %w", forge, repo, tag, err)
	}
	return data, nil
}
