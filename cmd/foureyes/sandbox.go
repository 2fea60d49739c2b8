package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

// sandbox is a complete foureyes wired to an in-process fake GitHub: the
// demo replays its scenarios against it, and the end-to-end tests use it
// to drive real signed webhooks through the real server.
type sandbox struct {
	Fake     *fakegithub.Fake
	Secret   []byte
	AppID    int64
	URL      string // the foureyes server's base URL
	Dir      string
	srv      *server
	cancel   context.CancelFunc
	done     chan error
	delivery atomic.Int64
}

// sandboxInstallation is the installation ID the sandbox's payloads carry.
const sandboxInstallation = 4242

// newSandbox starts a fake GitHub and a foureyes server on loopback with a
// fresh SQLite database in dir.
// sandboxOption adjusts the loaded configuration, for what no variable
// may set (a variable's bounds are for users, not tests).
type sandboxOption func(*Config)

// withoutReconcileLoop keeps the server from reconciling on its own: a
// test that drives s.reconciler.Run by hand would otherwise race the
// server's run at start for the same delivery IDs, and count a push the
// other run queued as a duplicate.
func withoutReconcileLoop(c *Config) { c.ReconcileInterval = 0 }

func newSandbox(ctx context.Context, dir string, logger *slog.Logger, env map[string]string, opts ...sandboxOption) (*sandbox, error) {
	key, pemBytes, err := fakegithub.GenerateKey()
	if err != nil {
		return nil, err
	}
	sb := &sandbox{Secret: []byte("sandbox-webhook-secret"), AppID: 1001, Dir: dir}
	sb.Fake = fakegithub.New(sb.AppID, &key.PublicKey)
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		sb.Fake.Close()
		return nil, fmt.Errorf("write key: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sb.Fake.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vars := map[string]string{
		"FOUREYES_LISTEN":                  addr,
		"FOUREYES_PUBLIC_URL":              "http://" + addr,
		"FOUREYES_DATABASE":                "sqlite:" + filepath.Join(dir, "foureyes.db"),
		"FOUREYES_GITHUB_APP_ID":           strconv.FormatInt(sb.AppID, 10),
		"FOUREYES_GITHUB_PRIVATE_KEY_FILE": keyFile,
		"FOUREYES_GITHUB_WEBHOOK_SECRET":   string(sb.Secret),
		"FOUREYES_GITHUB_API_URL":          sb.Fake.URL(),
		"FOUREYES_LOG_LEVEL":               "warn",
		"FOUREYES_WORKERS":                 "4",
		// The audit key and checkpoints stay in the sandbox, not in the
		// caller's working directory, and no foureyes.env of the caller's
		// is read.
		"FOUREYES_STATE_DIR": dir,
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := LoadConfig("", func(k string) string { return vars[k] })
	if err != nil {
		sb.Fake.Close()
		return nil, err
	}
	for _, o := range opts {
		o(cfg)
	}
	srv, err := newServer(ctx, cfg, logger)
	if err != nil {
		sb.Fake.Close()
		return nil, err
	}
	sb.srv = srv
	sb.URL = "http://" + addr
	runCtx, cancel := context.WithCancel(ctx)
	sb.cancel = cancel
	sb.done = make(chan error, 1)
	go func() { sb.done <- srv.run(runCtx) }()
	if err := waitHealthy(ctx, sb.URL, 10*time.Second); err != nil {
		sb.Close()
		return nil, err
	}
	return sb, nil
}

// Close stops the server and the fake.
func (sb *sandbox) Close() {
	sb.cancel()
	<-sb.done
	sb.srv.close()
	sb.Fake.Close()
}

// waitHealthy polls /healthz until it answers 200 or the timeout passes.
func waitHealthy(ctx context.Context, base string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server at %s not healthy after %s: %v", base, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// signGitHub returns the X-Hub-Signature-256 header value for body.
func signGitHub(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// sendGitHub posts a signed delivery and returns the HTTP status.
func sendGitHub(ctx context.Context, base string, secret []byte, event, deliveryID string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", deliveryID)
	req.Header.Set("X-Hub-Signature-256", signGitHub(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Send delivers one signed event with a fresh delivery ID.
func (sb *sandbox) Send(ctx context.Context, event string, payload any) (int, string, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return 0, "", err
	}
	id := fmt.Sprintf("sandbox-%d", sb.delivery.Add(1))
	status, err := sendGitHub(ctx, sb.URL, sb.Secret, event, id, body)
	return status, id, err
}

// WaitCheck waits until the foureyes check run on sha satisfies done, and
// returns it. Polling with a deadline: the work happens behind the 202.
func (sb *sandbox) WaitCheck(ctx context.Context, repo, sha string, timeout time.Duration, done func(fakegithub.CheckRun) bool) (fakegithub.CheckRun, error) {
	deadline := time.Now().Add(timeout)
	for {
		var last fakegithub.CheckRun
		runs := sb.Fake.CheckRuns(repo, sha)
		for _, r := range runs {
			if r.Name == "foureyes" {
				last = r
			}
		}
		if last.ID != 0 && done(last) {
			return last, nil
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("no foureyes check run on %s in the expected state after %s (last: %s/%s %q)", sha[:7], timeout, last.Status, last.Conclusion, last.Title)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Payload builders in the shape of GitHub's webhook payloads (see
// testdata/fixtures/github for the real examples the tests replay).

func ghUser(login string) map[string]any {
	t := "User"
	if len(login) > 5 && login[len(login)-5:] == "[bot]" {
		t = "Bot"
	}
	return map[string]any{"login": login, "id": int64(len(login)*7919 + int(login[0])), "type": t}
}

func ghRepo(fullName string) map[string]any {
	owner, name := fullName, fullName
	for i := len(fullName) - 1; i >= 0; i-- {
		if fullName[i] == '/' {
			owner, name = fullName[:i], fullName[i+1:]
			break
		}
	}
	return map[string]any{
		"id": 1296269, "name": name, "full_name": fullName, "private": false,
		"owner": ghUser(owner), "html_url": "https://github.com/" + fullName, "default_branch": "main",
	}
}

func prPayload(action, repo string, pr fakegithub.PR, sender string) map[string]any {
	return map[string]any{
		"action": action,
		"number": pr.Number,
		"pull_request": map[string]any{
			"number": pr.Number, "state": "open", "title": pr.Title, "user": ghUser(pr.Author.Login),
			"draft": pr.Draft, "html_url": fmt.Sprintf("https://github.com/%s/pull/%d", repo, pr.Number),
			"head": map[string]any{"ref": "feature", "sha": pr.HeadSHA, "repo": ghRepo(repo)},
			"base": map[string]any{"ref": "main", "sha": pr.BaseSHA, "repo": ghRepo(repo)},
		},
		"repository":   ghRepo(repo),
		"installation": map[string]any{"id": sandboxInstallation},
		"sender":       ghUser(sender),
	}
}

func reviewPayload(repo string, pr fakegithub.PR, reviewID int64, reviewer, state, commit string) map[string]any {
	p := prPayload("submitted", repo, pr, reviewer)
	p["review"] = map[string]any{
		"id": reviewID, "user": ghUser(reviewer), "state": state, "commit_id": commit,
		"submitted_at": time.Now().UTC().Format(time.RFC3339),
	}
	return p
}

// Drain waits until every stored delivery has been processed.
func (sb *sandbox) Drain(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := sb.srv.db.QueueStats(ctx, time.Now())
		if err != nil {
			return err
		}
		if st.Pending+st.Leased == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("queue not drained after %s: %d pending, %d leased", timeout, st.Pending, st.Leased)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
