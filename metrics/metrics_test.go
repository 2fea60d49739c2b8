package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/foureyes-dev/foureyes/metrics"
)

// value gathers reg and returns the value of the counter, gauge or
// histogram sample count of family name with exactly the given labels.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !labelsEqual(m.GetLabel(), labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func labelsEqual(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, lp := range got {
		if v, ok := want[lp.GetName()]; !ok || v != lp.GetValue() {
			return false
		}
	}
	return true
}

func TestNamesComeFromRegisteredCollectors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	want := []string{
		"foureyes_build_info",
		"foureyes_deliveries_processed_total",
		"foureyes_evaluation_duration_seconds",
		"foureyes_evaluations_total",
		"foureyes_forge_api_requests_per_evaluation",
		"foureyes_forge_api_requests_total",
		"foureyes_forge_installation_rate_limit_remaining",
		"foureyes_forge_rate_limit_remaining",
		"foureyes_overrides_total",
		"foureyes_policy_errors_total",
		"foureyes_queue_dead_letters",
		"foureyes_queue_depth",
		"foureyes_queue_oldest_age_seconds",
		"foureyes_reconciled_pushes_total",
		"foureyes_tampered_checks_total",
		"foureyes_unreviewed_commits_total",
		"foureyes_webhooks_received_total",
	}
	if got := m.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %q\nwant %q", got, want)
	}

	// Touch every vector so each family is gathered, then check that the
	// gathered names are exactly Names(): nothing exported goes unlisted.
	m.WebhooksReceived.WithLabelValues("github", "push", metrics.ResultAccepted).Inc()
	m.DeliveriesProcessed.WithLabelValues(metrics.ProcessedOK).Inc()
	m.Evaluations.WithLabelValues("github", "success").Inc()
	m.EvaluationDuration.WithLabelValues("github").Observe(0.3)
	m.ForgeAPIRequests.WithLabelValues("github", "200").Inc()
	m.ForgeRateLimitRemaining.WithLabelValues("github").Set(10)
	m.InstallationRateLimitRemaining.WithLabelValues("github", "42").Set(10)
	m.ForgeAPIRequestsPerEvaluation.WithLabelValues("github").Observe(7)
	m.UnreviewedCommits.WithLabelValues("github", "direct-push").Inc()
	m.Overrides.WithLabelValues("github").Inc()
	m.PolicyErrors.WithLabelValues("github").Inc()
	m.TamperedChecks.WithLabelValues("gitlab").Inc()
	m.ReconciledPushes.WithLabelValues("github").Inc()
	fams, err := reg.Gather() // the pedantic registry also lints help and names
	if err != nil {
		t.Fatal(err)
	}
	var gathered []string
	for _, f := range fams {
		gathered = append(gathered, f.GetName())
	}
	if !slices.Equal(gathered, want) {
		t.Fatalf("gathered %q\nwant %q", gathered, want)
	}

	for _, s := range []string{"foureyes_evaluation_duration_seconds_bucket", "foureyes_forge_api_requests_per_evaluation_count", "foureyes_queue_depth"} {
		if !m.HasSeries(s) {
			t.Errorf("HasSeries(%q) = false", s)
		}
	}
	for _, s := range []string{"foureyes_queue_depth_bucket", "foureyes_webhooks_received_total_sum", "foureyes_nope"} {
		if m.HasSeries(s) {
			t.Errorf("HasSeries(%q) = true", s)
		}
	}
}

func TestNewPanicsOnDoubleRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg)
	defer func() {
		if recover() == nil {
			t.Fatal("second New on the same registry did not panic")
		}
	}()
	metrics.New(reg)
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.SetBuildInfo("v1.2.3", "abc123")
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "foureyes_build_info" {
			continue
		}
		if n := len(f.GetMetric()); n != 1 {
			t.Fatalf("build_info has %d series, want 1", n)
		}
		got := map[string]string{}
		for _, lp := range f.GetMetric()[0].GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if got["version"] != "v1.2.3" || got["commit"] != "abc123" || !strings.HasPrefix(got["goversion"], "go") {
			t.Fatalf("build_info labels = %v", got)
		}
		return
	}
	t.Fatal("foureyes_build_info not gathered")
}

func TestTransportCountsRequestsAndRateLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/github":
			w.Header().Set("X-RateLimit-Remaining", "4987")
			w.WriteHeader(http.StatusOK)
		case "/gitlab":
			w.Header().Set("RateLimit-Remaining", "599")
			w.WriteHeader(http.StatusNotModified)
		case "/nolimit":
			w.WriteHeader(http.StatusBadGateway)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	gh := &http.Client{Transport: m.Transport("github", srv.Client().Transport)}
	gl := &http.Client{Transport: m.Transport("gitlab", nil)}

	ctx, counter := metrics.WithRequestCounter(context.Background())
	get := func(c *http.Client, ctx context.Context, path string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get(gh, ctx, "/github")
	get(gh, ctx, "/github")
	get(gh, ctx, "/nolimit") // no header: the gauge keeps 4987
	get(gl, ctx, "/gitlab")
	get(gh, context.Background(), "/github") // not part of the evaluation

	if got := counter.Count(); got != 4 {
		t.Errorf("RequestCounter.Count() = %d, want 4", got)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"foureyes_forge_api_requests_total", map[string]string{"forge": "github", "status": "200"}, 3},
		{"foureyes_forge_api_requests_total", map[string]string{"forge": "github", "status": "502"}, 1},
		{"foureyes_forge_api_requests_total", map[string]string{"forge": "gitlab", "status": "304"}, 1},
		{"foureyes_forge_rate_limit_remaining", map[string]string{"forge": "github"}, 4987},
		{"foureyes_forge_rate_limit_remaining", map[string]string{"forge": "gitlab"}, 599},
	} {
		got, ok := value(t, reg, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}

type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("connection refused")
}

func TestTransportCountsFailedRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	ctx, counter := metrics.WithRequestCounter(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://forge.invalid/", nil)
	if _, err := m.Transport("github", failingTransport{}).RoundTrip(req); err == nil {
		t.Fatal("want the transport's error")
	}
	if counter.Count() != 1 {
		t.Errorf("Count() = %d, want 1", counter.Count())
	}
	if got, _ := value(t, reg, "foureyes_forge_api_requests_total", map[string]string{"forge": "github", "status": "error"}); got != 1 {
		t.Errorf("error requests = %v, want 1", got)
	}
}

func TestRequestCounterIsConcurrencySafe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	m := metrics.New(prometheus.NewRegistry())
	c := &http.Client{Transport: m.Transport("github", srv.Client().Transport)}
	ctx, counter := metrics.WithRequestCounter(context.Background())
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if counter.Count() != 50 {
		t.Fatalf("Count() = %d, want 50", counter.Count())
	}
	if metrics.RequestCounterFrom(context.Background()) != nil {
		t.Fatal("a bare context must carry no counter")
	}
}
