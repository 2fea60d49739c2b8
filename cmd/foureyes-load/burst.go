package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/foureyes-dev/foureyes/internal/fakegithub"
)

// Burst mode (--changes N): the deliveries tell the story of N pull
// requests at once, round-robin (delivery i is about pull request
// i mod N + 1), each getting --n/N deliveries in this order:
//
//	0            opened (the author pushed head 1)
//	odd          synchronize: the author pushed a new head
//	even         a "commented" review by the reviewer on the current head
//	last         even pull requests: the reviewer approves the current
//	             head (expected final verdict: success); odd ones: one
//	             more comment (expected: pending)
//
// The fake GitHub is changed as each delivery is produced, before it is
// sent, as GitHub changes before it delivers. The reviewer has write
// access and is independent (never a committer or pusher), so the
// expected final verdict follows from the story alone. After the load the
// tool waits until the queue is drained and every pull request's final head
// shows its expected verdict, and reports how many forge requests the
// deliveries cost.

const (
	burstReviewer   = "octo-reviewer"
	sentinelReview  = 2147480002
	burstCheckName  = "foureyes"
	burstFinalPoll  = 50 * time.Millisecond
	burstFinalLimit = 2 * time.Minute
)

type burst struct {
	changes, perChange int
	runID              string
	fake               *fakegithub.Fake
	repo, author       string
	opened, sync       *template
	approve, comment   *template

	mu     sync.Mutex
	heads  map[int]string // current head per pull request
	pushes map[int]int    // heads pushed so far
	want   map[int]string // expected final verdict: success or in_progress
}

func newBurst(changes, n int, runID string, fake *fakegithub.Fake) (*burst, error) {
	if changes < 1 || n/changes < 2 {
		return nil, fmt.Errorf("--changes %d with --n %d: each pull request needs at least 2 deliveries", changes, n)
	}
	b := &burst{changes: changes, perChange: n / changes, runID: runID, fake: fake, repo: loadRepo, author: loadAuthor,
		heads: map[int]string{}, pushes: map[int]int{}, want: map[int]string{}}
	var err error
	if b.opened, err = prTemplate("opened"); err != nil {
		return nil, err
	}
	if b.sync, err = prTemplate("synchronize"); err != nil {
		return nil, err
	}
	if b.approve, err = reviewTemplate("approved"); err != nil {
		return nil, err
	}
	if b.comment, err = reviewTemplate("commented"); err != nil {
		return nil, err
	}
	fake.SetPermission(loadRepo, burstReviewer, "write")
	return b, nil
}

func prTemplate(action string) (*template, error) {
	p := pullRequestPayload(loadRepo, loadAuthor, sentinelNumber, sentinelSHA)
	p["action"] = action
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return &template{event: "pull_request", body: body, perChange: true, repo: loadRepo, author: loadAuthor}, nil
}

