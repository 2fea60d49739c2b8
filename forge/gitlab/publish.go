package gitlab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gl "github.com/xanzy/go-gitlab"

	"github.com/foureyes-dev/foureyes/bot"
)

// maxDescription is GitLab's limit on a commit status description.
const maxDescription = 255

// maxTargetURL is GitLab's limit on a commit status target_url: a longer
// one is refused with a 400 (gitlab-org/gitlab issue 501079, "Gitlab API
// request to create a commit status is failing if target_url field is
// greater than 255 chars"). A signed details link cannot be cut, so it is
// left out of the status and put in the note instead.
const maxTargetURL = 255

func targetURLFits(u string) bool { return u != "" && len(u) <= maxTargetURL }

// statusTargetURL is the link of a merge request's status: the details
// page, or when that link is too long the merge request itself, whose
// note links the details page.
func (f *Forge) statusTargetURL(repo bot.Repo, iid int, details string) string {
	if details == "" || targetURLFits(details) {
		return details
	}
	if m, ok := f.mrs.get(mrKey(repo, iid)); ok && targetURLFits(m.webURL) {
		return m.webURL
	}
	return ""
}

// priorID is what Publish returns and gets back as Report.PriorID:
// "state|noteID|digest" — the status state foureyes last posted on the
// head, its note, and a digest of the note body last written.
type priorID struct {
	state  string
	noteID int
	digest string
}

func parsePriorID(s string) priorID {
	if s == "" || s == bot.ReportInFlight {
		return priorID{}
	}
	parts := strings.Split(s, "|")
	var p priorID
	p.state = parts[0]
	if len(parts) > 1 {
		p.noteID, _ = strconv.Atoi(parts[1])
	}
	if len(parts) > 2 {
		p.digest = parts[2]
	}
	return p
}

func (p priorID) String() string {
	return p.state + "|" + strconv.Itoa(p.noteID) + "|" + p.digest
}

// statusState maps a verdict onto a GitLab commit status state.
func statusState(s bot.State) string {
	switch s {
	case bot.Success:
		return "success"
	case bot.PendingState:
		return "pending"
	default:
		return "failed"
	}
}

// Publish posts the "foureyes" commit status on the head (only when its
// state changes, or to re-assert it over someone else's status) and
// writes the one foureyes note of the merge request, editing it in place.
func (f *Forge) Publish(ctx context.Context, r bot.Report) (string, error) {
	repo, sha, iid := r.Ref.Repo, r.Ref.HeadSHA, r.Ref.Number
	if sha == "" {
		return "", fmt.Errorf("gitlab: publish on %s!%d: no head SHA", repo.FullName, iid)
	}
	prior := parsePriorID(r.PriorID)
	state := statusState(r.Verdict.State)

	// What Change just read beats what we remember having posted: it knows
	// whether someone else's status is now the latest.
	post := prior.state != state
	if memo, ok := f.statuses.get(shaKey(repo, sha)); ok {
		post = memo.foreign || memo.own != state || f.memoDisagrees(repo, iid, sha, memo, prior.state)
	}
	if post {
		if err := f.postStatus(ctx, repo, iid, sha, state, r); err != nil {
			return "", err
		}
	}
	next := priorID{state: state}

	extra := ""
	if memo, ok := f.mrs.get(mrKey(repo, iid)); ok && memo.statusFallback {
		extra += "\n\n" + forkFallbackNotice(iid)
	}
	if r.DetailsURL != "" && !targetURLFits(r.DetailsURL) {
		// Too long for the status's target_url: the note links it.
		extra += "\n\n[Details of this verdict](" + r.DetailsURL + ")"
	}
	body := NoteMarker + "\n" + r.Markdown + extra
	sum := sha256.Sum256([]byte(body))
	next.digest = hex.EncodeToString(sum[:8])
	if prior.noteID != 0 && prior.digest == next.digest {
		// This head's note already says this (PriorID comes from the
		// shared store, so this holds across replicas): editing it would
		// only add noise.
		next.noteID = prior.noteID
		return next.String(), nil
	}
	noteID := prior.noteID
	if memo, ok := f.mrs.get(mrKey(repo, iid)); ok && noteID == 0 {
		// A new head has no PriorID: the note of the merge request is the
		// same, and remembering its ID saves listing the notes.
		noteID = memo.noteID
	}
	// Mentions notify, also when an edit adds them: only the note's first
	// version mentions people and groups; every edit names them quietly.
	quiet := body
	if r.QuietMarkdown != "" {
		quiet = NoteMarker + "\n" + r.QuietMarkdown + extra
	}
	var err error
	next.noteID, err = f.upsertNote(ctx, repo, iid, noteID, body, quiet)
	if err != nil {
		return "", err
	}
	f.rememberMR(repo, iid, func(m *mrMemo) { m.noteID = next.noteID })
	return next.String(), nil
}

