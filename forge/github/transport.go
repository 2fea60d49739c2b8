package github

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// RequestCount counts the HTTP requests (every attempt, token requests
// included) made with a context from CountRequests, so the service can
// report the API cost of one evaluation.
type RequestCount struct {
	parent      *RequestCount
	total       atomic.Int64
	notModified atomic.Int64
}

type countKey struct{}

// CountRequests returns a context whose requests are counted in the
// returned counter (and in any counter of ctx, so counts nest).
func CountRequests(ctx context.Context) (context.Context, *RequestCount) {
	parent, _ := ctx.Value(countKey{}).(*RequestCount)
	c := &RequestCount{parent: parent}
	return context.WithValue(ctx, countKey{}, c), c
}

// Total is the number of requests sent.
func (c *RequestCount) Total() int64 { return c.total.Load() }

// NotModified is how many of them were answered 304 (free against
// GitHub's rate limit).
func (c *RequestCount) NotModified() int64 { return c.notModified.Load() }

func (c *RequestCount) add(notModified bool) {
	for ; c != nil; c = c.parent {
		c.total.Add(1)
		if notModified {
			c.notModified.Add(1)
		}
	}
}

// countTransport sits right above Config.Transport and counts each attempt
// into the context's RequestCount.
type countTransport struct{ next http.RoundTripper }

func (t *countTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if c, ok := req.Context().Value(countKey{}).(*RequestCount); ok {
		c.add(err == nil && resp.StatusCode == http.StatusNotModified)
	}
	return resp, err
}

type noUnsafeRetryKey struct{}

// withoutUnsafeRetry marks a non-idempotent request (creating a check run)
// whose 5xx must not be retried blindly: GitHub may have done the work
// before failing, and a second POST would create a second check run. The
// caller recovers by looking for what the first attempt created. Rate-limit
// answers are still retried: GitHub did nothing then.
func withoutUnsafeRetry(ctx context.Context) context.Context {
	return context.WithValue(ctx, noUnsafeRetryKey{}, true)
}

// retryTransport retries 5xx answers, network errors and rate limits with
// exponential backoff, honouring Retry-After and X-RateLimit-Reset, within
// maxAttempts and a bounded total wait. It sits under go-github and under
// ghinstallation, so token requests are retried too. When it gives up it
// returns GitHub's last answer (go-github turns it into an error naming the
// status) and the service fails closed.
type retryTransport struct {
	next        http.RoundTripper
	maxAttempts int
	maxWait     time.Duration
	sleep       func(context.Context, time.Duration) error
	now         func() time.Time
	log         *slog.Logger
}

// Backoff for 5xx and network errors: 1s, 2s, 4s, ... capped at 30s.
const (
	backoffBase = time.Second
	backoffMax  = 30 * time.Second
	// secondaryWait is GitHub's advice for a secondary rate limit without
	// Retry-After: "wait for at least one minute before retrying. If your
	// request continues to fail due to a secondary rate limit, wait for an
	// exponentially increasing amount of time between retries" (REST API
	// docs, "Rate limits for the REST API", exceeding the rate limit). So
	// 1m, 2m, 4m, ... capped at secondaryMax, within maxWait.
	secondaryWait = time.Minute
	secondaryMax  = 16 * time.Minute
)

// secondaryBackoff is the wait before retry attempt+1 of a secondary rate
// limit that named no Retry-After.
func secondaryBackoff(attempt int) time.Duration {
	if attempt > 5 {
		return secondaryMax
	}
	return min(secondaryWait<<(attempt-1), secondaryMax)
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// Buffer the body once so every attempt can resend it.
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("github: reading request body: %w", err)
		}
		body = b
	}
	ctx := req.Context()
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		r := req.Clone(ctx)
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			r.ContentLength = int64(len(body))
		}
		resp, err := t.next.RoundTrip(r)
		wait, why := t.classify(req, resp, err, attempt)
		if why == "" {
			return resp, err
		}
		if attempt >= t.maxAttempts || waited+wait > t.maxWait {
			t.log.WarnContext(ctx, "github request failed, giving up",
				"method", req.Method, "url", req.URL.Redacted(), "reason", why, "attempts", attempt, "next_wait", wait)
			if err != nil {
				return nil, fmt.Errorf("github: %s %s failed after %d attempts (%s): %w", req.Method, req.URL.Redacted(), attempt, why, err)
			}
			return resp, nil
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
		}
		t.log.DebugContext(ctx, "github request retried", "method", req.Method, "url", req.URL.Redacted(), "reason", why, "attempt", attempt, "wait", wait)
		if err := t.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("github: waiting to retry %s %s: %w", req.Method, req.URL.Redacted(), err)
		}
		waited += wait
	}
}

