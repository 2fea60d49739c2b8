// Package metrics defines foureyes' Prometheus metrics (SPEC section 10).
// Everything hangs off a *Metrics value registered on a caller-supplied
// registry, so tests and several servers in one process never share state.
package metrics

import (
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "foureyes"

// Label values of WebhooksReceived's result label.
const (
	ResultAccepted     = "accepted"
	ResultDuplicate    = "duplicate"
	ResultIgnored      = "ignored"
	ResultBadSignature = "bad_signature"
	ResultBadRequest   = "bad_request"
	ResultTooLarge     = "too_large"
	ResultUnavailable  = "unavailable"
	// ResultBusy: the bodies of the webhooks being received at once filled
	// the server's budget (handlers.Config.BodyBudget); answered 503.
	ResultBusy = "busy"
)

// Label values of DeliveriesProcessed's result label.
const (
	ProcessedOK         = "ok"
	ProcessedRetry      = "retry"
	ProcessedDeadLetter = "dead_letter"
)

// Metrics holds every foureyes collector. The fields are exported so the
// packages that observe something (queue, service, forge adapters) write to
// them directly; label names are documented on each field.
type Metrics struct {
	// WebhooksReceived counts deliveries by forge, event and result
	// (accepted, duplicate, ignored, bad_signature, bad_request, too_large,
	// busy, unavailable).
	WebhooksReceived *prometheus.CounterVec
	// QueueDepth is the number of stored deliveries not yet processed.
	QueueDepth prometheus.Gauge
	// QueueOldestAge is the age in seconds of the oldest pending delivery.
	QueueOldestAge prometheus.Gauge
	// QueueDeadLetters is the number of deliveries that exhausted retries.
	QueueDeadLetters prometheus.Gauge
	// DeliveriesProcessed counts worker outcomes by result (ok, retry,
	// dead_letter).
	DeliveriesProcessed *prometheus.CounterVec
	// Evaluations counts evaluations by forge and verdict.
	Evaluations *prometheus.CounterVec
	// EvaluationDuration observes how long an evaluation took, by forge.
	EvaluationDuration *prometheus.HistogramVec
	// ForgeAPIRequests counts forge API requests by forge and HTTP status
	// ("error" when no response arrived). Written by Transport.
	ForgeAPIRequests *prometheus.CounterVec
	// ForgeRateLimitRemaining is the last rate-limit remainder the forge
	// reported, by forge. Written by Transport.
	ForgeRateLimitRemaining *prometheus.GaugeVec
	// InstallationRateLimitRemaining is the last rate-limit remainder the
	// forge reported for one installation (GitHub gives each App
	// installation its own budget), by forge and installation ID.
	InstallationRateLimitRemaining *prometheus.GaugeVec
	// ForgeAPIRequestsPerEvaluation observes the API cost of one evaluation
	// (see RequestCounter), by forge.
	ForgeAPIRequestsPerEvaluation *prometheus.HistogramVec
	// UnreviewedCommits counts commits flagged by the release guard, by
	// forge and reason (direct-push, force-push, stale-approval,
	// unapproved-merge).
	UnreviewedCommits *prometheus.CounterVec
	// Overrides counts verdict overrides, by forge.
	Overrides *prometheus.CounterVec
	// PolicyErrors counts evaluations that met an invalid policy, by forge.
	PolicyErrors *prometheus.CounterVec
	// ReconciledPushes counts pushes the forge never delivered that
	// reconciliation found and queued, by forge.
	ReconciledPushes *prometheus.CounterVec
	// TamperedChecks counts "foureyes" checks or statuses written by someone
	// else, by forge.
	TamperedChecks *prometheus.CounterVec
	// BuildInfo is constantly 1, labelled with version, commit and
	// goversion; see SetBuildInfo.
	BuildInfo *prometheus.GaugeVec

	collectors []prometheus.Collector
}

// New creates the collectors and registers them on reg (when reg is not
// nil). Like prometheus.MustRegister it panics when a name is already
// registered there: that is a wiring bug, not a runtime condition.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		WebhooksReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "webhooks_received_total",
			Help:      "Webhook deliveries received, by forge, event and result.",
		}, []string{"forge", "event", "result"}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "queue_depth",
			Help:      "Stored deliveries waiting to be processed.",
		}),
		QueueOldestAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "queue_oldest_age_seconds",
			Help:      "Age of the oldest delivery waiting to be processed.",
		}),
		QueueDeadLetters: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "queue_dead_letters",
			Help:      "Deliveries that exhausted their retries.",
		}),
		DeliveriesProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "deliveries_processed_total",
			Help:      "Delivery processing attempts, by result (ok, retry, dead_letter).",
		}, []string{"result"}),
		Evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "evaluations_total",
			Help:      "Evaluations of a change, by forge and verdict.",
		}, []string{"forge", "verdict"}),
		EvaluationDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "evaluation_duration_seconds",
			Help:      "Time to evaluate a change, forge API calls included.",
			// Evaluations are dominated by forge round trips and retries
			// with backoff, so the buckets reach well past DefBuckets.
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120},
		}, []string{"forge"}),
		ForgeAPIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "forge_api_requests_total",
			Help:      "Forge API requests, by forge and HTTP status.",
		}, []string{"forge", "status"}),
		ForgeRateLimitRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "forge_rate_limit_remaining",
			Help:      "Requests left in the forge's rate-limit window, as last reported.",
		}, []string{"forge"}),
		InstallationRateLimitRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "forge_installation_rate_limit_remaining",
			Help:      "Requests left in one installation's rate-limit window, as last reported.",
		}, []string{"forge", "installation"}),
		ForgeAPIRequestsPerEvaluation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "forge_api_requests_per_evaluation",
			Help:      "Forge API requests spent on one evaluation.",
			// The goals are 7 requests cold and 3 warm; resolution matters
			// around those figures.
			Buckets: []float64{1, 2, 3, 4, 5, 6, 7, 8, 10, 15, 20, 30, 50, 100},
		}, []string{"forge"}),
		UnreviewedCommits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "unreviewed_commits_total",
			Help:      "Commits flagged on release branches, by forge and reason.",
		}, []string{"forge", "reason"}),
		Overrides: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "overrides_total",
			Help:      "Verdict overrides, by forge.",
		}, []string{"forge"}),
		PolicyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "policy_errors_total",
			Help:      "Evaluations that met an invalid policy file, by forge.",
		}, []string{"forge"}),
		ReconciledPushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "reconciled_pushes_total",
			Help:      "Pushes the forge sent no event for, found by reconciling branch tips and tags, by forge.",
		}, []string{"forge"}),
		TamperedChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "tampered_checks_total",
			Help:      "foureyes checks or statuses written by someone else, by forge.",
		}, []string{"forge"}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "build_info",
			Help:      "Always 1; labelled with the build's version, commit and Go version.",
		}, []string{"version", "commit", "goversion"}),
	}
	m.collectors = []prometheus.Collector{
		m.WebhooksReceived, m.QueueDepth, m.QueueOldestAge, m.QueueDeadLetters,
		m.DeliveriesProcessed, m.Evaluations, m.EvaluationDuration,
		m.ForgeAPIRequests, m.ForgeRateLimitRemaining, m.InstallationRateLimitRemaining, m.ForgeAPIRequestsPerEvaluation,
		m.UnreviewedCommits, m.Overrides, m.PolicyErrors, m.TamperedChecks,
		m.ReconciledPushes, m.BuildInfo,
	}
	// A build_info series from the embedded build information, so the
	// family is never empty even when the caller does not know better.
	version, commit := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				commit = s.Value
			}
		}
	}
	m.SetBuildInfo(version, commit)
	if reg != nil {
		reg.MustRegister(m.collectors...)
	}
	return m
}

