package handlers_test

import (
	"bytes"
	"encoding/json"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foureyes-dev/foureyes/handlers"
)

// The attack: anybody who reaches the server registers an App whose
// credentials foureyes then trusts. Without the setup code from the log
// the form must not even build a manifest.
func TestSetupNeedsTheCodeFromTheLog(t *testing.T) {
	var logs bytes.Buffer
	e := newSetupEnv(t, func(c *handlers.SetupConfig) {
		c.SetupCode = "" // generated, and only printed in the log
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	for name, form := range map[string]url.Values{
		"no code":      {"org": {"acme"}, "setup_code": {""}},
		"wrong code":   {"setup_code": {"AAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		"test's code":  {"setup_code": {testSetupCode}},
		"code guessed": {"setup_code": {"0"}},
	} {
		resp, body := e.post(t, form)
		if resp.StatusCode != http.StatusForbidden || strings.Contains(body, `name="manifest"`) || !strings.Contains(body, "setup code is missing or wrong") {
			t.Errorf("%s: %d, manifest form offered: %v", name, resp.StatusCode, strings.Contains(body, `name="manifest"`))
		}
	}
	// The code is in the log line that tells the operator to register.
	var code string
	for _, line := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["setup_code"] != nil {
			code, _ = m["setup_code"].(string)
		}
	}
	if len(code) < 20 {
		t.Fatalf("no setup code (at least 20 characters) in the log:\n%s", logs.String())
	}
	// Typed by a person: surrounding spaces and lower case are fine.
	resp, body := e.post(t, url.Values{"setup_code": {"  " + strings.ToLower(code) + " "}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="manifest"`) {
		t.Fatalf("right code: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, code) {
		t.Error("the create page shows the setup code")
	}
	_, home := get(t, e.srv.URL+"/")
	if strings.Contains(home, code) || !strings.Contains(home, `name="setup_code"`) {
		t.Error("the home page shows the code or lacks its field")
	}

	// A configured server logs no code and offers no setup.
	var quiet bytes.Buffer
	c := newSetupEnv(t, func(c *handlers.SetupConfig) {
		c.Configured = func() (bool, bool) { return true, false }
		c.Logger = slog.New(slog.NewJSONHandler(&quiet, nil))
	})
	if strings.Contains(quiet.String(), "setup_code") {
		t.Errorf("configured server logged a setup code: %s", quiet.String())
	}
	if r, _ := c.post(t, url.Values{}); r.StatusCode != http.StatusNotFound {
		t.Errorf("configured: POST /setup/github = %d", r.StatusCode)
	}
}

// GitHub creates the App before it sends the browser back. When foureyes
// cannot write, the page must say the App exists and how to finish, and
// the unspent code must still work once the directory is fixed.
func TestSetupErrorPagesSayTheAppExists(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "state")
	e := newSetupEnv(t, func(c *handlers.SetupConfig) { c.CredentialsFile = filepath.Join(missing, "foureyes.env") })
	u, _ := e.startFlow(t, url.Values{"org": {"acme"}})
	state := u.Query().Get("state")
	status, body := e.callback(t, "code1", state)
	body = html.UnescapeString(body)
	if status != http.StatusInternalServerError {
		t.Fatalf("unwritable directory: %d", status)
	}
	for _, want := range []string{
		"GitHub created the App",
		"still unused",
		"reload this page",
		missing,
		"FOUREYES_STATE_DIR",
		"generate a private key",
		`href="https://github.com/organizations/acme/settings/apps"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("error page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "has not created anything") {
		t.Error("the page claims GitHub created nothing")
	}
	if e.conv.count() != 0 {
		t.Fatal("the code was spent although nothing can be written")
	}
	// Fix the directory and reload: the same link finishes the job.
	if err := os.MkdirAll(missing, 0o700); err != nil {
		t.Fatal(err)
	}
	if status, body := e.callback(t, "code1", state); status != http.StatusOK {
		t.Fatalf("reload after the fix: %d %s", status, body)
	}
	if _, err := os.Stat(filepath.Join(missing, "foureyes-github-app-314159.pem")); err != nil {
		t.Errorf("the key is not beside foureyes.env: %v", err)
	}

	// A failed conversion: the App exists, the credentials are GitHub's.
	f := newSetupEnv(t, nil)
	f.conv.err = os.ErrDeadlineExceeded
	u, _ = f.startFlow(t, url.Values{})
	status, body = f.callback(t, "code2", u.Query().Get("state"))
	body = html.UnescapeString(body)
	if status != http.StatusBadGateway || !strings.Contains(body, "GitHub created the App") || !strings.Contains(body, `href="https://github.com/settings/apps"`) ||
		!strings.Contains(body, "FOUREYES_GITHUB_PRIVATE_KEY_FILE") || strings.Contains(body, "has not created anything") {
		t.Errorf("conversion failure page: %d\n%s", status, body)
	}
}
