package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func durations(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	// 1..100 ms: the p-th percentile is exactly p ms.
	var hundred []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	s := summarize(hundred)
	if hundred[0] != 100*time.Millisecond {
		t.Error("summarize reordered its argument")
	}
	want := latencySummary{Count: 100, Min: 1 * time.Millisecond, Mean: 50500 * time.Microsecond,
		P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if s != want {
		t.Errorf("summarize(1..100 ms) = %+v, want %+v", s, want)
	}

	for _, tc := range []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"single sample is every percentile", durations(7), 50, 7 * time.Millisecond},
		{"single sample p99", durations(7), 99, 7 * time.Millisecond},
		{"p50 of two is the lower", durations(1, 2), 50, 1 * time.Millisecond},
		{"p51 of two is the upper", durations(1, 2), 51, 2 * time.Millisecond},
		{"p100 is the max", durations(1, 2, 3), 100, 3 * time.Millisecond},
		{"tiny p is the min", durations(1, 2, 3), 0.1, 1 * time.Millisecond},
		// 10 samples: p99 needs rank ceil(9.9) = 10, the max: one slow
		// request in ten is the p99, not hidden by interpolation.
		{"p99 of ten is the max", durations(1, 1, 1, 1, 1, 1, 1, 1, 1, 500), 99, 500 * time.Millisecond},
		{"p90 of ten is the ninth", durations(1, 2, 3, 4, 5, 6, 7, 8, 9, 500), 90, 9 * time.Millisecond},
	} {
		if got := percentile(tc.samples, tc.p); got != tc.want {
			t.Errorf("%s: percentile(%v, %v) = %v, want %v", tc.name, tc.samples, tc.p, got, tc.want)
		}
	}
	if got := summarize(nil); got != (latencySummary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
}

// TestPercentileMatchesSort checks percentile against a plain definition on
// random data: the result is a sample, at least p% of samples are <= it,
// and fewer than p% are strictly below it.
func TestPercentileMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := 1 + rng.IntN(300)
		ds := make([]time.Duration, n)
		for i := range ds {
			ds[i] = time.Duration(rng.IntN(50)) * time.Millisecond // ties on purpose
		}
		s := summarize(ds)
		slices.Sort(ds)
		for _, p := range []float64{50, 90, 99} {
			v := percentile(ds, p)
			atMost, below := 0, 0
			for _, d := range ds {
				if d <= v {
					atMost++
				}
				if d < v {
					below++
				}
			}
			if float64(atMost) < p/100*float64(n) || float64(below) >= p/100*float64(n) {
				t.Fatalf("n=%d p%v = %v: %d samples <= it, %d below", n, p, v, atMost, below)
			}
		}
		if s.P50 > s.P90 || s.P90 > s.P99 || s.P99 > s.Max || s.Min > s.P50 {
			t.Fatalf("percentiles out of order: %+v", s)
		}
	}
}

func TestTimeline(t *testing.T) {
	at := durations(100, 2500, 900, 2100, 1999)
	lat := durations(5, 40, 7, 1, 3)
	got := timeline(at, lat)
	want := []second{{0, 2, 7, 7}, {1, 1, 3, 3}, {2, 2, 40, 40}}
	if !slices.Equal(got, want) {
		t.Errorf("timeline = %+v, want %+v", got, want)
	}
}

func TestRate(t *testing.T) {
	if got := rate(2000, 2*time.Second); got != 1000 {
		t.Errorf("rate = %v, want 1000", got)
	}
	if got := rate(5, 0); got != 0 {
		t.Errorf("rate over 0 s = %v, want 0", got)
	}
}

