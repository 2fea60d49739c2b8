package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

// spawnConfig says how to start the server under test.
type spawnConfig struct {
	binary   string
	database string // "" = sqlite in the scratch directory
	workers  string // FOUREYES_WORKERS; "" = the server's default
	logLevel string
	dir      string // scratch directory: key, log, default database
}

// server is a foureyes process started by the tool, with the fake GitHub
// its workers talk to.
type server struct {
	cmd      *exec.Cmd
	url      string
	secret   []byte
	database string
	logPath  string
	fake     *fakegithub.Fake
	exited   chan struct{}
	waitErr  error
	stopFake context.CancelFunc
	tally    *requestTally
	bin      string
	env      []string
	dir      string
}

const spawnAppID = 31337

// spawnServer starts a fake GitHub in this process and `foureyes serve`
// pointed at it on a free loopback port, and waits until /healthz answers.
func spawnServer(ctx context.Context, sc spawnConfig, tmpl *template) (*server, error) {
	bin, err := filepath.Abs(sc.binary)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return nil, fmt.Errorf("--spawn %s: not an executable file", sc.binary)
	}
	key, pemBytes, err := fakegithub.GenerateKey()
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(sc.dir, "app.pem")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		return nil, err
	}
	secret := []byte("load-" + randomHex(16))
	if err := os.WriteFile(filepath.Join(sc.dir, "webhook-secret"), secret, 0o600); err != nil {
		return nil, err
	}
	db := sc.database
	if db == "" {
		db = "sqlite:" + filepath.Join(sc.dir, "foureyes.db")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()

	fake := fakegithub.New(spawnAppID, &key.PublicKey)
	if tmpl.repo != "" {
		fake.AddRepo(tmpl.repo)
		fake.SetDefaultBranch(tmpl.repo, "main")
		if tmpl.author != "" {
			fake.SetPermission(tmpl.repo, tmpl.author, "write")
		}
	}
	fakeCtx, stopFake := context.WithCancel(context.Background())
	tally := &requestTally{}
	go tallyRequests(fakeCtx, fake, tally)

	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FOUREYES_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"FOUREYES_LISTEN="+addr,
		"FOUREYES_PUBLIC_URL=http://"+addr,
		"FOUREYES_DATABASE="+db,
		"FOUREYES_LOG_LEVEL="+sc.logLevel,
		"FOUREYES_GITHUB_APP_ID="+strconv.Itoa(spawnAppID),
		"FOUREYES_GITHUB_PRIVATE_KEY_FILE="+keyFile,
		"FOUREYES_GITHUB_WEBHOOK_SECRET_FILE="+filepath.Join(sc.dir, "webhook-secret"),
		"FOUREYES_GITHUB_API_URL="+fake.URL(),
	)
	if sc.workers != "" {
		env = append(env, "FOUREYES_WORKERS="+sc.workers)
	}
	s := &server{url: "http://" + addr, secret: secret, database: db, logPath: filepath.Join(sc.dir, "server.log"),
		fake: fake, stopFake: stopFake, tally: tally, bin: bin, env: env, dir: sc.dir}
	if err := s.start(); err != nil {
		stopFake()
		fake.Close()
		return nil, err
	}
	if err := s.waitHealthy(ctx, 60*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w\n%s", err, tail(s.logPath, 20))
	}
	return s, nil
}

// tallyRequests counts and empties the fake's request log now and then: it
// records every API call, which would otherwise grow with the run.
func tallyRequests(ctx context.Context, f *fakegithub.Fake, t *requestTally) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.add(f.TakeRequests())
		}
	}
}

// seedChange registers the pull request a delivery names, so that the
// server's workers can evaluate it against the fake.
func (s *server) seedChange(tmpl *template) func(number int, sha string) {
	if tmpl.repo == "" || tmpl.author == "" {
		return nil
	}
	return func(number int, sha string) {
		who := fakegithub.Identity{Name: tmpl.author, Email: tmpl.author + "@example.com", Login: tmpl.author, Date: time.Now()}
		s.fake.AddPR(tmpl.repo, fakegithub.PR{
			Number:  number,
			Title:   "Update the README with new information.",
			Author:  fakegithub.User{Login: tmpl.author},
			HeadRef: headRef(number),
			BaseSHA: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
			Commits: []fakegithub.Commit{{SHA: sha, Message: "Update README", Author: who, Committer: who}},
			Files:   []fakegithub.File{{Filename: "README.md", Patch: "@@ -1 +1 @@\n-Hello\n+Hello, world"}},
		})
	}
}

func (s *server) waitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("foureyes at %s not healthy after %s: %v", s.url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.exited:
			return fmt.Errorf("foureyes serve exited at start: %v", s.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// start runs `foureyes serve` (again, after crash), appending to its log.
func (s *server) start() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "serve")
	cmd.Dir = s.dir
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited, s.waitErr = cmd, exited, nil
	go func() {
		s.waitErr = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	return nil
}

// crash kills the server with SIGKILL, as a crash or the OOM killer would
// (no shutdown, leases left held), starts it again on the same database
// and address, and returns when the restart began.
func (s *server) crash(ctx context.Context) (time.Time, error) {
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return time.Time{}, fmt.Errorf("kill -9 foureyes: %w", err)
	}
	<-s.exited
	began := time.Now()
	if err := s.start(); err != nil {
		return began, err
	}
	if err := s.waitHealthy(ctx, 60*time.Second); err != nil {
		return began, fmt.Errorf("restart after kill -9: %w\n%s", err, tail(s.logPath, 20))
	}
	return began, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM, waits for a graceful exit (foureyes promises one
// within 15 s), then kills.
func (s *server) stop() error {
	defer func() {
		s.stopFake()
		s.fake.Close()
	}()
	select {
	case <-s.exited:
		return fmt.Errorf("foureyes exited during the run: %v", s.waitErr)
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.waitErr
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("foureyes did not stop within 20 s of SIGTERM; killed")
	}
}

// procStatus reads a "Name:   N kB" field of /proc/PID/status in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseStatusField(f, field)
}

func parseStatusField(r io.Reader, field string) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) != 2 || fs[1] != "kB" {
			return 0, fmt.Errorf("unexpected %s line %q", field, sc.Text())
		}
		kb, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", field, err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}

// tail returns the last n lines of a file (for start-up failures).
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
