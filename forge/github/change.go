package github

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/policies"
)

// GitHub's listing limits for one pull request.
const (
	maxListedCommits = 250
	maxListedFiles   = 3000
)

// perPage is GitHub's maximum page size.
const perPage = 100

type prKey struct {
	repo   string
	number int
}

// headKey is what fixes a pull request's files and commits: its head and
// its base branch (a retarget keeps the head and changes the diff).
type headKey struct {
	repo   string
	number int
	head   string
	base   string
}

type permKey struct {
	inst         int64
	scope, login string
}

// prMeta is what the pull request object says: from GET pulls/{n} or from
// a webhook payload Decode saw (the "hint"). Payloads of reviews and PR
// lists have no counts: -1 then.
type prMeta struct {
	head, baseRef, baseSHA string
	// headRef is the head branch, headRepo the repository it is in (a
	// fork's full name; "" when the payload did not say).
	headRef, headRepo     string
	title, url, state     string
	draft                 bool
	author                bot.User
	commits, changedFiles int
	updated               time.Time
}

// headFacts is what a head SHA fixes: the change's files and commits.
type headFacts struct {
	files      []bot.File
	commits    []bot.Commit
	unverified []string
	evalError  string
}

// Change gathers the facts of a pull request (see bot.Forge).
//
// The pull request object itself (author, base, title, draft) comes from
// the newest webhook payload Decode saw for it when that payload names the
// same head as ref; otherwise from GET pulls/{n}. Files and commits are
// fetched once per head SHA and cached; the lists are checked to belong to
// that head (GitHub lists the pull request's current state, not a SHA's),
// and when the pull request moved while being read, Change returns the
// newer head in Ref.HeadSHA with an EvalError, so the service leaves it to
// that head's own event. Reviews are fetched every time (conditionally).
func (f *Forge) Change(ctx context.Context, ref bot.ChangeRef, teams []string) (*bot.Change, error) {
	ctx, count := CountRequests(ctx)
	start := time.Now()
	c, err := f.client(ref.Repo.Installation)
	if err != nil {
		return nil, err
	}
	repo := ref.Repo
	owner, name := repo.Owner(), repo.Name()
	pk := prKey{strings.ToLower(repo.FullName), ref.Number}
	meta, ok := f.hints.get(pk)
	if !ok || ref.HeadSHA == "" || meta.head != ref.HeadSHA {
		if meta, err = f.fetchPR(ctx, c, repo, ref.Number); err != nil {
			return nil, err
		}
	}
	ch := &bot.Change{
		Ref:     bot.ChangeRef{Forge: bot.GitHub, Repo: repo, Number: ref.Number, HeadSHA: meta.head},
		Title:   meta.title,
		URL:     meta.url,
		Author:  meta.author,
		BaseRef: meta.baseRef,
		BaseSHA: meta.baseSHA,
		State:   meta.state,
		Draft:   meta.draft,
	}
	hf, observed, err := f.headFacts(ctx, c, repo, ref.Number, meta)
	if err != nil {
		return nil, err
	}
	ch.Ref.HeadSHA = observed
	ch.Files = slices.Clone(hf.files)
	ch.Commits = slices.Clone(hf.commits)
	ch.Unverified = slices.Clone(hf.unverified)
	ch.EvalError = hf.evalError

	ch.HeadRef = meta.headRef
	if meta.headRepo != "" && !strings.EqualFold(meta.headRepo, repo.FullName) {
		ch.HeadRepo = meta.headRepo
	}
	if ch.Reviews, err = f.listReviews(ctx, c, owner, name, ref.Number); err != nil {
		return nil, fmt.Errorf("github: listing reviews of %s#%d: %w", repo.FullName, ref.Number, err)
	}
	if ch.Reviewers, err = f.reviewerFacts(ctx, c, repo, ch.Reviews, teams); err != nil {
		return nil, err
	}
	f.log.DebugContext(ctx, "github change facts gathered", "change", ch.Ref.Key(), "head", ch.Ref.HeadSHA,
		"requests", count.Total(), "not_modified", count.NotModified(), "took", time.Since(start))
	return ch, nil
}

