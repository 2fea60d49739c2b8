package handlers_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/handlers"
)

var gitlabFixtureEvents = map[string]string{
	"merge_request.open.json":                  "Merge Request Hook",
	"merge_request.external_status_check.json": "Merge Request Hook",
	"note.merge_request.json":                  "Note Hook",
	"push.json":                                "Push Hook",
	"tag_push.json":                            "Tag Push Hook",
	"emoji.award.note_on_issue.json":           "Emoji Hook",
}

func authed(t testing.TB, event string) http.Header {
	h := gitlabHeaders(t)
	h.Set("X-Gitlab-Token", string(gitlabSecret))
	h.Set("X-Gitlab-Event", event)
	return h
}

func TestGitLabAcceptsEveryFixture(t *testing.T) {
	e := newEnv(t)
	for i, name := range fixtureNames(t, "gitlab") {
		event, ok := gitlabFixtureEvents[name]
		if !ok {
			t.Fatalf("fixture %s has no event name in this test", name)
		}
		h := authed(t, event)
		key := "idem-" + name
		h.Set("Idempotency-Key", key)
		rec := e.do(gitlabRequest(h, fixture(t, "gitlab", name)))
		want := http.StatusAccepted
		if event == "Emoji Hook" {
			want = http.StatusNoContent // ignored by the stub decoder
		}
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d: %s", name, rec.Code, want, rec.Body)
			continue
		}
		if want != http.StatusAccepted {
			continue
		}
		_, evs := e.intake.snapshot()
		ev := evs[len(evs)-1]
		if ev.Forge != bot.GitLab || ev.Name != event || ev.DeliveryID != key || ev.Received.IsZero() {
			t.Errorf("%s (%d): stored %+v", name, i, ev)
		}
	}
	if got := received(t, e, "gitlab", "Merge Request Hook", "accepted"); got != 2 {
		t.Errorf("accepted MR hooks counted %v, want 2", got)
	}
	if got := received(t, e, "gitlab", "Emoji Hook", "ignored"); got != 1 {
		t.Errorf("ignored emoji hooks counted %v, want 1", got)
	}
}

func TestGitLabBadTokenStoresNothing(t *testing.T) {
	body := fixture(t, "gitlab", "merge_request.open.json")
	for name, token := range map[string]string{
		"missing":      "",
		"wrong":        "gitlab-hook-token-0123456780",
		"prefix":       string(gitlabSecret[:10]),
		"longer":       string(gitlabSecret) + "x",
		"with newline": string(gitlabSecret) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			h := authed(t, "Merge Request Hook")
			h.Del("X-Gitlab-Token")
			if token != "" {
				h["X-Gitlab-Token"] = []string{token}
			}
			rec := e.do(gitlabRequest(h, body))
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", rec.Code)
			}
			decodeBody(t, rec)
			if calls, _ := e.intake.snapshot(); calls != 0 {
				t.Fatal("Intake called")
			}
			if got := received(t, e, "gitlab", "unknown", "bad_signature"); got != 1 {
				t.Fatalf("bad_signature counted %v", got)
			}
		})
	}
	t.Run("empty configured secret", func(t *testing.T) {
		e := newEnv(t, func(c *handlers.Config) { c.GitLab.Secret = nil })
		h := authed(t, "Merge Request Hook")
		h.Set("X-Gitlab-Token", "")
		if rec := e.do(gitlabRequest(h, body)); rec.Code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", rec.Code)
		}
	})
}