// reviewTemplate is a pull_request_review "submitted" delivery in the shape
// of GitHub's example, testdata/fixtures/github/pull_request_review.submitted.json.
func reviewTemplate(state string) (*template, error) {
	p := pullRequestPayload(loadRepo, loadAuthor, sentinelNumber, sentinelSHA)
	p["action"] = "submitted"
	p["sender"] = user(burstReviewer, 21031070)
	p["review"] = map[string]any{
		"id": sentinelReview, "node_id": "MDE3OlB1bGxSZXF1ZXN0UmV2aWV3MjM3ODk1Njcx", "user": user(burstReviewer, 21031070),
		"body": "Looks fine.", "commit_id": sentinelSHA, "submitted_at": "2019-05-15T15:20:38Z", "state": state,
		"html_url":           "https://github.com/" + loadRepo + "/pull/1#pullrequestreview-237895671",
		"pull_request_url":   "https://api.github.com/repos/" + loadRepo + "/pulls/1",
		"author_association": "MEMBER",
		"_links": map[string]any{
			"html":         map[string]any{"href": "https://github.com/" + loadRepo + "/pull/1#pullrequestreview-237895671"},
			"pull_request": map[string]any{"href": "https://api.github.com/repos/" + loadRepo + "/pulls/1"},
		},
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return &template{event: "pull_request_review", body: body, perChange: true, repo: loadRepo, author: loadAuthor}, nil
}

func (b *burst) total() int { return b.changes * b.perChange }

func (b *burst) sha(number, push int) string {
	h := sha256.Sum256([]byte(b.runID + "/" + strconv.Itoa(number) + "/" + strconv.Itoa(push)))
	return hex.EncodeToString(h[:20])
}

// next changes the fake as delivery i's event happened and returns the job
// that tells foureyes about it.
func (b *burst) next(i int) job {
	b.mu.Lock()
	defer b.mu.Unlock()
	number := i%b.changes + 1
	step := i / b.changes
	j := job{number: number, delivery: b.runID + "-" + strconv.Itoa(i+1)}
	who := fakegithub.Identity{Name: b.author, Email: b.author + "@example.com", Login: b.author, Date: time.Now()}
	switch {
	case step == 0:
		b.pushes[number] = 1
		sha := b.sha(number, 1)
		b.heads[number] = sha
		b.want[number] = "in_progress"
		b.fake.AddPR(b.repo, fakegithub.PR{
			Number: number, Title: "Update the README with new information.", Author: fakegithub.User{Login: b.author},
			HeadRef: headRef(number),
			BaseSHA: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
			Commits: []fakegithub.Commit{{SHA: sha, Message: "Update README", Author: who, Committer: who}},
			Files:   []fakegithub.File{{Filename: "README.md", Patch: "@@ -1 +1 @@\n-Hello\n+Hello, world"}},
		})
		j.tmpl, j.sha = b.opened, sha
	case step == b.perChange-1:
		state, tmpl := "COMMENTED", b.comment
		if number%2 == 0 {
			state, tmpl, b.want[number] = "APPROVED", b.approve, "success"
		}
		j.sha = b.heads[number]
		j.review = b.fake.AddReview(b.repo, number, fakegithub.Review{User: fakegithub.User{Login: burstReviewer}, State: state, CommitID: j.sha, Body: "Looks fine."})
		j.tmpl = tmpl
	case step%2 == 1:
		b.pushes[number]++
		sha := b.sha(number, b.pushes[number])
		b.heads[number] = sha
		b.fake.UpdatePR(b.repo, number, func(p *fakegithub.PR) {
			p.Commits = append(p.Commits, fakegithub.Commit{SHA: sha, Message: "More README", Author: who, Committer: who})
			p.HeadSHA = sha
		})
		j.tmpl, j.sha = b.sync, sha
	default:
		j.sha = b.heads[number]
		j.review = b.fake.AddReview(b.repo, number, fakegithub.Review{User: fakegithub.User{Login: burstReviewer}, State: "COMMENTED", CommitID: j.sha, Body: "Looks fine."})
		j.tmpl = b.comment
	}
	return j
}

// render is the body of a burst job.
func (j job) render() []byte {
	body := j.tmpl.render(j.number, j.sha)
	if j.review != 0 {
		body = bytes.ReplaceAll(body, []byte(strconv.Itoa(sentinelReview)), []byte(strconv.FormatInt(j.review, 10)))
	}
	return body
}

// verdicts returns, per pull request, the conclusion of the newest
// foureyes check run on its final head ("" for none) and the expected one.
func (b *burst) verdicts() (got, want map[int]string) {
	b.mu.Lock()
	heads := make(map[int]string, len(b.heads))
	want = make(map[int]string, len(b.want))
	for n, h := range b.heads {
		heads[n] = h
		want[n] = b.want[n]
	}
	b.mu.Unlock()
	got = make(map[int]string, len(heads))
	for n, h := range heads {
		state := ""
		for _, r := range b.fake.CheckRuns(b.repo, h) {
			if r.Name != burstCheckName {
				continue
			}
			state = r.Status
			if r.Status == "completed" {
				state = r.Conclusion
			}
		}
		got[n] = state
	}
	return got, want
}

// correct counts the pull requests whose final head shows the expected
// verdict now.
func (b *burst) correct() int {
	got, want := b.verdicts()
	n := 0
	for k, w := range want {
		if got[k] == w {
			n++
		}
	}
	return n
}

// requestTally counts the fake GitHub's answers.
type requestTally struct {
	mu sync.Mutex
	// Total: every request; NotModified: 304s (free on GitHub);
	// RateLimited: requests with an installation token that count against
	// its rate limit (not 304); Tokens: token creations (App JWT, not
	// counted against the installation).
	Total, NotModified, RateLimited, Tokens int
	ByRoute                                 map[string]int
}

func (t *requestTally) add(rs []fakegithub.Request) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ByRoute == nil {
		t.ByRoute = map[string]int{}
	}
	for _, r := range rs {
		t.Total++
		switch {
		case r.Status == http.StatusNotModified:
			t.NotModified++
		case r.Installation != 0:
			t.RateLimited++
		default:
			t.Tokens++
		}
		t.ByRoute[r.Method+" "+routeOf(r.Path)+" "+strconv.Itoa(r.Status)]++
	}
}

// routeOf replaces the numbers and SHAs of a path with placeholders.
func routeOf(path string) string {
	var out []byte
	seg := []byte{}
	flush := func() {
		s := string(seg)
		switch {
		case s == "":
		case isNumber(s):
			s = "N"
		case len(s) == 40 && isHex(s):
			s = "SHA"
		}
		out = append(out, s...)
		seg = seg[:0]
	}
	for i := 0; i < len(path); i++ {
		if path[i] == '/' {
			flush()
			out = append(out, '/')
			continue
		}
		seg = append(seg, path[i])
	}
	flush()
	return string(out)
}

