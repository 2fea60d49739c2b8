package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/policies"
	"github.com/foureyes-dev/foureyes/store"
)

// ReportSchemaVersion is the version of the Report JSON. Fields are only
// ever added; a change of meaning bumps it.
const ReportSchemaVersion = 1

// MaxFirstRelease bounds the report of a tag that has no previous release
// tag: its newest commits only, and the report says it is truncated.
const MaxFirstRelease = 250

// Report is the review report of a release tag: every commit since the
// previous release tag with its review evidence. Its JSON (snake_case,
// every key always present) is what auditors archive.
type Report struct {
	SchemaVersion int    `json:"schema_version"`
	Forge         string `json:"forge"`
	Repo          string `json:"repo"`
	Tag           string `json:"tag"`
	TagSHA        string `json:"tag_sha"`
	// PreviousTag is the highest release tag ordered below Tag (by
	// version) on another commit; "" for a first release.
	PreviousTag    string    `json:"previous_tag"`
	PreviousTagSHA string    `json:"previous_tag_sha"`
	TaggedAt       time.Time `json:"tagged_at"`
	TaggedBy       string    `json:"tagged_by"`
	GeneratedAt    time.Time `json:"generated_at"`
	PolicySource   string    `json:"policy_source"`
	PolicyDigest   string    `json:"policy_digest"`
	PolicyError    string    `json:"policy_error"`
	// LateWindow is release.late_window as a policy file writes it ("24h", "7d"), not Go's "24h0m0s".
	LateWindow string `json:"late_window"`
	// Truncated: a first release with more than MaxFirstRelease commits;
	// only the newest are listed.
	Truncated bool           `json:"truncated"`
	Commits   []ReportCommit `json:"commits"`
	Summary   Summary        `json:"summary"`
}

// ReportCommit is one commit of a release, oldest first.
type ReportCommit struct {
	SHA         string    `json:"sha"`
	Title       string    `json:"title"`
	Author      string    `json:"author"`
	CommittedAt time.Time `json:"committed_at"`
	LandedAt    time.Time `json:"landed_at"`
	// Change is the merged change it came from (null for a direct push).
	Change *ChangeProof `json:"change"`
	// Approvers are the independent approvers of that change.
	Approvers []string `json:"approvers"`
	// Verdict is the change's verdict at merge time ("none" without one).
	Verdict  string `json:"verdict"`
	Reviewed bool   `json:"reviewed"`
	// Reason says why an unreviewed commit is flagged ("" when reviewed).
	Reason Reason `json:"reason"`
	// Late: it landed within late_window before the tag was pushed.
	Late   bool   `json:"late"`
	Detail string `json:"detail"`
	// OverriddenBy names the people of the break-glass override the commit
	// came in on (Reason "override"); empty otherwise.
	OverriddenBy []string `json:"overridden_by"`
}

// Summary counts a report's commits.
type Summary struct {
	Commits    int            `json:"commits"`
	Reviewed   int            `json:"reviewed"`
	Unreviewed int            `json:"unreviewed"`
	Late       int            `json:"late"`
	ByReason   map[string]int `json:"by_reason"`
	// Conclusion is failure when any commit is unreviewed (or the policy
	// is invalid); late commits are called out but do not fail a release.
	Conclusion bot.State `json:"conclusion"`

	// Overridden counts commits merged on a break-glass override: neither
	// reviewed nor unreviewed.
	Overridden int `json:"overridden"`
}

// ErrNoReport is returned by Load when no report is stored for the tag.
var ErrNoReport = errors.New("no release report stored")

