package github_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

// TestDecodeEveryFixture runs Decode over every GitHub payload example and
// checks the kind of answer each must give.
func TestDecodeEveryFixture(t *testing.T) {
	e := newEnv(t, envOpt{})
	want := map[string]string{ // file -> comma-separated kinds, or "ignored"
		"check_run.created.json":                                        "ignored", // another app's run, not named foureyes
		"check_run.requested_action.json":                               "ignored",
		"check_run.rerequested.json":                                    "change", // no pull request on the run (a fork): found by head
		"check_run.rerequested.with-organization.json":                  "change",
		"check_suite.requested.json":                                    "ignored", // pull_requests: []
		"check_suite.requested.with-email-with-special-characters.json": "ignored",
		"check_suite.requested.with-organization.json":                  "ignored",
		"check_suite.rerequested.json":                                  "change",
		"check_suite.rerequested.with-organization.json":                "change",
		"merge_group.checks_requested.json":                             "merge_group",
		"pull_request.closed.json":                                      "ignored",
		"pull_request.closed.with-organization.json":                    "ignored",
		"pull_request.labeled.json":                                     "ignored",
		"pull_request.labeled.with-organization.json":                   "ignored",
		"pull_request.opened.json":                                      "change",
		"pull_request.opened.with-null-body.json":                       "change",
		"pull_request.opened.with-organization.json":                    "change",
		"pull_request.ready_for_review.json":                            "change",
		"pull_request.ready_for_review.with-installation.json":          "change",
		"pull_request.ready_for_review.with-organization.json":          "change",
		"pull_request.reopened.json":                                    "change",
		"pull_request.reopened.with-organization.json":                  "change",
		"pull_request.synchronize.json":                                 "change",
		"pull_request_review.dismissed.json":                            "change",
		"pull_request_review.submitted.json":                            "change",
		"pull_request_review.submitted.with-organization.json":          "change",
		"installation.created.json":                                     "installation",
		"installation.created.with-requester.json":                      "installation",
		"installation_repositories.added.json":                          "installation",
		"push.1.json":                                                   "ignored", // tag deletion
		"push.json":                                                     "ignored",
		"push.with-installation.json":                                   "ignored",
		"push.with-organization.json":                                   "ignored",
		"push.ghes-35.tag-created.json":                                 "tag_push",
		"push.with-new-branch.json":                                     "branch_push",
		"push.with-no-username-committer.json":                          "branch_push",
	}
	seen := 0
	for _, path := range fixtureFiles(t) {
		file := filepath.Base(path)
		event, _, _ := strings.Cut(file, ".")
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := e.forge.Decode(event, body)
		exp, known := want[file]
		if !known {
			exp = "ignored" // installation, issue_comment, review comments, ...
		} else {
			seen++
		}
		var got string
		switch {
		case errors.Is(err, bot.ErrIgnored):
			got = "ignored"
		case err != nil:
			t.Errorf("%s: %v", file, err)
			continue
		default:
			var kinds []string
			for _, ev := range evs {
				kinds = append(kinds, string(ev.Kind))
				if ev.Forge != bot.GitHub || ev.Name != event || ev.Repo.FullName == "" || ev.Repo.ID == 0 || ev.Sender.Login == "" {
					t.Errorf("%s: incomplete event %+v", file, ev)
				}
				if _, err := json.Marshal(ev); err != nil {
					t.Errorf("%s: event does not marshal: %v", file, err)
				}
			}
			got = strings.Join(kinds, ",")
		}
		if got != exp {
			t.Errorf("%s: got %s, want %s", file, got, exp)
		}
	}
	if seen != len(want) {
		t.Errorf("only %d of %d expected fixtures found", seen, len(want))
	}
}

func decodeOne(t *testing.T, e *env, event string, m map[string]any) []bot.Event {
	t.Helper()
	evs, err := e.forge.Decode(event, encode(t, m))
	if err != nil {
		t.Fatalf("Decode %s: %v", event, err)
	}
	return evs
}

