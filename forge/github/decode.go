package github

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/foureyes-dev/foureyes/bot"
)

// The payload shapes below hold only what foureyes reads; the decoder
// ignores the rest, so GitHub adding fields never breaks decoding.

// unmarshal decodes a webhook body. Every accepted delivery pays this
// before it is stored, and GitHub's payloads run to 20-30 KB, most of it
// skipped: the json v2 decoder (go-json-experiment, the basis of Go's
// encoding/json/v2) does that about twice as fast as encoding/json
// (BenchmarkDecodePullRequest). The options keep encoding/json's leniency,
// so switching decoders rejects nothing that was accepted before: GitHub
// has signed the body, a 400 would lose the delivery for good, and a
// duplicate member or a stray invalid byte is no reason to.
func unmarshal(body []byte, v any) error {
	return json.Unmarshal(body, v, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
}

// The repository, pull request and user objects decode by walking their
// members (see members in walk.go): GitHub sends 20-100 members in each
// and foureyes reads a handful. The other shapes are small or rare, and
// keep struct tags.

type pUser struct {
	Login string
	ID    int64
	Type  string
}

func (u *pUser) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return members(dec, func(name []byte) (bool, error) {
		switch string(name) {
		case "login":
			return member(dec, &u.Login)
		case "id":
			return member(dec, &u.ID)
		case "type":
			return member(dec, &u.Type)
		}
		return false, nil
	})
}

func (u pUser) user() bot.User {
	return bot.User{Login: u.Login, ID: u.ID, Bot: u.Type == "Bot" || strings.HasSuffix(u.Login, "[bot]")}
}

type pRef struct {
	Ref  string     `json:"ref"`
	SHA  string     `json:"sha"`
	Repo *pRepoName `json:"repo"`
}

// pRepoName is a head or base repository, of which only the name is read.
type pRepoName struct{ FullName string }

func (r *pRepoName) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return members(dec, func(name []byte) (bool, error) {
		if string(name) == "full_name" {
			return member(dec, &r.FullName)
		}
		return false, nil
	})
}

func (r pRef) repoName() string {
	if r.Repo == nil {
		return ""
	}
	return r.Repo.FullName
}

type pRepo struct {
	ID            int64
	FullName      string
	DefaultBranch string
	HTMLURL       string
}

func (r *pRepo) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return members(dec, func(name []byte) (bool, error) {
		switch string(name) {
		case "id":
			return member(dec, &r.ID)
		case "full_name":
			return member(dec, &r.FullName)
		case "default_branch":
			return member(dec, &r.DefaultBranch)
		case "html_url":
			return member(dec, &r.HTMLURL)
		}
		return false, nil
	})
}

type pPull struct {
	Number       int
	State        string
	Title        string
	HTMLURL      string
	Draft        bool
	Merged       bool
	User         pUser
	UpdatedAt    time.Time
	Head         pRef
	Base         pRef
	Commits      *int
	ChangedFiles *int
}

func (p *pPull) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return members(dec, func(name []byte) (bool, error) {
		switch string(name) {
		case "number":
			return member(dec, &p.Number)
		case "state":
			return member(dec, &p.State)
		case "title":
			return member(dec, &p.Title)
		case "html_url":
			return member(dec, &p.HTMLURL)
		case "draft":
			return member(dec, &p.Draft)
		case "merged":
			return member(dec, &p.Merged)
		case "user":
			return member(dec, &p.User)
		case "updated_at":
			return member(dec, &p.UpdatedAt)
		case "head":
			return member(dec, &p.Head)
		case "base":
			return member(dec, &p.Base)
		case "commits":
			return member(dec, &p.Commits)
		case "changed_files":
			return member(dec, &p.ChangedFiles)
		}
		return false, nil
	})
}

type pPRRef struct {
	Number int  `json:"number"`
	Head   pRef `json:"head"`
	Base   pRef `json:"base"`
}