// fetchPR reads the pull request and remembers it as the newest hint.
func (f *Forge) fetchPR(ctx context.Context, c *gh.Client, repo bot.Repo, number int) (prMeta, error) {
	pr, _, err := c.PullRequests.Get(ctx, repo.Owner(), repo.Name(), number)
	if err != nil {
		return prMeta{}, fmt.Errorf("github: reading pull request %s#%d: %w", repo.FullName, number, err)
	}
	m := prMeta{
		head:         pr.GetHead().GetSHA(),
		headRef:      pr.GetHead().GetRef(),
		headRepo:     pr.GetHead().GetRepo().GetFullName(),
		baseRef:      pr.GetBase().GetRef(),
		baseSHA:      pr.GetBase().GetSHA(),
		title:        pr.GetTitle(),
		url:          pr.GetHTMLURL(),
		state:        pr.GetState(),
		draft:        pr.GetDraft(),
		author:       userOf(pr.GetUser()),
		commits:      pr.GetCommits(),
		changedFiles: pr.GetChangedFiles(),
		updated:      pr.GetUpdatedAt().Time,
	}
	if pr.GetMerged() {
		m.state = "merged"
	}
	// The API is the present: it replaces any hint, however recent.
	f.hints.put(prKey{strings.ToLower(repo.FullName), number}, m)
	return m, nil
}

// remember stores a payload's view of a pull request unless a newer one
// is known.
func (f *Forge) remember(repo string, number int, m prMeta) {
	f.hints.update(prKey{strings.ToLower(repo), number}, func(old prMeta, found bool) prMeta {
		if found && old.updated.After(m.updated) {
			return old
		}
		if found && old.head == m.head {
			// Keep counts learned for the same head when the payload has none.
			if m.commits < 0 {
				m.commits = old.commits
			}
			if m.changedFiles < 0 {
				m.changedFiles = old.changedFiles
			}
		}
		return m
	})
}

func userOf(u *gh.User) bot.User {
	if u == nil {
		return bot.User{}
	}
	return bot.User{Login: u.GetLogin(), ID: u.GetID(), Name: u.GetName(), Email: u.GetEmail(), Bot: u.GetType() == "Bot"}
}