// classify says whether to retry and after how long; why == "" means the
// answer is final.
func (t *retryTransport) classify(req *http.Request, resp *http.Response, err error, attempt int) (wait time.Duration, why string) {
	backoff := min(backoffBase<<(attempt-1), backoffMax)
	unsafe := req.Context().Value(noUnsafeRetryKey{}) != nil
	if err != nil {
		if req.Context().Err() != nil || unsafe {
			return 0, ""
		}
		return backoff, "network error: " + err.Error()
	}
	h := resp.Header
	switch code := resp.StatusCode; {
	case code >= 500 && code <= 599:
		if unsafe {
			return 0, ""
		}
		if d, ok := t.retryAfter(h); ok {
			return d, resp.Status
		}
		return backoff, resp.Status
	case code == http.StatusTooManyRequests || code == http.StatusForbidden:
		if d, ok := t.retryAfter(h); ok {
			return d, "rate limited (Retry-After)"
		}
		if h.Get("X-RateLimit-Remaining") == "0" {
			if reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
				// One second of margin: the reset is a whole second and
				// clocks differ.
				return max(time.Unix(reset, 0).Sub(t.now())+time.Second, time.Second), "rate limit spent (X-RateLimit-Reset)"
			}
			return backoff, "rate limit spent"
		}
		if code == http.StatusTooManyRequests {
			return max(backoff, secondaryBackoff(attempt)), "too many requests"
		}
		// A 403 is usually a real "forbidden"; only GitHub's secondary
		// rate limit message makes it retryable.
		if peekBody(resp, "secondary rate limit") {
			return secondaryBackoff(attempt), "secondary rate limit"
		}
	}
	return 0, ""
}

func (t *retryTransport) retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(t.now()), 0), true
	}
	return 0, false
}

// peekBody reports whether resp's body contains s, leaving the body
// readable for the caller.
func peekBody(resp *http.Response, s string) bool {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	rest := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), rest), rest}
	return strings.Contains(strings.ToLower(string(b)), s)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type noETagKey struct{}

// withoutETag keeps a GET out of the ETag cache: answers the adapter caches
// by SHA itself (files, commits) would only take memory twice.
func withoutETag(ctx context.Context) context.Context {
	return context.WithValue(ctx, noETagKey{}, true)
}

// maxETagBody bounds what one remembered answer may hold.
const maxETagBody = 1 << 20

// etagTransport makes every GET conditional: it remembers the ETag and
// body of each 200 per (installation, Accept, URL), sends If-None-Match
// next time and turns GitHub's 304 (which does not count against the rate
// limit) back into the remembered 200 for go-github, which treats 304 as an
// error. Replayed answers carry X-From-Cache so go-github does not record
// their stale rate-limit headers.
type etagTransport struct {
	next  http.RoundTripper
	cache *etagCache
	inst  int64
}

func (t *etagTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.Context().Value(noETagKey{}) != nil {
		return t.next.RoundTrip(req)
	}
	key := strconv.FormatInt(t.inst, 10) + " " + req.Header.Get("Accept") + " " + req.URL.String()
	ent, have := t.cache.get(key)
	out := req
	if have {
		out = req.Clone(req.Context())
		out.Header.Set("If-None-Match", ent.etag)
	}
	resp, err := t.next.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && have:
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		h := ent.header.Clone()
		h.Set("X-From-Cache", "1")
		return &http.Response{
			Status: "200 OK", StatusCode: http.StatusOK,
			Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
			Header: h, Body: io.NopCloser(bytes.NewReader(ent.body)),
			ContentLength: int64(len(ent.body)), Request: req,
		}, nil
	case resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != "":
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxETagBody+1))
		if err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("github: reading %s: %w", req.URL.Redacted(), err)
		}
		if len(b) > maxETagBody {
			rest := resp.Body
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(b), rest), rest}
			return resp, nil
		}
		resp.Body.Close()
		t.cache.put(key, etagEntry{etag: resp.Header.Get("ETag"), header: resp.Header.Clone(), body: b})
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, nil
}
