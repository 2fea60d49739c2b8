package gitlab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	gl "github.com/xanzy/go-gitlab"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/policies"
)

const perPage = 100

// headFacts is what a merge request's head (and base) fix: its files and
// commits, with commit identities not yet linked to accounts (links are
// user lookups, cached separately with a TTL).
type headFacts struct {
	files   []bot.File
	commits []bot.Commit
}

// mrMemo remembers per merge request what Publish needs without asking
// again: the ref its statuses are posted for and foureyes' note.
type mrMemo struct {
	sourceBranch string
	noteID       int
	// sourceProject is the fork a merge request comes from (0: its own
	// project); statusFallback is set once the token could not post there.
	sourceProject  int
	statusFallback bool
	// webURL is the merge request's page: the status links it when the
	// details link is too long for GitLab's target_url.
	webURL string
	// userNotes is the merge request's user_notes_count as Change last read
	// it (notesKnown: it was read): 0 means foureyes' note is not there.
	userNotes  int
	notesKnown bool
	// forkUnreadable: the token cannot read the fork (headSource).
	forkUnreadable bool
	// checksChangedAt is when a Pipeline Hook said the merge request's
	// pipeline changed (ChecksChanged); statusesSkipped is the head whose
	// statuses Change last did not read (statusread.go).
	checksChangedAt time.Time
	statusesSkipped string
}

// statusMemo is what Change last saw of the "foureyes" statuses on a head:
// the state of foureyes' own latest one ("" if none) and whether a status
// of that name by someone else is among the latest. Publish uses it to
// re-assert its own state over a foreign one.
type statusMemo struct {
	own     string
	foreign bool
	// at is when GitLab showed this (statusread.go); unverified: foureyes
	// could not tell whose status is the latest (a post GitLab refused as
	// a no-op), so the next evaluation reads them.
	at         time.Time
	unverified bool
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

func mrKey(r bot.Repo, iid int) string { return projectKey(r) + "!" + strconv.Itoa(iid) }

func shaKey(r bot.Repo, sha string) string { return projectKey(r) + "@" + sha }

// Policy returns the first policy file found on ref (the target branch,
// or a SHA) in GitLab's lookup order; a 404 moves on to the next path. A
// branch is read as refs/heads/NAME, at its tip: a tag with the branch's
// name would otherwise win (git resolves refs/tags/NAME first).
func (f *Forge) Policy(ctx context.Context, repo bot.Repo, ref string) (bot.PolicyFile, error) {
	var opt gl.GetRawFileOptions
	if ref == "" {
		ref = repo.DefaultBranch
	}
	if ref != "" {
		at := ref
		if !fullSHA.MatchString(ref) {
			at = bot.BranchRef(ref)
		}
		opt.Ref = gl.Ptr(at)
	}
	for _, p := range PolicyPaths {
		data, _, err := f.client.RepositoryFiles.GetRawFile(pid(repo), p, &opt, gl.WithContext(ctx))
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return bot.PolicyFile{}, fmt.Errorf("gitlab: read policy %s from %s@%s: %w", p, repo.FullName, ref, err)
		}
		return bot.PolicyFile{Source: repo.FullName + "@" + ref + ":" + p, Data: data, Found: true}, nil
	}
	return bot.PolicyFile{}, nil
}

// OpenChanges lists the opened merge requests that target branch.
func (f *Forge) OpenChanges(ctx context.Context, repo bot.Repo, branch string) ([]bot.ChangeRef, error) {
	mrs, err := paginate("open merge requests", func(page int) ([]*gl.MergeRequest, *gl.Response, error) {
		opt := &gl.ListProjectMergeRequestsOptions{
			ListOptions: gl.ListOptions{PerPage: perPage, Page: page},
			State:       gl.Ptr("opened"),
		}
		if branch != "" {
			opt.TargetBranch = gl.Ptr(branch)
		}
		return f.client.MergeRequests.ListProjectMergeRequests(pid(repo), opt, gl.WithContext(ctx))
	})
	if err != nil {
		return nil, fmt.Errorf("gitlab: %s: %w", repo.FullName, err)
	}
	refs := make([]bot.ChangeRef, 0, len(mrs))
	for _, mr := range mrs {
		refs = append(refs, bot.ChangeRef{Forge: bot.GitLab, Repo: repo, Number: mr.IID, HeadSHA: mr.SHA})
	}
	return refs, nil
}

