package bot

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/policies"
)

// SHAs of the fixture: the current head, an earlier head pushed by
// "oldpusher" whose diff differed, an earlier head whose diff equals the
// current one (a base-branch merge), and one nobody recorded.
const (
	headSHA    = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
	changedSHA = "0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad"
	rebasedSHA = "5a5e5a5e5a5e5a5e5a5e5a5e5a5e5a5e5a5e5a5e"
	unknownSHA = "7777777777777777777777777777777777777777"
	commitSHA  = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
)

func globs(ps ...string) []policies.Glob {
	out := make([]policies.Glob, len(ps))
	for i, p := range ps {
		out[i] = policies.MustCompileGlob(p)
	}
	return out
}

// testPolicy: infra (1 approval from @acme/sre or @alice), code (1 from
// anyone), Markdown exempt, every review rule at its strict default.
func testPolicy() *policies.Policy {
	return &policies.Policy{
		Source: ".github/foureyes.yml",
		Digest: "d1d1d1d1",
		Categories: []policies.Category{
			{Name: "infra", Paths: globs("deploy/**", "**/*.tf"), Approvals: 1,
				Reviewers: policies.Reviewers{Teams: []string{"acme/sre"}, Users: []string{"alice"}}},
			{Name: "code", Paths: globs("**"), Ignore: globs("docs/**"), Approvals: 1},
		},
		Exempt: globs("**/*.md"),
		Review: policies.Review{
			DismissStale: true, IgnoreBaseUpdates: true,
			MinPermission: policies.PermissionWrite, ChangesRequestedBlocks: true,
		},
	}
}

