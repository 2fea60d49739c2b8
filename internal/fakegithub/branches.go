package fakegithub

import (
	"net/http"
	"sort"
	"strings"
)

// SetBranch points a branch at sha without any webhook: the fake's way to
// model a push GitHub never delivers ("Events will not be created for tags
// when more than three tags are pushed at once", push webhook schema,
// @octokit/openapi-webhooks 12.1.0) or one that was lost. An empty sha
// deletes the branch. The contents API with ?ref=BRANCH then reads the
// files put on that SHA (falling back to files put on the branch name),
// and GET /repos/{o}/{r}/commits/{ref} resolves it. Pull requests keep the
// base.sha they were opened or last synchronized with, as on GitHub:
// moving the base branch does not change it
// (https://github.com/github/docs/issues/431; GitHub refreshes base.sha
// only on a push to the head).
func (f *Fake) SetBranch(repo, name, sha string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repoOf(repo)
	if r.branches == nil {
		r.branches = map[string]string{}
	}
	if sha == "" {
		delete(r.branches, name)
		return
	}
	r.branches[name] = sha
}

// listBranches is GET /repos/{owner}/{repo}/branches: [{name, commit:
// {sha, url}, protected}] ("List branches",
// https://docs.github.com/rest/branches/branches#list-branches), by name.
// Only branches set with SetBranch are listed.
func (f *Fake) listBranches(w http.ResponseWriter, r *http.Request, rp *repo) {
	names := make([]string, 0, len(rp.branches))
	for n := range rp.branches {
		names = append(names, n)
	}
	sort.Strings(names)
	lo, hi := f.paginate(w, r, len(names))
	out := []any{}
	api := f.apiBase(r) + "/repos/" + rp.fullName
	for _, n := range names[lo:hi] {
		out = append(out, map[string]any{
			"name":      n,
			"commit":    map[string]any{"sha": rp.branches[n], "url": api + "/commits/" + rp.branches[n]},
			"protected": false,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// Branch returns the SHA a branch points at ("" if unknown).
func (f *Fake) Branch(repo, branch string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.repoOf(repo).branches[branch]
}

// resolveRef turns a ref as GitHub's endpoints take it (SHA, branch, tag,
// heads/BRANCH, tags/TAG, refs/heads/BRANCH) into a commit SHA.
func (rp *repo) resolveRef(ref string) (string, bool) {
	ref = strings.TrimPrefix(ref, "refs/")
	switch {
	case strings.HasPrefix(ref, "heads/"):
		return rp.branchTip(strings.TrimPrefix(ref, "heads/"))
	case strings.HasPrefix(ref, "tags/"):
		name := strings.TrimPrefix(ref, "tags/")
		for _, t := range rp.tags {
			if t.name == name {
				return t.sha, true
			}
		}
		return "", false
	}
	if sha, ok := rp.branchTip(ref); ok {
		return sha, true
	}
	for _, t := range rp.tags {
		if t.name == ref {
			return t.sha, true
		}
	}
	if len(ref) == 40 {
		return ref, true
	}
	return "", false
}

// branchTip is the tip of a branch: the SHA SetBranch gave it, else, for
// the default branch or a name files were put on, SHA(name) (a branch the
// tests never moved).
func (rp *repo) branchTip(name string) (string, bool) {
	if sha, ok := rp.branches[name]; ok {
		return sha, true
	}
	if h := rp.histories[name]; len(h) > 0 {
		return h[0].SHA, true // SetHistory on a branch name: its newest commit
	}
	if _, ok := rp.files[name]; ok || name == rp.defaultBranch {
		return SHA(name), true
	}
	return "", false
}

// filesAt returns the files of a ref: those put on the commit a branch or
// tag points at, else those put on the name itself; for SHA(name) of a
// branch never moved with SetBranch, those put on the name.
func (rp *repo) filesAt(ref string) map[string]string {
	if _, moved := rp.branches[ref]; !moved {
		// Files put on a name (a branch never moved with SetBranch) are
		// what that name shows.
		if fs, ok := rp.files[ref]; ok {
			return fs
		}
	}
	sha, ok := rp.resolveRef(ref)
	if ok {
		if fs, ok := rp.files[sha]; ok {
			return fs
		}
	}
	if fs, ok := rp.files[ref]; ok {
		return fs
	}
	if ok {
		// Files put on the name of a branch never moved with SetBranch are
		// the files of its tip.
		for name, fs := range rp.files {
			if _, moved := rp.branches[name]; moved {
				continue
			}
			if tip, isBranch := rp.branchTip(name); isBranch && tip == sha {
				return fs
			}
		}
	}
	return nil
}

// getCommitRef serves GET /repos/{owner}/{repo}/commits/{ref}: with the
// media type application/vnd.github.sha (or .v3.sha) the answer is the bare
// SHA ("Get a commit", https://docs.github.com/rest/commits/commits#get-a-commit),
// which GitHub serves with an ETag so that polling a branch tip is a free
// 304 while it does not move. An unknown ref is 422, as on GitHub.
func (f *Fake) getCommitRef(w http.ResponseWriter, r *http.Request, rp *repo) {
	sha, ok := rp.resolveRef(r.PathValue("ref"))
	if !ok {
		writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+r.PathValue("ref"))
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "sha") {
		w.Header().Set("Content-Type", "application/vnd.github.sha; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(sha))
		return
	}
	// The JSON answer is the OpenAPI component "commit" (repos/get-commit),
	// which requires the git commit, author, committer and parents.
	writeJSON(w, http.StatusOK, f.commitJSON(r, rp, Commit{SHA: sha}))
}
