package release_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
	"github.com/foureyes-dev/foureyes/policies"
	"github.com/foureyes-dev/foureyes/release"
)

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func tagPush(forge bot.ForgeName, repo bot.Repo, tag, sha, pusher string) bot.Event {
	return bot.Event{Forge: forge, DeliveryID: "tag-" + tag, Name: "push", Kind: bot.EventTagPush, Repo: repo,
		Sender: bot.User{Login: pusher}, Received: t0,
		Push: &bot.PushEvent{Ref: "refs/tags/" + tag, Before: "0000000000000000000000000000000000000000", After: sha, Created: true, Pusher: bot.User{Login: pusher}}}
}

// The report of v1.10.0: everything since v1.9.0 (version order, not name
// order), with reviewed, unreviewed and late commits, checked field by
// field in the JSON an auditor archives.
func TestGitHubTagReport(t *testing.T) {
	e := newGitHub(t)
	prev, tagSHA := fakegithub.SHA("v1.9.0"), fakegithub.SHA("tagged")
	for name, sha := range map[string]string{
		"v1.8.0": fakegithub.SHA("v1.8.0"), "v1.9.0": prev, "v1.10.0": tagSHA,
		"v2.0.0-beta.1": fakegithub.SHA("beta"), "nightly-7": fakegithub.SHA("nightly"),
	} {
		e.fake.AddTag(ghRepo.FullName, name, sha)
	}
	// a1: reviewed by bob, merged three days ago.
	a1 := ghCommit("a1", "alice", t0.Add(-80*time.Hour))
	e.mergedPR(prSpec{number: 10, author: "alice", commits: []fakegithub.Commit{a1},
		reviews: []fakegithub.Review{approve("bob", a1.SHA, t0.Add(-73*time.Hour))}, mergedAt: t0.Add(-72 * time.Hour)})
	// What bot.Service published for it when it was open: evidence.
	e.fact(bot.ChangeRef{Forge: bot.GitHub, Repo: ghRepo, Number: 10, HeadSHA: a1.SHA}, "verdict", a1.SHA, `{"state":"success","title":"code: approved by @bob"}`)
	// b1: committed three days ago (the date is the committer's to
	// choose) but pushed directly 20 hours ago, which the guard saw.
	b1 := ghCommit("b1", "mallory", t0.Add(-72*time.Hour))
	pushB1 := ghPush("push-b1", a1.SHA, b1.SHA, "mallory", false, b1)
	pushB1.Received = t0.Add(-20 * time.Hour)
	e.mustHandle(pushB1)
	// c1, c2: reviewed by carol, merged two hours before the tag (late).
	c1 := ghCommit("c1", "bob", t0.Add(-5*time.Hour))
	c2 := ghCommit("c2", "bob", t0.Add(-4*time.Hour))
	e.mergedPR(prSpec{number: 11, author: "bob", commits: []fakegithub.Commit{c1, c2},
		reviews:  []fakegithub.Review{approve("carol", c2.SHA, t0.Add(-3*time.Hour)), approve("alice", c2.SHA, t0.Add(-3*time.Hour))},
		mergedAt: t0.Add(-2 * time.Hour)})
	// d1: merged by an admin without approval 30 minutes before the tag.
	d1 := ghCommit("d1", "dave", t0.Add(-time.Hour))
	e.mergedPR(prSpec{number: 12, author: "dave", commits: []fakegithub.Commit{d1}, mergedAt: t0.Add(-30 * time.Minute)})
	e.fake.SetCompare(ghRepo.FullName, prev, tagSHA, []fakegithub.Commit{a1, b1, c1, c2, d1})

	ev := tagPush(bot.GitHub, ghRepo, "v1.10.0", tagSHA, "dave")
	e.mustHandle(ev)

	rep, err := release.Load(e.ctx, e.db, "github", ghRepo.FullName, "v1.10.0")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	htmlBase := strings.TrimSuffix(e.fake.URL(), "/")
	want := map[string]any{
		"schema_version": 1.0, "forge": "github", "repo": "acme/app", "tag": "v1.10.0", "tag_sha": tagSHA,
		"previous_tag": "v1.9.0", "previous_tag_sha": prev, "tagged_at": ts(t0), "tagged_by": "@dave",
		"generated_at": ts(t0), "policy_source": policies.DefaultSource, "policy_digest": policies.Default().Digest,
		"policy_error": "", "late_window": "24h", "truncated": false,
		"summary": map[string]any{
			"commits": 5.0, "reviewed": 3.0, "unreviewed": 2.0, "overridden": 0.0, "late": 4.0,
			"by_reason":  map[string]any{"direct-push": 1.0, "unapproved-merge": 1.0},
			"conclusion": "failure",
		},
	}
	if len(got) != len(want)+1 { // + commits
		t.Errorf("report keys: %d, want %d: %s", len(got), len(want)+1, raw)
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	change := func(n int, title, author, head string, merged time.Time, verdict string, approvers []any, stored string) map[string]any {
		return map[string]any{
			"number": float64(n), "url": fmt.Sprintf("%s/acme/app/pull/%d", htmlBase, n),
			"title": title, "author": author, "base_ref": "main", "head_sha": head, "merged_at": ts(merged),
			"verdict": verdict, "approvers": approvers, "stored_verdict": stored, "policy_digest": policies.Default().Digest,
			// The per-category evidence (the files are in category code).
			"categories": []any{map[string]any{"name": "code", "required": float64(1), "counted": approvers, "missing": float64(max(0, 1-len(approvers)))}},
		}
	}
	commit := func(c fakegithub.Commit, landed time.Time, ch any, approvers []any, verdict string, reviewed bool, reason string, late bool) map[string]any {
		return map[string]any{
			"sha": c.SHA, "title": strings.SplitN(c.Message, "\n", 2)[0], "author": "@" + c.Author.Login,
			"committed_at": ts(c.Committer.Date), "landed_at": ts(landed), "change": ch, "approvers": approvers,
			"verdict": verdict, "reviewed": reviewed, "reason": reason, "late": late, "overridden_by": []any{},
		}
	}
	wantCommits := []map[string]any{
		commit(a1, t0.Add(-72*time.Hour), change(10, "Change 10", "@alice", a1.SHA, t0.Add(-72*time.Hour), "success", []any{"bob"}, "success"),
			[]any{"bob"}, "success", true, "", false),
		commit(b1, t0.Add(-20*time.Hour), nil, []any{}, "none", false, "direct-push", true),
		commit(c1, t0.Add(-2*time.Hour), change(11, "Change 11", "@bob", c2.SHA, t0.Add(-2*time.Hour), "success", []any{"carol", "alice"}, ""),
			[]any{"carol", "alice"}, "success", true, "", true),
		commit(c2, t0.Add(-2*time.Hour), change(11, "Change 11", "@bob", c2.SHA, t0.Add(-2*time.Hour), "success", []any{"carol", "alice"}, ""),
			[]any{"carol", "alice"}, "success", true, "", true),
		commit(d1, t0.Add(-30*time.Minute), change(12, "Change 12", "@dave", d1.SHA, t0.Add(-30*time.Minute), "pending", []any{}, ""),
			[]any{}, "pending", false, "unapproved-merge", true),
	}
	commits, _ := got["commits"].([]any)
	if len(commits) != len(wantCommits) {
		t.Fatalf("commits: %d, want %d: %s", len(commits), len(wantCommits), raw)
	}
	for i, w := range wantCommits {
		g := commits[i].(map[string]any)
		if len(g) != len(w)+1 { // + detail
			t.Errorf("commits[%d] has keys %v", i, g)
		}
		for k, v := range w {
			gv := g[k]
			if k == "change" && v != nil {
				gm, _ := gv.(map[string]any)
				if len(gm) != len(v.(map[string]any)) {
					t.Errorf("commits[%d].change has keys %v", i, gm)
				}
				for ck, cv := range v.(map[string]any) {
					if !reflect.DeepEqual(gm[ck], cv) {
						t.Errorf("commits[%d].change.%s = %#v, want %#v", i, ck, gm[ck], cv)
					}
				}
				continue
			}
			if !reflect.DeepEqual(gv, v) {
				t.Errorf("commits[%d].%s = %#v, want %#v", i, k, gv, v)
			}
		}
		if d, _ := g["detail"].(string); (g["reviewed"] == false) != (d != "") {
			t.Errorf("commits[%d].detail = %q", i, d)
		}
	}

	// Published: a failing check run on the tagged commit with the report.
	runs := e.fake.CheckRuns(ghRepo.FullName, tagSHA)
	if len(runs) != 1 || runs[0].Conclusion != "failure" || runs[0].Title != "2 of 5 commits unreviewed, 4 landed within 24h of the tag" ||
		!strings.Contains(runs[0].Summary, "Commits since: `v1.9.0`") || !strings.Contains(runs[0].Summary, "**unapproved-merge**; **late**") {
		t.Errorf("check runs: %+v", runs)
	}
	if recs := e.audits(audit.KindReport); len(recs) != 1 || recs[0].HeadSHA != tagSHA || recs[0].Verdict != "failure" {
		t.Errorf("report audit records: %+v", recs)
	}
	// Re-processing the tag push changes nothing.
	e.fake.ResetRequests()
	e.mustHandle(ev)
	if n := len(e.fake.Requests()); n != 0 || len(e.fake.CheckRuns(ghRepo.FullName, tagSHA)) != 1 || len(e.audits(audit.KindReport)) != 1 {
		t.Errorf("re-processing: %d requests, %d runs", n, len(e.fake.CheckRuns(ghRepo.FullName, tagSHA)))
	}
	md := release.RenderMarkdown(rep)
	for _, s := range []string{"## foureyes release report: v1.10.0", "**FAILURE**", "- **direct-push**: 1", "@carol, @alice"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}
}

// A first release on GitLab (no earlier release tag): the commits come
// from the history of the tag; the report goes into an issue and a status
// on the tagged commit.
func TestGitLabFirstReleaseReport(t *testing.T) {
	e := newGitLab(t)
	r0 := glCommit("r0", "dave", t0.Add(-100*time.Hour))
	c1 := glCommit("h1", "alice", t0.Add(-50*time.Hour), "r0")
	e.fake.AddCommits(glProject, r0, c1)
	e.mergedMR(1, glAlice, "alice", []fakegitlab.Commit{c1}, []int{glBob}, t0.Add(-49*time.Hour), t0.Add(-48*time.Hour))
	e.fake.AddTag(glProject, "v1.0.0", "h1")
	e.fake.AddTag(glProject, "latest", "h1")

	if err := e.guard.HandlePush(e.ctx, tagPush(bot.GitLab, glRepo, "v1.0.0", "h1", "dave")); err != nil {
		t.Fatal(err)
	}
	rep, err := release.Load(e.ctx, e.db, "gitlab", glRepo.FullName, "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if rep.PreviousTag != "" || rep.Truncated || len(rep.Commits) != 2 || rep.Commits[0].SHA != "r0" || rep.Commits[0].Reason != release.DirectPush ||
		!rep.Commits[1].Reviewed || !reflect.DeepEqual(rep.Commits[1].Approvers, []string{"bob"}) || rep.Summary.Conclusion != bot.Failure {
		t.Fatalf("report: %+v", rep)
	}
	is := e.fake.Issues(glProject)
	if len(is) != 1 || !strings.Contains(is[0].Title, "v1.0.0") || !strings.Contains(is[0].Description, "First release") ||
		!reflect.DeepEqual(is[0].Labels, []string{"foureyes", "release-report"}) {
		t.Errorf("issues: %+v", is)
	}
	if sts := e.fake.Statuses(glProject, "h1"); len(sts) != 1 || sts[0].State != "failed" || sts[0].Ref != "v1.0.0" {
		t.Errorf("statuses: %+v", sts)
	}
	// A tag that is no release tag gets no report.
	if err := e.guard.HandlePush(e.ctx, tagPush(bot.GitLab, glRepo, "latest", "h1", "dave")); err != nil {
		t.Fatal(err)
	}
	if _, err := release.Load(e.ctx, e.db, "gitlab", glRepo.FullName, "latest"); !errors.Is(err, release.ErrNoReport) {
		t.Errorf("a tag that is not a release tag: Load = %v, want ErrNoReport", err)
	}
}
