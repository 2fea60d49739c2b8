package fakegithub

import (
	"slices"
	"strings"
)

// AddRepo registers a repository (default branch "main"). Other builders
// register unknown repositories on first use too.
func (f *Fake) AddRepo(fullName string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repoOf(fullName)
}

// SetDefaultBranch changes a repository's default branch.
func (f *Fake) SetDefaultBranch(repo, branch string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repoOf(repo).defaultBranch = branch
}

// PutFile stores content at path on ref (a branch name or a SHA; the fake
// has no git graph, so a file exists exactly on the refs it was put on). The
// contents API without ?ref= reads the default branch.
func (f *Fake) PutFile(repo, ref, path, content string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repoOf(repo)
	if r.files[ref] == nil {
		r.files[ref] = map[string]string{}
	}
	r.files[ref][strings.TrimPrefix(path, "/")] = content
}

// DeleteFile removes a file put with PutFile.
func (f *Fake) DeleteFile(repo, ref, path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.repoOf(repo).files[ref], strings.TrimPrefix(path, "/"))
}

// AddPR adds (or replaces) a pull request. Defaults: state open, HeadSHA =
// the last commit, BaseRef = the default branch, timestamps = now.
func (f *Fake) AddPR(repo string, pr PR) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repoOf(repo)
	if pr.State == "" {
		pr.State = "open"
	}
	if pr.HeadSHA == "" && len(pr.Commits) > 0 {
		pr.HeadSHA = pr.Commits[len(pr.Commits)-1].SHA
	}
	if pr.HeadRef == "" {
		pr.HeadRef = "feature"
	}
	if pr.BaseRef == "" {
		pr.BaseRef = r.defaultBranch
	}
	if pr.CreatedAt.IsZero() {
		pr.CreatedAt = f.now()
	}
	if pr.UpdatedAt.IsZero() {
		pr.UpdatedAt = pr.CreatedAt
	}
	pr.Files = slices.Clone(pr.Files)
	pr.Commits = slices.Clone(pr.Commits)
	var reviews []Review
	before := ""
	if old := r.prs[pr.Number]; old != nil {
		reviews = old.reviews
		before = old.HeadSHA
	}
	r.prs[pr.Number] = &pull{PR: pr, reviews: reviews}
	r.indexHead(pr.Number, before, pr.HeadSHA)
	f.notePRPush(r, before, &r.prs[pr.Number].PR)
}

// indexHead moves pull request number from head SHA before to after in
// pullsByHead.
func (r *repo) indexHead(number int, before, after string) {
	if before == after {
		return
	}
	if before != "" {
		r.pullsByHead[before] = slices.DeleteFunc(r.pullsByHead[before], func(n int) bool { return n == number })
		if len(r.pullsByHead[before]) == 0 {
			delete(r.pullsByHead, before)
		}
	}
	if after != "" {
		r.pullsByHead[after] = append(r.pullsByHead[after], number)
		slices.Sort(r.pullsByHead[after])
	}
}

// UpdatePR changes a pull request in place (e.g. a new head) and bumps its
// updated_at.
func (f *Fake) UpdatePR(repo string, number int, change func(*PR)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.repoOf(repo).prs[number]
	if p == nil {
		return
	}
	before := p.HeadSHA
	change(&p.PR)
	p.UpdatedAt = f.now()
	if tip := f.repoOf(repo).branches[p.BaseRef]; tip != "" && p.HeadSHA != before {
		// A push to the head (synchronize) is when GitHub refreshes
		// base.sha; nothing else moves it.
		p.BaseSHA = tip
	}
	f.repoOf(repo).indexHead(number, before, p.HeadSHA)
	f.notePRPush(f.repoOf(repo), before, &p.PR)
}

// PR returns a copy of a pull request (ok=false if unknown).
func (f *Fake) PR(repo string, number int) (PR, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.repoOf(repo).prs[number]
	if p == nil {
		return PR{}, false
	}
	return p.PR, true
}