func (f *Forge) postStatus(ctx context.Context, repo bot.Repo, iid int, sha, state string, r bot.Report) error {
	ref, project, err := f.statusRef(ctx, repo, iid)
	if err != nil {
		return err
	}
	opt := &gl.SetCommitStatusOptions{
		State:       gl.BuildStateValue(state),
		Name:        gl.Ptr(StatusName),
		Ref:         gl.Ptr(ref),
		Description: gl.Ptr(truncate(r.Title, maxDescription)),
	}
	if u := f.statusTargetURL(repo, iid, r.DetailsURL); u != "" {
		opt.TargetURL = gl.Ptr(u)
	}
	st, _, err := f.client.Commits.SetCommitStatus(project, sha, opt, gl.WithContext(ctx))
	if fp, ok := project.(int); ok && fp != int(repo.ID) && isNoAccess(err) {
		// The token cannot write to the fork: post on this project, on the
		// merge request's head ref, and say so in the note.
		f.log.Warn("gitlab: cannot post the status on the fork; posting on the target project",
			"repo", repo.FullName, "mr", iid, "fork", fp, "err", err)
		f.rememberMR(repo, iid, func(m *mrMemo) { m.statusFallback = true })
		opt.Ref = gl.Ptr(fmt.Sprintf("refs/merge-requests/%d/head", iid))
		st, _, err = f.client.Commits.SetCommitStatus(pid(repo), sha, opt, gl.WithContext(ctx))
	}
	if err == nil && st != nil {
		f.learnSelf(ctx, st.Author.ID, st.Author.Username, st.Author.Name)
	}
	switch {
	case isSameStateError(err):
		// Our status already has this state (a retry after a crash, or a
		// PriorID that was lost): GitLab refuses the no-op transition. The
		// job in that state may be someone else's of the same name: the
		// next evaluation reads the statuses again.
		f.log.Debug("gitlab status already in state", "repo", repo.FullName, "sha", sha, "state", state)
		f.statuses.put(shaKey(repo, sha), statusMemo{own: state, at: f.now(), unverified: true})
		return nil
	case err != nil:
		return fmt.Errorf("gitlab: post %s status %s on %s@%s: %w", StatusName, state, repo.FullName, short(sha), err)
	}
	// Just posted, so it is the latest "foureyes" status of the head.
	f.statuses.put(shaKey(repo, sha), statusMemo{own: state, at: f.now()})
	return nil
}

// isSameStateError recognizes GitLab's 400 to a status posted again in the
// state it has ("Cannot transition status via :enqueue from :pending").
func isSameStateError(err error) bool {
	var er *gl.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusBadRequest &&
		strings.Contains(er.Message, "Cannot transition status")
}