// headFacts returns the files and commits of meta.head, from the cache or
// the API, and the head the lists actually showed.
func (f *Forge) headFacts(ctx context.Context, c *gh.Client, repo bot.Repo, number int, meta prMeta) (*headFacts, string, error) {
	key := headKey{strings.ToLower(repo.FullName), number, meta.head, meta.baseRef}
	if hf, ok := f.heads.get(key); ok {
		return hf, meta.head, nil
	}
	owner, name := repo.Owner(), repo.Name()
	// The lists are cached by SHA here; keeping them in the ETag cache too
	// would only hold them twice.
	lctx := withoutETag(ctx)
	files, filesHead, err := f.listFiles(lctx, c, owner, name, number)
	if err != nil {
		return nil, "", fmt.Errorf("github: listing files of %s#%d: %w", repo.FullName, number, err)
	}
	raw, err := f.listCommits(lctx, c, owner, name, number)
	if err != nil {
		return nil, "", fmt.Errorf("github: listing commits of %s#%d: %w", repo.FullName, number, err)
	}
	// Payloads of reviews and PR lists carry no counts; at the limits ask
	// the pull request itself whether the lists are complete.
	if (len(raw) >= maxListedCommits && meta.commits < 0) || (len(files) >= maxListedFiles && meta.changedFiles < 0) {
		full, err := f.fetchPR(ctx, c, repo, number)
		if err != nil {
			return nil, "", err
		}
		meta.commits, meta.changedFiles = full.commits, full.changedFiles
	}
	hf := &headFacts{files: files}
	var problems []string
	commitsComplete := len(raw) < maxListedCommits || meta.commits <= len(raw)
	if !commitsComplete {
		problems = append(problems, fmt.Sprintf("more than %d commits (%d): GitHub's API lists at most %d commits of a pull request; foureyes cannot verify who authored or committed the rest, so it fails closed (squash or split the change)",
			maxListedCommits, meta.commits, maxListedCommits))
	}
	if len(files) >= maxListedFiles && meta.changedFiles > len(files) {
		problems = append(problems, fmt.Sprintf("more than %d changed files (%d): GitHub's API lists at most %d files of a pull request; foureyes cannot classify the rest, so it fails closed (split the change)",
			maxListedFiles, meta.changedFiles, maxListedFiles))
	}
	// GitHub lists the pull request as it is now. If it moved since the
	// event, these lists belong to another head: never file them under
	// meta.head.
	observed := meta.head
	if commitsComplete && len(raw) > 0 && raw[len(raw)-1].GetSHA() != meta.head {
		observed = raw[len(raw)-1].GetSHA()
	} else if filesHead != "" && filesHead != meta.head {
		observed = filesHead
	}
	if observed != meta.head {
		hf.evalError = fmt.Sprintf("the pull request moved from %s to %s while foureyes read it; the newer head is evaluated on its own event", short(meta.head), short(observed))
		return hf, observed, nil
	}
	hf.commits, hf.unverified = convertCommits(raw)
	hf.evalError = strings.Join(problems, "; ")
	f.heads.put(key, hf)
	return hf, meta.head, nil
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// PatchDigest is the content identity of one changed file as the pull
// request files API shows it (https://docs.github.com/rest/pulls/pulls#list-pull-requests-files:
// filename, status, previous_filename, patch, and sha, the file's blob SHA
// at the head). The patch alone is not enough: GitHub shows none for
// binary files, very large diffs, mode-only changes (status "changed")
// and pure renames, and a patch does not show a file's mode or whether it
// is a symlink. So the digest covers the patch and the blob SHA, which
// changes with every content change (binaries and symlink targets
// included), and bot.DiffDigest adds path, previous path and status.
// Without a patch and a blob SHA the digest is "" (unknown), which makes
// the change's diff digest unknown and approvals of earlier diffs stale:
// fail closed.
func PatchDigest(patch, status, blobSHA string) string {
	switch {
	case patch != "" && blobSHA != "":
		return bot.PatchDigest(patch + "\x00blob:" + blobSHA)
	case patch != "":
		return bot.PatchDigest(patch)
	case blobSHA != "":
		return bot.PatchDigest(status + ":" + blobSHA)
	}
	return ""
}

// listFiles lists every changed file (GitHub stops at 3,000) and the head
// SHA the listing was computed for (from contents_url's ref; "" if absent
// or inconsistent).
func (f *Forge) listFiles(ctx context.Context, c *gh.Client, owner, name string, number int) ([]bot.File, string, error) {
	var out []bot.File
	head, mixed := "", false
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		page, resp, err := c.PullRequests.ListFiles(ctx, owner, name, number, opts)
		if err != nil {
			return nil, "", err
		}
		for _, cf := range page {
			out = append(out, bot.File{
				Path:         cf.GetFilename(),
				PreviousPath: cf.GetPreviousFilename(),
				Status:       cf.GetStatus(),
				PatchDigest:  PatchDigest(cf.GetPatch(), cf.GetStatus(), cf.GetSHA()),
			})
			if u, err := url.Parse(cf.GetContentsURL()); err == nil {
				if r := u.Query().Get("ref"); r != "" {
					if head != "" && r != head {
						mixed = true
					}
					head = r
				}
			}
		}
		if resp.NextPage == 0 || len(out) >= maxListedFiles {
			break
		}
		opts.Page = resp.NextPage
	}
	if mixed {
		head = ""
	}
	return out, head, nil
}

