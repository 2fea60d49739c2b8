package handlers_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/handlers"
)

func TestGitHubAcceptsEverySignedFixture(t *testing.T) {
	e := newEnv(t)
	names := fixtureNames(t, "github")
	before := time.Now().UTC()
	for i, name := range names {
		event, _, _ := strings.Cut(name, ".")
		if event == "installation" || event == "installation_repositories" {
			continue // ignored by the stub decoder; see TestGitHubIgnoredEvent
		}
		body := fixture(t, "github", name)
		delivery := "72d3162e-cc78-11e3-81ab-4c9367dc0958-" + strconv.Itoa(i)
		rec := e.do(githubRequest(event, delivery, body, sign(githubSecret, body)))
		if rec.Code != http.StatusAccepted {
			t.Errorf("%s: status %d, want 202: %s", name, rec.Code, rec.Body)
			continue
		}
		if got := decodeBody(t, rec)["status"]; got != "accepted" {
			t.Errorf("%s: status field %v", name, got)
		}
		_, evs := e.intake.snapshot()
		ev := evs[len(evs)-1]
		if ev.DeliveryID != delivery || ev.Forge != bot.GitHub || ev.Name != event || ev.Received.Before(before) {
			t.Errorf("%s: stored event %+v", name, ev)
		}
	}
	if got := received(t, e, "github", "pull_request", "accepted"); got < 5 {
		t.Errorf("accepted pull_request deliveries counted %v, want >= 5", got)
	}
}

func TestGitHubBadSignatureStoresNothing(t *testing.T) {
	body := fixture(t, "github", "pull_request.opened.json")
	good := sign(githubSecret, body)
	cases := map[string]struct {
		body []byte
		sig  string
	}{
		"missing":       {body, ""},
		"wrong secret":  {body, sign([]byte("not the secret"), body)},
		"tampered body": {bytes.Replace(body, []byte(`"opened"`), []byte(`"closed"`), 1), good},
		"sha1 prefix":   {body, "sha1=" + strings.TrimPrefix(good, "sha256=")},
		"no prefix":     {body, strings.TrimPrefix(good, "sha256=")},
		"not hex":       {body, "sha256=" + strings.Repeat("zz", 32)},
		"truncated":     {body, good[:len(good)-2]},
		"upper case":    {body, strings.ToUpper(good)},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			rec := e.do(githubRequest("pull_request", "d-1", c.body, c.sig))
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", rec.Code, rec.Body)
			}
			decodeBody(t, rec)
			if calls, _ := e.intake.snapshot(); calls != 0 {
				t.Fatalf("Intake called %d times", calls)
			}
			// The event header is not trusted before the signature is.
			if got := received(t, e, "github", "unknown", "bad_signature"); got != 1 {
				t.Fatalf("bad_signature counted %v", got)
			}
		})
	}
}

func TestGitHubEmptySecretRefusesEverything(t *testing.T) {
	e := newEnv(t, func(c *handlers.Config) { c.GitHub.Secret = nil })
	body := fixture(t, "github", "push.json")
	rec := e.do(githubRequest("push", "d-1", body, sign(nil, body)))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", rec.Code)
	}
	if calls, _ := e.intake.snapshot(); calls != 0 {
		t.Fatal("Intake called")
	}
}

func TestGitHubMissingHeaders(t *testing.T) {
	body := fixture(t, "github", "push.json")
	for name, req := range map[string]*http.Request{
		"no event":    githubRequest("", "d-1", body, sign(githubSecret, body)),
		"no delivery": githubRequest("push", "", body, sign(githubSecret, body)),
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			rec := e.do(req)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", rec.Code)
			}
			decodeBody(t, rec)
			if calls, _ := e.intake.snapshot(); calls != 0 {
				t.Fatal("Intake called")
			}
		})
	}
}

func TestGitHubBrokenJSON(t *testing.T) {
	e := newEnv(t)
	body := fixture(t, "github", "pull_request.opened.json")
	body = body[:len(body)/2]
	rec := e.do(githubRequest("pull_request", "d-1", body, sign(githubSecret, body)))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
	}
	if msg, _ := decodeBody(t, rec)["message"].(string); !strings.Contains(msg, "malformed") {
		t.Errorf("message %q", msg)
	}
	if calls, _ := e.intake.snapshot(); calls != 0 {
		t.Fatal("Intake called")
	}
	if got := received(t, e, "github", "pull_request", "bad_request"); got != 1 {
		t.Errorf("bad_request counted %v", got)
	}
}