func isNumber(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// tallyCounts is a copy of a requestTally's counts.
type tallyCounts struct {
	Total, NotModified, RateLimited, Tokens int
	ByRoute                                 map[string]int
}

// reset forgets what was counted so far.
func (t *requestTally) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Total, t.NotModified, t.RateLimited, t.Tokens, t.ByRoute = 0, 0, 0, 0, nil
}

func (t *requestTally) snapshot() tallyCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := tallyCounts{Total: t.Total, NotModified: t.NotModified, RateLimited: t.RateLimited, Tokens: t.Tokens, ByRoute: map[string]int{}}
	for k, v := range t.ByRoute {
		c.ByRoute[k] = v
	}
	return c
}

// burstReport is the burst part of the report.
type burstReport struct {
	Changes         int      `json:"changes"`
	PerChange       int      `json:"deliveries_per_change"`
	Requests        int      `json:"forge_requests"`
	NotModified     int      `json:"forge_requests_304"`
	RateLimited     int      `json:"forge_requests_rate_limited"`
	TokenRequests   int      `json:"forge_token_requests"`
	PerDelivery     float64  `json:"requests_per_delivery"`
	RateLimitedPerD float64  `json:"rate_limited_requests_per_delivery"`
	NotModifiedPerD float64  `json:"requests_304_per_delivery"`
	Correct         int      `json:"final_verdicts_correct"`
	Wrong           []string `json:"final_verdicts_wrong,omitempty"`
	// FinalAfterS: from the last delivery's answer until every pull
	// request's final head showed its expected verdict and the queue was
	// drained; negative when that never happened within the limit.
	FinalAfterS float64 `json:"final_after_last_delivery_s"`
	// AfterCrash: the server was killed after the last delivery and
	// FinalAfterS counts from its restart (--crash).
	AfterCrash bool `json:"after_crash,omitempty"`
	// FinalAtCrash: pull requests already showing their final verdict
	// when the server was killed.
	FinalAtCrash int          `json:"final_at_crash,omitempty"`
	TopRoutes    []routeCount `json:"top_routes"`
}

type routeCount struct {
	Route string `json:"route"`
	Count int    `json:"count"`
}

// awaitFinal waits until the queue is drained and every final verdict is
// the expected one (or the limit passes), then fills rep.Burst.
// awaitFinal waits until every pull request's final head shows its
// expected verdict and, when counted (the server's counters span the whole
// run), the server has finished the accepted deliveries; FinalAfterS
// counts from since.
func (b *burst) awaitFinal(ctx context.Context, base string, before serverMetrics, accepted int, counted bool, since time.Time, tally *requestTally, limit time.Duration) *burstReport {
	deadline := time.Now().Add(limit)
	br := &burstReport{Changes: b.changes, PerChange: b.perChange, FinalAfterS: -1}
	var got, want map[int]string
	for {
		got, want = b.verdicts()
		correct := 0
		for n, w := range want {
			if got[n] == w {
				correct++
			}
		}
		// The server's metrics are scraped only once every verdict is
		// final: rendering them costs the server CPU, which it shares with
		// the evaluations this waits for.
		if correct == len(want) {
			m := scrape(ctx, base)
			finished := int(m.Processed+m.Dead) - int(before.Processed+before.Dead)
			if m.OK && (!counted || finished >= accepted) {
				br.FinalAfterS = round3(time.Since(since).Seconds())
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(burstFinalPoll)
	}
	// Let the last answers reach the tally.
	time.Sleep(300 * time.Millisecond)
	numbers := make([]int, 0, len(want))
	for n := range want {
		numbers = append(numbers, n)
	}
	slices.Sort(numbers)
	for _, n := range numbers {
		if got[n] == want[n] {
			br.Correct++
		} else if len(br.Wrong) < 10 {
			br.Wrong = append(br.Wrong, fmt.Sprintf("#%d: %q, want %q", n, got[n], want[n]))
		}
	}
	t := tally.snapshot()
	br.Requests, br.NotModified, br.RateLimited, br.TokenRequests = t.Total, t.NotModified, t.RateLimited, t.Tokens
	if accepted > 0 {
		br.PerDelivery = round3(float64(t.Total) / float64(accepted))
		br.RateLimitedPerD = round3(float64(t.RateLimited) / float64(accepted))
		br.NotModifiedPerD = round3(float64(t.NotModified) / float64(accepted))
	}
	for r, c := range t.ByRoute {
		br.TopRoutes = append(br.TopRoutes, routeCount{r, c})
	}
	slices.SortFunc(br.TopRoutes, func(a, b routeCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		if a.Route < b.Route {
			return -1
		}
		return 1
	})
	if len(br.TopRoutes) > 12 {
		br.TopRoutes = br.TopRoutes[:12]
	}
	return br
}
