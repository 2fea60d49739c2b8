package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/metrics"
)

// unknownEvent labels metrics of deliveries whose event header cannot be
// trusted yet (before authentication) or is missing. Using the raw header
// there would let anyone mint new time series.
const unknownEvent = "unknown"

// outcome is how a delivery was answered; finish logs, counts and writes it.
type outcome struct {
	forge    bot.ForgeName
	event    string // metric label: a trusted event name or unknownEvent
	delivery string
	result   string // metrics.Result*
	status   int
	message  string // human-readable, in the JSON body and the log
	err      error  // logged only
	events   int
}

func (s *server) finish(w http.ResponseWriter, r *http.Request, o outcome) {
	s.metrics.WebhooksReceived.WithLabelValues(string(o.forge), o.event, o.result).Inc()

	level := slog.LevelInfo
	switch o.result {
	case metrics.ResultBadSignature, metrics.ResultBadRequest, metrics.ResultTooLarge, metrics.ResultBusy:
		level = slog.LevelWarn
	case metrics.ResultUnavailable:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("forge", string(o.forge)),
		slog.String("delivery", clip(o.delivery)),
		slog.String("event", clip(o.event)),
		slog.String("result", o.result),
		slog.Int("status", o.status),
	}
	if o.events > 0 {
		attrs = append(attrs, slog.Int("events", o.events))
	}
	if o.err != nil {
		attrs = append(attrs, slog.String("error", o.err.Error()))
	}
	s.log.LogAttrs(r.Context(), level, "webhook", attrs...)

	body := map[string]any{"status": o.result}
	if o.message != "" {
		body["message"] = o.message
	}
	if o.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	writeJSON(w, o.status, body)
}

// Slow senders: a body must keep arriving at bodyMinRate once bodyGrace has
// passed, and be complete within bodyMaxTime. The read deadline is moved
// forward after every chunk, so a sender earns time only by sending bytes.
// GitHub and GitLab send a whole delivery in well under a second; a
// sender trickling bytes to hold a connection open is cut off after about
// bodyGrace.
const (
	bodyGrace   = 5 * time.Second
	bodyMinRate = 16 << 10 // bytes per second
	bodyMaxTime = 60 * time.Second
	// bodyChunk is the least a body's buffer grows by. The body grows by
	// what was received, never by what Content-Length declares.
	bodyChunk = 32 << 10
)

