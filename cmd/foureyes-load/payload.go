package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// The payload is rendered once with sentinel values, then each delivery
// substitutes its own pull request number and head SHA with two byte
// replacements: cheap enough that the load tool's own CPU stays small next
// to the server's on a two-core machine.
const (
	sentinelNumber = 2147480001
	sentinelSHA    = "feedfacefeedfacefeedfacefeedfacefeedface"
)

// Built-in payload identity. The installation ID is arbitrary: the fake
// GitHub hands a token to any installation of the App.
const (
	loadOwner        = "acme"
	loadRepo         = "acme/load"
	loadAuthor       = "octo-dev"
	loadInstallation = 4242
)

// headRef is the head branch of pull request number. Each pull request has
// its own, as on a real repository: with one branch shared by thousands of
// pull requests, the activity API would answer every evaluation with
// pages of other pull requests' pushes, and the run would measure that.
func headRef(number int) string { return "changes-" + strconv.Itoa(number) }

// template is a webhook body with sentinels for the per-delivery values.
type template struct {
	event string
	body  []byte
	// perChange is true when the sentinels are present: each delivery then
	// names its own pull request (its own ordering key in foureyes).
	perChange bool
	repo      string // repository full name, for seeding the fake
	author    string // pull request author, for seeding the fake

	// The body cut at its sentinels, once: render then writes each body
	// in one pass and one allocation. Two bytes.ReplaceAll over 20 KB per
	// delivery were 7% of the load tool's CPU, which the server under
	// test shares.
	cut   sync.Once
	segs  [][]byte // len(holes)+1 pieces of body between the sentinels
	holes []bool   // true: the number goes here; false: the head SHA
}

// split fills segs and holes.
func (t *template) split() {
	num := []byte(strconv.Itoa(sentinelNumber))
	rest := t.body
	for {
		i, j := bytes.Index(rest, num), bytes.Index(rest, []byte(sentinelSHA))
		if i < 0 && j < 0 {
			t.segs = append(t.segs, rest)
			return
		}
		if j < 0 || (i >= 0 && i < j) {
			t.segs, t.holes, rest = append(t.segs, rest[:i]), append(t.holes, true), rest[i+len(num):]
			continue
		}
		t.segs, t.holes, rest = append(t.segs, rest[:j]), append(t.holes, false), rest[j+len(sentinelSHA):]
	}
}

// render returns the body for pull request number with head sha.
func (t *template) render(number int, sha string) []byte {
	if !t.perChange {
		return t.body
	}
	t.cut.Do(t.split)
	n := strconv.Itoa(number)
	size := len(t.body)
	for _, isNum := range t.holes {
		if isNum {
			size += len(n) - len(strconv.Itoa(sentinelNumber))
		} else {
			size += len(sha) - len(sentinelSHA)
		}
	}
	out := make([]byte, 0, size)
	for i, seg := range t.segs {
		out = append(out, seg...)
		switch {
		case i == len(t.holes):
		case t.holes[i]:
			out = append(out, n...)
		default:
			out = append(out, sha...)
		}
	}
	return out
}

// builtinTemplate is a pull_request "opened" delivery in the shape (fields
// and size, about 23 KB) of GitHub's documented example,
// testdata/fixtures/github/pull_request.opened.json.
func builtinTemplate() (*template, error) {
	body, err := json.Marshal(pullRequestPayload(loadRepo, loadAuthor, sentinelNumber, sentinelSHA))
	if err != nil {
		return nil, err
	}
	return &template{event: "pull_request", body: body, perChange: true, repo: loadRepo, author: loadAuthor}, nil
}

