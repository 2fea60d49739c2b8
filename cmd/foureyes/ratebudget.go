package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
)

// defaultLowBudget: with fewer requests left than this, a long scan stops
// and waits for the reset instead of running the budget dry (which would
// also starve the server sharing the installation's limit).
const defaultLowBudget = 100

// maxRateWaits bounds how often one request waits for a reset.
const maxRateWaits = 3

// budgetTransport makes a read-only command rate-limit aware. It reads the
// limit headers of every answer — GitHub's X-RateLimit-Remaining and
// X-RateLimit-Reset (Unix seconds), GitLab's RateLimit-Remaining and
// RateLimit-Reset — and when the budget runs low it says so on out, waits
// for the reset and goes on. An answer that says the limit is spent (403 or
// 429 with nothing remaining, or a Retry-After) is waited out and the
// request sent again.
//
// https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
// https://docs.gitlab.com/ee/administration/settings/user_and_ip_rate_limits.html#response-headers
type budgetTransport struct {
	next  http.RoundTripper
	low   int
	out   io.Writer
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu        sync.Mutex
	known     bool
	remaining int
	reset     time.Time
	waits     int
	waited    time.Duration
}

// Waits reports how often and how long the transport waited for resets.
func (t *budgetTransport) Waits() (int, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.waits, t.waited
}

func (t *budgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if d, left := t.lowWait(); d > 0 {
		if err := t.wait(ctx, d, fmt.Sprintf("rate limit budget low (%d requests left)", left)); err != nil {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 {
			if req.Body != nil && req.GetBody == nil {
				return nil, fmt.Errorf("rate limited and cannot resend %s %s", req.Method, req.URL.Redacted())
			}
			r = req.Clone(ctx)
			if req.GetBody != nil {
				b, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = b
			}
		}
		resp, err := t.next.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		d, spent := t.observe(resp)
		if !spent || attempt > maxRateWaits {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if err := t.wait(ctx, d, "rate limit spent"); err != nil {
			return nil, err
		}
	}
}

// lowWait returns how long to wait before the next request (0: go on).
func (t *budgetTransport) lowWait() (time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.known || t.remaining >= t.low {
		return 0, 0
	}
	d := t.reset.Sub(t.now())
	if d <= 0 {
		t.known = false
		return 0, 0
	}
	// Waited for once: the answers after the reset say anew.
	t.known = false
	return d + time.Second, t.remaining
}

// observe records the limit headers of resp and says whether the answer is
// "limit spent" (and how long until the reset).
func (t *budgetTransport) observe(resp *http.Response) (time.Duration, bool) {
	h := resp.Header
	rem := firstHeader(h, "X-RateLimit-Remaining", "RateLimit-Remaining")
	rst := firstHeader(h, "X-RateLimit-Reset", "RateLimit-Reset")
	t.mu.Lock()
	defer t.mu.Unlock()
	n, errN := strconv.Atoi(rem)
	s, errS := strconv.ParseInt(rst, 10, 64)
	if errN == nil && errS == nil {
		t.known, t.remaining, t.reset = true, n, time.Unix(s, 0)
	}
	limited := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusForbidden
	if !limited {
		return 0, false
	}
	if ra := strings.TrimSpace(h.Get("Retry-After")); ra != "" {
		if secs, err := strconv.Atoi(ra); err == nil && secs >= 0 {
			return time.Duration(secs)*time.Second + time.Second, true
		}
	}
	if errN == nil && n == 0 && errS == nil {
		return max(time.Unix(s, 0).Sub(t.now()), 0) + time.Second, true
	}
	return 0, false
}

func (t *budgetTransport) wait(ctx context.Context, d time.Duration, why string) error {
	at := t.now().Add(d).UTC().Format(time.TimeOnly)
	fmt.Fprintf(t.out, "foureyes: %s: waiting %s for the reset at %s UTC, then going on\n", why, d.Round(time.Second), at)
	if err := t.sleep(ctx, d); err != nil {
		return fmt.Errorf("waiting for the rate limit reset: %w", err)
	}
	t.mu.Lock()
	t.waits++
	t.waited += d
	t.mu.Unlock()
	return nil
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// countingTransport counts the requests of a read-only command and refuses
// any that would change something on the forge: scan and explain publish
// nothing, and this makes it so whatever the code above does. The one
// POST let through is GitHub's installation token request, which changes
// nothing in a repository.
type countingTransport struct {
	next     http.RoundTripper
	requests atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead && !isTokenRequest(req) {
		return nil, fmt.Errorf("refusing %s %s: this command only reads the forge", req.Method, req.URL.Redacted())
	}
	t.requests.Add(1)
	return t.next.RoundTrip(req)
}

// isTokenRequest matches POST .../app/installations/{id}/access_tokens.
func isTokenRequest(req *http.Request) bool {
	return req.Method == http.MethodPost && strings.Contains(req.URL.Path, "/app/installations/") && strings.HasSuffix(req.URL.Path, "/access_tokens")
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