type pGitUser struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Username string `json:"username"`
}

type pPushCommit struct {
	ID        string    `json:"id"`
	Message   string    `json:"message"`
	Timestamp time.Time `json:"timestamp"`
	Author    pGitUser  `json:"author"`
	Committer pGitUser  `json:"committer"`
	Added     []string  `json:"added"`
	Removed   []string  `json:"removed"`
	Modified  []string  `json:"modified"`
}

type payload struct {
	Action       string `json:"action"`
	Repository   *pRepo `json:"repository"`
	Installation *struct {
		ID int64 `json:"id"`
	} `json:"installation"`
	Sender pUser `json:"sender"`

	PullRequest *pPull `json:"pull_request"`
	Changes     *struct {
		Base jsontext.Value `json:"base"`
	} `json:"changes"`
	Review *struct {
		ID          int64     `json:"id"`
		User        pUser     `json:"user"`
		State       string    `json:"state"`
		CommitID    string    `json:"commit_id"`
		SubmittedAt time.Time `json:"submitted_at"`
	} `json:"review"`
	CheckRun *struct {
		ID         int64  `json:"id"`
		Name       string `json:"name"`
		HeadSHA    string `json:"head_sha"`
		Conclusion string `json:"conclusion"`
		App        *struct {
			ID   int64  `json:"id"`
			Slug string `json:"slug"`
			Name string `json:"name"`
		} `json:"app"`
		PullRequests []pPRRef `json:"pull_requests"`
	} `json:"check_run"`
	CheckSuite *struct {
		HeadSHA      string   `json:"head_sha"`
		PullRequests []pPRRef `json:"pull_requests"`
	} `json:"check_suite"`
	MergeGroup *struct {
		HeadSHA string `json:"head_sha"`
		HeadRef string `json:"head_ref"`
		BaseSHA string `json:"base_sha"`
		BaseRef string `json:"base_ref"`
	} `json:"merge_group"`

	// push
	Ref        string        `json:"ref"`
	Before     string        `json:"before"`
	After      string        `json:"after"`
	Created    bool          `json:"created"`
	Deleted    bool          `json:"deleted"`
	Forced     bool          `json:"forced"`
	Pusher     pGitUser      `json:"pusher"`
	Commits    []pPushCommit `json:"commits"`
	HeadCommit *pPushCommit  `json:"head_commit"`
}

// maxPushCommits is how many commits GitHub puts in a push payload; a
// payload holding that many may have been cut.
const maxPushCommits = 2048

// maxPushCommitFiles is how many paths GitHub lists per commit in each of
// a push payload's added/modified/removed: "A maximum of 3000 changed files
// will be reported per commit" (push webhook schema, @octokit/openapi-webhooks
// 12.1.0). A list that long may hide a policy file edit.
const maxPushCommitFiles = 3000