func TestParseStatusField(t *testing.T) {
	status := "Name:\tfoureyes\nVmPeak:\t 1954624 kB\nVmHWM:\t   52980 kB\nVmRSS:\t   40564 kB\n"
	got, err := parseStatusField(strings.NewReader(status), "VmHWM")
	if err != nil || got != 52980*1024 {
		t.Errorf("VmHWM = %d, %v; want %d", got, err, 52980*1024)
	}
	if _, err := parseStatusField(strings.NewReader(status), "VmSwap"); err == nil {
		t.Error("a missing field is not an error")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
foureyes_deliveries_processed_total{result="ok"} 40
foureyes_deliveries_processed_total{result="retry"} 3
foureyes_deliveries_processed_total{result="dead_letter"} 1
foureyes_webhooks_received_total{event="pull_request",forge="github",result="accepted"} 100
foureyes_webhooks_received_total{event="push",forge="github",result="accepted"} 5
foureyes_webhooks_received_total{event="pull_request",forge="github",result="duplicate"} 9
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := serverMetrics{OK: true, CPUSeconds: 12.5, Processed: 40, Retried: 3, Dead: 1, Accepted: 105}
	if m != want {
		t.Errorf("parseMetrics = %+v, want %+v", m, want)
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:8080/", "http://[::1]:9000", "http://127.1.2.3:80"} {
		if _, err := checkLoopback(ok); err != nil {
			t.Errorf("checkLoopback(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:8080", "http://example.com", "https://127.0.0.1", "127.0.0.1:8080", "http://0.0.0.0:8080"} {
		if _, err := checkLoopback(bad); err == nil {
			t.Errorf("checkLoopback(%q) accepted a non-loopback target", bad)
		}
	}
}

func TestBuiltinTemplate(t *testing.T) {
	tmpl, err := builtinTemplate()
	if err != nil {
		t.Fatal(err)
	}
	sha := headSHA("run", 42)
	var p struct {
		Action      string `json:"action"`
		Number      int    `json:"number"`
		PullRequest struct {
			Number int    `json:"number"`
			URL    string `json:"url"`
			Head   struct {
				SHA string `json:"sha"`
			} `json:"head"`
		} `json:"pull_request"`
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
		Installation struct {
			ID int64 `json:"id"`
		} `json:"installation"`
	}
	body := tmpl.render(42, sha)
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Action != "opened" || p.Number != 42 || p.PullRequest.Number != 42 || p.PullRequest.Head.SHA != sha ||
		!strings.HasSuffix(p.PullRequest.URL, "/pulls/42") || p.Repository.FullName != loadRepo || p.Installation.ID != loadInstallation {
		t.Errorf("rendered payload = %+v", p)
	}
	want := bytes.ReplaceAll(bytes.ReplaceAll(tmpl.body, []byte("2147480001"), []byte("42")), []byte(sentinelSHA), []byte(sha))
	if !bytes.Equal(body, want) {
		t.Error("rendered payload differs from the template with its sentinels replaced")
	}
	if bytes.Contains(body, []byte(sentinelSHA)) || bytes.Contains(body, []byte("2147480001")) {
		t.Error("a sentinel survived rendering")
	}
	// The fixture it is modelled on is 23 KB minified; the size matters
	// for intake cost (HMAC, JSON decoding).
	if len(body) < 15_000 || len(body) > 30_000 {
		t.Errorf("payload is %d bytes, want the size of a real pull_request delivery", len(body))
	}
}

func TestFileTemplate(t *testing.T) {
	raw := []byte(`{"action":"opened","number":2,"pull_request":{"number":2,"user":{"login":"octo"},"head":{"sha":"abc"}},"repository":{"full_name":"o/r"}}`)
	tmpl, err := fileTemplate("pull_request", raw)
	if err != nil {
		t.Fatal(err)
	}
	if !tmpl.perChange || tmpl.repo != "o/r" || tmpl.author != "octo" {
		t.Errorf("template = %+v", tmpl)
	}
	body := string(tmpl.render(7, "def"))
	if !strings.Contains(body, `"number":7`) || !strings.Contains(body, `"sha":"def"`) || strings.Contains(body, `"number":2`) {
		t.Errorf("rendered = %s", body)
	}
	push, err := fileTemplate("push", []byte(`{"ref":"refs/heads/main"}`))
	if err != nil || push.perChange || string(push.render(7, "x")) != `{"ref":"refs/heads/main"}` {
		t.Errorf("a non-PR payload must be sent unchanged: %+v, %v", push, err)
	}
	if _, err := fileTemplate("push", []byte(`[1]`)); err == nil {
		t.Error("a non-object payload was accepted")
	}
}

// TestRunLoad drives runLoad against an in-process stand-in for foureyes
// that checks signatures and de-duplicates delivery IDs.
func TestRunLoad(t *testing.T) {
	secret := []byte("s3cret")
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		if r.Header.Get("X-Hub-Signature-256") != "sha256="+hex.EncodeToString(m.Sum(nil)) || r.Header.Get("X-GitHub-Event") != "pull_request" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		id := r.Header.Get("X-GitHub-Delivery")
		mu.Lock()
		dup := seen[id]
		seen[id] = true
		mu.Unlock()
		if dup {
			w.WriteHeader(http.StatusOK)
			return
		}
		if strings.HasSuffix(id, "-13") {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	tmpl, err := builtinTemplate()
	if err != nil {
		t.Fatal(err)
	}
	var changes []int
	res := runLoad(t.Context(), loadConfig{
		baseURL: srv.URL, secret: secret, n: 200, concurrency: 8, duration: time.Minute,
		dupFraction: 0.25, timeout: 5 * time.Second, keepAlive: true, tmpl: tmpl, runID: "t", seed: 3,
		newChange: func(n int, _ string) { changes = append(changes, n) },
	})
	if res.Sent != 200 || res.StoppedBy != "count" {
		t.Fatalf("sent %d, stopped by %s", res.Sent, res.StoppedBy)
	}
	originals := res.Sent - res.DupsSent
	if len(changes) != originals || res.DupsSent == 0 {
		t.Errorf("%d changes seeded for %d originals (%d duplicates sent)", len(changes), originals, res.DupsSent)
	}
	// Delivery 13 is refused once (503); a later duplicate of it, if any,
	// is then answered 200 by the stand-in.
	if res.Errors["503"] != 1 || len(res.Errors) != 1 {
		t.Errorf("errors = %v, want one 503", res.Errors)
	}
	if res.Accepted != originals-1 || res.Accepted+res.Duplicates+1 != res.Sent {
		t.Errorf("accepted %d, duplicates %d of %d sent (%d originals)", res.Accepted, res.Duplicates, res.Sent, originals)
	}
	if len(res.Latencies) != res.Accepted+res.Duplicates {
		t.Errorf("%d latencies for %d acknowledgements", len(res.Latencies), res.Accepted+res.Duplicates)
	}

	short := runLoad(t.Context(), loadConfig{
		baseURL: srv.URL, secret: secret, n: 1_000_000, concurrency: 2, duration: 50 * time.Millisecond,
		rate: 100, timeout: 5 * time.Second, keepAlive: true, tmpl: tmpl, runID: "u",
	})
	if short.StoppedBy != "duration" || short.Sent == 0 || short.Sent > 10 {
		t.Errorf("rate 100/s for 50 ms: sent %d, stopped by %s", short.Sent, short.StoppedBy)
	}
}

// The report carries the machine's speed measured before the load, the
// measure its figures are to be read against.
func TestCalibration(t *testing.T) {
	tmpl, err := builtinTemplate()
	if err != nil {
		t.Fatal(err)
	}
	d := calibrate(tmpl.render(1, "abc"))
	if d <= 0 || d > 10*time.Second {
		t.Fatalf("calibrate = %s", d)
	}
	if got := calibrate([]byte("{broken")); got != 0 {
		t.Errorf("calibrate of a body that is not JSON = %s, want 0", got)
	}
	var out bytes.Buffer
	(&report{CalibrationUS: float64(d.Microseconds()), Errors: map[string]int{}}).writeText(&out, false)
	if !strings.Contains(out.String(), "calibration") || !strings.Contains(out.String(), "median of 101") {
		t.Errorf("report without its calibration:\n%s", out.String())
	}
}