func TestGitHubPingAndIgnored(t *testing.T) {
	e := newEnv(t)
	body := []byte(`{"zen":"Design for failure.","hook_id":1}`)
	rec := e.do(githubRequest("ping", "d-ping", body, sign(githubSecret, body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("ping: status %d, want 200", rec.Code)
	}
	decodeBody(t, rec)

	body = fixture(t, "github", "installation.created.json")
	rec = e.do(githubRequest("installation", "d-inst", body, sign(githubSecret, body)))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("ignored event: status %d, want 204", rec.Code)
	}
	if rec.Body.Len() != 0 {
		t.Errorf("204 with a body: %q", rec.Body)
	}
	if calls, _ := e.intake.snapshot(); calls != 0 {
		t.Fatal("Intake called")
	}
	if got := received(t, e, "github", "installation", "ignored"); got != 1 {
		t.Errorf("ignored counted %v", got)
	}
}

func TestGitHubBodyLimit(t *testing.T) {
	limit := handlers.DefaultMaxBody
	t.Run("declared length over 25 MiB", func(t *testing.T) {
		e := newEnv(t)
		body := bytes.Repeat([]byte{' '}, int(limit)+1)
		rec := e.do(githubRequest("push", "d-big", body, sign(githubSecret, body)))
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", rec.Code)
		}
		decodeBody(t, rec)
		if calls, _ := e.intake.snapshot(); calls != 0 {
			t.Fatal("Intake called")
		}
		if got := received(t, e, "github", "unknown", "too_large"); got != 1 {
			t.Errorf("too_large counted %v", got)
		}
	})
	t.Run("chunked body over 25 MiB", func(t *testing.T) {
		e := newEnv(t)
		body := bytes.Repeat([]byte{' '}, int(limit)+1)
		req := githubRequest("push", "d-big", nil, sign(githubSecret, body))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = -1 // unknown length: only the reader can tell
		if rec := e.do(req); rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", rec.Code)
		}
	})
	t.Run("exactly 25 MiB", func(t *testing.T) {
		e := newEnv(t)
		body := bytes.Repeat([]byte{' '}, int(limit))
		copy(body, `{"action":"opened"}`)
		rec := e.do(githubRequest("pull_request", "d-max", body, sign(githubSecret, body)))
		if rec.Code != http.StatusAccepted {
			t.Fatalf("status %d, want 202: %s", rec.Code, rec.Body)
		}
	})
}

func TestGitHubIntakeUnavailable(t *testing.T) {
	e := newEnv(t)
	e.intake.err = errDown
	body := fixture(t, "github", "pull_request.synchronize.json")
	rec := e.do(githubRequest("pull_request", "d-1", body, sign(githubSecret, body)))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if msg, _ := decodeBody(t, rec)["message"].(string); strings.Contains(msg, errDown.Error()) {
		t.Errorf("answer leaks the storage error: %q", msg)
	}
	if got := received(t, e, "github", "pull_request", "unavailable"); got != 1 {
		t.Errorf("unavailable counted %v", got)
	}
}

func TestGitHubDuplicateDelivery(t *testing.T) {
	e := newEnv(t)
	body := fixture(t, "github", "pull_request_review.submitted.json")
	req := func() *http.Request {
		return githubRequest("pull_request_review", "dup-1", body, sign(githubSecret, body))
	}
	if rec := e.do(req()); rec.Code != http.StatusAccepted {
		t.Fatalf("first: status %d", rec.Code)
	}
	rec := e.do(req())
	if rec.Code != http.StatusOK {
		t.Fatalf("redelivery: status %d, want 200", rec.Code)
	}
	if got := decodeBody(t, rec)["status"]; got != "duplicate" {
		t.Fatalf("redelivery: status field %v", got)
	}
	if _, evs := e.intake.snapshot(); len(evs) != 1 {
		t.Fatalf("%d events stored, want 1", len(evs))
	}
	if got := received(t, e, "github", "pull_request_review", "duplicate"); got != 1 {
		t.Errorf("duplicate counted %v", got)
	}
}

func TestGitHubSeveralEventsPerDelivery(t *testing.T) {
	e := newEnv(t, func(c *handlers.Config) { c.GitHub.Decoder = jsonDecoder{split: 3} })
	body := fixture(t, "github", "push.json")
	send := func() *httptest.ResponseRecorder {
		return e.do(githubRequest("push", "multi", body, sign(githubSecret, body)))
	}

	// A previous attempt stored only the first event before failing: the
	// redelivery must complete the set and is not a duplicate.
	if _, err := e.intake.Accept(t.Context(), bot.Event{Forge: bot.GitHub, DeliveryID: "multi/1"}); err != nil {
		t.Fatal(err)
	}
	if rec := send(); rec.Code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", rec.Code)
	}
	_, evs := e.intake.snapshot()
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.DeliveryID)
	}
	if strings.Join(ids, ",") != "multi/1,multi/2,multi/3" {
		t.Fatalf("stored IDs %v", ids)
	}
	if rec := send(); rec.Code != http.StatusOK {
		t.Fatalf("redelivery: status %d, want 200", rec.Code)
	}
}

func TestGitHubWrongMethod(t *testing.T) {
	e := newEnv(t)
	rec := e.do(httptest.NewRequest(http.MethodGet, "/webhooks/github", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("status %d, want 405", rec.Code)
	}
}

func TestDisabledForgeIsNotMounted(t *testing.T) {
	e := newEnv(t, func(c *handlers.Config) { c.GitHub = nil })
	body := fixture(t, "github", "push.json")
	rec := e.do(githubRequest("push", "d", body, sign(githubSecret, body)))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", rec.Code)
	}
}

func BenchmarkGitHubWebhook(b *testing.B) {
	e := newEnv(b)
	body := fixture(b, "github", "pull_request.opened.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		req := githubRequest("pull_request", "bench-"+strconv.Itoa(i), body, sign(githubSecret, body))
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