// Decode turns a webhook delivery into normalized events. Deliveries that
// need no work give bot.ErrIgnored; a body that is not JSON gives another
// error. The handler must have checked the signature first: Decode also
// remembers what pull_request and pull_request_review payloads say about
// their pull request (author, base, head, title), so that Change need not
// fetch it again for the same head.
//
//   - pull_request: opened, synchronize (Pushed: the sender pushed the
//     head; the opener of opened is not taken as its pusher), reopened,
//     ready_for_review, and edited only when the base changed.
//   - pull_request_review: submitted, edited, dismissed (Change.Review).
//   - check_run: rerequested -> one EventChange per pull request; created or
//     completed runs named "foureyes" by another App -> EventForeignCheck per
//     pull request (one with Number 0 when the run names none).
//   - check_suite: requested, rerequested -> one EventChange per pull request.
//   - merge_group: checks_requested -> EventMergeGroup (refs without "refs/heads/").
//   - issue_comment: created, on a pull request, holding a
//     "/foureyes break-glass ..." line -> EventBreakGlass (comment.go).
//   - push: tags -> EventTagPush (not deletions); branches -> EventBranchPush,
//     plus EventPolicyPush when a policy file path changed.
func (f *Forge) Decode(eventName string, body []byte) ([]bot.Event, error) {
	switch eventName {
	case "pull_request", "pull_request_review", "check_run", "check_suite", "merge_group", "push", "issue_comment":
	case "installation", "installation_repositories":
		return f.decodeInstallation(eventName, body)
	default:
		if !jsontext.Value(body).IsValid() {
			return nil, fmt.Errorf("github: %s payload is not valid JSON", eventName)
		}
		return nil, bot.ErrIgnored
	}
	var p payload
	if err := unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("github: decoding %s payload: %w", eventName, err)
	}
	if p.Repository == nil || p.Repository.FullName == "" {
		return nil, fmt.Errorf("github: %s payload has no repository", eventName)
	}
	base := bot.Event{
		Forge:    bot.GitHub,
		Name:     eventName,
		Action:   p.Action,
		Sender:   p.Sender.user(),
		Received: f.now(),
		Repo: bot.Repo{
			FullName:      p.Repository.FullName,
			ID:            p.Repository.ID,
			DefaultBranch: p.Repository.DefaultBranch,
			URL:           p.Repository.HTMLURL,
		},
	}
	if p.Installation != nil {
		base.Repo.Installation = p.Installation.ID
	}
	switch eventName {
	case "issue_comment":
		return f.decodeComment(base, p.Action, body)
	case "pull_request":
		return f.decodePull(base, &p)
	case "pull_request_review":
		return f.decodeReview(base, &p)
	case "check_run":
		return f.decodeCheckRun(base, &p)
	case "check_suite":
		if p.CheckSuite == nil || (p.Action != "requested" && p.Action != "rerequested") {
			return nil, bot.ErrIgnored
		}
		if p.Action == "rerequested" && len(p.CheckSuite.PullRequests) == 0 {
			return byHead(base, p.CheckSuite.HeadSHA)
		}
		return perPull(base, bot.EventChange, p.CheckSuite.HeadSHA, p.CheckSuite.PullRequests, nil)
	case "merge_group":
		if p.MergeGroup == nil || p.Action != "checks_requested" {
			return nil, bot.ErrIgnored
		}
		ev := base
		ev.Kind = bot.EventMergeGroup
		ev.MergeGroup = &bot.MergeGroupEvent{
			HeadSHA: p.MergeGroup.HeadSHA,
			HeadRef: strings.TrimPrefix(p.MergeGroup.HeadRef, "refs/heads/"),
			BaseRef: strings.TrimPrefix(p.MergeGroup.BaseRef, "refs/heads/"),
			BaseSHA: p.MergeGroup.BaseSHA,
		}
		return []bot.Event{ev}, nil
	default:
		return decodePush(base, &p)
	}
}

func (f *Forge) rememberPull(repo string, pr *pPull) {
	m := prMeta{
		head: pr.Head.SHA, headRef: pr.Head.Ref, headRepo: pr.Head.repoName(), baseRef: pr.Base.Ref, baseSHA: pr.Base.SHA,
		title: pr.Title, url: pr.HTMLURL, state: pr.State, draft: pr.Draft,
		author: pr.User.user(), commits: -1, changedFiles: -1, updated: pr.UpdatedAt,
	}
	if pr.Merged {
		m.state = "merged"
	}
	if pr.Commits != nil {
		m.commits = *pr.Commits
	}
	if pr.ChangedFiles != nil {
		m.changedFiles = *pr.ChangedFiles
	}
	f.remember(repo, pr.Number, m)
}

func changeOf(pr *pPull) *bot.ChangeEvent {
	return &bot.ChangeEvent{Number: pr.Number, HeadSHA: pr.Head.SHA, BaseRef: pr.Base.Ref, BaseSHA: pr.Base.SHA, Merged: pr.Merged}
}

