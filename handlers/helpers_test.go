package handlers_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/handlers"
	"github.com/foureyes-dev/foureyes/internal/testfixtures"
	"github.com/foureyes-dev/foureyes/metrics"
)

// fixture reads one of the real webhook payloads in testdata/fixtures.
func fixture(t testing.TB, forge, name string) []byte {
	t.Helper()
	return testfixtures.Read(t, forge, name)
}

func fixtureNames(t testing.TB, forge string) []string {
	t.Helper()
	m := testfixtures.Glob(t, forge, "*.json")
	var names []string
	for _, p := range m {
		if filepath.Base(p) != "headers.json" {
			names = append(names, filepath.Base(p))
		}
	}
	return names
}

// jsonDecoder stands in for the forge adapters' decoders (written
// elsewhere): it really parses the JSON, so broken payloads fail, and
// returns `split` events (1 if zero) or bot.ErrIgnored for ignored names.
type jsonDecoder struct {
	ignored map[string]bool
	split   int
}

func (d jsonDecoder) Decode(eventName string, body []byte) ([]bot.Event, error) {
	if d.ignored[eventName] {
		return nil, fmt.Errorf("%s: %w", eventName, bot.ErrIgnored)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventName, err)
	}
	action, _ := m["action"].(string)
	n := max(d.split, 1)
	evs := make([]bot.Event, n)
	for i := range evs {
		// Forge is deliberately wrong: the handler must set it.
		evs[i] = bot.Event{Kind: bot.EventChange, Action: action, Forge: "wrong"}
	}
	return evs, nil
}

// memIntake is an in-memory stand-in for durable storage.
type memIntake struct {
	mu     sync.Mutex
	seen   map[string]bool
	events []bot.Event
	calls  int
	err    error
}

func newIntake() *memIntake { return &memIntake{seen: map[string]bool{}} }

func (m *memIntake) Accept(_ context.Context, ev bot.Event) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.err != nil {
		return false, m.err
	}
	key := string(ev.Forge) + "\x00" + ev.DeliveryID
	if m.seen[key] {
		return true, nil
	}
	m.seen[key] = true
	m.events = append(m.events, ev)
	return false, nil
}

func (m *memIntake) snapshot() (calls int, events []bot.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls, append([]bot.Event(nil), m.events...)
}

var (
	githubSecret = []byte("It's a Secret to Everybody")
	gitlabSecret = []byte("gitlab-hook-token-0123456789")
)

type env struct {
	h       http.Handler
	intake  *memIntake
	reg     *prometheus.Registry
	metrics *metrics.Metrics
}

type option func(*handlers.Config)

func newEnv(t testing.TB, opts ...option) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	in := newIntake()
	cfg := handlers.Config{
		GitHub:   &handlers.GitHubConfig{Secret: githubSecret, Decoder: jsonDecoder{ignored: map[string]bool{"installation": true}}},
		GitLab:   &handlers.GitLabConfig{Secret: gitlabSecret, Decoder: jsonDecoder{ignored: map[string]bool{"Emoji Hook": true}}},
		Intake:   in,
		Metrics:  m,
		Gatherer: reg,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return &env{h: handlers.New(cfg), intake: in, reg: reg, metrics: m}
}

func sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (e *env) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

func githubRequest(event, delivery string, body []byte, signature string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/github", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/abc123")
	if event != "" {
		req.Header.Set("X-GitHub-Event", event)
	}
	if delivery != "" {
		req.Header.Set("X-GitHub-Delivery", delivery)
	}
	if signature != "" {
		req.Header.Set("X-Hub-Signature-256", signature)
	}
	return req
}

// gitlabHeaders returns the delivery headers GitLab documents, with the
// example values transcribed in fixtures/gitlab/headers.json.
func gitlabHeaders(t testing.TB) http.Header {
	t.Helper()
	var doc struct {
		DeliveryHeaders []struct {
			Header  string  `json:"header"`
			Example *string `json:"example"`
		} `json:"delivery_headers"`
	}
	if err := json.Unmarshal(fixture(t, "gitlab", "headers.json"), &doc); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for _, d := range doc.DeliveryHeaders {
		if d.Example != nil {
			h.Set(d.Header, *d.Example)
		}
	}
	for _, k := range []string{"Idempotency-Key", "X-Gitlab-Webhook-UUID", "X-Gitlab-Event-UUID", "X-Gitlab-Event"} {
		if h.Get(k) == "" {
			t.Fatalf("headers.json has no example for %s", k)
		}
	}
	return h
}

func gitlabRequest(h http.Header, body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", strings.NewReader(string(body)))
	req.Header = h.Clone()
	req.Header.Set("Content-Type", "application/json")
	return req
}

// counter reads one series from the registry (prometheus/testutil needs a
// module this repository does not require, so the registry is gathered
// directly). Absent series read as 0.
func counter(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return metricValue(m)
		}
	}
	return 0
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func received(t testing.TB, e *env, forge, event, result string) float64 {
	t.Helper()
	return counter(t, e.reg, "foureyes_webhooks_received_total",
		map[string]string{"forge": forge, "event": event, "result": result})
}

func decodeBody(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json (body %q)", ct, rec.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer is not JSON: %v: %q", err, rec.Body.String())
	}
	return m
}

var errDown = errors.New("database is down")