// SetBuildInfo replaces the build_info series with one for version and
// commit (the values linked into the binary by cmd/foureyes).
func (m *Metrics) SetBuildInfo(version, commit string) {
	m.BuildInfo.Reset()
	m.BuildInfo.WithLabelValues(version, commit, runtime.Version()).Set(1)
}

// Names returns the name of every metric family, sorted. It is read from
// the collectors' descriptors, so it cannot drift from what is exported.
func (m *Metrics) Names() []string {
	var names []string
	for _, c := range m.collectors {
		for _, d := range describe(c) {
			if n := descName(d); n != "" {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// HasSeries reports whether a series name used in a query (an alert rule,
// a dashboard) exists: a family name, or for histograms also its _bucket,
// _sum and _count series.
func (m *Metrics) HasSeries(name string) bool {
	for _, c := range m.collectors {
		_, isHist := c.(*prometheus.HistogramVec)
		for _, d := range describe(c) {
			fam := descName(d)
			if name == fam {
				return true
			}
			if isHist {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if name == fam+suffix {
						return true
					}
				}
			}
		}
	}
	return false
}

func describe(c prometheus.Collector) []*prometheus.Desc {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var ds []*prometheus.Desc
	for d := range ch {
		ds = append(ds, d)
	}
	return ds
}

// descName extracts the fully-qualified name from a descriptor. Desc offers
// no accessor; its String form starts with `Desc{fqName: "NAME"`, and metric
// names cannot contain quotes, so the quoted prefix is unambiguous.
func descName(d *prometheus.Desc) string {
	s := strings.TrimPrefix(d.String(), `Desc{fqName: `)
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return ""
	}
	name, err := strconv.Unquote(q)
	if err != nil {
		return ""
	}
	return name
}