func (f *Forge) decodePull(ev bot.Event, p *payload) ([]bot.Event, error) {
	if p.PullRequest == nil {
		return nil, errors.New("github: pull_request payload has no pull_request")
	}
	pushed := false
	switch p.Action {
	case "synchronize":
		// The sender of synchronize is who pushed the new head.
		pushed = true
	case "opened":
		// Whoever opens a pull request need not have pushed its head (a
		// bot or a colleague may open it from anyone's branch): the head's
		// pushers come from push deliveries and the activity API.
	case "reopened", "ready_for_review":
	case "edited":
		// Only a retarget changes what is judged; title/body edits do not.
		if p.Changes == nil || len(p.Changes.Base) == 0 || string(p.Changes.Base) == "null" {
			return nil, bot.ErrIgnored
		}
	default:
		return nil, bot.ErrIgnored
	}
	f.rememberPull(ev.Repo.FullName, p.PullRequest)
	ev.Kind = bot.EventChange
	ev.Change = changeOf(p.PullRequest)
	ev.Change.Pushed = pushed
	return []bot.Event{ev}, nil
}

func (f *Forge) decodeReview(ev bot.Event, p *payload) ([]bot.Event, error) {
	switch p.Action {
	case "submitted", "edited", "dismissed":
	default:
		return nil, bot.ErrIgnored
	}
	if p.PullRequest == nil || p.Review == nil {
		return nil, errors.New("github: pull_request_review payload has no pull_request or review")
	}
	if p.PullRequest.State == "open" {
		// A review payload carries GitHub's simple pull request (no
		// "merged", no counts: pull_request_review webhook schema,
		// @octokit/openapi-webhooks 12.1.0): a closed one may be merged,
		// which only the pull request itself says. Remember open ones only.
		f.rememberPull(ev.Repo.FullName, p.PullRequest)
	}
	ev.Kind = bot.EventChange
	ev.Change = changeOf(p.PullRequest)
	r := p.Review
	ev.Change.Review = &bot.Review{
		ID:        r.ID,
		Reviewer:  r.User.user(),
		State:     bot.NormalizeReviewState(r.State),
		CommitSHA: r.CommitID,
		At:        r.SubmittedAt,
	}
	return []bot.Event{ev}, nil
}

func (f *Forge) decodeCheckRun(ev bot.Event, p *payload) ([]bot.Event, error) {
	cr := p.CheckRun
	if cr == nil {
		return nil, bot.ErrIgnored
	}
	switch p.Action {
	case "rerequested":
		if len(cr.PullRequests) == 0 {
			return byHead(ev, cr.HeadSHA)
		}
		return perPull(ev, bot.EventChange, cr.HeadSHA, cr.PullRequests, nil)
	case "created", "completed":
		if cr.Name != CheckName || cr.App == nil || cr.App.ID == f.appID {
			return nil, bot.ErrIgnored
		}
		app := cr.App.Slug
		if app == "" {
			app = cr.App.Name
		}
		foreign := &bot.ForeignCheck{HeadSHA: cr.HeadSHA, ID: cr.ID, App: app, Conclusion: cr.Conclusion, By: ev.Sender}
		if len(cr.PullRequests) == 0 {
			// Still worth auditing: the commit may land on a release branch.
			ev.Kind = bot.EventForeignCheck
			ev.Change = &bot.ChangeEvent{HeadSHA: cr.HeadSHA}
			ev.Foreign = foreign
			return []bot.Event{ev}, nil
		}
		return perPull(ev, bot.EventForeignCheck, cr.HeadSHA, cr.PullRequests, foreign)
	}
	return nil, bot.ErrIgnored
}

