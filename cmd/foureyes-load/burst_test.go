package main

import (
	"encoding/json"
	"testing"

	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

// The burst tells a consistent story: the fake's pull requests end at the
// head the last push named, every delivery names the head current when it
// was produced, and the expected verdicts follow from the final reviews.
func TestBurstStory(t *testing.T) {
	key, _, err := fakegithub.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	fake := fakegithub.New(1, &key.PublicKey)
	defer fake.Close()
	fake.AddRepo(loadRepo)
	b, err := newBurst(4, 23, "run", fake) // 5 deliveries each; 3 left over are not sent
	if err != nil {
		t.Fatal(err)
	}
	if b.total() != 20 {
		t.Fatalf("total = %d, want 20", b.total())
	}
	events := map[int][]string{}
	for i := range b.total() {
		j := b.next(i)
		var p struct {
			Action      string `json:"action"`
			Number      int    `json:"number"`
			PullRequest struct {
				Head struct {
					SHA string `json:"sha"`
				} `json:"head"`
			} `json:"pull_request"`
			Review *struct {
				ID       int64  `json:"id"`
				State    string `json:"state"`
				CommitID string `json:"commit_id"`
			} `json:"review"`
		}
		if err := json.Unmarshal(j.render(), &p); err != nil {
			t.Fatal(err)
		}
		if p.Number != i%4+1 || p.PullRequest.Head.SHA != j.sha {
			t.Fatalf("delivery %d names #%d at %s, want #%d at %s", i, p.Number, p.PullRequest.Head.SHA, i%4+1, j.sha)
		}
		pr, _ := fake.PR(loadRepo, p.Number)
		if pr.HeadSHA != j.sha {
			t.Fatalf("delivery %d: fake head %s, payload %s", i, pr.HeadSHA, j.sha)
		}
		ev := j.tmpl.event + "/" + p.Action
		if p.Review != nil {
			if p.Review.ID != j.review || p.Review.CommitID != j.sha {
				t.Fatalf("review %+v, want id %d on %s", p.Review, j.review, j.sha)
			}
			ev += "/" + p.Review.State
		}
		events[p.Number] = append(events[p.Number], ev)
	}
	wantEvents := func(last string) []string {
		return []string{"pull_request/opened", "pull_request/synchronize", "pull_request_review/submitted/commented",
			"pull_request/synchronize", "pull_request_review/submitted/" + last}
	}
	for n := 1; n <= 4; n++ {
		last := "commented"
		if n%2 == 0 {
			last = "approved"
		}
		if got, want := events[n], wantEvents(last); len(got) != len(want) || got[0] != want[0] || got[4] != want[4] || got[1] != want[1] {
			t.Errorf("#%d events %v, want %v", n, got, want)
		}
		pr, _ := fake.PR(loadRepo, n)
		if len(pr.Commits) != 3 {
			t.Errorf("#%d has %d commits, want 3 pushes", n, len(pr.Commits))
		}
	}
	got, want := b.verdicts()
	for n, w := range want {
		if exp := map[bool]string{true: "success", false: "in_progress"}[n%2 == 0]; w != exp {
			t.Errorf("#%d expected %q, want %q", n, w, exp)
		}
		if got[n] != "" {
			t.Errorf("#%d has a verdict %q before any evaluation", n, got[n])
		}
	}
}

func TestRouteOf(t *testing.T) {
	for in, want := range map[string]string{
		"/repos/acme/load/pulls/12/files": "/repos/acme/load/pulls/N/files",
		"/repos/acme/load/commits/" + "0123456789abcdef0123456789abcdef01234567" + "/check-runs": "/repos/acme/load/commits/SHA/check-runs",
		"/app/installations/4242/access_tokens":                                                  "/app/installations/N/access_tokens",
	} {
		if got := routeOf(in); got != want {
			t.Errorf("routeOf(%q) = %q, want %q", in, got, want)
		}
	}
}
