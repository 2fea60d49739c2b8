package bot

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
)

// memStore is the service's Store port in memory: PutFact overwrites one
// key, as store.DB does.
type memStore struct {
	mu    sync.Mutex
	facts map[string]map[string]string
}

func (m *memStore) PutFact(_ context.Context, scope, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.facts == nil {
		m.facts = map[string]map[string]string{}
	}
	if m.facts[scope] == nil {
		m.facts[scope] = map[string]string{}
	}
	m.facts[scope][key] = value
	return nil
}

func (m *memStore) PutFacts(ctx context.Context, facts map[string]map[string]string) error {
	for scope, kv := range facts {
		for k, v := range kv {
			if err := m.PutFact(ctx, scope, k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memStore) Facts(_ context.Context, scope string) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for k, v := range m.facts[scope] {
		out[k] = v
	}
	return out, nil
}

func (m *memStore) AppendAudit(_ context.Context, rec audit.Record) (audit.Record, error) {
	return rec, nil
}

func (m *memStore) AppendAuditWith(ctx context.Context, rec audit.Record, facts map[string]map[string]string) (audit.Record, error) {
	return rec, m.PutFacts(ctx, facts)
}

func approvedBy(c *Change, logins ...string) {
	for i, l := range logins {
		c.Reviews = append(c.Reviews, Review{ID: int64(100 + i), Reviewer: User{Login: l}, State: Approved, CommitSHA: c.Ref.HeadSHA})
	}
}

// TestPushersAreAHistory: bob pushes H2, alice pushes H3 and force-pushes
// back to H2. Recording the pusher per head and overwriting would leave
// alice as the only pusher of H2, and bob's approval would count.
func TestPushersAreAHistory(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	s := &Service{Store: st}
	const h2, h3 = "2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333"
	ref := ChangeRef{Forge: GitHub, Repo: Repo{FullName: "acme/app"}, Number: 7}
	for _, p := range []struct{ head, who string }{{h2, "bob"}, {h3, "alice"}, {h2, "alice"}} {
		ref.HeadSHA = p.head
		b := newFactBatch(st)
		s.recordChangePush(b, Event{Forge: GitHub, Repo: ref.Repo, Sender: User{Login: p.who}}, ref)
		if err := b.flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c := testChange()
	c.Ref = ChangeRef{Forge: GitHub, Repo: Repo{FullName: "acme/app"}, Number: 7, HeadSHA: h2}
	c.Pushes = nil
	c.Reviewers["alice"] = c.Reviewers["bob"]
	approvedBy(c, "bob")
	if err := CompleteFacts(ctx, st, c); err != nil {
		t.Fatal(err)
	}
	v := Decide(Input{Policy: testPolicy(), Change: c})
	if v.State == Success {
		t.Fatalf("bob pushed H2 and approved it: %s", v.Title)
	}
	if got := len(c.HeadPushers(h2)); got != 2 {
		t.Fatalf("pushers of H2 = %v, want bob and alice", c.HeadPushers(h2))
	}
	// The honest path: an independent reviewer.
	c.Reviews = nil
	approvedBy(c, "erin")
	if v := Decide(Input{Policy: testPolicy(), Change: c}); v.State != Success {
		t.Fatalf("erin approved: %s %s", v.State, v.Title)
	}
}

// TestPushDeliveryNamesPusherOfEveryCommit: a push of several commits
// makes its sender a pusher of each of them, so an approver who pushed an
// earlier commit of the change (now under someone else's head) is not
// independent.
func TestPushDeliveryNamesPusherOfEveryCommit(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	s := &Service{Store: st}
	const c1, c2, c3 = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1", "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2", "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
	repo := Repo{FullName: "acme/app"}
	pushes := []Event{
		{Forge: GitHub, Kind: EventBranchPush, Repo: repo, Push: &PushEvent{Ref: "refs/heads/fix", After: c2, Pusher: User{Login: "bob"},
			Commits: []PushCommit{{SHA: c1}, {SHA: c2}}}},
		{Forge: GitHub, Kind: EventBranchPush, Repo: repo, Push: &PushEvent{Ref: "refs/heads/fix", Before: c2, After: c3, Pusher: User{Login: "carol"},
			Commits: []PushCommit{{SHA: c3}}}},
	}
	for _, ev := range pushes {
		if err := s.recordPushEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	c := testChange()
	c.Ref.HeadSHA = c3
	c.Commits = []Commit{{SHA: c1, Author: User{Login: "dev1"}}, {SHA: c2, Author: User{Login: "dev1"}}, {SHA: c3, Author: User{Login: "dev1"}}}
	c.Pushes = nil
	approvedBy(c, "bob")
	if err := CompleteFacts(ctx, st, c); err != nil {
		t.Fatal(err)
	}
	v := Decide(Input{Policy: testPolicy(), Change: c})
	if v.State == Success || !strings.Contains(v.Ignored[0].Detail, "pushed "+short(c1)) {
		t.Fatalf("bob pushed c1 and c2: %s %+v", v.Title, v.Ignored)
	}
	if u := c.HeadPushers(c3); len(u) != 1 || u[0].Login != "carol" {
		t.Fatalf("head pushers = %+v", u)
	}
}

// TestBotPushedHeadIsNamed: a bot pushed the head of a person's change;
// who made it do so is unknown, so the check is not a success and says so.
func TestBotPushedHeadIsNamed(t *testing.T) {
	c := testChange()
	c.Pushes = []Push{{HeadSHA: headSHA, Pusher: User{Login: "github-actions[bot]", Bot: true}}}
	approvedBy(c, "erin")
	v := Decide(Input{Policy: testPolicy(), Change: c})
	if v.State != PendingState || v.Title != "pushed by github-actions[bot]: foureyes cannot tell who triggered it" {
		t.Fatalf("%s: %s", v.State, v.Title)
	}
	// A bot's own change (dependabot opening and pushing its PR) is judged
	// as usual.
	c.Author = User{Login: "github-actions[bot]", Bot: true}
	if v := Decide(Input{Policy: testPolicy(), Change: c}); v.State != Success {
		t.Fatalf("bot's own change: %s %s", v.State, v.Title)
	}
}

// TestUnknownPusherNamesTheRemedy: an adapter that could not read who
// pushed (a fork it cannot read) says what would resolve it.
func TestUnknownPusherNamesTheRemedy(t *testing.T) {
	c := testChange()
	c.Pushes = nil
	c.PusherNote = "the head branch is in the fork bob/app, which the foureyes App cannot read"
	approvedBy(c, "erin")
	v := Decide(Input{Policy: testPolicy(), Change: c})
	if v.State != PendingState || !strings.Contains(v.Title, "fork bob/app") {
		t.Fatalf("%s: %s", v.State, v.Title)
	}
}

func TestPushedCommits(t *testing.T) {
	cs := []Commit{{SHA: "a"}, {SHA: "b"}, {SHA: "c"}, {SHA: "d"}}
	for _, tc := range []struct {
		before, after, want string
	}{
		{"b", "d", "d,c"},
		{"0000", "b", "b,a"},
		{"a", "a", "a"},
		{"x", "zz", ""},
	} {
		if got := strings.Join(PushedCommits(cs, tc.before, tc.after), ","); got != tc.want {
			t.Errorf("PushedCommits(%s..%s) = %q, want %q", tc.before, tc.after, got, tc.want)
		}
	}
}

// TestApprovalBindsToTheDiffItSaw: bob approved the head while the change
// showed one file (stacked on another branch); retargeted to main with the
// same head it shows two. Bound to its diff, the approval is stale; a
// merge of the base that keeps the diff keeps it.
func TestApprovalBindsToTheDiffItSaw(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	s := &Service{Store: st}
	one := []File{{Path: "a.go", Status: "modified", PatchDigest: PatchDigest("+a")}}
	two := append([]File{{Path: "b.go", Status: "modified", PatchDigest: PatchDigest("+b")}}, one...)

	c := testChange()
	c.Files = one
	approvedBy(c, "bob")
	if err := CompleteFacts(ctx, st, c); err != nil {
		t.Fatal(err)
	}
	v := Decide(Input{Policy: testPolicy(), Change: c})
	if v.State != Success {
		t.Fatalf("before the retarget: %s", v.Title)
	}
	b := newFactBatch(st)
	if err := s.recordDigests(ctx, b, c, v.DiffDigest); err != nil {
		t.Fatal(err)
	}
	if err := b.flush(ctx); err != nil {
		t.Fatal(err)
	}

	retarget := func(files []File) Verdict {
		t.Helper()
		c := testChange()
		c.Files = files
		approvedBy(c, "bob")
		if err := CompleteFacts(ctx, st, c); err != nil {
			t.Fatal(err)
		}
		return Decide(Input{Policy: testPolicy(), Change: c})
	}
	if v := retarget(two); v.State == Success || !strings.Contains(v.Ignored[0].Detail, "different diff") {
		t.Fatalf("after the retarget bob's approval of the one-file diff counted: %s %+v", v.Title, v.Ignored)
	}
	if v := retarget(one); v.State != Success {
		t.Fatalf("same diff (base merged in): %s", v.Title)
	}
}

// TestGitLabApprovalEventsInEventOrder: carol approves at t1 and revokes
// at t2, but the revocation is delivered first. Taking deliveries in
// arrival order would leave her approval standing.
func TestGitLabApprovalEventsInEventOrder(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	s := &Service{Store: st}
	ref := ChangeRef{Forge: GitLab, Repo: Repo{FullName: "acme/app"}, Number: 7, HeadSHA: headSHA}
	t1 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	carol := User{Login: "carol"}
	for _, r := range []Review{
		{Reviewer: carol, State: Dismissed, CommitSHA: headSHA, At: t1.Add(time.Minute)},
		{Reviewer: carol, State: Approved, CommitSHA: headSHA, At: t1},
	} {
		if err := s.recordApproval(ctx, Event{Forge: GitLab}, ref, &r); err != nil {
			t.Fatal(err)
		}
	}
	c := &Change{Ref: ref, ReviewsFromEvents: true}
	if err := CompleteFacts(ctx, st, c); err != nil {
		t.Fatal(err)
	}
	if len(c.Reviews) != 0 {
		t.Fatalf("a revoked approval stands: %+v", c.Reviews)
	}
	// A later approval does count again.
	again := Review{Reviewer: carol, State: Approved, CommitSHA: headSHA, At: t1.Add(2 * time.Minute)}
	if err := s.recordApproval(ctx, Event{Forge: GitLab}, ref, &again); err != nil {
		t.Fatal(err)
	}
	c = &Change{Ref: ref, ReviewsFromEvents: true}
	if err := CompleteFacts(ctx, st, c); err != nil {
		t.Fatal(err)
	}
	if len(c.Reviews) != 1 || c.Reviews[0].CommitSHA != headSHA {
		t.Fatalf("reviews = %+v", c.Reviews)
	}
}

// TestBotFlagFromAnyRecord: a GitLab project access token's bot pushed the
// head; the merge request event names only its username, the push hook
// says it is a bot. Either record is enough to name it.
func TestBotFlagFromAnyRecord(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	s := &Service{Store: st}
	ref := ChangeRef{Forge: GitLab, Repo: Repo{FullName: "acme/app"}, Number: 7, HeadSHA: headSHA}
	b := newFactBatch(st)
	s.recordChangePush(b, Event{Forge: GitLab, Repo: ref.Repo, Sender: User{Login: "project_42_bot_1a2b"}}, ref)
	if err := b.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := RecordPush(ctx, st, GitLab, "acme/app", headSHA, Push{Pusher: User{Login: "project_42_bot_1a2b", Bot: true}, Via: ViaPush}); err != nil {
		t.Fatal(err)
	}
	c := testChange()
	c.Ref = ref
	c.Pushes = nil
	approvedBy(c, "erin")
	if err := CompleteFacts(ctx, st, c); err != nil {
		t.Fatal(err)
	}
	v := Decide(Input{Policy: testPolicy(), Change: c})
	if v.State != PendingState || !strings.Contains(v.Title, "pushed by project_42_bot_1a2b") {
		t.Fatalf("%s: %s", v.State, v.Title)
	}
}