func TestDecodePullRequestDetails(t *testing.T) {
	e := newEnv(t, envOpt{})
	m := fixture(t, "pull_request.synchronize.json")
	evs := decodeOne(t, e, "pull_request", m)
	ev := evs[0]
	pr := m["pull_request"].(map[string]any)
	if ev.Kind != bot.EventChange || !ev.Change.Pushed || ev.Change.Number != 2 ||
		ev.Change.HeadSHA != pr["head"].(map[string]any)["sha"] || ev.Change.BaseRef != "master" ||
		ev.Change.BaseSHA != pr["base"].(map[string]any)["sha"] || ev.Sender.Login != "Codertocat" ||
		ev.Repo.Installation != 1 || ev.Repo.DefaultBranch != "master" || ev.Repo.URL == "" || ev.Action != "synchronize" {
		t.Fatalf("synchronize = %+v %+v", ev, ev.Change)
	}
	if evs := decodeOne(t, e, "pull_request", fixture(t, "pull_request.opened.json")); evs[0].Change.Pushed {
		t.Fatal("opened: the opener is not the pusher of the head (issue 10)")
	}
	if evs := decodeOne(t, e, "pull_request", fixture(t, "pull_request.reopened.json")); evs[0].Change.Pushed {
		t.Fatal("reopened is not a push")
	}

	// edited: only a base change (retarget) matters.
	ed := fixture(t, "pull_request.opened.json")
	ed["action"] = "edited"
	ed["changes"] = map[string]any{"title": map[string]any{"from": "old"}}
	if _, err := e.forge.Decode("pull_request", encode(t, ed)); !errors.Is(err, bot.ErrIgnored) {
		t.Fatalf("title edit: %v", err)
	}
	ed["changes"] = map[string]any{"base": map[string]any{"ref": map[string]any{"from": "develop"}, "sha": map[string]any{"from": "abc"}}}
	if evs := decodeOne(t, e, "pull_request", ed); evs[0].Kind != bot.EventChange || evs[0].Change.Pushed {
		t.Fatalf("retarget = %+v", evs[0])
	}
}

func TestDecodeReviews(t *testing.T) {
	e := newEnv(t, envOpt{})
	for state, want := range map[string]bot.ReviewState{"approved": bot.Approved, "changes_requested": bot.ChangesRequested, "commented": bot.Commented} {
		m := fixture(t, "pull_request_review.submitted.json")
		set(t, m, "review.state", state)
		ev := decodeOne(t, e, "pull_request_review", m)[0]
		r := ev.Change.Review
		if r == nil || r.State != want || r.ID != 237895671 || r.Reviewer.Login != "Codertocat" ||
			r.CommitSHA != "ec26c3e57ca3a959ca5aad62de7213c562f8c821" || r.At.IsZero() || ev.Change.Pushed {
			t.Fatalf("%s: review = %+v", state, r)
		}
	}
	ev := decodeOne(t, e, "pull_request_review", fixture(t, "pull_request_review.dismissed.json"))[0]
	if ev.Change.Review.State != bot.Dismissed {
		t.Fatalf("dismissed = %+v", ev.Change.Review)
	}
	m := fixture(t, "pull_request_review.submitted.json")
	m["action"] = "edited"
	if ev := decodeOne(t, e, "pull_request_review", m)[0]; ev.Kind != bot.EventChange {
		t.Fatal("edited review ignored")
	}
	set(t, m, "review.user.type", "Bot")
	if ev := decodeOne(t, e, "pull_request_review", m)[0]; !ev.Change.Review.Reviewer.Bot {
		t.Fatal("bot reviewer not marked")
	}
}

func TestDecodeCheckRuns(t *testing.T) {
	e := newEnv(t, envOpt{})
	// rerequested with a pull request: one change event on the run's head.
	m := fixture(t, "check_run.rerequested.json")
	set(t, m, "check_run.pull_requests", []any{
		map[string]any{"number": 5, "head": map[string]any{"ref": "x", "sha": "h5"}, "base": map[string]any{"ref": "main", "sha": "b5"}},
		map[string]any{"number": 6, "head": map[string]any{"ref": "y", "sha": "h6"}, "base": map[string]any{"ref": "main", "sha": "b6"}},
	})
	set(t, m, "check_run.head_sha", "runhead")
	evs := decodeOne(t, e, "check_run", m)
	if len(evs) != 2 || evs[0].Change.Number != 5 || evs[0].Change.HeadSHA != "runhead" || evs[1].Change.BaseSHA != "b6" {
		t.Fatalf("rerequested = %+v", evs)
	}

	// A "foureyes" run by another App is foreign; by us it is ignored.
	c := fixture(t, "check_run.created.json")
	set(t, c, "check_run.name", "foureyes")
	set(t, c, "check_run.conclusion", "success")
	evs = decodeOne(t, e, "check_run", c)
	f := evs[0]
	if len(evs) != 1 || f.Kind != bot.EventForeignCheck || f.Foreign == nil || f.Foreign.App != "octocoders-linter" ||
		f.Foreign.ID != 128620228 || f.Foreign.Conclusion != "success" || f.Change.Number != 2 || f.Foreign.By.Login != "Codertocat" {
		t.Fatalf("foreign = %+v %+v", f, f.Foreign)
	}
	c["action"] = "completed"
	if evs := decodeOne(t, e, "check_run", c); evs[0].Kind != bot.EventForeignCheck {
		t.Fatal("completed foreign run ignored")
	}
	set(t, c, "check_run.app.id", appID)
	if _, err := e.forge.Decode("check_run", encode(t, c)); !errors.Is(err, bot.ErrIgnored) {
		t.Fatalf("own run: %v", err)
	}
	set(t, c, "check_run.app.id", 1)
	set(t, c, "check_run.pull_requests", []any{})
	if evs := decodeOne(t, e, "check_run", c); evs[0].Kind != bot.EventForeignCheck || evs[0].Change.Number != 0 {
		t.Fatalf("foreign run without PR = %+v", evs[0])
	}
}