// fileTemplate reads a payload from a file. When it is a pull request
// event (top-level "number" and a "pull_request" object), the number and
// head SHA are replaced per delivery; any other payload is sent as is,
// with only the delivery ID varying.
func fileTemplate(event string, raw []byte) (*template, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("payload is not a JSON object: %w", err)
	}
	t := &template{event: event}
	if repo, ok := m["repository"].(map[string]any); ok {
		t.repo, _ = repo["full_name"].(string)
	}
	pr, ok := m["pull_request"].(map[string]any)
	if !ok {
		t.body = raw
		return t, nil
	}
	if u, ok := pr["user"].(map[string]any); ok {
		t.author, _ = u["login"].(string)
	}
	m["number"] = sentinelNumber
	pr["number"] = sentinelNumber
	if head, ok := pr["head"].(map[string]any); ok {
		head["sha"] = sentinelSHA
		head["ref"] = headRef(sentinelNumber)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	t.body, t.perChange = body, true
	return t, nil
}

func user(login string, id int64) map[string]any {
	api := "https://api.github.com/users/" + login
	return map[string]any{
		"login": login, "id": id, "node_id": fmt.Sprintf("MDQ6VXNlcj%08d", id%1e8),
		"avatar_url":  fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", id),
		"gravatar_id": "", "url": api, "html_url": "https://github.com/" + login,
		"followers_url": api + "/followers", "following_url": api + "/following{/other_user}",
		"gists_url": api + "/gists{/gist_id}", "starred_url": api + "/starred{/owner}{/repo}",
		"subscriptions_url": api + "/subscriptions", "organizations_url": api + "/orgs",
		"repos_url": api + "/repos", "events_url": api + "/events{/privacy}",
		"received_events_url": api + "/received_events", "type": "User", "site_admin": false,
	}
}

// repoURLs are the hypermedia fields of a repository object: name -> path
// suffix after https://api.github.com/repos/OWNER/NAME.
var repoURLs = [][2]string{
	{"forks_url", "/forks"}, {"keys_url", "/keys{/key_id}"}, {"collaborators_url", "/collaborators{/collaborator}"},
	{"teams_url", "/teams"}, {"hooks_url", "/hooks"}, {"issue_events_url", "/issues/events{/number}"},
	{"events_url", "/events"}, {"assignees_url", "/assignees{/user}"}, {"branches_url", "/branches{/branch}"},
	{"tags_url", "/tags"}, {"blobs_url", "/git/blobs{/sha}"}, {"git_tags_url", "/git/tags{/sha}"},
	{"git_refs_url", "/git/refs{/sha}"}, {"trees_url", "/git/trees{/sha}"}, {"statuses_url", "/statuses/{sha}"},
	{"languages_url", "/languages"}, {"stargazers_url", "/stargazers"}, {"contributors_url", "/contributors"},
	{"subscribers_url", "/subscribers"}, {"subscription_url", "/subscription"}, {"commits_url", "/commits{/sha}"},
	{"git_commits_url", "/git/commits{/sha}"}, {"comments_url", "/comments{/number}"},
	{"issue_comment_url", "/issues/comments{/number}"}, {"contents_url", "/contents/{+path}"},
	{"compare_url", "/compare/{base}...{head}"}, {"merges_url", "/merges"}, {"archive_url", "/{archive_format}{/ref}"},
	{"downloads_url", "/downloads"}, {"issues_url", "/issues{/number}"}, {"pulls_url", "/pulls{/number}"},
	{"milestones_url", "/milestones{/number}"}, {"notifications_url", "/notifications{?since,all,participating}"},
	{"labels_url", "/labels{/name}"}, {"releases_url", "/releases{/id}"}, {"deployments_url", "/deployments"},
}

func repository(fullName string, owner map[string]any) map[string]any {
	api := "https://api.github.com/repos/" + fullName
	_, name, _ := strings.Cut(fullName, "/")
	r := map[string]any{
		"id": 186853002, "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=", "name": name, "full_name": fullName,
		"private": false, "owner": owner, "html_url": "https://github.com/" + fullName, "description": nil,
		"fork": false, "url": api, "created_at": "2019-05-15T15:19:25Z", "updated_at": "2019-05-15T15:19:27Z",
		"pushed_at": "2019-05-15T15:20:32Z", "git_url": "git://github.com/" + fullName + ".git",
		"ssh_url": "git@github.com:" + fullName + ".git", "clone_url": "https://github.com/" + fullName + ".git",
		"svn_url": "https://github.com/" + fullName, "homepage": nil, "size": 0, "stargazers_count": 0,
		"watchers_count": 0, "language": nil, "has_issues": true, "has_projects": true, "has_downloads": true,
		"has_wiki": true, "has_pages": true, "forks_count": 0, "mirror_url": nil, "archived": false,
		"disabled": false, "open_issues_count": 2, "license": nil, "forks": 0, "open_issues": 2, "watchers": 0,
		"default_branch": "main", "is_template": false, "topics": []string{}, "visibility": "public",
		"web_commit_signoff_required": false, "custom_properties": map[string]any{},
	}
	for _, u := range repoURLs {
		r[u[0]] = api + u[1]
	}
	return r
}

