package gitlab

import (
	"sort"
	"sync"
	"time"
)

// ttlCache is a small mutex-guarded map whose entries expire. It is bounded:
// when full, expired entries are swept and, if that is not enough, the
// oldest half is dropped, so a long-running server cannot grow without
// limit. Losing an entry only costs a request.
type ttlCache[K comparable, V any] struct {
	mu      sync.Mutex
	now     func() time.Time
	ttl     time.Duration
	max     int
	entries map[K]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	stored  time.Time
	expires time.Time
}

func newTTLCache[K comparable, V any](now func() time.Time, ttl time.Duration, max int) *ttlCache[K, V] {
	return &ttlCache[K, V]{now: now, ttl: ttl, max: max, entries: map[K]ttlEntry[V]{}}
}

func (c *ttlCache[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.now().Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[k] = ttlEntry[V]{v: v, stored: now, expires: now.Add(c.ttl)}
}

// evict makes room; the caller holds c.mu.
func (c *ttlCache[K, V]) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	if len(c.entries) < c.max {
		return
	}
	var cutoff time.Time
	{
		// The median store time: entries stored before it go.
		times := make([]time.Time, 0, len(c.entries))
		for _, e := range c.entries {
			times = append(times, e.stored)
		}
		cutoff = nthTime(times, len(times)/2)
	}
	for k, e := range c.entries {
		if !e.stored.After(cutoff) {
			delete(c.entries, k)
		}
	}
}

// nthTime returns the n-th smallest time (a sort is simpler than a
// selection and eviction is rare).
func nthTime(ts []time.Time, n int) time.Time {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	return ts[n]
}
