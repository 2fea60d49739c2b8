package handlers_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/handlers"
)

// shortBody yields a few bytes of a body whose declared length is far
// larger, then ends, as a sender that declares 25 MiB and hangs up would.
type shortBody struct{ r io.Reader }

func (b shortBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b shortBody) Close() error               { return nil }

// TestDeclaredLengthIsNotAllocated: what a sender declares costs the server
// nothing; only the bytes it really sends are buffered.
func TestDeclaredLengthIsNotAllocated(t *testing.T) {
	e := newEnv(t)
	const requests = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < requests; i++ {
		req := githubRequest("push", "d-short", nil, "sha256=00")
		req.Body = shortBody{strings.NewReader(`{"action":"x"`)}
		req.ContentLength = handlers.DefaultMaxBody // the most it may declare
		if rec := e.do(req); rec.Code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401 (the bytes sent are not signed)", rec.Code)
		}
	}
	runtime.ReadMemStats(&after)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / requests
	t.Logf("allocated %d bytes per request declaring %d", perRequest, handlers.DefaultMaxBody)
	if perRequest > 256<<10 {
		t.Fatalf("a request declaring %d bytes and sending 13 allocated %d bytes", handlers.DefaultMaxBody, perRequest)
	}
}

// TestBodyBudgetBoundsAllRequests: the bodies of all requests together
// stay within Config.BodyBudget. A sender needs no secret to open
// connections, and each may send up to MaxBody before its signature is
// checked; with the budget held by a slow body, the next delivery waits
// briefly and is answered 503 (Retry-After), and once the slow body is gone
// deliveries are accepted again. Budgets are given back after every
// request: many deliveries in a row each fit in a budget that holds two.
func TestBodyBudgetBoundsAllRequests(t *testing.T) {
	const maxBody, budget = 40 << 10, 64 << 10
	e := newEnv(t, func(c *handlers.Config) { c.MaxBody, c.BodyBudget = maxBody, budget })
	body := []byte(`{"action":"opened","number":1}`)
	for i := range 50 {
		rec := e.do(githubRequest("pull_request", fmt.Sprintf("d-%d", i), body, sign(githubSecret, body)))
		if rec.Code != http.StatusAccepted {
			t.Fatalf("delivery %d in a row: %d %s (budget not given back?)", i, rec.Code, rec.Body)
		}
	}

	// A sender holds most of the budget: 36 KB sent of a 40 KB body, then
	// nothing. Its buffer grew to the 40 KB limit to read them, and the
	// next delivery's first 32 KB no longer fit.
	pr, pw := io.Pipe()
	slow := githubRequest("pull_request", "d-slow", nil, "sha256=00")
	slow.Body, slow.ContentLength = pr, maxBody
	slowDone := make(chan int, 1)
	go func() { slowDone <- e.do(slow).Code }()
	if _, err := pw.Write(bytes.Repeat([]byte(" "), 36<<10)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rec := e.do(githubRequest("pull_request", "d-blocked", body, sign(githubSecret, body)))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("delivery while the budget is held: %d %s, want 503 with Retry-After", rec.Code, rec.Body)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("answered 503 after %s: a burst should wait for room first", waited)
	}
	if got := received(t, e, "github", "unknown", "busy"); got != 1 {
		t.Errorf("busy counter = %v, want 1", got)
	}
	pw.Close() // the slow sender gives up: its 36 bytes are not signed
	if code := <-slowDone; code != http.StatusUnauthorized {
		t.Fatalf("slow request: %d, want 401", code)
	}
	if rec := e.do(githubRequest("pull_request", "d-after", body, sign(githubSecret, body))); rec.Code != http.StatusAccepted {
		t.Fatalf("delivery after the slow body ended: %d %s", rec.Code, rec.Body)
	}
}

// A budget below the largest body would refuse every large delivery: that
// is a wiring mistake, caught at start.
func TestBodyBudgetBelowMaxBodyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted a body budget below MaxBody")
		}
	}()
	newEnv(t, func(c *handlers.Config) { c.MaxBody, c.BodyBudget = 1<<20, 1<<19 })
}

// TestBodyBufferIsReused: a body that fits in one chunk is read into a
// buffer that later requests reuse, so a stream of GitHub-sized deliveries
// does not allocate a body per request.
func TestBodyBufferIsReused(t *testing.T) {
	if raceEnabled {
		t.Skip("under -race sync.Pool drops buffers at random")
	}
	e := newEnv(t)
	body := fixture(t, "github", "pull_request.opened.json")
	const requests = 200
	reqs := make([]*http.Request, requests) // built first: each copies the body
	for i := range reqs {
		reqs[i] = githubRequest("pull_request", "d-reuse", body, "sha256=00")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, req := range reqs {
		if rec := e.do(req); rec.Code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", rec.Code)
		}
	}
	runtime.ReadMemStats(&after)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / requests
	t.Logf("allocated %d bytes per request with a %d-byte body", perRequest, len(body))
	if perRequest > uint64(len(body))/4 {
		t.Fatalf("each request allocated %d bytes for a %d-byte body: its buffer is not reused", perRequest, len(body))
	}
}
