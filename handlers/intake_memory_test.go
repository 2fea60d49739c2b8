package handlers_test

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

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