func (f *Forge) listCommits(ctx context.Context, c *gh.Client, owner, name string, number int) ([]*gh.RepositoryCommit, error) {
	var out []*gh.RepositoryCommit
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		page, resp, err := c.PullRequests.ListCommits(ctx, owner, name, number, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if resp.NextPage == 0 || len(out) >= maxListedCommits {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

func (f *Forge) listReviews(ctx context.Context, c *gh.Client, owner, name string, number int) ([]bot.Review, error) {
	var out []bot.Review
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		page, resp, err := c.PullRequests.ListReviews(ctx, owner, name, number, opts)
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			u := userOf(r.GetUser())
			u.Bot = u.Bot || strings.HasSuffix(u.Login, "[bot]")
			out = append(out, bot.Review{
				ID:        r.GetID(),
				Reviewer:  u,
				State:     bot.NormalizeReviewState(r.GetState()),
				CommitSHA: r.GetCommitID(),
				At:        r.GetSubmittedAt().Time,
			})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// reviewerFacts looks up permission and team memberships of everyone whose
// review can matter (approved or changes requested).
func (f *Forge) reviewerFacts(ctx context.Context, c *gh.Client, repo bot.Repo, reviews []bot.Review, teams []string) (map[string]bot.ReviewerFacts, error) {
	out := map[string]bot.ReviewerFacts{}
	for _, r := range reviews {
		login := strings.ToLower(r.Reviewer.Login)
		if login == "" || (r.State != bot.Approved && r.State != bot.ChangesRequested) {
			continue
		}
		if _, done := out[login]; done {
			continue
		}
		perm, err := f.permission(ctx, c, repo, r.Reviewer.Login)
		if err != nil {
			return nil, err
		}
		facts := bot.ReviewerFacts{Permission: perm, Bot: r.Reviewer.Bot}
		for _, t := range teams {
			in, err := f.inTeam(ctx, c, repo.Installation, t, r.Reviewer.Login)
			if err != nil {
				return nil, err
			}
			if in {
				facts.Teams = append(facts.Teams, t)
			}
		}
		out[login] = facts
	}
	return out, nil
}

// permission returns login's role on repo. role_name is exact (maintain,
// triage); the legacy permission field folds them into write/read and is
// only used when role_name is missing (older GHES) or a custom role name.
func (f *Forge) permission(ctx context.Context, c *gh.Client, repo bot.Repo, login string) (policies.Permission, error) {
	key := permKey{repo.Installation, strings.ToLower(repo.FullName), strings.ToLower(login)}
	if p, ok := getFresh(f.perms, key, f.now()); ok {
		return p, nil
	}
	req, err := c.NewRequest(http.MethodGet, fmt.Sprintf("repos/%s/%s/collaborators/%s/permission",
		url.PathEscape(repo.Owner()), url.PathEscape(repo.Name()), url.PathEscape(login)), nil)
	if err != nil {
		return policies.PermissionNone, fmt.Errorf("github: permission request: %w", err)
	}
	var body struct {
		Permission string `json:"permission"`
		RoleName   string `json:"role_name"`
	}
	p := policies.PermissionNone
	switch _, err := c.Do(ctx, req, &body); {
	case isNotFound(err):
		// Not a collaborator (or no such user): no permission.
	case err != nil:
		return policies.PermissionNone, fmt.Errorf("github: permission of %s on %s: %w", login, repo.FullName, err)
	default:
		var ok bool
		if p, ok = policies.ParsePermission(body.RoleName); !ok {
			if p, ok = policies.ParsePermission(body.Permission); !ok {
				f.log.WarnContext(ctx, "unknown GitHub permission, treated as none", "repo", repo.FullName, "user", login,
					"role_name", body.RoleName, "permission", body.Permission)
			}
		}
	}
	f.perms.put(key, expiring[policies.Permission]{val: p, exp: f.now().Add(f.ttl)})
	return p, nil
}

// inTeam reports whether login is an active member of team ("org/slug").
func (f *Forge) inTeam(ctx context.Context, c *gh.Client, inst int64, team, login string) (bool, error) {
	org, slug, ok := strings.Cut(team, "/")
	if !ok || org == "" || slug == "" || strings.Contains(slug, "/") {
		f.log.WarnContext(ctx, "team is not org/slug; nobody is a member", "team", team)
		return false, nil
	}
	key := permKey{inst, strings.ToLower(team), strings.ToLower(login)}
	if in, ok := getFresh(f.teams, key, f.now()); ok {
		return in, nil
	}
	m, _, err := c.Teams.GetTeamMembershipBySlug(ctx, org, slug, login)
	in := false
	switch {
	case isNotFound(err):
	case err != nil:
		return false, fmt.Errorf("github: membership of %s in %s (the App needs the organization Members read permission): %w", login, team, err)
	default:
		// A pending invitation is not membership.
		in = m.GetState() == "active"
	}
	f.teams.put(key, expiring[bool]{val: in, exp: f.now().Add(f.ttl)})
	return in, nil
}
