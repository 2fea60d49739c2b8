package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/foureyes-dev/foureyes/handlers"
)

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	rec := e.do(httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != "ok" {
		t.Fatalf("healthz: %d %q", rec.Code, rec.Body)
	}
}

func TestReadyz(t *testing.T) {
	var readyErr error
	e := newEnv(t, func(c *handlers.Config) {
		c.Ready = func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("probe without deadline")
			}
			return readyErr
		}
	})
	if rec := e.do(httptest.NewRequest(http.MethodGet, "/readyz", nil)); rec.Code != http.StatusOK {
		t.Fatalf("ready: %d %q", rec.Code, rec.Body)
	}
	readyErr = fmt.Errorf("ping database: %w", errDown)
	rec := e.do(httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "database is down") {
		t.Fatalf("not ready: %d %q", rec.Code, rec.Body)
	}
}

func TestMetricsEndpointShowsDeliveries(t *testing.T) {
	e := newEnv(t)
	body := fixture(t, "github", "pull_request.opened.json")
	e.do(githubRequest("pull_request", "m-1", body, sign(githubSecret, body)))
	e.do(githubRequest("pull_request", "m-1", body, sign(githubSecret, body)))
	e.do(githubRequest("pull_request", "m-2", body, "sha256=00"))

	rec := e.do(httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	text := rec.Body.String()
	for _, want := range []string{
		`foureyes_webhooks_received_total{event="pull_request",forge="github",result="accepted"} 1`,
		`foureyes_webhooks_received_total{event="pull_request",forge="github",result="duplicate"} 1`,
		`foureyes_webhooks_received_total{event="unknown",forge="github",result="bad_signature"} 1`,
		`foureyes_build_info{`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

const validPolicy = `version: 1
categories:
  code:
    paths: ["**"]
    approvals: 1
`

const invalidPolicy = `version: 1
categories:
  infra:
    paths: ["deploy/**"]
    approvals: many
    colour: red
`

type validation struct {
	Valid  bool `json:"valid"`
	Errors []struct {
		Line    int    `json:"line"`
		Column  int    `json:"column"`
		Message string `json:"message"`
		Key     string `json:"key"`
	} `json:"errors"`
}

func validate(t *testing.T, e *env, target, body string) (int, validation) {
	t.Helper()
	rec := e.do(httptest.NewRequest(http.MethodPost, target, strings.NewReader(body)))
	var v validation
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("answer is not JSON: %q", rec.Body)
	}
	return rec.Code, v
}

func TestValidate(t *testing.T) {
	e := newEnv(t)
	if code, v := validate(t, e, "/api/validate", validPolicy); code != http.StatusOK || !v.Valid || len(v.Errors) != 0 {
		t.Fatalf("valid policy: %d %+v", code, v)
	}

	code, v := validate(t, e, "/api/validate?name=.github/foureyes.yml", invalidPolicy)
	if code != http.StatusUnprocessableEntity || v.Valid {
		t.Fatalf("invalid policy: %d %+v", code, v)
	}
	if len(v.Errors) != 2 {
		t.Fatalf("errors %+v, want 2", v.Errors)
	}
	first, second := v.Errors[0], v.Errors[1]
	if first.Line != 5 || first.Column != 16 || first.Key != "categories.infra.approvals" || first.Message == "" {
		t.Errorf("first error %+v", first)
	}
	if second.Line != 6 || second.Column != 5 || !strings.Contains(second.Message, "colour") {
		t.Errorf("second error %+v", second)
	}

	if code, v := validate(t, e, "/api/validate", "version: 1\n  bad: [\n"); code != http.StatusUnprocessableEntity || len(v.Errors) == 0 || v.Errors[0].Line == 0 {
		t.Fatalf("YAML syntax error: %d %+v", code, v)
	}

	rec := e.do(httptest.NewRequest(http.MethodPost, "/api/validate", strings.NewReader(strings.Repeat("#", 1<<20+1))))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized policy: %d", rec.Code)
	}
}

func TestExtraRoutes(t *testing.T) {
	e := newEnv(t, func(c *handlers.Config) {
		c.Extra = func(r *mux.Router) {
			r.HandleFunc("/details/{token}", func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(mux.Vars(r)["token"]))
			})
		}
	})
	rec := e.do(httptest.NewRequest(http.MethodGet, "/details/abc", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "abc" {
		t.Fatalf("extra route: %d %q", rec.Code, rec.Body)
	}
}

func TestNewRefusesIncompleteWiring(t *testing.T) {
	for name, cfg := range map[string]handlers.Config{
		"no intake":  {GitHub: &handlers.GitHubConfig{Secret: githubSecret, Decoder: jsonDecoder{}}},
		"no decoder": {GitLab: &handlers.GitLabConfig{Secret: gitlabSecret}, Intake: newIntake()},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("New did not panic")
				}
			}()
			handlers.New(cfg)
		})
	}
	// Nothing enabled is a valid set-up (SPEC: serve starts without forges).
	if h := handlers.New(handlers.Config{}); h == nil {
		t.Fatal("nil handler")
	}
}