// testChange: "Author" opened it, dev1 authored its commit, cmtr committed
// it, pair co-authored it, oldpusher pushed an earlier head and pusher the
// current one. Everyone else named in Reviewers is independent.
func testChange() *Change {
	c := &Change{
		Ref:     ChangeRef{Forge: GitHub, Repo: Repo{FullName: "acme/app"}, Number: 7, HeadSHA: headSHA},
		Author:  User{Login: "Author"},
		BaseRef: "main",
		Files:   []File{{Path: "main.go", Status: "modified", PatchDigest: PatchDigest("+package main")}},
		Commits: []Commit{{
			SHA: commitSHA, Author: User{Login: "dev1"}, Committer: User{Login: "cmtr"},
			CoAuthors: []User{{Login: "pair"}, {Email: "bob@example.com"}},
		}},
		Pushes: []Push{
			{HeadSHA: changedSHA, Pusher: User{Login: "oldpusher"}},
			{HeadSHA: headSHA, Pusher: User{Login: "pusher"}},
		},
		DiffDigests: map[string]string{changedSHA: PatchDigest("something else")},
		Reviewers:   map[string]ReviewerFacts{},
	}
	for _, l := range []string{"author", "dev1", "cmtr", "pair", "pusher", "oldpusher", "bob", "alice", "ci[bot]", "robo", "erin"} {
		c.Reviewers[l] = ReviewerFacts{Permission: policies.PermissionWrite}
	}
	c.Reviewers["carol"] = ReviewerFacts{Permission: policies.PermissionMaintain, Teams: []string{"acme/sre"}}
	c.Reviewers["dave"] = ReviewerFacts{Permission: policies.PermissionWrite, Teams: []string{"ACME/SRE"}}
	c.Reviewers["reader"] = ReviewerFacts{Permission: policies.PermissionRead}
	c.Reviewers["robo"] = ReviewerFacts{Permission: policies.PermissionWrite, Bot: true}
	return c
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rv is a review by login on sha, given at minute n (its ID is n too).
func rv(login string, state ReviewState, sha string, n int) Review {
	return Review{ID: int64(n), Reviewer: User{Login: login}, State: state, CommitSHA: sha, At: t0.Add(time.Duration(n) * time.Minute)}
}

func approve(login string, n int) Review { return rv(login, Approved, headSHA, n) }

// expect holds the fields a case asserts; nil maps are not checked.
type expect struct {
	state    State
	title    string                         // substring of Title
	counted  map[string][]string            // category -> Counted
	missing  map[string]int                 // category -> Missing
	rejected map[string]map[string][]Reason // category -> reviewer -> Reasons
	ignored  map[string][]Reason            // reviewer -> Reasons (exact set of Ignored)
	blocking []string
	exempt   []string
	files    map[string][]string // category -> Files
	cats     []string            // names of the reported categories, in order
	notice   string              // substring of some notice
	failure  string              // exact entry of Failures
}

func TestDecide(t *testing.T) {
	allow := func(f func(*policies.Review)) func(*policies.Policy) {
		return func(p *policies.Policy) { f(&p.Review) }
	}
	infraFile := func(c *Change) {
		c.Files = append(c.Files, File{Path: "deploy/prod/app.yaml", Status: "modified", PatchDigest: PatchDigest("x")})
	}
	reviews := func(rs ...Review) func(*Change) {
		return func(c *Change) { c.Reviews = append(c.Reviews, rs...) }
	}

	tests := []struct {
		name   string
		policy func(*policies.Policy)
		change func(*Change)
		want   expect
	}{
		{
			name:   "independent approval counts",
			change: reviews(approve("bob", 1)),
			want: expect{state: Success, title: "code approved", cats: []string{"code"},
				counted: map[string][]string{"code": {"bob"}}, missing: map[string]int{"code": 0},
				ignored: map[string][]Reason{}},
		},
		{
			name:   "no approval: pending with the missing count",
			change: reviews(),
			want: expect{state: PendingState, title: "code needs 1 more independent approval",
				counted: map[string][]string{"code": {}}, missing: map[string]int{"code": 1}},
		},
		// Each independence rule, rejected by default and allowed by its switch.
		{
			name:   "author rejected",
			change: reviews(approve("author", 1)),
			want: expect{state: PendingState, missing: map[string]int{"code": 1},
				rejected: map[string]map[string][]Reason{"code": {"author": {ReasonAuthor}}},
				ignored:  map[string][]Reason{"author": {ReasonAuthor}}},
		},
		{
			name:   "author counts with allow_author",
			policy: allow(func(r *policies.Review) { r.AllowAuthor = true }),
			change: reviews(approve("AUTHOR", 1)),
			want:   expect{state: Success, counted: map[string][]string{"code": {"AUTHOR"}}},
		},
		{
			name:   "commit author rejected as committer",
			change: reviews(approve("dev1", 1)),
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"dev1": {ReasonCommitter}}}},
		},
		{
			name:   "commit committer rejected",
			change: reviews(approve("cmtr", 1)),
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"cmtr": {ReasonCommitter}}}},
		},
		{
			name:   "co-author rejected",
			change: reviews(approve("pair", 1)),
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"pair": {ReasonCoAuthor}}}},
		},
		{
			name:   "pusher of an earlier head rejected as committer",
			change: reviews(approve("oldpusher", 1)),
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"oldpusher": {ReasonCommitter}}}},
		},
		{
			name:   "pusher of an earlier head still rejected with only allow_last_pusher",
			policy: allow(func(r *policies.Review) { r.AllowLastPusher = true }),
			change: reviews(approve("oldpusher", 1)),
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"oldpusher": {ReasonCommitter}}}},
		},
		{
			name:   "committers, co-authors and earlier pushers count with allow_committers",
			policy: allow(func(r *policies.Review) { r.AllowCommitters = true }),
			change: reviews(approve("dev1", 1), approve("cmtr", 2), approve("pair", 3), approve("oldpusher", 4)),
			want: expect{state: Success,
				counted: map[string][]string{"code": {"dev1", "cmtr", "pair", "oldpusher"}}},
		},
		{
			name:   "last pusher rejected",
			change: reviews(approve("pusher", 1)),
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"pusher": {ReasonLastPusher}}}},
		},
		{
			name:   "last pusher counts with allow_last_pusher",
			policy: allow(func(r *policies.Review) { r.AllowLastPusher = true }),
			change: reviews(approve("pusher", 1)),
			want:   expect{state: Success, counted: map[string][]string{"code": {"pusher"}}},
		},
		{
			name: "every reason of one person is collected, in order",
			change: func(c *Change) {
				c.Commits[0].Committer = User{Login: "author"}
				c.Pushes[1].Pusher = User{Login: "Author"}
				c.Reviewers["author"] = ReviewerFacts{Permission: policies.PermissionRead}
				c.Reviews = []Review{rv("author", Approved, changedSHA, 1)}
			},
			want: expect{state: PendingState,
				ignored: map[string][]Reason{"author": {ReasonAuthor, ReasonCommitter, ReasonLastPusher, ReasonPermission, ReasonStale}}},
		},
		{
			name:   "bots rejected: [bot] suffix, User.Bot, ReviewerFacts.Bot",
			change: reviews(approve("ci[bot]", 1), approve("robo", 2), Review{ID: 3, Reviewer: User{Login: "erin", Bot: true}, State: Approved, CommitSHA: headSHA, At: t0}),
			want: expect{state: PendingState, counted: map[string][]string{"code": {}},
				ignored: map[string][]Reason{"ci[bot]": {ReasonBot}, "robo": {ReasonBot}, "erin": {ReasonBot}}},
		},
		{
			name:   "bots count with count_bots",
			policy: allow(func(r *policies.Review) { r.CountBots = true }),
			change: reviews(approve("ci[bot]", 1), approve("robo", 2)),
			want:   expect{state: Success, counted: map[string][]string{"code": {"ci[bot]", "robo"}}},
		},
		{
			name:   "permission below min_permission rejected",
			change: reviews(approve("reader", 1)),
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"reader": {ReasonPermission}}}},
		},
		{
			name:   "permission read suffices with min_permission read",
			policy: allow(func(r *policies.Review) { r.MinPermission = policies.PermissionRead }),
			change: reviews(approve("reader", 1)),
			want:   expect{state: Success, counted: map[string][]string{"code": {"reader"}}},
		},
		{
			name:   "a reviewer without any facts never counts, even with min_permission none",
			policy: allow(func(r *policies.Review) { r.MinPermission = policies.PermissionNone }),
			change: reviews(approve("stranger", 1)),
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"stranger": {ReasonPermission}}}},
		},
		{
			name:   "identities without a login match nobody",
			change: reviews(approve("bob", 1)), // bob@example.com co-authored without a linked account
			want:   expect{state: Success, counted: map[string][]string{"code": {"bob"}}},
		},
		{
			name: "a review without a reviewer login never counts",
			change: reviews(Review{ID: 1, Reviewer: User{Email: "x@example.com"}, State: Approved, CommitSHA: headSHA, At: t0},
				Review{ID: 2, Reviewer: User{Name: "Y"}, State: Approved, CommitSHA: headSHA, At: t0}),
			want: expect{state: PendingState, counted: map[string][]string{"code": {}},
				ignored: map[string][]Reason{"x@example.com": {ReasonPermission}, "Y": {ReasonPermission}}},
		},
		// Category reviewers.
		{
			name:   "not in team: rejected for infra, counts for code",
			change: func(c *Change) { infraFile(c); c.Reviews = []Review{approve("bob", 1)} },
			want: expect{state: PendingState, title: "infra needs 1 more approval from @acme/sre or @alice",
				counted:  map[string][]string{"infra": {}, "code": {"bob"}},
				missing:  map[string]int{"infra": 1, "code": 0},
				rejected: map[string]map[string][]Reason{"infra": {"bob": {ReasonNotInTeam}}},
				ignored:  map[string][]Reason{}},
		},
		{
			name:   "one team member satisfies several categories",
			change: func(c *Change) { infraFile(c); c.Reviews = []Review{approve("carol", 1)} },
			want: expect{state: Success, title: "All 2 categories approved", cats: []string{"infra", "code"},
				counted: map[string][]string{"infra": {"carol"}, "code": {"carol"}}},
		},
		{
			name:   "user list matches case-insensitively",
			change: func(c *Change) { infraFile(c); c.Reviews = []Review{approve("ALICE", 1)} },
			want:   expect{state: Success, counted: map[string][]string{"infra": {"ALICE"}, "code": {"ALICE"}}},
		},
		{
			name: "two approvals required from a team",
			policy: func(p *policies.Policy) {
				p.Categories[0].Approvals = 2
				p.Categories[0].Reviewers = policies.Reviewers{Teams: []string{"acme/sre"}}
			},
			change: func(c *Change) { infraFile(c); c.Reviews = []Review{approve("carol", 1), approve("bob", 2)} },
			want: expect{state: PendingState, title: "infra needs 1 more approval from @acme/sre",
				counted: map[string][]string{"infra": {"carol"}, "code": {"carol", "bob"}},
				missing: map[string]int{"infra": 1, "code": 0}},
		},
		{
			name: "two approvals from a team, satisfied",
			policy: func(p *policies.Policy) {
				p.Categories[0].Approvals = 2
				p.Categories[0].Reviewers = policies.Reviewers{Teams: []string{"acme/sre"}}
			},
			change: func(c *Change) {
				infraFile(c)
				c.Reviews = []Review{approve("carol", 1), approve("dave", 2), approve("carol", 3)}
			},
			want: expect{state: Success,
				counted: map[string][]string{"infra": {"dave", "carol"}}, missing: map[string]int{"infra": 0}},
		},
		{
			name:   "several categories missing",
			policy: func(p *policies.Policy) { p.Categories[1].Approvals = 2 },
			change: infraFile,
			want: expect{state: PendingState,
				title: "2 categories need approvals: infra (1 more from @acme/sre or @alice), code (2 more)"},
		},
		// Files.
		{
			name: "exempt files are listed apart and need nothing",
			change: func(c *Change) {
				c.Files = []File{{Path: "README.md", PatchDigest: "a"}, {Path: "docs/x/guide.md", PatchDigest: "b"}}
			},
			want: expect{state: Success, title: "No review needed", cats: []string{},
				exempt: []string{"README.md", "docs/x/guide.md"}},
		},
		{
			name: "a file in no category needs one approval from anyone",
			change: func(c *Change) {
				c.Files = append(c.Files, File{Path: "docs/setup.txt", PatchDigest: "c"}, File{Path: "NOTES.md", PatchDigest: "d"})
				c.Reviews = []Review{approve("bob", 1)}
			},
			want: expect{state: Success, cats: []string{"code", policies.UncategorizedName},
				files:   map[string][]string{"code": {"main.go"}, policies.UncategorizedName: {"docs/setup.txt"}},
				counted: map[string][]string{policies.UncategorizedName: {"bob"}},
				exempt:  []string{"NOTES.md"}},
		},
		{
			name: "uncategorized file pending without approval",
			change: func(c *Change) {
				c.Files = []File{{Path: "docs/setup.txt", PatchDigest: "c"}}
			},
			want: expect{state: PendingState, title: "uncategorized needs 1 more independent approval",
				missing: map[string]int{policies.UncategorizedName: 1}},
		},
		{
			name:   "a change without files is still reviewed",
			change: func(c *Change) { c.Files = nil },
			want: expect{state: PendingState, cats: []string{policies.UncategorizedName},
				missing: map[string]int{policies.UncategorizedName: 1}},
		},
		{
			name: "a rename is classified by its old path too",
			change: func(c *Change) {
				c.Files = []File{{Path: "docs/old-terraform.md", PreviousPath: "deploy/main.tf", Status: "renamed", PatchDigest: "r"}}
				c.Reviews = []Review{approve("bob", 1)}
			},
			want: expect{state: PendingState, cats: []string{"infra", "code"},
				files:   map[string][]string{"infra": {"docs/old-terraform.md"}, "code": {"docs/old-terraform.md"}},
				missing: map[string]int{"infra": 1, "code": 0}},
		},
		{
			name: "a rename between exempt paths is exempt",
			change: func(c *Change) {
				c.Files = []File{{Path: "b.md", PreviousPath: "a.md", Status: "renamed", PatchDigest: "r"}}
			},
			want: expect{state: Success, cats: []string{}, exempt: []string{"b.md"}},
		},
		{
			name: "categories are reported in policy order, files in change order",
			change: func(c *Change) {
				c.Files = []File{{Path: "z.go", PatchDigest: "1"}, {Path: "infra.tf", PatchDigest: "2"}, {Path: "a.go", PatchDigest: "3"}}
			},
			want: expect{cats: []string{"infra", "code"}, state: PendingState,
				files: map[string][]string{"infra": {"infra.tf"}, "code": {"z.go", "infra.tf", "a.go"}}},
		},
		{
			name:   "a category requiring no approvals is satisfied",
			policy: func(p *policies.Policy) { p.Categories[1].Approvals = 0 },
			want:   expect{state: Success, missing: map[string]int{"code": 0}, counted: map[string][]string{"code": {}}},
		},
		// Staleness and the diff-digest rule.
		{
			name:   "approval of an earlier head with a different diff is stale",
			change: reviews(rv("bob", Approved, changedSHA, 1)),
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"bob": {ReasonStale}}}},
		},
		{
			name:   "approval of an earlier head with the same diff counts",
			change: reviews(rv("bob", Approved, rebasedSHA, 1)),
			want:   expect{state: Success, counted: map[string][]string{"code": {"bob"}}},
		},
		{
			name:   "approval of an earlier head with an unrecorded diff is stale",
			change: reviews(rv("bob", Approved, unknownSHA, 1)),
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"bob": {ReasonStale}}}},
		},
		{
			name:   "approval without a commit SHA is stale",
			change: reviews(rv("bob", Approved, "", 1)),
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"bob": {ReasonStale}}}},
		},
		{
			name:   "same diff but ignore_base_updates false is stale",
			policy: allow(func(r *policies.Review) { r.IgnoreBaseUpdates = false }),
			change: reviews(rv("bob", Approved, rebasedSHA, 1)),
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"bob": {ReasonStale}}}},
		},
		{
			name:   "dismiss_stale false counts approvals of any head",
			policy: allow(func(r *policies.Review) { r.DismissStale = false }),
			change: reviews(rv("bob", Approved, changedSHA, 1), rv("carol", Approved, "", 2)),
			want:   expect{state: Success, counted: map[string][]string{"code": {"bob", "carol"}}},
		},
		{
			name: "same diff does not count when the current diff is not fully known",
			change: func(c *Change) {
				c.Files = append(c.Files, File{Path: "logo.bin", Status: "modified"}) // no PatchDigest
				c.DiffDigests[rebasedSHA] = ""
				c.Reviews = []Review{rv("bob", Approved, rebasedSHA, 1)}
			},
			want: expect{state: PendingState,
				rejected: map[string]map[string][]Reason{"code": {"bob": {ReasonStale}}}},
		},
		// Review history: the latest decision wins.
		{
			name:   "approve then request changes: blocking, approval superseded",
			change: reviews(approve("bob", 1), rv("bob", ChangesRequested, headSHA, 2), approve("carol", 3)),
			want: expect{state: Failure, title: "changes requested by @bob", blocking: []string{"bob"},
				counted: map[string][]string{"code": {"carol"}},
				ignored: map[string][]Reason{"bob": {ReasonSuperseded}}},
		},
		{
			name:   "request changes then approve: counts, not blocking",
			change: reviews(rv("bob", ChangesRequested, headSHA, 1), approve("bob", 2)),
			want: expect{state: Success, counted: map[string][]string{"code": {"bob"}},
				ignored: map[string][]Reason{}},
		},
		{
			name:   "approve then comment or draft: still approved",
			change: reviews(approve("bob", 1), rv("bob", Commented, headSHA, 2), rv("bob", Pending, headSHA, 3)),
			want:   expect{state: Success, counted: map[string][]string{"code": {"bob"}}},
		},
		{
			name:   "forge spelling of states is normalized",
			change: reviews(rv("bob", "APPROVED", headSHA, 1)),
			want:   expect{state: Success, counted: map[string][]string{"code": {"bob"}}},
		},
		{
			name:   "latest by time, not by list order",
			change: reviews(approve("bob", 5), rv("bob", ChangesRequested, headSHA, 2)),
			want:   expect{state: Success, counted: map[string][]string{"code": {"bob"}}},
		},
		{
			name:   "equal times: the higher review ID is later",
			change: reviews(Review{ID: 9, Reviewer: User{Login: "bob"}, State: ChangesRequested, CommitSHA: headSHA, At: t0}, Review{ID: 3, Reviewer: User{Login: "bob"}, State: Approved, CommitSHA: headSHA, At: t0}),
			want:   expect{state: Failure, blocking: []string{"bob"}},
		},
		{
			name:   "dismissed review does not count; the earlier approval is superseded",
			change: reviews(approve("bob", 1), rv("bob", Dismissed, headSHA, 2)),
			want: expect{state: PendingState, counted: map[string][]string{"code": {}},
				rejected: map[string]map[string][]Reason{"code": {"bob": {ReasonSuperseded, ReasonDismissed}}},
				ignored:  map[string][]Reason{"bob": {ReasonSuperseded, ReasonDismissed}}},
		},
		{
			name:   "an approval repeated on a new head counts once",
			change: reviews(rv("bob", Approved, changedSHA, 1), approve("Bob", 2)),
			want: expect{state: Success, counted: map[string][]string{"code": {"Bob"}},
				ignored: map[string][]Reason{}},
		},
		// Changes requested.
		{
			name:   "stale changes requested still blocks",
			change: reviews(approve("carol", 1), rv("bob", ChangesRequested, changedSHA, 2)),
			want:   expect{state: Failure, blocking: []string{"bob"}, counted: map[string][]string{"code": {"carol"}}},
		},
		{
			name:   "changes requested does not block with changes_requested_blocks false",
			policy: allow(func(r *policies.Review) { r.ChangesRequestedBlocks = false }),
			change: reviews(approve("carol", 1), rv("bob", ChangesRequested, headSHA, 2)),
			want:   expect{state: Success, notice: "changes requested by @bob (not blocking"},
		},
		{
			name: "ineligible people's changes requested do not block",
			change: reviews(approve("carol", 1), rv("author", ChangesRequested, headSHA, 2),
				rv("reader", ChangesRequested, headSHA, 3), rv("ci[bot]", ChangesRequested, headSHA, 4),
				rv("pusher", ChangesRequested, headSHA, 5)),
			want: expect{state: Success},
		},
		{
			name: "a team outsider's changes requested blocks",
			change: func(c *Change) {
				infraFile(c)
				c.Reviews = []Review{approve("carol", 1), rv("bob", ChangesRequested, headSHA, 2)}
			},
			want: expect{state: Failure, blocking: []string{"bob"}},
		},
		{
			name:   "changes requested by several",
			change: reviews(rv("bob", ChangesRequested, headSHA, 1), rv("carol", ChangesRequested, headSHA, 2)),
			want:   expect{state: Failure, title: "changes requested by @bob and @carol", blocking: []string{"bob", "carol"}},
		},
		// The head's pusher.
		{
			name:   "unknown pusher is never success",
			change: func(c *Change) { c.Pushes = c.Pushes[:1]; c.Reviews = []Review{approve("bob", 1)} },
			want: expect{state: PendingState, title: "waiting to learn who pushed head 9f8e7d6",
				counted: map[string][]string{"code": {"bob"}}, notice: "pusher of head 9f8e7d6 is not known yet"},
		},
		{
			name:   "unknown pusher is never success, even with allow_last_pusher",
			policy: allow(func(r *policies.Review) { r.AllowLastPusher = true }),
			change: func(c *Change) { c.Pushes = nil; c.Reviews = []Review{approve("bob", 1)} },
			want:   expect{state: PendingState, notice: "is not known yet"},
		},
		{
			name: "a push record without a login is an unknown pusher",
			change: func(c *Change) {
				c.Pushes[1].Pusher = User{Email: "p@example.com"}
				c.Reviews = []Review{approve("bob", 1)}
			},
			want: expect{state: PendingState},
		},
		{
			name:   "unknown pusher with missing approvals: the title says what is missing",
			change: func(c *Change) { c.Pushes = nil },
			want:   expect{state: PendingState, title: "code needs 1 more", notice: "is not known yet"},
		},
		// Failing closed.
		{
			name:   "EvalError is a failure, with what could be judged",
			change: func(c *Change) { c.EvalError = "too many files (3001 > 3000)"; c.Reviews = []Review{approve("bob", 1)} },
			want: expect{state: Failure, title: "cannot evaluate: too many files", failure: "too many files (3001 > 3000)",
				counted: map[string][]string{"code": {"bob"}}},
		},
		{
			name: "EvalError outranks changes requested",
			change: func(c *Change) {
				c.EvalError = "API error"
				c.Reviews = []Review{rv("bob", ChangesRequested, headSHA, 1)}
			},
			want: expect{state: Failure, title: "cannot evaluate: API error", failure: "API error", blocking: []string{"bob"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			if tt.policy != nil {
				tt.policy(p)
			}
			c := testChange()
			if tt.change != nil {
				tt.change(c)
			}
			if _, ok := c.DiffDigests[rebasedSHA]; !ok {
				c.DiffDigests[rebasedSHA] = DiffDigest(c.Files)
			}
			v := Decide(Input{Policy: p, Change: c})
			check(t, v, tt.want)

			// Decide is pure: shuffled reviews and a second run change nothing.
			c2 := testChange()
			if tt.change != nil {
				tt.change(c2)
			}
			c2.DiffDigests = c.DiffDigests
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(c2.Reviews), func(i, j int) { c2.Reviews[i], c2.Reviews[j] = c2.Reviews[j], c2.Reviews[i] })
			if v2 := Decide(Input{Policy: p, Change: c2}); !reflect.DeepEqual(v, v2) {
				t.Errorf("verdict depends on review order:\n%+v\n%+v", v, v2)
			}
		})
	}
}

