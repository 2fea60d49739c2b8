package main

import (
	"context"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

// The first start as the shipped deployments do it (compose, systemd):
// the binary with no forge credentials and FOUREYES_STATE_DIR on a
// writable volume. Registration needs the setup code from the log, writes
// foureyes.env and the key into the state directory, and a plain restart
// picks them up: GitHub is on, the setup routes are gone, and the home
// page links the App's install page.
func TestBinarySetupThenRestart(t *testing.T) {
	key, _, err := fakegithub.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	fake := fakegithub.New(1, &key.PublicKey)
	t.Cleanup(fake.Close)
	work := t.TempDir()
	state := filepath.Join(work, "state") // the volume; the working directory stays read-only in spirit
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + work,
		"FOUREYES_LISTEN=" + addr,
		"FOUREYES_PUBLIC_URL=" + base,
		"FOUREYES_DATABASE=sqlite:" + filepath.Join(state, "foureyes.db"),
		"FOUREYES_STATE_DIR=" + state,
		"FOUREYES_GITHUB_API_URL=" + fake.URL(),
		"FOUREYES_LOG_FORMAT=text",
	}
	logPath := filepath.Join(work, "server.log")
	start := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(foureyesBinary(t), "serve")
		cmd.Dir, cmd.Env = work, env
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); logf.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := waitHealthy(ctx, base, 20*time.Second); err != nil {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%v\n%s", err, b)
		}
		return cmd
	}
	stop := func(cmd *exec.Cmd) {
		t.Helper()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("foureyes did not stop within 15 s of SIGTERM")
		}
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	srv := start()
	logText, _ := os.ReadFile(logPath)
	m := regexp.MustCompile(`setup_code=([A-Z2-7]+)`).FindSubmatch(logText)
	if m == nil {
		t.Fatalf("no setup code in the log:\n%s", logText)
	}
	code := string(m[1])

	// Without the code: no registration.
	resp, err := noFollow.PostForm(base+"/setup/github", url.Values{"org": {"acme"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("setup without the code: %d", resp.StatusCode)
	}
	// With it: the page that posts the manifest to GitHub.
	resp, err = noFollow.PostForm(base+"/setup/github", url.Values{"setup_code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action := regexp.MustCompile(`<form class="setup" method="post" action="([^"]+)">`).FindSubmatch(body)
	manifest := regexp.MustCompile(`<input type="hidden" name="manifest" value="([^"]+)">`).FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || action == nil || manifest == nil {
		t.Fatalf("create page: %d\n%s", resp.StatusCode, body)
	}
	// The browser posts it to GitHub, which redirects to the callback.
	resp, err = noFollow.PostForm(html.UnescapeString(string(action[1])), url.Values{"manifest": {html.UnescapeString(string(manifest[1]))}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, base+"/setup/github/callback?") {
		t.Fatalf("GitHub redirected to %q", callback)
	}
	resp, err = noFollow.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	done, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(done), "Restart foureyes") {
		t.Fatalf("done page: %d\n%s", resp.StatusCode, done)
	}
	envFile := filepath.Join(state, "foureyes.env")
	st, err := os.Stat(envFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", envFile, st, err)
	}
	pems, _ := filepath.Glob(filepath.Join(state, "foureyes-github-app-*.pem"))
	if len(pems) != 1 {
		t.Fatalf("key files beside foureyes.env: %v", pems)
	}
	if entries, _ := os.ReadDir(work); len(entries) != 2 { // state/ and server.log: nothing in the working directory
		t.Errorf("the working directory holds %v", entries)
	}

	// A plain restart: the state directory's foureyes.env is read.
	stop(srv)
	start()
	logText, _ = os.ReadFile(logPath)
	if strings.Contains(string(logText), "setup_code=") || !strings.Contains(string(logText), "forges=[github]") {
		t.Errorf("after the restart GitHub is not on, or setup is offered:\n%s", logText)
	}
	for _, p := range []string{"/setup/github", "/setup/github/callback?code=x&state=y"} {
		resp, err := noFollow.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s after setup: %d, want 404", p, resp.StatusCode)
		}
	}
	resp, err = noFollow.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	home, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(home), "foureyes is running") || !regexp.MustCompile(`href="`+regexp.QuoteMeta(fake.WebURL())+`/apps/foureyes-\d+/installations/new"`).Match(home) {
		t.Errorf("home page after setup does not link the install page:\n%s", home)
	}
	// Built without -ldflags, the build info's commit shows in the metric.
	if rev := binaryRevision(t); rev != "" {
		resp, err := noFollow.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !regexp.MustCompile(`foureyes_build_info\{[^}]*commit="` + rev + `"`).Match(metrics) {
			t.Errorf("foureyes_build_info does not carry commit %s:\n%s", rev, regexp.MustCompile(`(?m)^foureyes_build_info.*$`).Find(metrics))
		}
	}
}

// binaryRevision is the vcs.revision `go build` recorded in the test's
// binary, or "" when it recorded none (a git worktree, whose .git is a file,
// or GOFLAGS=-buildvcs=false): then the commit cannot be checked.
func binaryRevision(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", foureyesBinary(t)).Output()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*build\s+vcs\.revision=(\S+)$`).FindSubmatch(out)
	if m == nil {
		t.Log("the binary records no vcs.revision: the commit is not checked")
		return ""
	}
	return string(m[1])
}

func TestBinaryVersionNamesTheCommit(t *testing.T) {
	rev := binaryRevision(t)
	out, err := exec.Command(foureyesBinary(t), "version").CombinedOutput()
	want := "commit " + rev
	if rev == "" {
		want = "commit unknown"
	}
	if err != nil || !strings.Contains(string(out), want) {
		t.Errorf("foureyes version = %q (%v), want %q", out, err, want)
	}
}

func TestCommitFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "3dd4263f"}}}
	for _, c := range []struct {
		ldflag string
		bi     *debug.BuildInfo
		want   string
	}{
		{"", bi, "3dd4263f"},
		{"abc123", bi, "abc123"},
		{"", &debug.BuildInfo{}, "unknown"},
		{"", nil, "unknown"},
	} {
		if got := commitOf(c.ldflag, c.bi, c.bi != nil); got != c.want {
			t.Errorf("commitOf(%q, %v) = %q, want %q", c.ldflag, c.bi, got, c.want)
		}
	}
}
