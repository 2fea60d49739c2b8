package main

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

// TestScanCost1000 measures `foureyes scan` over 1,000 squash-merged pull
// requests on the fake GitHub, running the built binary as a user does:
// API requests per commit, wall time and the scan process's peak RSS. It
// takes a few seconds, so it runs only with FOUREYES_SCAN_BENCH=1:
//
//	FOUREYES_SCAN_BENCH=1 go test ./cmd/foureyes -run TestScanCost1000 -v
func TestScanCost1000(t *testing.T) {
	if os.Getenv("FOUREYES_SCAN_BENCH") == "" {
		t.Skip("set FOUREYES_SCAN_BENCH=1 to measure a 1,000-change scan")
	}
	const n = 1000
	e := newScanGitHub(t)
	var main []fakegithub.Commit
	for i := n; i >= 1; i-- {
		at := scanT0.Add(-time.Duration(n-i+1) * time.Hour)
		c := scanCommit(fmt.Sprintf("c%d", i), "alice", at.Add(-time.Hour))
		e.merged(mergedSpec{number: i, author: "alice", commits: []fakegithub.Commit{c}, landed: fmt.Sprintf("S%d", i), mergedAt: at,
			reviews: []fakegithub.Review{approval("bob", fmt.Sprintf("c%d", i), at.Add(-30*time.Minute))}})
		e.fake.SetCommitPulls(scanRepo, fakegithub.SHA(fmt.Sprintf("S%d", i)), i)
		main = append(main, scanCommit(fmt.Sprintf("S%d", i), "alice", at))
	}
	e.fake.SetHistory(scanRepo, "main", main)
	e.fake.ResetRequests()

	bin := foureyesBinary(t)
	cmd := exec.Command(bin, "scan", "--repo", scanRepo, "--last", fmt.Sprint(n), "--format", "json")
	cmd.Dir = e.dir
	for k, v := range e.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	start := time.Now()
	out, err := cmd.Output()
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("scan: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf(`"summary_line": "%d of %d commits independently reviewed (100.0 %%)`, n, n)) {
		t.Fatalf("unexpected result:\n%.2000s", out)
	}
	reqs := e.fake.Requests()
	by := map[string]int{}
	for _, r := range reqs {
		by[r.Method+" "+shape(r.Path)]++
	}
	var kinds []string
	for k, c := range by {
		kinds = append(kinds, fmt.Sprintf("%6d %s", c, k))
	}
	sort.Sort(sort.Reverse(sort.StringSlice(kinds)))
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
	t.Logf("scan of %d squash-merged changes: %d requests (%.2f per commit), wall %v, peak RSS %.1f MiB",
		n, len(reqs), float64(len(reqs))/n, wall.Round(time.Millisecond), float64(rss)/1024)
	t.Logf("requests by kind:\n%s", strings.Join(kinds, "\n"))
	if w := writes(reqs); len(w) != 0 {
		t.Errorf("scan wrote: %v", w[:min(len(w), 5)])
	}
}

// shape replaces the variable parts of an API path (numbers, SHAs, logins).
func shape(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		switch {
		case len(s) == 40:
			parts[i] = "{sha}"
		case s != "" && strings.Trim(s, "0123456789") == "":
			parts[i] = "{n}"
		case i > 0 && parts[i-1] == "collaborators":
			parts[i] = "{user}"
		}
	}
	return strings.Join(parts, "/")
}
