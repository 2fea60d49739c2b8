package github

import (
	"container/list"
	"net/http"
	"sync"
	"time"
)

// lru is a small mutex-guarded least-recently-used map. The adapter's
// caches are bounded so that memory does not grow with the number of pull
// requests ever seen; an evicted entry only costs one more request.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	items map[K]*list.Element
	order *list.List // front = most recently used
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, items: map[K]*list.Element{}, order: list.New()}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		e.Value.(*lruEntry[K, V]).val = v
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*lruEntry[K, V]).key)
	}
}

// update replaces the value of k with fn(old, found) atomically.
func (c *lru[K, V]) update(k K, fn func(old V, found bool) V) {
	c.mu.Lock()
	var old V
	e, found := c.items[k]
	if found {
		old = e.Value.(*lruEntry[K, V]).val
	}
	c.mu.Unlock()
	// fn runs outside the lock; a concurrent update may interleave, which
	// for the hint cache only means one of two equally recent hints wins.
	c.put(k, fn(old, found))
}

// expiring is a cached answer that is only good until exp.
type expiring[V any] struct {
	val V
	exp time.Time
}

// getFresh returns a cached value that has not expired.
func getFresh[K comparable, V any](c *lru[K, expiring[V]], k K, now time.Time) (V, bool) {
	e, ok := c.get(k)
	if !ok || !now.Before(e.exp) {
		var zero V
		return zero, false
	}
	return e.val, true
}

// etagEntry is a remembered 200 answer to a GET, replayed on a 304.
type etagEntry struct {
	etag   string
	header http.Header
	body   []byte
}

type etagCache struct{ *lru[string, etagEntry] }

func newETagCache(max int) *etagCache { return &etagCache{newLRU[string, etagEntry](max)} }