func check(t *testing.T, v Verdict, w expect) {
	t.Helper()
	if v.State != w.state {
		t.Errorf("State = %q, want %q (title %q)", v.State, w.state, v.Title)
	}
	if !strings.Contains(v.Title, w.title) {
		t.Errorf("Title = %q, want it to contain %q", v.Title, w.title)
	}
	cat := func(name string) *CategoryResult {
		for i := range v.Categories {
			if v.Categories[i].Name == name {
				return &v.Categories[i]
			}
		}
		t.Fatalf("no category %q in %+v", name, v.Categories)
		return nil
	}
	if w.cats != nil {
		var got []string
		for _, c := range v.Categories {
			got = append(got, c.Name)
		}
		if !slices.Equal(got, w.cats) {
			t.Errorf("categories = %q, want %q", got, w.cats)
		}
	}
	for name, want := range w.counted {
		if got := cat(name).Counted; !slices.Equal(got, want) {
			t.Errorf("%s: Counted = %q, want %q", name, got, want)
		}
	}
	for name, want := range w.missing {
		if got := cat(name).Missing; got != want {
			t.Errorf("%s: Missing = %d, want %d", name, got, want)
		}
	}
	for name, want := range w.files {
		if got := cat(name).Files; !slices.Equal(got, want) {
			t.Errorf("%s: Files = %q, want %q", name, got, want)
		}
	}
	for name, byReviewer := range w.rejected {
		got := map[string][]Reason{}
		for _, r := range cat(name).Rejected {
			got[r.Reviewer] = append(got[r.Reviewer], r.Reasons...)
			if r.Detail == "" {
				t.Errorf("%s: rejection of %s has no detail", name, r.Reviewer)
			}
		}
		if !reflect.DeepEqual(got, byReviewer) {
			t.Errorf("%s: Rejected = %v, want %v", name, got, byReviewer)
		}
	}
	if w.ignored != nil {
		got := map[string][]Reason{}
		for _, r := range v.Ignored {
			got[r.Reviewer] = append(got[r.Reviewer], r.Reasons...)
		}
		if !reflect.DeepEqual(got, w.ignored) {
			t.Errorf("Ignored = %v, want %v", got, w.ignored)
		}
	}
	if !slices.Equal(v.Blocking, w.blocking) {
		t.Errorf("Blocking = %q, want %q", v.Blocking, w.blocking)
	}
	if w.exempt != nil && !slices.Equal(v.Exempt, w.exempt) {
		t.Errorf("Exempt = %q, want %q", v.Exempt, w.exempt)
	}
	if w.notice != "" && !slices.ContainsFunc(v.Notices, func(n string) bool { return strings.Contains(n, w.notice) }) {
		t.Errorf("Notices = %q, want one containing %q", v.Notices, w.notice)
	}
	if w.failure != "" && !slices.Contains(v.Failures, w.failure) {
		t.Errorf("Failures = %q, want %q among them", v.Failures, w.failure)
	}
	if w.failure == "" && len(v.Failures) > 0 {
		t.Errorf("unexpected Failures %q", v.Failures)
	}
	if len(v.Title) > maxTitle {
		t.Errorf("Title is %d bytes long: %q", len(v.Title), v.Title)
	}
}