// AddReview adds a review to a pull request and returns its ID. State is
// REST's upper case; SubmittedAt defaults to now.
func (f *Fake) AddReview(repo string, number int, rv Review) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.repoOf(repo).prs[number]
	if p == nil {
		return 0
	}
	if rv.ID == 0 {
		rv.ID = f.id()
	}
	if rv.SubmittedAt.IsZero() && rv.State != "PENDING" {
		rv.SubmittedAt = f.now()
	}
	if rv.CommitID == "" {
		rv.CommitID = p.HeadSHA
	}
	rv.State = strings.ToUpper(rv.State)
	p.reviews = append(p.reviews, rv)
	p.UpdatedAt = f.now()
	return rv.ID
}

// DismissReview sets a review's state to DISMISSED.
func (f *Fake) DismissReview(repo string, number int, id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.repoOf(repo).prs[number]; p != nil {
		for i := range p.reviews {
			if p.reviews[i].ID == id {
				p.reviews[i].State = "DISMISSED"
			}
		}
	}
}

// SetPermission gives user a repository role (read, triage, write,
// maintain, admin or a custom role name); "" removes it (the API then
// answers 404 as for a non-collaborator).
func (f *Fake) SetPermission(repo, user, role string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repoOf(repo)
	if role == "" {
		delete(r.perms, strings.ToLower(user))
		return
	}
	r.perms[strings.ToLower(user)] = role
}

// AddTeamMember makes user an active member of org/slug.
func (f *Fake) AddTeamMember(org, slug, user string) {
	f.SetTeamMembership(org, slug, user, "active")
}

// SetTeamMembership sets a membership state ("active", "pending"; ""
// removes it).
func (f *Fake) SetTeamMembership(org, slug, user, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := strings.ToLower(org + "/" + slug)
	if f.teams[k] == nil {
		f.teams[k] = map[string]string{}
	}
	if state == "" {
		delete(f.teams[k], strings.ToLower(user))
		return
	}
	f.teams[k][strings.ToLower(user)] = state
}

// CheckRuns returns the check runs on sha, oldest first.
func (f *Fake) CheckRuns(repo, sha string) []CheckRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []CheckRun
	for _, c := range f.repoOf(repo).checkRunsByHead[sha] {
		out = append(out, *c)
	}
	return out
}

// AddCheckRun stores a check run as if another App (or a workflow) had
// created it; AppID/AppSlug say which. It returns the run's ID.
func (f *Fake) AddCheckRun(repo string, c CheckRun) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.ID == 0 {
		c.ID = f.id()
	}
	if c.Status == "" {
		c.Status = "completed"
	}
	if c.StartedAt.IsZero() {
		c.StartedAt = f.now()
	}
	r := f.repoOf(repo)
	r.addCheckRun(&c)
	return c.ID
}

// Statuses returns the commit statuses on sha, oldest first.
func (f *Fake) Statuses(repo, sha string) []Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Status
	for _, s := range f.repoOf(repo).statuses {
		if s.SHA == sha {
			out = append(out, *s)
		}
	}
	return out
}

// Issues returns the repository's issues, oldest first.
func (f *Fake) Issues(repo string) []Issue {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Issue
	for _, i := range f.repoOf(repo).issues {
		c := *i
		c.Labels = slices.Clone(i.Labels)
		out = append(out, c)
	}
	return out
}

// SetCommitPulls says which pull requests commits/{sha}/pulls lists.
func (f *Fake) SetCommitPulls(repo, sha string, numbers ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repoOf(repo).commitPulls[sha] = slices.Clone(numbers)
}

// SetCompare sets the commits compare/{base}...{head} lists (oldest first).
func (f *Fake) SetCompare(repo, base, head string, commits []Commit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repoOf(repo).compares[base+"..."+head] = slices.Clone(commits)
}

// AddTag creates (or moves) a lightweight tag.
func (f *Fake) AddTag(repo, name, sha string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repoOf(repo)
	for i := range r.tags {
		if r.tags[i].name == name {
			r.tags[i].sha = sha
			return
		}
	}
	r.tags = append(r.tags, tag{name: name, sha: sha})
}

// SetHistory sets what GET commits?sha={sha} lists (newest first): the
// fake has no git graph.
func (f *Fake) SetHistory(repo, sha string, commits []Commit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repoOf(repo).histories[sha] = slices.Clone(commits)
}