// Load reads the stored report of a tag (for `foureyes report`); forge is
// "github" or "gitlab". A missing report is an error wrapping ErrNoReport.
func Load(ctx context.Context, st ReportStore, forge, repo, tag string) (Report, error) {
	data, err := st.Report(ctx, forge, repo, tag)
	if errors.Is(err, store.ErrNotFound) {
		return Report{}, fmt.Errorf("load report of %s@%s on %s: %w", repo, tag, forge, ErrNoReport)
	}
	if err != nil {
		return Report{}, fmt.Errorf("load report of %s@%s on %s: %w", repo, tag, forge, err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return Report{}, fmt.Errorf("decode report of %s@%s: %w", repo, tag, err)
	}
	return r, nil
}

func tagScope(forge bot.ForgeName, repo bot.Repo, tag, after string) string {
	return fmt.Sprintf("%s/%s/release-tag/%s@%s", forge, repo.FullName, tag, after)
}

func (g *Guard) handleTagPush(ctx context.Context, f Forge, ev bot.Event) error {
	p := ev.Push
	if p.Deleted || isZeroSHA(p.After) || !strings.HasPrefix(p.Ref, "refs/tags/") {
		return nil
	}
	tag := strings.TrimPrefix(p.Ref, "refs/tags/")
	scope := tagScope(ev.Forge, ev.Repo, tag, p.After)
	facts, err := g.Store.Facts(ctx, scope)
	if err != nil {
		return fmt.Errorf("release: read state of tag %s: %w", scope, err)
	}
	data, ok := facts[keyReport]
	if !ok {
		// The rules are the default branch's current ones, never the
		// tagged commit's (which its pusher may have written).
		lp, err := g.loadPolicy(ctx, f, ev.Forge, ev.Repo, ev.Repo.DefaultBranch)
		if err != nil {
			return fmt.Errorf("release: tag %s of %s: %w", tag, ev.Repo.FullName, err)
		}
		if !lp.Policy.IsReleaseTag(tag) {
			return nil
		}
		rep, err := g.buildReport(ctx, f, ev, tag, lp)
		if err != nil {
			return fmt.Errorf("release: report of %s@%s: %w", ev.Repo.FullName, tag, err)
		}
		raw, err := json.Marshal(rep)
		if err != nil {
			return fmt.Errorf("release: encode report: %w", err)
		}
		stored, err := g.Store.PutFactIfAbsent(ctx, scope, keyReport, string(raw))
		if err != nil {
			return fmt.Errorf("release: store report of %s: %w", scope, err)
		}
		data = string(raw)
		if !stored {
			if facts, err = g.Store.Facts(ctx, scope); err != nil {
				return fmt.Errorf("release: read state of tag %s: %w", scope, err)
			}
			data = facts[keyReport]
		}
	}
	var rep Report
	if err := json.Unmarshal([]byte(data), &rep); err != nil {
		return fmt.Errorf("release: decode stored report of %s: %w", scope, err)
	}
	// Saved on every attempt: an upsert of the same bytes.
	if err := g.Store.SaveReport(ctx, rep.Forge, rep.Repo, rep.Tag, []byte(data)); err != nil {
		return fmt.Errorf("release: save report of %s@%s: %w", rep.Repo, rep.Tag, err)
	}
	return g.publishReport(ctx, f, ev, scope, facts, rep, []byte(data))
}

func (g *Guard) buildReport(ctx context.Context, f Forge, ev bot.Event, tag string, lp loadedPolicy) (Report, error) {
	repo, pol := ev.Repo, lp.Policy
	taggedAt := ev.Received.UTC()
	if taggedAt.IsZero() {
		taggedAt = g.now()
	}
	tags, err := f.Tags(ctx, repo)
	if err != nil {
		return Report{}, err
	}
	sha := tags[tag]
	if sha == "" {
		sha = ev.Push.After
	}
	rep := Report{
		SchemaVersion: ReportSchemaVersion, Forge: string(ev.Forge), Repo: repo.FullName, Tag: tag, TagSHA: sha,
		TaggedAt: taggedAt, TaggedBy: at(ev.Push.Pusher), GeneratedAt: g.now(),
		PolicySource: pol.Source, PolicyDigest: pol.Digest, LateWindow: policies.FormatDuration(pol.Release.LateWindow),
		Commits: []ReportCommit{},
	}
	if lp.Err != nil {
		rep.PolicyError = firstLine(lp.Err.Error())
	}
	rep.PreviousTag, rep.PreviousTagSHA = previousTag(pol, tags, tag, sha)
	var commits []bot.PushCommit
	if rep.PreviousTag != "" {
		if commits, err = f.Compare(ctx, repo, rep.PreviousTagSHA, sha); err != nil {
			return Report{}, fmt.Errorf("commits since %s: %w", rep.PreviousTag, err)
		}
	} else {
		hist, err := f.History(ctx, repo, sha, MaxFirstRelease)
		if err != nil {
			return Report{}, fmt.Errorf("commits of a first release: %w", err)
		}
		rep.Truncated = len(hist) >= MaxFirstRelease
		slices.Reverse(hist)
		commits = hist
	}

	a := g.newAnalyzer(f, ev.Forge, repo, repo.DefaultBranch, pol)
	window := pol.Release.LateWindow
	for _, c := range commits {
		fd, known, err := a.stored(ctx, c.SHA)
		if err != nil {
			return Report{}, err
		}
		if !known {
			if fd, err = a.judge(ctx, c, time.Time{}); err != nil {
				return Report{}, err
			}
			if err := a.remember(ctx, fd); err != nil {
				return Report{}, err
			}
		}
		rc := ReportCommit{
			SHA: fd.SHA, Title: fd.Title, Author: fd.Author, CommittedAt: fd.CommittedAt, LandedAt: fd.LandedAt,
			Change: fd.Change, Approvers: []string{}, Verdict: "none", Reviewed: fd.Reviewed(), Reason: fd.Reason, Detail: fd.Detail,
			OverriddenBy: []string{},
		}
		if fd.Change != nil && fd.Reason == Override {
			rc.OverriddenBy = append(rc.OverriddenBy, fd.Change.OverriddenBy...)
		}
		if fd.Change != nil {
			rc.Approvers = append(rc.Approvers, fd.Change.Approvers...)
			rc.Verdict = string(fd.Change.Verdict)
		}
		// Landing after the tag push can only be clock skew: late, too.
		rc.Late = window > 0 && !rc.LandedAt.IsZero() && taggedAt.Sub(rc.LandedAt) <= window
		rep.Commits = append(rep.Commits, rc)
	}
	rep.Summary = summarize(rep)
	return rep, nil
}

func summarize(rep Report) Summary {
	s := Summary{ByReason: map[string]int{}, Conclusion: bot.Success}
	for _, c := range rep.Commits {
		s.Commits++
		switch {
		case c.Reviewed:
			s.Reviewed++
		case c.Reason == Override:
			s.Overridden++
		default:
			s.Unreviewed++
			s.ByReason[string(c.Reason)]++
		}
		if c.Late {
			s.Late++
		}
	}
	if s.Unreviewed > 0 || rep.PolicyError != "" {
		s.Conclusion = bot.Failure
	}
	return s
}

// reportData is the audit record's data of a report.
type reportData struct {
	Tag          string  `json:"tag"`
	PreviousTag  string  `json:"previous_tag"`
	Summary      Summary `json:"summary"`
	ReportSHA256 string  `json:"report_sha256"`
}

// publishReport audits the report and shows it where the release is seen:
// a check run on the tagged commit on GitHub; on GitLab a status (which
// cannot hold the report) and an issue with it. Each effect is done once.
func (g *Guard) publishReport(ctx context.Context, f Forge, ev bot.Event, scope string, facts map[string]string, rep Report, raw []byte) error {
	repo := ev.Repo
	var errs []error
	_, err := g.effect(ctx, scope, keyAudit, facts, func(string) (string, error) {
		sum := sha256.Sum256(raw)
		data, err := json.Marshal(reportData{Tag: rep.Tag, PreviousTag: rep.PreviousTag, Summary: rep.Summary, ReportSHA256: hex.EncodeToString(sum[:])})
		if err != nil {
			return "", fmt.Errorf("encode report audit: %w", err)
		}
		return done, g.appendAudit(ctx, audit.Record{
			Kind: audit.KindReport, Forge: rep.Forge, Repo: rep.Repo, HeadSHA: rep.TagSHA, DeliveryID: ev.DeliveryID,
			PolicyDigest: rep.PolicyDigest, Verdict: string(rep.Summary.Conclusion), Data: data,
		})
	})
	errs = append(errs, err)

	md := RenderMarkdown(rep)
	issueURL := ""
	if ev.Forge == bot.GitLab {
		marker := fmt.Sprintf("<!-- foureyes:release-report %s %s %s -->", rep.Forge, rep.Repo, scope)
		issueURL, err = g.effect(ctx, scope, keyIssue, facts, func(prior string) (string, error) {
			if prior == inFlight {
				if u, err := f.FindIssue(ctx, repo, marker); err != nil || u != "" {
					return u, err
				}
			}
			return f.OpenIssue(ctx, repo, "foureyes release report: "+rep.Tag+" ("+reportTitle(rep)+")", md+"\n"+marker+"\n", []string{"foureyes", "release-report"})
		})
		errs = append(errs, err)
	}
	_, err = g.effect(ctx, scope, keyCheck, facts, func(prior string) (string, error) {
		return f.PublishCommit(ctx, repo, "refs/tags/"+rep.Tag, rep.TagSHA, reportTitle(rep), md, issueURL, rep.Summary.Conclusion, prior)
	})
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release: publish report of %s@%s: %w", rep.Repo, rep.Tag, err)
	}
	g.logger().Info("release report", "repo", rep.Repo, "tag", rep.Tag, "previous", rep.PreviousTag,
		"commits", rep.Summary.Commits, "unreviewed", rep.Summary.Unreviewed, "late", rep.Summary.Late)
	return nil
}