func TestDecideDetails(t *testing.T) {
	c := testChange()
	c.Files = append(c.Files, File{Path: "deploy/x.tf", PatchDigest: "t"})
	c.Commits[0].Author = User{Login: "erin"}
	c.Pushes[1].Pusher = User{Login: "erin"}
	c.Reviews = []Review{
		rv("erin", Approved, headSHA, 1),
		rv("bob", Approved, changedSHA, 2),
		rv("reader", Approved, headSHA, 3),
	}
	v := Decide(Input{Policy: testPolicy(), Change: c})
	got := map[string]string{}
	for _, r := range v.Ignored {
		got[r.Reviewer] = r.Detail
	}
	want := map[string]string{
		"erin":   "authored 1a2b3c4; pushed head 9f8e7d6; not in @acme/sre or @alice",
		"bob":    "not in @acme/sre or @alice; approved 0bad0ba, head is now 9f8e7d6; the diff has changed since",
		"reader": "permission read, needs write; not in @acme/sre or @alice",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Ignored details:\n got %q\nwant %q", got, want)
	}
	for _, r := range v.Ignored {
		if r.Reviewer == "bob" && (r.ReviewID != 2 || r.CommitSHA != changedSHA) {
			t.Errorf("bob's rejection names review %d on %s", r.ReviewID, r.CommitSHA)
		}
	}
	if v.PolicySource != ".github/foureyes.yml" || v.PolicyDigest != "d1d1d1d1" || v.DiffDigest != DiffDigest(c.Files) {
		t.Errorf("provenance not filled: %q %q %q", v.PolicySource, v.PolicyDigest, v.DiffDigest)
	}
	if v.Ref != c.Ref {
		t.Errorf("Ref = %+v", v.Ref)
	}
}