// statusRef is the ref and project the status is posted for: the source
// branch, so the status joins the merge request's head pipeline
// ("Pipelines must succeed"), in the source project — a fork's, for a
// merge request from a fork (see statusProject).
func (f *Forge) statusRef(ctx context.Context, repo bot.Repo, iid int) (string, any, error) {
	m, ok := f.mrs.get(mrKey(repo, iid))
	if !ok || m.sourceBranch == "" {
		mr, _, err := f.client.MergeRequests.GetMergeRequest(pid(repo), iid, nil, gl.WithContext(ctx))
		if err != nil {
			return "", nil, fmt.Errorf("gitlab: get merge request %s!%d for its source branch: %w", repo.FullName, iid, err)
		}
		f.rememberMR(repo, iid, func(m *mrMemo) { m.sourceBranch, m.sourceProject = mr.SourceBranch, forkOf(mr) })
		m, _ = f.mrs.get(mrKey(repo, iid))
	}
	if m.sourceProject != 0 && m.statusFallback {
		// Fallen back to the target project, which has no such branch.
		return fmt.Sprintf("refs/merge-requests/%d/head", iid), pid(repo), nil
	}
	return m.sourceBranch, f.statusProject(repo, iid), nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// upsertNote edits foureyes' note (noteID, or the one found by its marker
// and author) with quiet or, when there is none, creates it with body; it
// returns the note ID.
func (f *Forge) upsertNote(ctx context.Context, repo bot.Repo, iid int, noteID int, body, quiet string) (int, error) {
	update := func(id int) error {
		_, _, err := f.client.Notes.UpdateMergeRequestNote(pid(repo), iid, id,
			&gl.UpdateMergeRequestNoteOptions{Body: gl.Ptr(quiet)}, gl.WithContext(ctx))
		return err
	}
	if noteID != 0 {
		err := update(noteID)
		if err == nil {
			return noteID, nil
		}
		// Deleted, or not ours: look for our note as if the ID were unknown.
		if st := httpStatus(err); st != http.StatusNotFound && st != http.StatusForbidden {
			return 0, fmt.Errorf("gitlab: edit note %d on %s!%d: %w", noteID, repo.FullName, iid, err)
		}
	}
	var found int
	if noteID != 0 || !f.noNotes(repo, iid) {
		// A merge request with no user note cannot hold foureyes' note:
		// only otherwise are the notes listed, by their authors.
		self, err := f.Self(ctx)
		if err != nil {
			return 0, err
		}
		if found, err = f.findNote(ctx, repo, iid, self); err != nil {
			return 0, err
		}
	}
	if found != 0 && found != noteID {
		if err := update(found); err != nil {
			return 0, fmt.Errorf("gitlab: edit note %d on %s!%d: %w", found, repo.FullName, iid, err)
		}
		return found, nil
	}
	n, _, err := f.client.Notes.CreateMergeRequestNote(pid(repo), iid,
		&gl.CreateMergeRequestNoteOptions{Body: gl.Ptr(body)}, gl.WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("gitlab: create note on %s!%d: %w", repo.FullName, iid, err)
	}
	f.learnSelf(ctx, n.Author.ID, n.Author.Username, n.Author.Name)
	return n.ID, nil
}

// findNote returns foureyes' note on the merge request: the oldest note by
// foureyes' user that starts with the marker (0 if none). Author and
// marker together: anyone can paste the marker, only the token's user can
// be the author.
func (f *Forge) findNote(ctx context.Context, repo bot.Repo, iid int, self bot.User) (int, error) {
	page := 1
	for range maxPages {
		notes, resp, err := f.client.Notes.ListMergeRequestNotes(pid(repo), iid, &gl.ListMergeRequestNotesOptions{
			ListOptions: gl.ListOptions{PerPage: perPage, Page: page},
			OrderBy:     gl.Ptr("created_at"),
			Sort:        gl.Ptr("asc"),
		}, gl.WithContext(ctx))
		if err != nil {
			return 0, fmt.Errorf("gitlab: list notes of %s!%d: %w", repo.FullName, iid, err)
		}
		for _, n := range notes {
			if !n.System && int64(n.Author.ID) == self.ID && strings.HasPrefix(strings.TrimSpace(n.Body), NoteMarker) {
				return n.ID, nil
			}
		}
		if resp == nil || resp.NextPage == 0 || resp.NextPage <= page {
			return 0, nil
		}
		page = resp.NextPage
	}
	return 0, fmt.Errorf("gitlab: list notes of %s!%d: more than %d pages", repo.FullName, iid, maxPages)
}

// ChangesOfCommit returns the merge requests a commit belongs to (GitLab's
// commits/:sha/merge_requests), for the release guard. Each is a summary
// (no files, commits or reviews): Ref.HeadSHA is the merge request's final
// head, State "merged" for a merged one; mergedAt[i] is when changes[i]
// was merged (zero when it was not).
func (f *Forge) ChangesOfCommit(ctx context.Context, repo bot.Repo, sha string) ([]bot.Change, []time.Time, error) {
	mrs, err := paginate("merge requests of a commit", func(page int) ([]*gl.MergeRequest, *gl.Response, error) {
		// go-gitlab v0.115.0's ListMergeRequestsByCommit takes no page:
		// request the pages through getJSON.
		var out []*gl.MergeRequest
		path := fmt.Sprintf("projects/%s/repository/commits/%s/merge_requests", gl.PathEscape(pidString(repo)), gl.PathEscape(sha))
		resp, err := f.getJSON(ctx, path, &gl.ListOptions{PerPage: perPage, Page: page}, &out)
		return out, resp, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("gitlab: merge requests of commit %s in %s: %w", short(sha), repo.FullName, err)
	}
	out := make([]bot.Change, 0, len(mrs))
	merged := make([]time.Time, 0, len(mrs))
	for _, mr := range mrs {
		c := bot.Change{
			Ref:     bot.ChangeRef{Forge: bot.GitLab, Repo: repo, Number: mr.IID, HeadSHA: mr.SHA},
			Title:   mr.Title,
			URL:     mr.WebURL,
			BaseRef: mr.TargetBranch,
			State:   changeState(mr.State),
			Draft:   mr.Draft || mr.WorkInProgress,
		}
		if mr.Author != nil {
			c.Author = bot.User{Login: mr.Author.Username, ID: int64(mr.Author.ID), Name: mr.Author.Name}
		}
		var at time.Time
		if mr.State == "merged" && mr.MergedAt != nil {
			at = *mr.MergedAt
		}
		out = append(out, c)
		merged = append(merged, at)
	}
	return out, merged, nil
}

// Compare returns the commits of to that from does not have, oldest first:
// it completes a push payload, which GitLab truncates to 20 commits, and
// lists the commits of a release tag range. Compare(after, before) of a
// push is not empty exactly when the push rewrote history: GitLab's push
// hook has no "forced" flag.
func (f *Forge) Compare(ctx context.Context, repo bot.Repo, from, to string) ([]bot.PushCommit, error) {
	cmp, _, err := f.client.Repositories.Compare(pid(repo), &gl.CompareOptions{From: gl.Ptr(from), To: gl.Ptr(to)}, gl.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("gitlab: compare %s...%s in %s: %w", short(from), short(to), repo.FullName, err)
	}
	if cmp.CompareTimeout {
		// compare_timeout is the diffs' overflow (GitLab's compare entity
		// exposes it as compare.diffs.overflow?): the diffs may be cut, the
		// commits are complete. Only commits are used here; nothing reads
		// the compare diffs, which must fail closed if anything ever does.
		f.log.Info("gitlab compare diffs incomplete; using its commits", "repo", repo.FullName, "from", short(from), "to", short(to))
	}
	return pushCommits(cmp.Commits), nil
}

func pushCommits(list []*gl.Commit) []bot.PushCommit {
	out := make([]bot.PushCommit, 0, len(list))
	for _, gc := range list {
		c := commitOf(gc)
		out = append(out, bot.PushCommit{SHA: c.SHA, Message: c.Message, Author: c.Author, Committer: c.Committer, Time: c.Time})
	}
	return out
}

// History lists up to limit commits reachable from sha, newest first: the
// commits of a first release, which has no previous tag to compare with.
func (f *Forge) History(ctx context.Context, repo bot.Repo, sha string, limit int) ([]bot.PushCommit, error) {
	var out []bot.PushCommit
	page := 1
	for len(out) < limit {
		list, resp, err := f.client.Commits.ListCommits(pid(repo), &gl.ListCommitsOptions{
			ListOptions: gl.ListOptions{PerPage: perPage, Page: page},
			RefName:     gl.Ptr(sha),
		}, gl.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("gitlab: list commits of %s from %s: %w", repo.FullName, short(sha), err)
		}
		out = append(out, pushCommits(list)...)
		if resp == nil || resp.NextPage == 0 || resp.NextPage <= page || len(list) == 0 {
			break
		}
		page = resp.NextPage
	}
	return out[:min(len(out), limit)], nil
}

// Tags returns the project's tags: name -> commit SHA.
func (f *Forge) Tags(ctx context.Context, repo bot.Repo) (map[string]string, error) {
	tags, err := paginate("tags", func(page int) ([]*gl.Tag, *gl.Response, error) {
		return f.client.Tags.ListTags(pid(repo), &gl.ListTagsOptions{ListOptions: gl.ListOptions{PerPage: perPage, Page: page}}, gl.WithContext(ctx))
	})
	if err != nil {
		return nil, fmt.Errorf("gitlab: %s: %w", repo.FullName, err)
	}
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		if t.Commit != nil {
			out[t.Name] = t.Commit.ID
		}
	}
	return out, nil
}

// PublishCommit posts the release guard's "foureyes" commit status on sha
// for ref (the release branch or tag, full or short; the markdown does not
// fit a status and goes into the issue). priorID is the state foureyes last posted
// there: the same state is not posted again (GitLab refuses the no-op
// transition), and the returned ID is the state now posted.
func (f *Forge) PublishCommit(ctx context.Context, repo bot.Repo, ref, sha, title, _, detailsURL string, state bot.State, priorID string) (string, error) {
	want := statusState(state)
	if priorID == want {
		return priorID, nil
	}
	opt := &gl.SetCommitStatusOptions{
		State:       gl.BuildStateValue(want),
		Name:        gl.Ptr(StatusName),
		Description: gl.Ptr(truncate(title, maxDescription)),
	}
	if ref = strings.TrimPrefix(strings.TrimPrefix(ref, "refs/heads/"), "refs/tags/"); ref != "" {
		opt.Ref = gl.Ptr(ref)
	}
	if targetURLFits(detailsURL) {
		opt.TargetURL = gl.Ptr(detailsURL)
	}
	_, _, err := f.client.Commits.SetCommitStatus(pid(repo), sha, opt, gl.WithContext(ctx))
	if err != nil && !isSameStateError(err) {
		return "", fmt.Errorf("gitlab: post %s status %s on %s@%s: %w", StatusName, want, repo.FullName, short(sha), err)
	}
	return want, nil
}

// OpenIssue opens an issue (release guard alerts) and returns its URL.
func (f *Forge) OpenIssue(ctx context.Context, repo bot.Repo, title, body string, labels []string) (string, error) {
	opt := &gl.CreateIssueOptions{Title: gl.Ptr(title), Description: gl.Ptr(body)}
	if len(labels) > 0 {
		lo := gl.LabelOptions(labels)
		opt.Labels = &lo
	}
	is, _, err := f.client.Issues.CreateIssue(pid(repo), opt, gl.WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("gitlab: open issue %q in %s: %w", title, repo.FullName, err)
	}
	return is.WebURL, nil
}

// findIssuePages bounds FindIssue: the issue looked for was opened moments
// before a crash, so it is among the newest.
const findIssuePages = 3

// FindIssue returns the URL of the newest issue whose description contains
// marker ("" if none among the newest 300): it recovers an issue opened by
// an attempt that died before recording it.
func (f *Forge) FindIssue(ctx context.Context, repo bot.Repo, marker string) (string, error) {
	if marker == "" {
		return "", errors.New("gitlab: FindIssue needs a marker")
	}
	for page := 1; page <= findIssuePages; page++ {
		list, resp, err := f.client.Issues.ListProjectIssues(pid(repo), &gl.ListProjectIssuesOptions{
			ListOptions: gl.ListOptions{PerPage: perPage, Page: page},
			OrderBy:     gl.Ptr("created_at"),
			Sort:        gl.Ptr("desc"),
		}, gl.WithContext(ctx))
		if err != nil {
			return "", fmt.Errorf("gitlab: list issues of %s: %w", repo.FullName, err)
		}
		for _, is := range list {
			if strings.Contains(is.Description, marker) {
				return is.WebURL, nil
			}
		}
		if resp == nil || resp.NextPage == 0 {
			break
		}
	}
	return "", nil
}