// previousTag returns the release tag ordered just below tag by version
// (see compareVersions) that points at another commit. The forges' tag
// listings carry no reliable creation order (GitHub's has no dates at all),
// so versions decide; a tag on the same commit would give an empty range.
func previousTag(pol *policies.Policy, tags map[string]string, tag, sha string) (string, string) {
	best := ""
	for name, s := range tags {
		if name == tag || s == sha || s == "" || !pol.IsReleaseTag(name) || compareVersions(name, tag) >= 0 {
			continue
		}
		if best == "" || compareVersions(name, best) > 0 || (compareVersions(name, best) == 0 && name > best) {
			best = name
		}
	}
	if best == "" {
		return "", ""
	}
	return best, tags[best]
}

// compareVersions orders tag names semver-ishly: a leading non-digit
// prefix ("v", "release-") is ignored, dot-separated numbers compare
// numerically (missing ones are 0), a pre-release ("-rc.1") sorts before
// its release, and pre-release identifiers compare like SemVer's. Names
// without digits compare as strings.
func compareVersions(a, b string) int {
	va, oka := parseVersion(a)
	vb, okb := parseVersion(b)
	if !oka || !okb {
		if oka != okb {
			// Versions sort after names that are none.
			if oka {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	}
	for i := range max(len(va.core), len(vb.core)) {
		x, y := at0(va.core, i), at0(vb.core, i)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case va.pre == "" && vb.pre == "":
		return 0
	case va.pre == "":
		return 1
	case vb.pre == "":
		return -1
	}
	pa, pb := strings.Split(va.pre, "."), strings.Split(vb.pre, ".")
	for i := range min(len(pa), len(pb)) {
		na, ea := strconv.ParseUint(pa[i], 10, 64)
		nb, eb := strconv.ParseUint(pb[i], 10, 64)
		switch {
		case ea == nil && eb == nil && na != nb:
			if na < nb {
				return -1
			}
			return 1
		case ea == nil && eb != nil:
			return -1
		case ea != nil && eb == nil:
			return 1
		case ea != nil && eb != nil && pa[i] != pb[i]:
			return strings.Compare(pa[i], pb[i])
		}
	}
	return len(pa) - len(pb)
}

type version struct {
	core []uint64
	pre  string
}

func parseVersion(s string) (version, bool) {
	i := strings.IndexFunc(s, unicode.IsDigit)
	if i < 0 {
		return version{}, false
	}
	s = s[i:]
	if j := strings.IndexByte(s, '+'); j >= 0 {
		s = s[:j] // build metadata does not order
	}
	core, pre, _ := strings.Cut(s, "-")
	var v version
	for _, part := range strings.Split(core, ".") {
		n, err := strconv.ParseUint(part, 10, 64)
		if err != nil {
			return version{}, false
		}
		v.core = append(v.core, n)
	}
	v.pre = pre
	return v, true
}

func at0(xs []uint64, i int) uint64 {
	if i < len(xs) {
		return xs[i]
	}
	return 0
}
