package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// RequestCounter counts the forge API requests made on behalf of one
// evaluation. It is carried in the request context so the forge adapters
// need no extra parameter, and it is atomic because an adapter may fetch
// facts concurrently.
type RequestCounter struct {
	n atomic.Int64
}

// Count returns the number of requests counted so far.
func (c *RequestCounter) Count() int64 { return c.n.Load() }

type requestCounterKey struct{}

// WithRequestCounter returns a context carrying a new RequestCounter; every
// request made with that context through Transport increments it.
func WithRequestCounter(ctx context.Context) (context.Context, *RequestCounter) {
	c := &RequestCounter{}
	return context.WithValue(ctx, requestCounterKey{}, c), c
}

// RequestCounterFrom returns the counter carried by ctx, or nil.
func RequestCounterFrom(ctx context.Context) *RequestCounter {
	c, _ := ctx.Value(requestCounterKey{}).(*RequestCounter)
	return c
}

// Transport wraps next (http.DefaultTransport when nil) so that every
// request to the forge is counted by status in ForgeAPIRequests, the
// rate-limit remainder the forge reports is kept in
// ForgeRateLimitRemaining, and the RequestCounter in the request's context,
// if any, is incremented.
func (m *Metrics) Transport(forge string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{
		next:      next,
		forge:     forge,
		requests:  m.ForgeAPIRequests,
		remaining: m.ForgeRateLimitRemaining.WithLabelValues(forge),
	}
}

type transport struct {
	next      http.RoundTripper
	forge     string
	requests  *prometheus.CounterVec
	remaining prometheus.Gauge
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// Counted before the round trip: a request that fails on the wire
	// still cost an attempt and, often, a slot of the rate limit.
	if c := RequestCounterFrom(req.Context()); c != nil {
		c.n.Add(1)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.requests.WithLabelValues(t.forge, "error").Inc()
		return resp, err
	}
	t.requests.WithLabelValues(t.forge, strconv.Itoa(resp.StatusCode)).Inc()
	if v, ok := rateLimitRemaining(resp.Header); ok {
		t.remaining.Set(v)
	}
	return resp, nil
}

// rateLimitRemaining reads GitHub's X-RateLimit-Remaining or GitLab's
// RateLimit-Remaining. Absent or unparsable headers leave the gauge alone:
// not every answer reports the limit (some error pages, some proxies), and
// zeroing the gauge then would fire the "rate limit nearly spent" alert.
func rateLimitRemaining(h http.Header) (float64, bool) {
	for _, k := range []string{"X-RateLimit-Remaining", "RateLimit-Remaining"} {
		s := strings.TrimSpace(h.Get(k))
		if s == "" {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 {
			continue
		}
		return v, true
	}
	return 0, false
}
