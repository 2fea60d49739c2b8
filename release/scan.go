package release

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/policies"
)

// A scan (`foureyes scan`, issue 14) is the release guard's analysis run
// over a branch's history instead of one push: every commit in a window is
// judged by the same analyzer (judge, evaluate, classify), so a scan, a
// flagged push and a tag report can never disagree about a commit.

// ScanForge is what a scan needs beyond Forge: the commits of a branch.
// forge/github.Forge and forge/gitlab.Forge implement it.
type ScanForge interface {
	Forge
	// BranchCommits lists up to limit commits reachable from branch, newest
	// first, committed at or after since (zero: no lower bound). All pages.
	BranchCommits(ctx context.Context, repo bot.Repo, branch string, since time.Time, limit int) ([]bot.PushCommit, error)
}

// MaxScanCommits bounds one scan window: a larger window is an error (ask
// for a shorter one), never a silently truncated answer.
const MaxScanCommits = 20000

// ErrWindowTooLarge is returned by ScanCommits when the window holds more
// than MaxScanCommits commits.
var ErrWindowTooLarge = fmt.Errorf("more than %d commits in the window", MaxScanCommits)

// ScanCommits lists the commits of branch in the window, newest first:
// the last `last` commits when last > 0, else every commit since since.
func ScanCommits(ctx context.Context, f ScanForge, repo bot.Repo, branch string, since time.Time, last int) ([]bot.PushCommit, error) {
	if last > 0 {
		if last > MaxScanCommits {
			return nil, fmt.Errorf("scan %s: --last %d: %w", branch, last, ErrWindowTooLarge)
		}
		return f.BranchCommits(ctx, repo, branch, time.Time{}, last)
	}
	cs, err := f.BranchCommits(ctx, repo, branch, since, MaxScanCommits+1)
	if err != nil {
		return nil, err
	}
	if len(cs) > MaxScanCommits {
		return nil, fmt.Errorf("scan %s since %s: %w", branch, since.UTC().Format(time.RFC3339), ErrWindowTooLarge)
	}
	return cs, nil
}

// Scanner judges commits of one branch, one at a time, with the guard's
// analyzer. It caches per merged change, so the commits of one change cost
// one evaluation; judging newest first lets a merge commit's change claim
// the commits it brought before they are looked up one by one.
type Scanner struct {
	a *analyzer
	// PolicySource and PolicyDigest name the policy the commits are judged
	// by: the candidate's, or the branch's.
	PolicySource string
	PolicyDigest string
	// PolicyError is set when the branch's own file is invalid: the scan
	// then judges with the built-in default, as the guard does.
	PolicyError string
	// WhatIf is set when a candidate policy was given.
	WhatIf bool
}

// NewScanner prepares a scan of branch. candidate, when not nil, is the
// policy file to judge by ("what if we had had this policy?"); it must be
// valid. Otherwise the branch's own policy at its tip is used, with the
// guard's fallbacks (the server default, then the built-in one). facts are
// what bot.Service recorded about changes (pushers, diff digests,
// verdicts); nil reads g.Store, or nothing when there is none. A scan
// reads only: it stores no finding and publishes nothing.
func (g *Guard) NewScanner(ctx context.Context, f Forge, facts bot.FactReader, forge bot.ForgeName, repo bot.Repo, branch string, candidate *bot.PolicyFile) (*Scanner, error) {
	s := &Scanner{}
	var pol *policies.Policy
	if candidate != nil {
		p, err := policies.Parse(candidate.Source, candidate.Data)
		if err != nil {
			return nil, fmt.Errorf("candidate policy: %w", err)
		}
		pol, s.WhatIf = p, true
	} else {
		lp, err := g.loadPolicy(ctx, f, forge, repo, branch)
		if err != nil {
			return nil, err
		}
		pol = lp.Policy
		if lp.Err != nil {
			s.PolicyError = firstLine(lp.Err.Error())
		}
	}
	s.PolicySource, s.PolicyDigest = pol.Source, pol.Digest
	s.a = g.newAnalyzer(f, forge, repo, branch, pol)
	s.a.readOnly = true
	switch {
	case facts != nil:
		s.a.facts = facts
	case s.a.facts == nil:
		s.a.facts = noFacts{}
	}
	return s, nil
}