// bodyDeadline is when a sender who has sent got bytes since start must have
// sent more.
func bodyDeadline(start time.Time, got int64) time.Time {
	d := start.Add(bodyGrace + time.Duration(float64(got)/bodyMinRate*float64(time.Second)))
	return minTime(d, start.Add(bodyMaxTime))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// bodyBudgetWait is how long a request waits for room in the body budget
// before it is answered 503: a burst of ordinary deliveries gets through,
// and a sender holding the budget with slow bodies is answered while the
// server still has its memory.
const bodyBudgetWait = 2 * time.Second

// readBody reads at most limit bytes, enforcing the minimum body rate,
// into memory reserved from the body budget as it grows: the budget bounds
// what all requests together hold, where the per-request limit alone lets
// many connections hold a limit each. release gives the body's memory back
// to the budget, and its buffer to the next request: call it once the body
// and every slice of it are no longer used (decoders copy what they keep).
// ok=false means the body is too large (413), too slow (408), could not be
// read (400) or the budget stayed full (503); the caller answers with o and
// need not call release.
func (s *server) readBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), o outcome, ok bool) {
	tooLarge := outcome{
		result:  metrics.ResultTooLarge,
		status:  http.StatusRequestEntityTooLarge,
		message: fmt.Sprintf("body larger than %d bytes", limit),
	}
	// A declared length over the limit is refused without reading a byte.
	if r.ContentLength > limit {
		return nil, nil, tooLarge, false
	}
	var held int64
	var first *[]byte // the pooled first chunk while buf is it
	release = func() {
		if first != nil {
			s.firstChunks.Put(first)
			first = nil
		}
		if held > 0 {
			s.bodies.Release(held)
			held = 0
		}
	}
	rc := http.NewResponseController(w)
	start := time.Now()
	// Deadlines are best effort: a ResponseWriter that cannot set them
	// (tests' recorders) reads without.
	deadlines := rc.SetReadDeadline(bodyDeadline(start, 0)) == nil
	var buf []byte
	src := http.MaxBytesReader(w, r.Body, limit)
	for {
		if len(buf) == cap(buf) {
			// Room for the next read: double, at least a chunk, never past
			// limit+1 (MaxBytesReader fails on the byte after the limit).
			grow := min(max(int64(cap(buf)), bodyChunk), limit+1-int64(cap(buf)))
			ctx, cancel := context.WithTimeout(r.Context(), bodyBudgetWait)
			err := s.bodies.Acquire(ctx, grow)
			cancel()
			if err != nil {
				release()
				return nil, nil, outcome{
					result:  metrics.ResultBusy,
					status:  http.StatusServiceUnavailable,
					message: "too many webhook bodies in flight; retry later",
					err:     err,
				}, false
			}
			held += grow
			switch {
			case cap(buf) == 0 && grow == bodyChunk:
				if first, _ = s.firstChunks.Get().(*[]byte); first == nil {
					b := make([]byte, 0, bodyChunk)
					first = &b
				}
				buf = (*first)[:0]
			default:
				buf = append(make([]byte, 0, int64(cap(buf))+grow), buf...)
				if first != nil {
					s.firstChunks.Put(first)
					first = nil
				}
			}
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			release()
			if _, isMax := errors.AsType[*http.MaxBytesError](err); isMax {
				return nil, nil, tooLarge, false
			}
			if ne, isNet := errors.AsType[net.Error](err); isNet && ne.Timeout() {
				// The connection cannot be reused: its read side timed out.
				w.Header().Set("Connection", "close")
				return nil, nil, outcome{
					result:  metrics.ResultBadRequest,
					status:  http.StatusRequestTimeout,
					message: fmt.Sprintf("body too slow: send at least %d bytes per second after %s", bodyMinRate, bodyGrace),
					err:     err,
				}, false
			}
			return nil, nil, outcome{
				result:  metrics.ResultBadRequest,
				status:  http.StatusBadRequest,
				message: "cannot read body",
				err:     err,
			}, false
		}
		if deadlines && n > 0 {
			_ = rc.SetReadDeadline(bodyDeadline(start, int64(len(buf))))
		}
	}
	if deadlines {
		// Back to no deadline for the rest of the request; the server sets
		// the next request's own.
		_ = rc.SetReadDeadline(time.Time{})
	}
	return buf, release, outcome{}, true
}

func (s *server) githubWebhook(w http.ResponseWriter, r *http.Request) {
	fail := func(o outcome) {
		o.forge = bot.GitHub
		if o.event == "" {
			o.event = unknownEvent
		}
		if o.delivery == "" {
			o.delivery = r.Header.Get("X-GitHub-Delivery")
		}
		s.finish(w, r, o)
	}
	body, release, o, ok := s.readBody(w, r, s.maxBody)
	if !ok {
		fail(o)
		return
	}
	defer release()
	// The signature covers the raw body; nothing in the request is looked
	// at, let alone decoded, before it checks out.
	if !validGitHubSignature(s.github.Secret, body, r.Header.Get("X-Hub-Signature-256")) {
		fail(outcome{
			result:  metrics.ResultBadSignature,
			status:  http.StatusUnauthorized,
			message: "missing or bad X-Hub-Signature-256",
		})
		return
	}
	event := r.Header.Get("X-GitHub-Event")
	delivery := r.Header.Get("X-GitHub-Delivery")
	if event == "" || delivery == "" {
		fail(outcome{
			event:   event,
			result:  metrics.ResultBadRequest,
			status:  http.StatusBadRequest,
			message: "missing X-GitHub-Event or X-GitHub-Delivery header",
		})
		return
	}
	if event == "ping" {
		// Sent when the App or hook is created: answer so the forge
		// shows the hook as healthy; there is nothing to store.
		s.finish(w, r, outcome{
			forge: bot.GitHub, event: event, delivery: delivery,
			result: metrics.ResultIgnored, status: http.StatusOK, message: "pong",
		})
		return
	}
	s.intakeDelivery(w, r, bot.GitHub, s.github.Decoder, event, delivery, body)
}

