package fakegithub

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
)

// forkHead is the head of a pull request from a fork (PR.HeadRepo): the
// branch lives in another repository, so head.repo and head.label name the
// fork (pull request object, "head": {"label", "ref", "sha", "user",
// "repo"}: GitHub REST "Get a pull request",
// https://docs.github.com/rest/pulls/pulls#get-a-pull-request). Check
// runs and suites of such a head carry an empty pull_requests array: see
// the check_suite webhook schema ("When the check suite's head_branch is
// in a forked repository it will be null and the pull_requests array will
// be empty").
func (f *Fake) forkHead(r *http.Request, p *pull) map[string]any {
	owner, name, _ := strings.Cut(p.HeadRepo, "/")
	h := fnv.New32a()
	h.Write([]byte(p.HeadRepo))
	id := int64(h.Sum32())
	// head.repo is the OpenAPI component "repository": every field it
	// requires, from repoFullJSON, then the fork's own.
	fork := f.repoFullJSON(r, &repo{id: id, fullName: p.HeadRepo, defaultBranch: "main"})
	for k, v := range map[string]any{
		"id": id, "node_id": fmt.Sprintf("R_%d", id), "name": name, "full_name": p.HeadRepo, "private": false,
		"owner":    f.userJSON(User{Login: owner, Type: "User"}),
		"html_url": f.htmlBase() + "/" + p.HeadRepo, "url": f.apiBase(r) + "/repos/" + p.HeadRepo,
		"fork": true, "default_branch": "main", "visibility": "public",
	} {
		fork[k] = v
	}
	return map[string]any{
		"label": owner + ":" + p.HeadRef,
		"ref":   p.HeadRef,
		"sha":   p.HeadSHA,
		"user":  f.userJSON(User{Login: owner, Type: "User"}),
		"repo":  fork,
	}
}