func TestDecideInvalidPolicy(t *testing.T) {
	c := testChange()
	c.Unverified = []string{"ghost@example.com"}
	c.Notices = []string{"approvals read from stored events"}
	perr := &policies.ParseError{Diagnostics: []policies.Diagnostic{
		{File: ".github/foureyes.yml", Line: 4, Column: 5, Message: `unknown key "aprovals"`},
		{File: ".github/foureyes.yml", Line: 9, Column: 3, Message: "approvals must not be negative"},
	}}
	v := Decide(Input{PolicyErr: perr, Change: c})
	if v.State != Failure {
		t.Fatalf("State = %q", v.State)
	}
	wantF := []string{`.github/foureyes.yml:4:5: unknown key "aprovals"`, ".github/foureyes.yml:9:3: approvals must not be negative"}
	if !slices.Equal(v.Failures, wantF) {
		t.Errorf("Failures = %q", v.Failures)
	}
	if want := `invalid policy file: .github/foureyes.yml:4:5: unknown key "aprovals" (+1 more)`; v.Title != want {
		t.Errorf("Title = %q, want %q", v.Title, want)
	}
	if v.Ref != c.Ref || v.DiffDigest == "" || !slices.Equal(v.Unverified, c.Unverified) || !slices.Equal(v.Notices, c.Notices) {
		t.Errorf("what could be filled was not: %+v", v)
	}

	// A non-positioned error is shown as is; a missing policy fails too.
	v = Decide(Input{PolicyErr: errors.New("fetching policy: 502"), Change: c})
	if v.State != Failure || !slices.Equal(v.Failures, []string{"fetching policy: 502"}) {
		t.Errorf("plain error: %q %q", v.State, v.Failures)
	}
	v = Decide(Input{Change: c})
	if v.State != Failure || len(v.Failures) == 0 {
		t.Errorf("nil policy: %q %q", v.State, v.Failures)
	}
	// An invalid policy even with perfect approvals is a failure.
	c.Reviews = []Review{approve("bob", 1)}
	if v = Decide(Input{Policy: testPolicy(), PolicyErr: perr, Change: c}); v.State != Failure {
		t.Errorf("policy error ignored when a policy is also given: %q", v.State)
	}
	if v = Decide(Input{Policy: testPolicy()}); v.State != Failure {
		t.Errorf("nil change: %q", v.State)
	}
}