func (s *server) gitlabWebhook(w http.ResponseWriter, r *http.Request) {
	fail := func(o outcome) {
		o.forge = bot.GitLab
		if o.event == "" {
			o.event = unknownEvent
		}
		s.finish(w, r, o)
	}
	// GitLab's token does not depend on the body, so an unauthenticated
	// sender is turned away before its body is read.
	if !validGitLabToken(s.gitlab.Secret, r.Header.Get("X-Gitlab-Token")) {
		fail(outcome{
			result:  metrics.ResultBadSignature,
			status:  http.StatusUnauthorized,
			message: "missing or bad X-Gitlab-Token",
		})
		return
	}
	event := r.Header.Get("X-Gitlab-Event")
	body, release, o, ok := s.readBody(w, r, s.maxBody)
	if !ok {
		o.event = event
		fail(o)
		return
	}
	defer release()
	if event == "" {
		fail(outcome{
			result:  metrics.ResultBadRequest,
			status:  http.StatusBadRequest,
			message: "missing X-Gitlab-Event header",
		})
		return
	}
	s.intakeDelivery(w, r, bot.GitLab, s.gitlab.Decoder, event, gitlabDeliveryID(r.Header, body), body)
}

// gitlabDeliveryID is the de-duplication key of a GitLab delivery.
// Idempotency-Key is the same across GitLab's retries of one event, so it
// is the real key. X-Gitlab-Webhook-UUID is fresh per request (older
// GitLab): it never merges two events, though it cannot catch a retry. The
// body digest is the last resort for instances sending neither.
// X-Gitlab-Event-UUID is never used: hooks triggered by other hooks share
// it, so keying on it would drop distinct events.
func gitlabDeliveryID(h http.Header, body []byte) string {
	if v := strings.TrimSpace(h.Get("Idempotency-Key")); v != "" {
		return v
	}
	if v := strings.TrimSpace(h.Get("X-Gitlab-Webhook-UUID")); v != "" {
		return v
	}
	sum := sha256.Sum256(body)
	return "body-sha256:" + hex.EncodeToString(sum[:])
}

// intakeDelivery decodes an authenticated delivery and stores its events.
func (s *server) intakeDelivery(w http.ResponseWriter, r *http.Request, forge bot.ForgeName, dec Decoder, event, delivery string, body []byte) {
	o := outcome{forge: forge, event: event, delivery: delivery}
	events, err := dec.Decode(event, body)
	switch {
	case errors.Is(err, bot.ErrIgnored), err == nil && len(events) == 0:
		o.result, o.status = metrics.ResultIgnored, http.StatusNoContent
		s.finish(w, r, o)
		return
	case err != nil:
		o.result, o.status, o.err = metrics.ResultBadRequest, http.StatusBadRequest, err
		o.message = "malformed " + event + " payload: " + clip(err.Error())
		s.finish(w, r, o)
		return
	}

	received := s.now().UTC()
	for i := range events {
		ev := &events[i]
		ev.Forge, ev.Name, ev.Received = forge, event, received
		ev.DeliveryID = delivery
		if len(events) > 1 {
			// Stable sub-IDs: a redelivery decodes to the same list, so
			// each event de-duplicates on its own.
			ev.DeliveryID = delivery + "/" + strconv.Itoa(i+1)
		}
	}
	o.events = len(events)

	// The sender hanging up must not abort a store in progress: the
	// delivery is verified, and GitHub does not redeliver on its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), acceptTimeout)
	defer cancel()
	fresh := 0
	for _, ev := range events {
		dup, err := s.intake.Accept(ctx, ev)
		if err != nil {
			o.result, o.status = metrics.ResultUnavailable, http.StatusServiceUnavailable
			o.message = "storage unavailable, retry later"
			o.err = fmt.Errorf("accept %s: %w", ev.DeliveryID, err)
			s.finish(w, r, o)
			return
		}
		if !dup {
			fresh++
		}
	}
	// Every event is offered to Intake even when the first is a duplicate:
	// if an earlier attempt stored only some of them before failing, the
	// redelivery completes the set. Only a delivery with nothing new is
	// a duplicate.
	if fresh == 0 {
		o.result, o.status = metrics.ResultDuplicate, http.StatusOK
	} else {
		o.result, o.status = metrics.ResultAccepted, http.StatusAccepted
	}
	s.finish(w, r, o)
}

// validGitHubSignature checks header = "sha256=" + hex(HMAC-SHA256(secret,
// body)) in constant time. An empty secret never verifies: anyone could
// compute that HMAC.
func validGitHubSignature(secret, body []byte, header string) bool {
	if len(secret) == 0 {
		return false
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// validGitLabToken compares token with secret in constant time. Both are
// hashed first so the comparison is between equal-length values and its
// duration says nothing about the secret's length.
func validGitLabToken(secret []byte, token string) bool {
	if len(secret) == 0 || token == "" {
		return false
	}
	want := sha256.Sum256(secret)
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// clip bounds strings that come from the request before they reach logs
// and answers.
func clip(s string) string {
	const limit = 200
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
