package bot

import (
	"context"
	"fmt"
	"maps"

	"github.com/foureyes-dev/foureyes/audit"
)

// factBatch gathers the facts one piece of work learns, to be written with
// one Store.PutFacts. Every write is a commit the worker waits for, and a
// folded batch of ten deliveries learned about twenty facts one at a time;
// on PostgreSQL those waits were most of an evaluation's time. Reads
// through the batch see what it holds, and each scope is read from the
// store once.
type factBatch struct {
	st   Store
	puts map[string]map[string]string
	read map[string]map[string]string
}

func newFactBatch(st Store) *factBatch {
	return &factBatch{st: st, puts: map[string]map[string]string{}, read: map[string]map[string]string{}}
}

// get returns the value of scope/key as stored, or as put in the batch.
func (b *factBatch) get(ctx context.Context, scope, key string) (string, error) {
	if v, ok := b.puts[scope][key]; ok {
		return v, nil
	}
	m, ok := b.read[scope]
	if !ok {
		var err error
		if m, err = b.st.Facts(ctx, scope); err != nil {
			return "", err
		}
		b.read[scope] = m
	}
	return m[key], nil
}

func (b *factBatch) put(scope, key, value string) {
	if b.puts[scope] == nil {
		b.puts[scope] = map[string]string{}
	}
	b.puts[scope][key] = value
}

// flush writes what was put, in one commit, and empties the batch.
func (b *factBatch) flush(ctx context.Context) error {
	if len(b.puts) == 0 {
		return nil
	}
	if err := b.st.PutFacts(ctx, b.puts); err != nil {
		return fmt.Errorf("record facts: %w", err)
	}
	for scope, kv := range b.puts {
		if m, ok := b.read[scope]; ok {
			for k, v := range kv {
				m[k] = v
			}
		}
	}
	b.puts = map[string]map[string]string{}
	return nil
}

// Facts reads scope from the store with what the batch holds put over it,
// so that an evaluation judges the facts its events recorded before they
// are written (a FactReader).
func (b *factBatch) Facts(ctx context.Context, scope string) (map[string]string, error) {
	m, err := b.FactsIn(ctx, []string{scope})
	if err != nil {
		return nil, err
	}
	return m[scope], nil
}

// FactsIn is Facts for several scopes at once (a ScopesReader).
func (b *factBatch) FactsIn(ctx context.Context, scopes []string) (map[string]map[string]string, error) {
	out, err := readScopes(ctx, b.st, scopes)
	if err != nil {
		return nil, err
	}
	for sc, m := range out {
		if puts := b.puts[sc]; len(puts) > 0 {
			m = maps.Clone(m)
			maps.Copy(m, puts)
			out[sc] = m
		}
	}
	return out, nil
}

// appendAudit appends rec and writes what was put, in one commit, and
// empties the batch.
func (b *factBatch) appendAudit(ctx context.Context, rec audit.Record) error {
	if _, err := b.st.AppendAuditWith(ctx, rec, b.puts); err != nil {
		return err
	}
	b.puts = map[string]map[string]string{}
	return nil
}