// Change gathers the facts of a merge request at its current head.
func (f *Forge) Change(ctx context.Context, ref bot.ChangeRef, teams []string) (*bot.Change, error) {
	repo := ref.Repo
	mr, _, err := f.client.MergeRequests.GetMergeRequest(pid(repo), ref.Number, nil, gl.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("gitlab: get merge request %s!%d: %w", repo.FullName, ref.Number, err)
	}
	f.rememberMR(repo, ref.Number, func(m *mrMemo) {
		m.sourceBranch, m.sourceProject, m.webURL = mr.SourceBranch, forkOf(mr), mr.WebURL
		m.userNotes, m.notesKnown = mr.UserNotesCount, true
	})

	c := &bot.Change{
		Ref:     bot.ChangeRef{Forge: bot.GitLab, Repo: repo, Number: ref.Number, HeadSHA: mr.SHA},
		Title:   mr.Title,
		URL:     mr.WebURL,
		BaseRef: mr.TargetBranch,
		// BaseSHA stays empty: GitLab's diff_refs.base_sha is the merge
		// base, not the target branch's tip, and the policy must be read
		// from the tip (the service falls back to BaseRef).
		State: changeState(mr.State),
		Draft: mr.Draft || mr.WorkInProgress,
	}
	if mr.Author != nil {
		c.Author = bot.User{Login: mr.Author.Username, ID: int64(mr.Author.ID), Name: mr.Author.Name}
	}
	if mr.DiffRefs.HeadSha != "" && mr.DiffRefs.HeadSha != mr.SHA {
		// The diff GitLab serves belongs to another head than the one it
		// names: judging one with the other could pass unreviewed code.
		c.EvalError = fmt.Sprintf("GitLab has not finished computing the diff of head %s (diff is of %s)",
			short(mr.SHA), short(mr.DiffRefs.HeadSha))
		return c, nil
	}

	hf, err := f.headFacts(ctx, repo, ref.Number, mr.DiffRefs.BaseSha, mr.SHA)
	if err != nil {
		return nil, err
	}
	if msg := diffIncomplete(mr.ChangesCount, len(hf.files)); msg != "" {
		// Files past the limit are never classified: judging the rest
		// could pass an infra change on one code approval, and a digest
		// of a partial list would survive a push to a hidden file.
		c.EvalError = msg
		return c, nil
	}
	c.Files = append([]bot.File(nil), hf.files...)
	c.Commits, c.Unverified, err = f.linkCommits(ctx, hf.commits, authorID(mr))
	if err != nil {
		return nil, err
	}

	if err := f.headSource(ctx, c, mr); err != nil {
		return nil, err
	}

	reviews, available, err := f.approvals(ctx, repo, ref.Number)
	if err != nil {
		return nil, err
	}
	// Who needs reviewer facts: the approvers, or (when approvals come from
	// stored webhook events) everyone who took part in the merge request,
	// since any of them may have approved.
	people := map[int]*gl.BasicUser{}
	approvedAt := map[int]time.Time{} // memberships cached before it are read again
	if available != 0 {
		c.ReviewsFromEvents = true
		c.Notices = append(c.Notices, fmt.Sprintf(
			"GitLab's merge request approvals API is unavailable on this instance (HTTP %d): "+
				"approvals are taken from the approval events foureyes received.", available))
		parts, err := f.participants(ctx, repo, ref.Number)
		if err != nil {
			return nil, err
		}
		for _, u := range parts {
			people[u.ID] = u
		}
		for _, u := range mr.Reviewers {
			people[u.ID] = u
		}
	} else {
		for _, r := range reviews {
			people[int(r.Reviewer.ID)] = &gl.BasicUser{ID: int(r.Reviewer.ID), Username: r.Reviewer.Login, Name: r.Reviewer.Name}
			approvedAt[int(r.Reviewer.ID)] = r.At
		}
	}
	c.Reviewers = map[string]bot.ReviewerFacts{}
	for _, id := range sortedKeys(people) {
		u := people[id]
		facts, err := f.reviewerFacts(ctx, repo, u.ID, u.Username, teams, approvedAt[id])
		if err != nil {
			return nil, err
		}
		c.Reviewers[strings.ToLower(u.Username)] = facts
	}
	for i := range reviews {
		reviews[i].Reviewer.Bot = c.Reviewers[strings.ToLower(reviews[i].Reviewer.Login)].Bot
	}
	c.Reviews = reviews

	foreign, err := f.headStatuses(ctx, repo, ref.Number, mr.SHA)
	if err != nil {
		return nil, err
	}
	for _, fc := range foreign {
		c.Foreign = append(c.Foreign, fc)
		c.Notices = append(c.Notices, fmt.Sprintf(
			"A `%s` status (%s) on %s was posted by @%s, not by foureyes: it is ignored, recorded in the audit trail, and foureyes re-asserts its own verdict.",
			StatusName, fc.Conclusion, short(mr.SHA), fc.By.Login))
	}
	return c, nil
}

