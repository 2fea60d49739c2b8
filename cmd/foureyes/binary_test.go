package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/store"
)

// These tests start the built binary the way the README does
// (`foureyes serve` with the environment), not the server in-process.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func foureyesBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "foureyes-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "foureyes")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// binaryEnv is a fake GitHub plus the environment that points a foureyes
// process at it.
type binaryEnv struct {
	fake   *fakegithub.Fake
	secret []byte
	dir    string
	addr   string
	env    []string
}

func newBinaryEnv(t *testing.T) *binaryEnv {
	t.Helper()
	key, pemBytes, err := fakegithub.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	be := &binaryEnv{secret: []byte("binary-test-secret"), dir: t.TempDir()}
	be.fake = fakegithub.New(77, &key.PublicKey)
	t.Cleanup(be.fake.Close)
	keyFile := filepath.Join(be.dir, "app.pem")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be.addr = ln.Addr().String()
	ln.Close()
	be.env = append(os.Environ(),
		"FOUREYES_LISTEN="+be.addr,
		"FOUREYES_GITHUB_APP_ID=77",
		"FOUREYES_GITHUB_PRIVATE_KEY_FILE="+keyFile,
		"FOUREYES_GITHUB_WEBHOOK_SECRET="+string(be.secret),
		"FOUREYES_GITHUB_API_URL="+be.fake.URL(),
		"FOUREYES_LOG_FORMAT=text",
	)
	f := be.fake
	f.AddRepo(e2eRepo)
	f.SetDefaultBranch(e2eRepo, e2eBase)
	f.SetPermission(e2eRepo, "alice", "write")
	f.SetPermission(e2eRepo, "bob", "write")
	return be
}

// auditChain is the chain keyed by the audit key the server generated in
// its state directory (the working directory).
func (be *binaryEnv) auditChain(t *testing.T) *audit.Chain {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(be.dir, "audit.key"))
	if err != nil {
		t.Fatalf("the server did not generate its audit key: %v", err)
	}
	c, err := audit.NewChain([]byte(strings.TrimSpace(string(raw))))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// proc is a running foureyes process.
type proc struct {
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result once
}

// wait returns the exit error, or fails after timeout.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.exited:
		return err
	case <-time.After(timeout):
		t.Fatalf("process still running after %s", timeout)
		return nil
	}
}

// start runs `foureyes serve` in be.dir (so the default sqlite:foureyes.db
// lands there) and waits until it is healthy.
func (be *binaryEnv) start(t *testing.T) *proc {
	t.Helper()
	cmd := exec.Command(foureyesBinary(t), "serve")
	cmd.Dir = be.dir
	cmd.Env = be.env
	logf, err := os.OpenFile(filepath.Join(be.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		logf.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	healthy := make(chan error, 1)
	go func() { healthy <- waitHealthy(ctx, "http://"+be.addr, 20*time.Second) }()
	select {
	case err := <-healthy:
		if err != nil {
			t.Fatalf("%v\n%s", err, be.log())
		}
	case err := <-p.exited:
		t.Fatalf("foureyes serve exited at start: %v\n%s", err, be.log())
	}
	return p
}

func (be *binaryEnv) log() string {
	b, _ := os.ReadFile(filepath.Join(be.dir, "server.log"))
	return string(b)
}

// addPR adds pull request n by alice and returns its opened payload.
func (be *binaryEnv) addPR(t *testing.T, n int) (fakegithub.PR, []byte) {
	c := fakegithub.Commit{SHA: fakegithub.SHA(fmt.Sprintf("bin-%s-%d", t.Name(), n)), Message: "change", Author: ident("alice"), Committer: ident("alice")}
	pr := fakegithub.PR{Number: n, Author: fakegithub.User{Login: "alice"}, BaseSHA: fakegithub.SHA(e2eBase), Commits: []fakegithub.Commit{c},
		Files: []fakegithub.File{{Filename: fmt.Sprintf("src/f%d.go", n), Patch: "+x"}}}
	be.fake.AddPR(e2eRepo, pr)
	pr, _ = be.fake.PR(e2eRepo, n)
	body, _ := json.Marshal(prFixture(t, "opened", pr, "alice"))
	return pr, body
}

func (be *binaryEnv) approve(t *testing.T, pr fakegithub.PR, reviewer string) []byte {
	id := be.fake.AddReview(e2eRepo, pr.Number, fakegithub.Review{User: fakegithub.User{Login: reviewer}, State: "APPROVED", CommitID: pr.HeadSHA})
	body, _ := json.Marshal(reviewFixture(t, pr, id, reviewer, "approved", pr.HeadSHA))
	return body
}

func (be *binaryEnv) waitRuns(t *testing.T, prs []fakegithub.PR, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		done := 0
		for _, pr := range prs {
			for _, r := range be.fake.CheckRuns(e2eRepo, pr.HeadSHA) {
				if conclusion(r) == want {
					done++
				}
			}
		}
		if done >= len(prs) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d heads reached %s\n%s", done, len(prs), want, be.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBinaryServeMetricsAndGracefulStop(t *testing.T) {
	be := newBinaryEnv(t)
	cmd := be.start(t)
	base := "http://" + be.addr
	pr, opened := be.addPR(t, 1)
	if s, err := sendGitHub(context.Background(), base, be.secret, "pull_request", "bin-1", opened); err != nil || s != http.StatusAccepted {
		t.Fatalf("opened: %d %v", s, err)
	}
	if s, err := sendGitHub(context.Background(), base, be.secret, "pull_request_review", "bin-2", be.approve(t, pr, "bob")); err != nil || s != http.StatusAccepted {
		t.Fatalf("review: %d %v", s, err)
	}
	be.waitRuns(t, []fakegithub.PR{pr}, "success")

	// The check run is published before the evaluation is counted (the
	// count waits for the audit record), so the metric may lag the check
	// run by a moment: read /metrics until it shows the evaluation.
	var metrics []byte
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(metrics), `foureyes_evaluations_total{forge="github",verdict="success"}`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		`foureyes_webhooks_received_total{event="pull_request",forge="github",result="accepted"} 1`,
		`foureyes_evaluations_total{forge="github",verdict="success"}`,
		`foureyes_forge_api_requests_total{forge="github"`,
		`foureyes_build_info{`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	start := time.Now()
	if err := cmd.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.wait(t, 15*time.Second); err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, be.log())
	}
	t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(be.log(), "stopped") {
		t.Errorf("no clean stop in the log:\n%s", be.log())
	}
}