func pullRequestPayload(repoName, author string, number int, headSHA string) map[string]any {
	api := "https://api.github.com/repos/" + repoName
	web := "https://github.com/" + repoName
	owner, _, _ := strings.Cut(repoName, "/")
	ownerUser := user(owner, 21031067)
	authorUser := user(author, 21031068)
	reviewer := user("octocat", 5346)
	repo := repository(repoName, ownerUser)
	n := strconv.Itoa(number)
	ref := func(label, name, sha string) map[string]any {
		return map[string]any{"label": owner + ":" + label, "ref": name, "sha": sha, "user": ownerUser, "repo": repo}
	}
	link := func(href string) map[string]any { return map[string]any{"href": href} }
	pr := map[string]any{
		"url": api + "/pulls/" + n, "id": 279147437, "node_id": "MDExOlB1bGxSZXF1ZXN0Mjc5MTQ3NDM3",
		"html_url": web + "/pull/" + n, "diff_url": web + "/pull/" + n + ".diff",
		"patch_url": web + "/pull/" + n + ".patch", "issue_url": api + "/issues/" + n,
		"number": number, "state": "open", "locked": false, "title": "Update the README with new information.",
		"user": authorUser, "body": "This is a pretty simple change that we need to pull into main.",
		"created_at": "2019-05-15T15:20:33Z", "updated_at": "2019-05-15T15:20:33Z", "closed_at": nil,
		"merged_at": nil, "merge_commit_sha": nil, "assignee": nil, "assignees": []any{authorUser},
		"requested_reviewers": []any{reviewer}, "requested_teams": []any{},
		"labels": []any{map[string]any{
			"id": 1362934389, "node_id": "MDU6TGFiZWwxMzYyOTM0Mzg5", "url": api + "/labels/bug", "name": "bug",
			"color": "d73a4a", "default": true, "description": "Something isn't working",
		}},
		"milestone": nil, "commits_url": api + "/pulls/" + n + "/commits",
		"review_comments_url": api + "/pulls/" + n + "/comments", "review_comment_url": api + "/pulls/comments{/number}",
		"comments_url": api + "/issues/" + n + "/comments", "statuses_url": api + "/statuses/" + headSHA,
		"head": ref(headRef(number), headRef(number), headSHA),
		"base": ref("main", "main", "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"),
		"_links": map[string]any{
			"self": link(api + "/pulls/" + n), "html": link(web + "/pull/" + n), "issue": link(api + "/issues/" + n),
			"comments": link(api + "/issues/" + n + "/comments"), "review_comments": link(api + "/pulls/" + n + "/comments"),
			"review_comment": link(api + "/pulls/comments{/number}"), "commits": link(api + "/pulls/" + n + "/commits"),
			"statuses": link(api + "/statuses/" + headSHA),
		},
		"author_association": "MEMBER", "auto_merge": nil, "active_lock_reason": nil, "draft": false,
		"merged": false, "mergeable": nil, "rebaseable": nil, "mergeable_state": "unknown", "merged_by": nil,
		"comments": 0, "review_comments": 0, "maintainer_can_modify": false, "commits": 1, "additions": 1,
		"deletions": 1, "changed_files": 1,
	}
	return map[string]any{
		"action": "opened", "number": number, "pull_request": pr, "repository": repo,
		"installation": map[string]any{"id": loadInstallation, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg=="},
		"sender":       authorUser,
	}
}