func changeState(s string) string {
	switch s {
	case "opened", "locked":
		return "open"
	default:
		return s
	}
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

func (f *Forge) rememberMR(repo bot.Repo, iid int, update func(*mrMemo)) {
	k := mrKey(repo, iid)
	m, _ := f.mrs.get(k)
	update(&m)
	f.mrs.put(k, m)
}

// mrDiff is a diffs entry with the fields go-gitlab does not model: a diff
// too large (or collapsed) has an empty text that must not be mistaken for
// an empty change.
type mrDiff struct {
	gl.MergeRequestDiff
	TooLarge  bool `json:"too_large"`
	Collapsed bool `json:"collapsed"`
}

// headFacts returns the files and commits of the merge request at head
// over base, from the cache when this head was read before.
func (f *Forge) headFacts(ctx context.Context, repo bot.Repo, iid int, base, head string) (headFacts, error) {
	key := mrKey(repo, iid) + "|" + base + "|" + head
	if hf, ok := f.heads.get(key); ok {
		return hf, nil
	}
	path := fmt.Sprintf("projects/%s/merge_requests/%d/diffs", gl.PathEscape(pidString(repo)), iid)
	diffs, err := paginate("merge request diffs", func(page int) ([]mrDiff, *gl.Response, error) {
		var out []mrDiff
		resp, err := f.getJSON(ctx, path, &gl.ListMergeRequestDiffsOptions{ListOptions: gl.ListOptions{PerPage: perPage, Page: page}}, &out)
		return out, resp, err
	})
	if err != nil {
		return headFacts{}, fmt.Errorf("gitlab: %s!%d: %w", repo.FullName, iid, err)
	}
	var hf headFacts
	for _, d := range diffs {
		hf.files = append(hf.files, fileOf(d, head))
	}
	commits, err := paginate("merge request commits", func(page int) ([]*gl.Commit, *gl.Response, error) {
		return f.client.MergeRequests.GetMergeRequestCommits(pid(repo), iid,
			&gl.GetMergeRequestCommitsOptions{PerPage: perPage, Page: page}, gl.WithContext(ctx))
	})
	if err != nil {
		return headFacts{}, fmt.Errorf("gitlab: %s!%d: %w", repo.FullName, iid, err)
	}
	for _, gc := range commits {
		hf.commits = append(hf.commits, commitOf(gc))
	}
	f.heads.put(key, hf)
	return hf, nil
}

func fileOf(d mrDiff, head string) bot.File {
	f := bot.File{Path: d.NewPath, Status: "modified"}
	switch {
	case d.NewFile:
		f.Status = "added"
	case d.DeletedFile:
		f.Status = "removed"
		f.Path = d.OldPath
	case d.RenamedFile:
		f.Status = "renamed"
		f.PreviousPath = d.OldPath
	}
	text := d.Diff
	switch {
	case text == "" && (d.TooLarge || d.Collapsed), binaryDiff.MatchString(text):
		// GitLab sends no content for this file ("Binary files a/x and b/x
		// differ" is the same text for any two binaries), so its digest
		// cannot tell two versions apart: tie it to the head, so an
		// approval of an earlier head is never carried over on the
		// strength of a text that does not show the content.
		text = "\x00foureyes:no-content-identity:" + head + ":" + f.Path
	}
	// a_mode and b_mode (https://docs.gitlab.com/api/merge_requests/#list-merge-request-diffs)
	// are part of what changed: chmod +x, a file turned into a symlink
	// (120000) or a submodule (160000) must not keep an approval.
	text = d.AMode + " " + d.BMode + "\n" + text
	sum := sha256.Sum256([]byte(text))
	f.PatchDigest = hex.EncodeToString(sum[:])
	return f
}

// binaryDiff is the whole diff text git (and so GitLab) shows for a binary
// file: it names the paths, not the content.
var binaryDiff = regexp.MustCompile(`\A\s*Binary files .* differ\s*\z`)

var coAuthorRE = regexp.MustCompile(`(?im)^[ \t]*co-authored-by:[ \t]*(.*?)[ \t]*<([^<>\s]+)>[ \t]*$`)

func commitOf(gc *gl.Commit) bot.Commit {
	c := bot.Commit{
		SHA:       gc.ID,
		Author:    bot.User{Name: gc.AuthorName, Email: gc.AuthorEmail},
		Committer: bot.User{Name: gc.CommitterName, Email: gc.CommitterEmail},
		Message:   gc.Message,
	}
	if gc.CommittedDate != nil {
		c.Time = *gc.CommittedDate
	} else if gc.AuthoredDate != nil {
		c.Time = *gc.AuthoredDate
	}
	for _, m := range coAuthorRE.FindAllStringSubmatch(gc.Message, -1) {
		c.CoAuthors = append(c.CoAuthors, bot.User{Name: m[1], Email: m[2]})
	}
	return c
}

// linkCommits links every commit identity to a GitLab account by e-mail.
// Identities that match no account are returned as unverified e-mails, to
// be named in the report.
func (f *Forge) linkCommits(ctx context.Context, raw []bot.Commit, known ...int) ([]bot.Commit, []string, error) {
	out := make([]bot.Commit, len(raw))
	unverified := map[string]bool{}
	link := func(u bot.User) (bot.User, error) {
		if u.Email == "" {
			return u, nil
		}
		acct, ok, err := f.knownByEmail(ctx, u.Email, known)
		if err == nil && !ok {
			acct, err = f.userByEmail(ctx, u.Email)
		}
		if err != nil {
			return u, err
		}
		if !acct.Known() {
			unverified[strings.ToLower(u.Email)] = true
			return u, nil
		}
		acct.Email = u.Email
		if acct.Name == "" {
			acct.Name = u.Name
		}
		return acct, nil
	}
	for i, c := range raw {
		var err error
		if c.Author, err = link(c.Author); err != nil {
			return nil, nil, err
		}
		if c.Committer, err = link(c.Committer); err != nil {
			return nil, nil, err
		}
		co := make([]bot.User, len(c.CoAuthors))
		for j, u := range c.CoAuthors {
			if co[j], err = link(u); err != nil {
				return nil, nil, err
			}
		}
		c.CoAuthors = co
		out[i] = c
	}
	list := make([]string, 0, len(unverified))
	for e := range unverified {
		list = append(list, e)
	}
	sort.Strings(list)
	return out, list, nil
}

// userByEmail finds the account of a commit e-mail. GitLab's user search
// matches public e-mails only (any e-mail for an admin token), and also
// names, so a candidate counts only on an exact e-mail match. The
// instance's no-reply addresses (ID-username@users.noreply.HOST) name the
// account directly. A zero User means no account matched.
func (f *Forge) userByEmail(ctx context.Context, email string) (bot.User, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	if u, ok := f.noreplyUser(key); ok {
		return u, nil
	}
	if u, ok := f.emails.get(key); ok {
		return u, nil
	}
	cands, _, err := f.client.Users.ListUsers(&gl.ListUsersOptions{
		ListOptions: gl.ListOptions{PerPage: 20},
		Search:      gl.Ptr(key),
	}, gl.WithContext(ctx))
	if err != nil {
		return bot.User{}, fmt.Errorf("gitlab: look up the account of commit e-mail %s: %w", email, err)
	}
	var found bot.User
	for _, c := range cands {
		pub, priv := c.PublicEmail, c.Email
		if pub == "" && priv == "" {
			// Non-admin searches return short user objects without e-mails.
			// Current GitLab matches e-mails exactly, but older versions
			// matched them by substring too ("bob@x.io" finds the owner of
			// "xbob@x.io"): only the full user's public e-mail, compared
			// exactly, links a commit to an account.
			full, err := f.user(ctx, c.ID)
			if err != nil {
				return bot.User{}, err
			}
			if full == nil {
				continue
			}
			pub, priv = full.PublicEmail, full.Email
		}
		if strings.EqualFold(pub, key) || strings.EqualFold(priv, key) {
			found = bot.User{Login: c.Username, ID: int64(c.ID), Name: c.Name, Bot: c.Bot || isTokenBot(c.Username)}
			break
		}
	}
	f.emails.put(key, found)
	return found, nil
}

var noreplyLocal = regexp.MustCompile(`^(?:(\d+)-)?([a-z0-9_][a-z0-9_.-]*)$`)

func (f *Forge) noreplyUser(email string) (bot.User, bool) {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || domain != "users.noreply."+strings.ToLower(f.baseURL.Hostname()) {
		return bot.User{}, false
	}
	m := noreplyLocal.FindStringSubmatch(local)
	if m == nil {
		return bot.User{}, false
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	return bot.User{Login: m[2], ID: id}, true
}

// user returns the full user (which alone carries the bot flag), cached;
// nil when GitLab does not know it.
func (f *Forge) user(ctx context.Context, id int) (*gl.User, error) {
	if u, ok := f.users.get(id); ok {
		return u, nil
	}
	u, _, err := f.client.Users.GetUser(id, gl.GetUsersOptions{}, gl.WithContext(ctx))
	if isNotFound(err) {
		u, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gitlab: get user %d: %w", id, err)
	}
	f.users.put(id, u)
	return u, nil
}

// tokenBotRE matches the users GitLab creates for project and group access
// tokens (project_123_bot, project_123_bot_<hex>, group_45_bot_<hex>).
var tokenBotRE = regexp.MustCompile(`^(?:project|group)_\d+_bot(?:\d*|_[0-9a-f]+)$`)

func isTokenBot(username string) bool { return tokenBotRE.MatchString(strings.ToLower(username)) }

// permissionOf maps a GitLab access level onto a repository permission:
// Developer may push (write), Maintainer maintains, Owner administers;
// Reporter and below only read.
func permissionOf(level gl.AccessLevelValue) policies.Permission {
	switch {
	case level >= gl.OwnerPermissions:
		return policies.PermissionAdmin
	case level >= gl.MaintainerPermissions:
		return policies.PermissionMaintain
	case level >= gl.DeveloperPermissions:
		return policies.PermissionWrite
	case level > gl.NoPermissions:
		return policies.PermissionRead
	default:
		return policies.PermissionNone
	}
}

// reviewerFacts reads what GitLab says about a reviewer: the bot flag, the
// access level on the project (inherited and invited memberships
// included) and membership of the policy's groups. Found memberships are
// reused for MembershipTTL (floor.go): GitLab tells project hooks nothing
// of a removed member, so that bound is how long one can still count.
func (f *Forge) reviewerFacts(ctx context.Context, repo bot.Repo, id int, username string, teams []string, approvedAt time.Time) (bot.ReviewerFacts, error) {
	var facts bot.ReviewerFacts
	u, err := f.user(ctx, id)
	if err != nil {
		return facts, err
	}
	facts.Bot = isTokenBot(username) || (u != nil && u.Bot)

	m, found, err := f.projectMember(ctx, repo, id, approvedAt)
	switch {
	case err != nil:
		return facts, fmt.Errorf("gitlab: access level of %s on %s: %w", username, repo.FullName, err)
	case !found:
		facts.Permission = policies.PermissionNone
	case m.state == "blocked" || m.state == "deactivated" || m.state == "banned":
		facts.Permission = policies.PermissionNone
	default:
		facts.Permission = permissionOf(m.level)
	}

	for _, team := range teams {
		group := strings.TrimPrefix(strings.TrimSpace(team), "@")
		if group == "" {
			continue
		}
		gm, found, err := f.groupMember(ctx, group, id, approvedAt)
		if err != nil {
			return facts, fmt.Errorf("gitlab: membership of %s in group %s: %w", username, group, err)
		}
		// Minimal access is not membership: it only lets a user see the
		// group exists.
		if found && gm.level >= gl.GuestPermissions {
			facts.Teams = append(facts.Teams, team)
		}
	}
	return facts, nil
}

// approvalsResponse is the part of GET .../approvals foureyes reads;
// approved_at is only sent by newer GitLab versions.
type approvalsResponse struct {
	ApprovedBy []struct {
		User       *gl.BasicUser `json:"user"`
		ApprovedAt *time.Time    `json:"approved_at"`
	} `json:"approved_by"`
}

// approvals lists the current approvals. When the endpoint answers 403 or
// 404 it returns that status instead, and the caller falls back to the
// approval events stored from webhooks.
func (f *Forge) approvals(ctx context.Context, repo bot.Repo, iid int) ([]bot.Review, int, error) {
	var ar approvalsResponse
	path := fmt.Sprintf("projects/%s/merge_requests/%d/approvals", gl.PathEscape(pidString(repo)), iid)
	_, err := f.getJSON(ctx, path, nil, &ar)
	if st := httpStatus(err); st == http.StatusForbidden || st == http.StatusNotFound {
		f.log.Info("gitlab approvals API unavailable; using approval events", "repo", repo.FullName, "mr", iid, "status", st)
		return nil, st, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("gitlab: approvals of %s!%d: %w", repo.FullName, iid, err)
	}
	var reviews []bot.Review
	for _, a := range ar.ApprovedBy {
		if a.User == nil {
			continue
		}
		r := bot.Review{
			Reviewer: bot.User{Login: a.User.Username, ID: int64(a.User.ID), Name: a.User.Name},
			State:    bot.Approved,
			// GitLab does not say which head was approved: the service binds
			// the approval to the head named by its approval event.
			CommitSHA: "",
		}
		if a.ApprovedAt != nil {
			r.At = *a.ApprovedAt
		}
		reviews = append(reviews, r)
	}
	return reviews, 0, nil
}

func (f *Forge) participants(ctx context.Context, repo bot.Repo, iid int) ([]*gl.BasicUser, error) {
	path := fmt.Sprintf("projects/%s/merge_requests/%d/participants", gl.PathEscape(pidString(repo)), iid)
	users, err := paginate("merge request participants", func(page int) ([]*gl.BasicUser, *gl.Response, error) {
		var out []*gl.BasicUser
		resp, err := f.getJSON(ctx, path, &gl.ListOptions{PerPage: perPage, Page: page}, &out)
		return out, resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("gitlab: %s!%d: %w", repo.FullName, iid, err)
	}
	return users, nil
}

// readStatuses reads the latest "foureyes" statuses of the head: the ones
// written by another user are returned as foreign checks, and what was
// seen is remembered for Publish.
func (f *Forge) readStatuses(ctx context.Context, repo bot.Repo, project any, sha string) ([]bot.ForeignCheck, error) {
	statuses, err := paginate("commit statuses", func(page int) ([]*gl.CommitStatus, *gl.Response, error) {
		return f.client.Commits.GetCommitStatuses(project, sha, &gl.GetCommitStatusesOptions{
			ListOptions: gl.ListOptions{PerPage: perPage, Page: page},
			Name:        gl.Ptr(StatusName),
		}, gl.WithContext(ctx))
	})
	if err != nil {
		return nil, fmt.Errorf("gitlab: statuses of %s@%s: %w", repo.FullName, short(sha), err)
	}
	var (
		foreign []bot.ForeignCheck
		memo    statusMemo
		ownID   int
		self    bot.User
	)
	for _, st := range statuses {
		if st.Name != StatusName {
			continue
		}
		if self.ID == 0 {
			// Only a head with statuses needs their authors told apart.
			if self, err = f.Self(ctx); err != nil {
				return nil, err
			}
		}
		if int64(st.Author.ID) == self.ID {
			if st.ID > ownID {
				ownID, memo.own = st.ID, st.Status
			}
			continue
		}
		memo.foreign = true
		foreign = append(foreign, bot.ForeignCheck{
			HeadSHA:    sha,
			ID:         int64(st.ID),
			App:        st.Author.Username,
			Conclusion: st.Status,
			By:         bot.User{Login: st.Author.Username, ID: int64(st.Author.ID), Name: st.Author.Name},
		})
	}
	sort.Slice(foreign, func(i, j int) bool { return foreign[i].ID < foreign[j].ID })
	memo.at = f.now()
	f.statuses.put(shaKey(repo, sha), memo)
	return foreign, nil
}