func TestDecideDoesNotModifyInput(t *testing.T) {
	c := testChange()
	c.Files = append(c.Files, File{Path: "deploy/a.tf", PatchDigest: "1"})
	c.Reviews = []Review{approve("author", 3), approve("bob", 1), rv("bob", ChangesRequested, headSHA, 2)}
	c.DiffDigests[rebasedSHA] = "x"
	before := fmt.Sprintf("%+v", *c)
	v := Decide(Input{Policy: testPolicy(), Change: c})
	if after := fmt.Sprintf("%+v", *c); after != before {
		t.Errorf("Decide modified its input:\n%s\n%s", before, after)
	}
	// Shared backing arrays must not let one category's edit leak into another.
	v.Categories[0].Rejected[0].Reasons[0] = "x"
	for _, r := range v.Ignored {
		if slices.Contains(r.Reasons, "x") {
			t.Error("Ignored shares Reasons with a category")
		}
	}
}

func TestTitleIsClipped(t *testing.T) {
	p := testPolicy()
	p.Categories[0].Reviewers.Teams = []string{"acme/some-very-long-team-name-for-infrastructure", "acme/another-long-team-name"}
	p.Categories[0].Reviewers.Users = []string{"alice", "bartholomew", "christopher"}
	c := testChange()
	c.Files = append(c.Files, File{Path: "deploy/x", PatchDigest: "1"})
	v := Decide(Input{Policy: p, Change: c})
	if len(v.Title) > maxTitle || !strings.HasPrefix(v.Title, "2 categories need approvals: infra (1 more from @acme/") {
		t.Errorf("Title = %q (%d bytes)", v.Title, len(v.Title))
	}
	v = Decide(Input{PolicyErr: errors.New(strings.Repeat("é", 200)), Change: c})
	if len(v.Title) > maxTitle || !strings.HasSuffix(v.Title, "é…") {
		t.Errorf("clipped Title = %q (%d bytes)", v.Title, len(v.Title))
	}
}

