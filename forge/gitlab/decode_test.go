package gitlab_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/internal/testfixtures"
)

var received = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func decoder(t *testing.T) *gitlab.Forge {
	t.Helper()
	f, err := gitlab.New(gitlab.Config{Token: "unused", Now: func() time.Time { return received }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	return testfixtures.Read(t, "gitlab", name)
}

// derive edits a GitLab example payload. GitLab documents only the "open"
// merge request delivery; the other actions are derived from it by
// changing object_attributes.action and adding what GitLab says such a
// delivery carries (oldrev on a push, changes.target_branch on a
// retarget). They are not GitLab-written examples.
func derive(t *testing.T, name string, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(t, name), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mrAction(action string, extra func(attrs, m map[string]any)) func(map[string]any) {
	return func(m map[string]any) {
		attrs := m["object_attributes"].(map[string]any)
		attrs["action"] = action
		// The documented example's changes include no code or target
		// change; derived deliveries start from none.
		m["changes"] = map[string]any{"updated_at": map[string]any{"previous": "a", "current": "b"}}
		if extra != nil {
			extra(attrs, m)
		}
	}
}

func decodeOne(t *testing.T, event string, body []byte) bot.Event {
	t.Helper()
	evs, err := decoder(t).Decode(event, body)
	if err != nil {
		t.Fatalf("Decode(%s): %v", event, err)
	}
	if len(evs) != 1 {
		t.Fatalf("Decode(%s): %d events, want 1: %+v", event, len(evs), evs)
	}
	return evs[0]
}

func wantIgnored(t *testing.T, event string, body []byte) {
	t.Helper()
	evs, err := decoder(t).Decode(event, body)
	if !errors.Is(err, bot.ErrIgnored) {
		t.Errorf("Decode(%s): %+v, %v; want ErrIgnored", event, evs, err)
	}
}

const mrHead = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"

func TestDecodeMergeRequestOpen(t *testing.T) {
	ev := decodeOne(t, "Merge Request Hook", fixture(t, "merge_request.open.json"))
	if ev.Forge != bot.GitLab || ev.Kind != bot.EventChange || ev.Action != "open" || ev.Name != "Merge Request Hook" || !ev.Received.Equal(received) {
		t.Errorf("event: %+v", ev)
	}
	want := bot.Repo{FullName: "gitlabhq/gitlab-test", ID: 1, DefaultBranch: "master", URL: "http://example.com/gitlabhq/gitlab-test"}
	if ev.Repo != want {
		t.Errorf("repo: %+v, want %+v", ev.Repo, want)
	}
	if ev.Sender.Login != "root" || ev.Sender.ID != 1 || ev.Sender.Email != "admin@example.com" {
		t.Errorf("sender: %+v", ev.Sender)
	}
	c := ev.Change
	// Opening is not pushing: the opener is not the head's pusher (issue 10).
	if c.Number != 1 || c.HeadSHA != mrHead || c.BaseRef != "master" || c.Pushed || c.Review != nil || c.Merged {
		t.Errorf("change: %+v", c)
	}
}

func TestDecodeMergeRequestActions(t *testing.T) {
	t.Run("update with oldrev is a push by the user", func(t *testing.T) {
		body := derive(t, "merge_request.open.json", mrAction("update", func(a, _ map[string]any) {
			a["oldrev"] = "95790bf891e76fee5e1747ab589903a6a1f80f22"
		}))
		ev := decodeOne(t, "Merge Request Hook", body)
		if !ev.Change.Pushed || ev.Sender.Login != "root" || ev.Change.HeadSHA != mrHead {
			t.Errorf("%+v %+v", ev, ev.Change)
		}
	})
	t.Run("update without oldrev is metadata", func(t *testing.T) {
		wantIgnored(t, "Merge Request Hook", derive(t, "merge_request.open.json", mrAction("update", nil)))
		// The documented example's own changes (draft, labels) are metadata too.
		wantIgnored(t, "Merge Request Hook", derive(t, "merge_request.open.json", func(m map[string]any) {
			m["object_attributes"].(map[string]any)["action"] = "update"
		}))
	})
	t.Run("retarget re-evaluates", func(t *testing.T) {
		body := derive(t, "merge_request.open.json", mrAction("update", func(a, m map[string]any) {
			a["target_branch"] = "release/2"
			m["changes"].(map[string]any)["target_branch"] = map[string]any{"previous": "master", "current": "release/2"}
		}))
		ev := decodeOne(t, "Merge Request Hook", body)
		if ev.Change.Pushed || ev.Change.BaseRef != "release/2" {
			t.Errorf("%+v", ev.Change)
		}
	})
	for _, action := range []string{"approval", "approved"} {
		t.Run(action, func(t *testing.T) {
			ev := decodeOne(t, "Merge Request Hook", derive(t, "merge_request.open.json", mrAction(action, nil)))
			r := ev.Change.Review
			if r == nil || r.State != bot.Approved || r.Reviewer.Login != "root" || r.CommitSHA != mrHead || ev.Change.Pushed {
				t.Errorf("review: %+v", r)
			}
			if !r.At.Equal(time.Date(2013, 12, 3, 17, 23, 34, 0, time.UTC)) {
				t.Errorf("approval time: %v", r.At)
			}
		})
	}
	for _, action := range []string{"unapproval", "unapproved"} {
		t.Run(action, func(t *testing.T) {
			ev := decodeOne(t, "Merge Request Hook", derive(t, "merge_request.open.json", mrAction(action, nil)))
			if r := ev.Change.Review; r == nil || r.State != bot.Dismissed || r.CommitSHA != mrHead {
				t.Errorf("review: %+v", r)
			}
		})
	}
	t.Run("merge", func(t *testing.T) {
		ev := decodeOne(t, "Merge Request Hook", derive(t, "merge_request.open.json", mrAction("merge", nil)))
		if !ev.Change.Merged || ev.Change.Pushed {
			t.Errorf("%+v", ev.Change)
		}
	})
	t.Run("reopen is not a push", func(t *testing.T) {
		ev := decodeOne(t, "Merge Request Hook", derive(t, "merge_request.open.json", mrAction("reopen", nil)))
		if ev.Change.Pushed || ev.Kind != bot.EventChange {
			t.Errorf("%+v", ev.Change)
		}
	})
	t.Run("close", func(t *testing.T) {
		wantIgnored(t, "Merge Request Hook", derive(t, "merge_request.open.json", mrAction("close", nil)))
	})
	t.Run("external status check payload has no action", func(t *testing.T) {
		wantIgnored(t, "Merge Request Hook", fixture(t, "merge_request.external_status_check.json"))
	})
}

func TestDecodePush(t *testing.T) {
	evs, err := decoder(t).Decode("Push Hook", fixture(t, "push.json"))
	if err != nil {
		t.Fatal(err)
	}
	// total_commits_count 4, 2 listed: truncated, so the policy may have
	// changed unseen and open changes are re-evaluated too.
	if len(evs) != 2 || evs[0].Kind != bot.EventBranchPush || evs[1].Kind != bot.EventPolicyPush {
		t.Fatalf("events: %+v", evs)
	}
	p := evs[0].Push
	if p.Ref != "refs/heads/master" || p.Before != "95790bf891e76fee5e1747ab589903a6a1f80f22" || p.After != mrHead || !p.Truncated || p.Created || p.Deleted {
		t.Errorf("push: %+v", p)
	}
	if p.Pusher.Login != "jsmith" || p.Pusher.ID != 4 || evs[0].Sender.Login != "jsmith" {
		t.Errorf("pusher: %+v", p.Pusher)
	}
	if len(p.Commits) != 2 || p.Commits[0].SHA != "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327" || p.Commits[0].Author.Email != "jordi@softcatala.org" || p.Commits[0].Time.IsZero() {
		t.Errorf("commits: %+v", p.Commits)
	}
	if strings.Join(p.ChangedFiles, ",") != "CHANGELOG,app/controller/application.rb" {
		t.Errorf("changed files: %v", p.ChangedFiles)
	}
	if evs[0].Repo.FullName != "mike/diaspora" || evs[0].Repo.ID != 15 {
		t.Errorf("repo: %+v", evs[0].Repo)
	}

	complete := func(files ...any) []byte {
		return derive(t, "push.json", func(m map[string]any) {
			m["total_commits_count"] = 2
			m["commits"].([]any)[1].(map[string]any)["modified"] = files
		})
	}
	if evs, _ := decoder(t).Decode("Push Hook", complete("app/x.rb")); len(evs) != 1 || evs[0].Push.Truncated {
		t.Errorf("complete push without policy change: %+v", evs)
	}
	if evs, _ := decoder(t).Decode("Push Hook", complete(".gitlab/foureyes.yml")); len(evs) != 2 || evs[1].Kind != bot.EventPolicyPush {
		t.Errorf("policy change: %+v", evs)
	}
}

func TestDecodeTagPush(t *testing.T) {
	ev := decodeOne(t, "Tag Push Hook", fixture(t, "tag_push.json"))
	if ev.Kind != bot.EventTagPush || ev.Push.Ref != "refs/tags/v1.0.0" || !ev.Push.Created || ev.Push.After != "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7" || ev.Push.Pusher.ID != 1 {
		t.Errorf("tag push: %+v %+v", ev, ev.Push)
	}
	wantIgnored(t, "Tag Push Hook", derive(t, "tag_push.json", func(m map[string]any) {
		m["before"], m["after"] = m["after"], "0000000000000000000000000000000000000000"
	}))
}

func TestDecodeNoteAndPipeline(t *testing.T) {
	ev := decodeOne(t, "Note Hook", fixture(t, "note.merge_request.json"))
	if ev.Kind != bot.EventChange || ev.Change.Number != 1 || ev.Change.HeadSHA != "562e173be03b8ff2efb05345d12df18815438a4b" || ev.Change.BaseRef != "markdown" || ev.Change.Pushed {
		t.Errorf("note: %+v %+v", ev, ev.Change)
	}
	wantIgnored(t, "Note Hook", derive(t, "note.merge_request.json", func(m map[string]any) {
		m["object_attributes"].(map[string]any)["note"] = gitlab.NoteMarker + "\nsummary"
	}))
	wantIgnored(t, "Note Hook", derive(t, "note.merge_request.json", func(m map[string]any) {
		m["object_attributes"].(map[string]any)["system"] = true
	}))
	wantIgnored(t, "Emoji Hook", fixture(t, "emoji.award.note_on_issue.json"))

	// Pipeline Hook: no GitLab example in the fixtures; the fields read are
	// the documented ones (project, object_attributes.status, merge_request).
	pipeline := []byte(`{"object_kind":"pipeline","object_attributes":{"id":31,"ref":"feature","sha":"abc","status":"success","source":"merge_request_event"},
		"merge_request":{"id":1,"iid":7,"target_branch":"main","state":"opened"},"user":{"id":10,"username":"mallory","name":"M"},
		"project":{"id":42,"path_with_namespace":"acme/app","default_branch":"main","web_url":"http://gitlab.example/acme/app"}}`)
	ev = decodeOne(t, "Pipeline Hook", pipeline)
	if ev.Kind != bot.EventChange || ev.Change.Number != 7 || ev.Change.HeadSHA != "" || ev.Change.BaseRef != "main" || !ev.Change.ChecksChanged {
		t.Errorf("pipeline: %+v %+v", ev, ev.Change)
	}
	wantIgnored(t, "Pipeline Hook", []byte(`{"object_kind":"pipeline","object_attributes":{"status":"success"},"merge_request":null,
		"project":{"id":42,"path_with_namespace":"acme/app"}}`))
}

func TestDecodeErrors(t *testing.T) {
	for _, event := range []string{"Merge Request Hook", "Push Hook", "Tag Push Hook", "Note Hook", "Pipeline Hook"} {
		_, err := decoder(t).Decode(event, []byte(`{"object_kind":`))
		if err == nil || errors.Is(err, bot.ErrIgnored) {
			t.Errorf("%s with broken JSON: %v, want a decoding error", event, err)
		}
	}
	if _, err := decoder(t).Decode("Merge Request Hook", []byte(`{}`)); err == nil || errors.Is(err, bot.ErrIgnored) {
		t.Errorf("payload without project: %v", err)
	}
	wantIgnored(t, "Wiki Page Hook", []byte(`{}`))
}

func TestEventsRoundTripJSON(t *testing.T) {
	// Events are what the durable queue stores.
	evs, err := decoder(t).Decode("Merge Request Hook", derive(t, "merge_request.open.json", mrAction("approval", nil)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	var back bot.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Change.Review.CommitSHA != mrHead || back.Repo != evs[0].Repo {
		t.Errorf("round trip: %+v", back)
	}
}