func TestGitLabBadRequests(t *testing.T) {
	body := fixture(t, "gitlab", "push.json")
	t.Run("missing event", func(t *testing.T) {
		e := newEnv(t)
		h := authed(t, "")
		h.Del("X-Gitlab-Event")
		if rec := e.do(gitlabRequest(h, body)); rec.Code != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", rec.Code)
		}
	})
	t.Run("broken JSON", func(t *testing.T) {
		e := newEnv(t)
		rec := e.do(gitlabRequest(authed(t, "Push Hook"), body[:len(body)-3]))
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", rec.Code)
		}
		decodeBody(t, rec)
		if calls, _ := e.intake.snapshot(); calls != 0 {
			t.Fatal("Intake called")
		}
	})
	t.Run("too large", func(t *testing.T) {
		e := newEnv(t)
		big := bytes.Repeat([]byte{' '}, int(handlers.DefaultMaxBody)+1)
		if rec := e.do(gitlabRequest(authed(t, "Push Hook"), big)); rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", rec.Code)
		}
		if got := received(t, e, "gitlab", "Push Hook", "too_large"); got != 1 {
			t.Errorf("too_large counted %v", got)
		}
	})
	t.Run("intake unavailable", func(t *testing.T) {
		e := newEnv(t)
		e.intake.err = errDown
		rec := e.do(gitlabRequest(authed(t, "Push Hook"), body))
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("status %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
		}
	})
}

func TestGitLabDeliveryIDPrecedence(t *testing.T) {
	body := fixture(t, "gitlab", "merge_request.open.json")
	sum := sha256.Sum256(body)
	digest := "body-sha256:" + hex.EncodeToString(sum[:])
	base := authed(t, "Merge Request Hook")
	cases := []struct {
		name string
		drop []string
		want string
	}{
		{"Idempotency-Key first", nil, base.Get("Idempotency-Key")},
		{"then X-Gitlab-Webhook-UUID", []string{"Idempotency-Key"}, base.Get("X-Gitlab-Webhook-UUID")},
		{"then the body digest, never X-Gitlab-Event-UUID", []string{"Idempotency-Key", "X-Gitlab-Webhook-UUID"}, digest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			h := base.Clone()
			for _, k := range c.drop {
				h.Del(k)
			}
			if rec := e.do(gitlabRequest(h, body)); rec.Code != http.StatusAccepted {
				t.Fatalf("status %d", rec.Code)
			}
			_, evs := e.intake.snapshot()
			if len(evs) != 1 || evs[0].DeliveryID != c.want {
				t.Fatalf("stored %+v, want delivery ID %q", evs, c.want)
			}
		})
	}
}

func TestGitLabRetryIsDuplicate(t *testing.T) {
	e := newEnv(t)
	body := fixture(t, "gitlab", "merge_request.open.json")
	first := authed(t, "Merge Request Hook")
	if rec := e.do(gitlabRequest(first, body)); rec.Code != http.StatusAccepted {
		t.Fatalf("first: %d", rec.Code)
	}
	// A retry keeps Idempotency-Key but gets a fresh Webhook-UUID.
	retry := first.Clone()
	retry.Set("X-Gitlab-Webhook-UUID", "11111111-2222-4333-8444-555555555555")
	rec := e.do(gitlabRequest(retry, body))
	if rec.Code != http.StatusOK || decodeBody(t, rec)["status"] != "duplicate" {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body)
	}
	if got := received(t, e, "gitlab", "Merge Request Hook", "duplicate"); got != 1 {
		t.Errorf("duplicate counted %v", got)
	}
}

func TestGitLabSharedEventUUIDDoesNotMergeEvents(t *testing.T) {
	// Hooks triggered by other hooks share X-Gitlab-Event-UUID; two
	// different events carrying it must both be stored.
	e := newEnv(t)
	for _, name := range []string{"push.json", "tag_push.json"} {
		h := authed(t, gitlabFixtureEvents[name])
		h.Del("Idempotency-Key")
		h.Del("X-Gitlab-Webhook-UUID")
		h.Set("X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e")
		if rec := e.do(gitlabRequest(h, fixture(t, "gitlab", name))); rec.Code != http.StatusAccepted {
			t.Fatalf("%s: status %d", name, rec.Code)
		}
	}
	if _, evs := e.intake.snapshot(); len(evs) != 2 {
		t.Fatalf("%d events stored, want 2", len(evs))
	}
}
