// Package handlers is foureyes' HTTP surface: it verifies webhook
// deliveries, decodes them into bot.Events, hands them to durable storage
// and answers. It never calls a forge API (the answer must not wait for
// one) and imports no forge SDK; decoding is delegated to the adapters
// through Decoder.
package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/metrics"
)

// DefaultMaxBody is the largest webhook body accepted: GitHub caps its
// payloads at 25 MiB and SPEC section 4 answers 413 above that.
const DefaultMaxBody int64 = 25 << 20

// DefaultBodyBudget bounds the webhook bodies held at once: five of the
// largest, or thousands of ordinary deliveries (a pull request event is
// about 25 KB). Without a bound, every connection may hold MaxBody, and a
// sender needs no secret to open connections.
const DefaultBodyBudget int64 = 128 << 20

// Decoder turns a verified delivery into normalized events. It returns
// bot.ErrIgnored (possibly wrapped) for deliveries that need no work and
// any other error for a payload it cannot read. The forge adapters
// implement it.
type Decoder interface {
	Decode(eventName string, body []byte) ([]bot.Event, error)
}

// Intake stores an event durably before the webhook is answered. duplicate
// is true when an event with the same forge and DeliveryID was already
// stored; an error means storage is unreachable (the forge then retries).
type Intake interface {
	Accept(ctx context.Context, ev bot.Event) (duplicate bool, err error)
}

// GitHubConfig enables POST /webhooks/github.
type GitHubConfig struct {
	Secret  []byte // the App's webhook secret (HMAC-SHA256 key)
	Decoder Decoder
}

// GitLabConfig enables POST /webhooks/gitlab.
type GitLabConfig struct {
	Secret  []byte // the value GitLab sends in X-Gitlab-Token
	Decoder Decoder
}

// Config wires the handler. A nil GitHub or GitLab leaves that webhook
// route unmounted (404), which is how a forge without credentials is off.
type Config struct {
	GitHub *GitHubConfig
	GitLab *GitLabConfig
	Intake Intake
	// Ready reports readiness for /readyz (database reachable, queue not
	// stuck); nil means always ready.
	Ready func(ctx context.Context) error
	// Metrics receives the webhook counters; nil creates an unregistered
	// set so the handler never needs nil checks.
	Metrics *metrics.Metrics
	// Gatherer is served on /metrics; nil leaves /metrics unmounted rather
	// than falling back to the global default registry.
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// MaxBody is the largest webhook body accepted (DefaultMaxBody if <= 0).
	MaxBody int64
	// BodyBudget bounds the bytes of webhook bodies held at once, across
	// all requests (DefaultBodyBudget if <= 0); at least MaxBody+1. A
	// request that finds it full waits briefly, then is answered 503.
	BodyBudget int64
	// Extra lets the caller mount more routes (details page, home page).
	Extra func(r *mux.Router)
}

// The time an Intake may take even after the sender hung up: once a
// delivery is verified, finishing the store is better than losing an event
// the sender may not redeliver (GitHub does not retry on its own).
const acceptTimeout = 15 * time.Second

// retryAfterSeconds is sent with 503 answers.
const retryAfterSeconds = "30"

type server struct {
	github  *GitHubConfig
	gitlab  *GitLabConfig
	intake  Intake
	ready   func(ctx context.Context) error
	metrics *metrics.Metrics
	log     *slog.Logger
	maxBody int64
	bodies  *semaphore.Weighted // the body budget
	// firstChunks holds bodyChunk-sized buffers for readBody to reuse.
	// GitHub's deliveries fit in one, and allocating it afresh for every
	// request was half of what the server allocated under load. The idle
	// ones are never more than the budget let be in use at once, and the
	// GC frees them when they stay unused.
	firstChunks sync.Pool
	now         func() time.Time
}

// New returns the HTTP handler for cfg. It panics when an enabled webhook
// lacks its Decoder or the Intake is missing: that is a wiring mistake to
// catch at start, not on the first delivery.
func New(cfg Config) http.Handler {
	if (cfg.GitHub != nil || cfg.GitLab != nil) && cfg.Intake == nil {
		panic("handlers: a webhook is enabled but Config.Intake is nil")
	}
	if cfg.GitHub != nil && cfg.GitHub.Decoder == nil {
		panic("handlers: Config.GitHub.Decoder is nil")
	}
	if cfg.GitLab != nil && cfg.GitLab.Decoder == nil {
		panic("handlers: Config.GitLab.Decoder is nil")
	}
	s := &server{
		github:  cfg.GitHub,
		gitlab:  cfg.GitLab,
		intake:  cfg.Intake,
		ready:   cfg.Ready,
		metrics: cfg.Metrics,
		log:     cfg.Logger,
		maxBody: cfg.MaxBody,
		now:     time.Now,
	}
	if s.metrics == nil {
		s.metrics = metrics.New(nil)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	budget := cfg.BodyBudget
	if budget <= 0 {
		budget = max(DefaultBodyBudget, s.maxBody+1)
	}
	if budget < s.maxBody+1 {
		panic(fmt.Sprintf("handlers: Config.BodyBudget %d is below MaxBody+1 (%d): the largest delivery could never be read", budget, s.maxBody+1))
	}
	s.bodies = semaphore.NewWeighted(budget)

	r := mux.NewRouter()
	if s.github != nil {
		r.HandleFunc("/webhooks/github", s.githubWebhook).Methods(http.MethodPost)
	}
	if s.gitlab != nil {
		r.HandleFunc("/webhooks/gitlab", s.gitlabWebhook).Methods(http.MethodPost)
	}
	r.HandleFunc("/healthz", healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet, http.MethodHead)
	if cfg.Gatherer != nil {
		r.Handle("/metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
		})).Methods(http.MethodGet)
	}
	r.HandleFunc("/api/validate", s.validate).Methods(http.MethodPost)
	if cfg.Extra != nil {
		cfg.Extra(r)
	}
	return r
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.ready != nil {
		// A probe that hangs is as bad as a failing one; bound it below
		// the usual Kubernetes probe timeout.
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "error", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
	}
	_, _ = w.Write([]byte("ok\n"))
}

// writeJSON answers with v as JSON. 204 carries no body by definition.
func writeJSON(w http.ResponseWriter, status int, v any) {
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