// Judge decides whether commit c came through an independently approved
// change. The commit's landing time is its change's merge time, else its
// commit time (a scan did not see the push).
func (s *Scanner) Judge(ctx context.Context, c bot.PushCommit) (Finding, error) {
	return s.a.judge(ctx, c, time.Time{})
}

type noFacts struct{}

func (noFacts) Facts(context.Context, string) (map[string]string, error) {
	return map[string]string{}, nil
}

// ScanSummary counts the findings of a scan.
type ScanSummary struct {
	Commits    int `json:"commits"`
	Reviewed   int `json:"reviewed"`
	Unreviewed int `json:"unreviewed"`
	// ByReason counts the unreviewed commits per reason; every reason a
	// merged or pushed commit can have is present.
	ByReason map[string]int `json:"by_reason"`
	// Landers are the people who landed unreviewed commits, most first:
	// a change's author, or a direct push's commit author (a commit
	// listing does not say who pushed it).
	Landers []Lander `json:"landers"`
}

// Lander is one person who landed unreviewed commits.
type Lander struct {
	Who     string   `json:"who"`
	Commits int      `json:"commits"`
	Reasons []Reason `json:"reasons"`
}

// scanReasons are the reasons a scanned commit can have, in summary order.
var scanReasons = []Reason{DirectPush, UnapprovedMerge, StaleApproval, Override}

// SummarizeScan counts findings.
func SummarizeScan(fds []Finding) ScanSummary {
	s := ScanSummary{ByReason: map[string]int{}, Landers: []Lander{}}
	for _, r := range scanReasons {
		s.ByReason[string(r)] = 0
	}
	idx := map[string]int{}
	for _, fd := range fds {
		s.Commits++
		if fd.Reviewed() {
			s.Reviewed++
			continue
		}
		s.Unreviewed++
		s.ByReason[string(fd.Reason)]++
		who := fd.Author
		if fd.Change != nil && fd.Change.Author != "" {
			who = fd.Change.Author
		}
		i, ok := idx[who]
		if !ok {
			i = len(s.Landers)
			idx[who] = i
			s.Landers = append(s.Landers, Lander{Who: who})
		}
		l := &s.Landers[i]
		l.Commits++
		if !containsReason(l.Reasons, fd.Reason) {
			l.Reasons = append(l.Reasons, fd.Reason)
		}
	}
	sort.SliceStable(s.Landers, func(i, j int) bool { return s.Landers[i].Commits > s.Landers[j].Commits })
	return s
}

func containsReason(rs []Reason, r Reason) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// Line is the one-line summary: "N of M commits independently reviewed
// (P %), K direct pushes, ...".
func (s ScanSummary) Line() string {
	pct := 100.0
	if s.Commits > 0 {
		pct = 100 * float64(s.Reviewed) / float64(s.Commits)
	}
	parts := []string{fmt.Sprintf("%d of %d commits independently reviewed (%s %%)", s.Reviewed, s.Commits, strconv.FormatFloat(pct, 'f', 1, 64))}
	names := map[Reason][2]string{
		DirectPush:      {"direct push", "direct pushes"},
		UnapprovedMerge: {"unapproved merge", "unapproved merges"},
		StaleApproval:   {"stale approval", "stale approvals"},
		Override:        {"override", "overrides"},
	}
	for _, r := range scanReasons {
		n, w := s.ByReason[string(r)], names[r]
		name := w[1]
		if n == 1 {
			name = w[0]
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, name))
	}
	var other []string
	for r, n := range s.ByReason {
		if _, known := names[Reason(r)]; !known && n > 0 {
			other = append(other, fmt.Sprintf("%d %s", n, r))
		}
	}
	sort.Strings(other)
	parts = append(parts, other...)
	return strings.Join(parts, ", ")
}