func TestDiffDigest(t *testing.T) {
	a := File{Path: "a.go", Status: "modified", PatchDigest: PatchDigest("+a")}
	b := File{Path: "b.go", PreviousPath: "old/b.go", Status: "renamed", PatchDigest: PatchDigest("")}
	d := DiffDigest([]File{a, b})
	if len(d) != 64 {
		t.Fatalf("digest %q is not hex SHA-256", d)
	}
	if DiffDigest([]File{b, a}) != d {
		t.Error("digest depends on file order")
	}
	for _, other := range [][]File{
		{a},
		{a, {Path: "b.go", PreviousPath: "old/b.go", Status: "renamed", PatchDigest: PatchDigest("+b")}},
		{a, {Path: "b.go", PreviousPath: "other/b.go", Status: "renamed", PatchDigest: PatchDigest("")}},
		{a, {Path: "b.go", PreviousPath: "old/b.go", Status: "copied", PatchDigest: PatchDigest("")}},
		// Field boundaries are not ambiguous.
		{a, {Path: "b.goold/b.go", Status: "renamed", PatchDigest: PatchDigest("")}},
	} {
		if DiffDigest(other) == d {
			t.Errorf("different diffs share a digest: %+v", other)
		}
	}
	if DiffDigest([]File{{Path: "x", PatchDigest: "short"}}) == DiffDigest([]File{{Path: "x", PatchDigest: "shorter"}}) {
		t.Error("verbatim patch digests collide")
	}
	if DiffDigest([]File{a, {Path: "logo.png"}}) != "" {
		t.Error("a file without a patch digest must make the diff digest unknown")
	}
	if DiffDigest(nil) == "" {
		t.Error("an empty diff has a digest")
	}
	if PatchDigest("abc") != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Error("PatchDigest is not hex SHA-256")
	}
}