func TestDecodeMergeGroup(t *testing.T) {
	e := newEnv(t, envOpt{})
	ev := decodeOne(t, e, "merge_group", fixture(t, "merge_group.checks_requested.json"))[0]
	mg := ev.MergeGroup
	if mg == nil || mg.BaseRef != "main" || !strings.HasPrefix(mg.HeadRef, "gh-readonly-queue/main/pr-") ||
		mg.HeadSHA != "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d" || mg.BaseSHA == "" {
		t.Fatalf("merge group = %+v", mg)
	}
}

func TestDecodePushes(t *testing.T) {
	e := newEnv(t, envOpt{})
	m := fixture(t, "push.with-new-branch.json")
	evs := decodeOne(t, e, "push", m)
	p := evs[0].Push
	if len(evs) != 1 || !p.Created || p.Forced || p.Ref != "refs/heads/master" || len(p.Commits) != 1 ||
		p.Pusher.Login != "Codertocat" || p.Pusher.Email != "21031067+Codertocat@users.noreply.github.com" ||
		p.Commits[0].Author.Login != "Codertocat" || p.Commits[0].SHA != "6113728f27ae82c7b1a177c8d03f9e96e0adf246" {
		t.Fatalf("branch push = %+v", p)
	}

	// A push that touches the policy file is also a policy push.
	set(t, m, "commits.0.modified", []any{"README.md", ".github/foureyes.yml"})
	set(t, m, "forced", true)
	evs = decodeOne(t, e, "push", m)
	if len(evs) != 2 || evs[0].Kind != bot.EventBranchPush || evs[1].Kind != bot.EventPolicyPush ||
		!slices.Equal(evs[1].Push.ChangedFiles, []string{".github/foureyes.yml", "README.md"}) || !evs[0].Push.Forced {
		t.Fatalf("policy push = %+v", evs)
	}
	set(t, m, "commits.0.modified", []any{})
	set(t, m, "commits.0.removed", []any{".gitlab/foureyes.yml"})
	if evs := decodeOne(t, e, "push", m); len(evs) != 2 {
		t.Fatalf("removing a policy file is a policy push: %+v", evs)
	}

	tag := decodeOne(t, e, "push", fixture(t, "push.ghes-35.tag-created.json"))[0]
	if tag.Kind != bot.EventTagPush || tag.Push.Ref != "refs/tags/simple-tag" || !tag.Push.Created {
		t.Fatalf("tag = %+v", tag.Push)
	}
}

func TestDecodeErrors(t *testing.T) {
	e := newEnv(t, envOpt{})
	for _, event := range []string{"pull_request", "push", "ping"} {
		if _, err := e.forge.Decode(event, []byte("{broken")); err == nil || errors.Is(err, bot.ErrIgnored) {
			t.Errorf("%s: broken JSON gave %v", event, err)
		}
	}
	if _, err := e.forge.Decode("ping", []byte(`{"zen":"Keep it logically awesome."}`)); !errors.Is(err, bot.ErrIgnored) {
		t.Errorf("ping: %v", err)
	}
	if _, err := e.forge.Decode("pull_request", []byte(`{"action":"opened"}`)); err == nil || errors.Is(err, bot.ErrIgnored) {
		t.Errorf("no repository: %v", err)
	}
}

// A review of a merged pull request: the payload's simple pull request
// says "closed" and has no "merged"; the facts must still say merged.
func TestReviewPayloadDoesNotMakeMergedPullRequestClosed(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.smallPR()
	e.fake.UpdatePR(repo.FullName, 1, func(p *fakegithub.PR) {
		p.State, p.Merged, p.MergeCommitSHA = "closed", true, fakegithub.SHA("merge")
	})
	m := fixture(t, "pull_request_review.submitted.json")
	set(t, m, "repository.full_name", repo.FullName)
	set(t, m, "pull_request.number", 1)
	set(t, m, "pull_request.state", "closed")
	set(t, m, "pull_request.head.sha", headSHA)
	set(t, m, "pull_request.updated_at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	set(t, m, "review.state", "approved")
	set(t, m, "review.commit_id", headSHA)
	decodeOne(t, e, "pull_request_review", m)
	if ch := mustChange(t, e, prRef(1, headSHA)); ch.State != "merged" {
		t.Fatalf("state %q after a review payload of a merged pull request, want merged", ch.State)
	}
}