// perPull makes one event per pull request a check run/suite names; the
// head is the run's or suite's own head SHA.
func perPull(ev bot.Event, kind bot.EventKind, head string, prs []pPRRef, foreign *bot.ForeignCheck) ([]bot.Event, error) {
	var out []bot.Event
	for _, pr := range prs {
		e := ev
		e.Kind = kind
		e.Change = &bot.ChangeEvent{Number: pr.Number, HeadSHA: head, BaseRef: pr.Base.Ref, BaseSHA: pr.Base.SHA}
		if foreign != nil {
			fc := *foreign
			e.Foreign = &fc
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		// Runs on commits of forks or without a pull request: nothing to judge.
		return nil, bot.ErrIgnored
	}
	return out, nil
}

// byHead is a re-run request that names no pull request: GitHub sends
// check_run and check_suite payloads of a fork's pull request with an
// empty pull_requests ("When the check suite's head_branch is in a forked
// repository it will be null and the pull_requests array will be empty",
// check_suite webhook schema, @octokit/openapi-webhooks 12.1.0). The
// service finds the open pull requests of that head (Number 0).
func byHead(ev bot.Event, head string) ([]bot.Event, error) {
	if head == "" {
		return nil, bot.ErrIgnored
	}
	ev.Kind = bot.EventChange
	ev.Change = &bot.ChangeEvent{HeadSHA: head}
	return []bot.Event{ev}, nil
}

// IsPolicyPath reports whether a repository path is a policy file location
// (any forge's spelling: a repository may carry either).
func IsPolicyPath(path string) bool { return bot.IsPolicyPath(path) }

func decodePush(ev bot.Event, p *payload) ([]bot.Event, error) {
	isTag := strings.HasPrefix(p.Ref, "refs/tags/")
	if !isTag && !strings.HasPrefix(p.Ref, "refs/heads/") {
		return nil, bot.ErrIgnored
	}
	if isTag && p.Deleted {
		return nil, bot.ErrIgnored
	}
	pe := &bot.PushEvent{
		Ref: p.Ref, Before: p.Before, After: p.After,
		Forced: p.Forced, Created: p.Created, Deleted: p.Deleted,
		// The push payload's pusher has only a git name and e-mail; the
		// account is the sender.
		Pusher:    bot.User{Login: ev.Sender.Login, ID: ev.Sender.ID, Bot: ev.Sender.Bot, Name: p.Pusher.Name, Email: p.Pusher.Email},
		Truncated: len(p.Commits) >= maxPushCommits,
	}
	commits := p.Commits
	if len(commits) == 0 && p.HeadCommit != nil && !p.Deleted && !isTag {
		commits = []pPushCommit{*p.HeadCommit}
	}
	changed := map[string]bool{}
	for _, c := range commits {
		pe.Commits = append(pe.Commits, bot.PushCommit{
			SHA: c.ID, Message: c.Message, Time: c.Timestamp,
			Author:    bot.User{Login: c.Author.Username, Name: c.Author.Name, Email: c.Author.Email},
			Committer: bot.User{Login: c.Committer.Username, Name: c.Committer.Name, Email: c.Committer.Email},
		})
		for _, list := range [][]string{c.Added, c.Modified, c.Removed} {
			for _, path := range list {
				changed[path] = true
			}
			if len(list) >= maxPushCommitFiles {
				pe.FilesIncomplete = true
			}
		}
	}
	pe.FilesIncomplete = pe.FilesIncomplete || pe.Truncated
	for path := range changed {
		pe.ChangedFiles = append(pe.ChangedFiles, path)
	}
	slices.Sort(pe.ChangedFiles)
	ev.Push = pe
	if isTag {
		ev.Kind = bot.EventTagPush
		return []bot.Event{ev}, nil
	}
	ev.Kind = bot.EventBranchPush
	out := []bot.Event{ev}
	if !p.Deleted && (slices.ContainsFunc(pe.ChangedFiles, IsPolicyPath) || pe.FilesIncomplete) {
		pol := ev
		pol.Kind = bot.EventPolicyPush
		pc := *pe
		pol.Push = &pc
		out = append(out, pol)
	}
	return out, nil
}
