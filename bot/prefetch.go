package bot

import (
	"context"
	"fmt"
	"maps"
)

// ScopesReader reads several fact scopes at once (store.DB does it in one
// query). CompleteFacts uses it when the store has it.
type ScopesReader interface {
	FactsIn(ctx context.Context, scopes []string) (map[string]map[string]string, error)
}

// readScopes reads scopes from st: at once when st is a ScopesReader, one
// by one otherwise. Every scope asked for has an entry.
func readScopes(ctx context.Context, st FactReader, scopes []string) (map[string]map[string]string, error) {
	if sr, ok := st.(ScopesReader); ok {
		return sr.FactsIn(ctx, scopes)
	}
	out := make(map[string]map[string]string, len(scopes))
	for _, sc := range scopes {
		if _, done := out[sc]; done {
			continue
		}
		m, err := st.Facts(ctx, sc)
		if err != nil {
			return nil, err
		}
		if m == nil {
			m = map[string]string{}
		}
		out[sc] = m
	}
	return out, nil
}

// prefetched answers Facts for the scopes read ahead and asks st for any
// other.
type prefetched struct {
	st FactReader
	m  map[string]map[string]string
}

func (p prefetched) Facts(ctx context.Context, scope string) (map[string]string, error) {
	if m, ok := p.m[scope]; ok {
		return maps.Clone(m), nil
	}
	return p.st.Facts(ctx, scope)
}

// completeScopes are the scopes CompleteFacts reads for c: the change's
// own and the push records of its head and of each of its commits (a
// change of 250 commits read them in 250 queries).
func completeScopes(c *Change) []string {
	scopes := []string{FactScope(c.Ref, factPusher), FactScope(c.Ref, factForeign), FactScope(c.Ref, factDigest),
		FactScope(c.Ref, factReviewDigest)}
	if c.Ref.Forge == GitLab {
		scopes = append(scopes, FactScope(c.Ref, factApproval))
	}
	for _, sha := range pushedSHAs(c) {
		scopes = append(scopes, PushScope(c.Ref.Forge, pushRepo(c), sha))
	}
	return scopes
}

// prefetch reads completeScopes(c) from st at once.
func prefetch(ctx context.Context, st FactReader, c *Change) (FactReader, error) {
	m, err := readScopes(ctx, st, completeScopes(c))
	if err != nil {
		return nil, fmt.Errorf("read the facts of %s: %w", c.Ref.Key(), err)
	}
	return prefetched{st: st, m: m}, nil
}