// TestBinaryCrashLosesNothing sends a burst, kills the server with SIGKILL
// right after the last 202, restarts it, and expects every accepted
// delivery processed to its verdict, with one check run per head.
func TestBinaryCrashLosesNothing(t *testing.T) {
	be := newBinaryEnv(t)
	cmd := be.start(t)
	base := "http://" + be.addr
	const n = 40
	var prs []fakegithub.PR
	accepted := 0
	for i := 1; i <= n; i++ {
		pr, opened := be.addPR(t, i)
		prs = append(prs, pr)
		for j, body := range [][]byte{opened, be.approve(t, pr, "bob")} {
			event := []string{"pull_request", "pull_request_review"}[j]
			s, err := sendGitHub(context.Background(), base, be.secret, event, fmt.Sprintf("crash-%d-%d", i, j), body)
			if err != nil || s != http.StatusAccepted {
				t.Fatalf("delivery %d/%d: %d %v", i, j, s, err)
			}
			accepted++
		}
	}
	if err := cmd.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.wait(t, 10*time.Second)

	// What the killed process had not finished is still in the database.
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(be.dir, "foureyes.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := db.QueueStats(context.Background(), time.Now())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after SIGKILL: %d done, %d pending, %d leased of %d accepted", st.Done, st.Pending, st.Leased, accepted)
	if got := st.Done + st.Pending + st.Leased; got != accepted {
		t.Fatalf("%d deliveries stored, %d accepted", got, accepted)
	}

	restarted := time.Now()
	be.start(t)
	be.waitRuns(t, prs, "success")
	t.Logf("all %d PRs final %s after the restart began", n, time.Since(restarted).Round(time.Millisecond))
	for _, pr := range prs {
		if runs := be.fake.CheckRuns(e2eRepo, pr.HeadSHA); len(runs) != 1 {
			t.Errorf("PR %d: %d check runs on its head, want 1", pr.Number, len(runs))
		}
	}
	db, err = store.Open(context.Background(), "sqlite:"+filepath.Join(be.dir, "foureyes.db"), nil, store.WithAuditChain(be.auditChain(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err = db.QueueStats(context.Background(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if st.Done == accepted || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Done != accepted || st.Dead != 0 {
		t.Fatalf("queue after restart: %+v, want %d done", st, accepted)
	}
	if n, err := db.VerifyAudit(context.Background()); err != nil {
		t.Fatalf("audit trail after crash: %v (after %d records)", err, n)
	}
}

// TestBinaryAuditCommands runs `audit verify|list|export` and `backup` on
// the database a server wrote.
func TestBinaryAuditCommands(t *testing.T) {
	be := newBinaryEnv(t)
	cmd := be.start(t)
	pr, opened := be.addPR(t, 1)
	if s, err := sendGitHub(context.Background(), "http://"+be.addr, be.secret, "pull_request", "a-1", opened); err != nil || s != http.StatusAccepted {
		t.Fatalf("opened: %d %v", s, err)
	}
	be.waitRuns(t, []fakegithub.PR{pr}, "in_progress")

	run := func(args ...string) (string, int) {
		c := exec.Command(foureyesBinary(t), args...)
		c.Dir, c.Env = be.dir, be.env
		out, err := c.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	// While the server runs: a consistent backup, then the trail.
	if out, code := run("backup", "backup.db"); code != 0 {
		t.Fatalf("backup: %d %s", code, out)
	}
	if out, code := run("audit", "verify"); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %d %s", code, out)
	}
	if out, code := run("audit", "list"); code != 0 || !strings.Contains(out, "evaluation") || !strings.Contains(out, "#1") {
		t.Fatalf("audit list: %d %s", code, out)
	}
	out, code := run("audit", "export", "--repo", e2eRepo, "-o", "repo.jsonl")
	if code != 0 {
		t.Fatalf("audit export: %d %s", code, out)
	}
	exported, err := os.ReadFile(filepath.Join(be.dir, "repo.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(string(exported)))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		if rec["repo"] != e2eRepo || rec["hash"] == "" {
			t.Fatalf("export record %v", rec)
		}
		lines++
	}
	if lines < 2 {
		t.Fatalf("exported %d records, want the delivery and the evaluation", lines)
	}
	cmd.cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.wait(t, 15*time.Second); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	// The backup is a complete database of its own.
	c := exec.Command(foureyesBinary(t), "audit", "verify", "--database", "sqlite:backup.db")
	c.Dir, c.Env = be.dir, be.env
	if out, err := c.CombinedOutput(); err != nil || !strings.Contains(string(out), strconv.Itoa(lines)+" records") {
		t.Fatalf("verify the backup: %v %s", err, out)
	}
}
