package gitlab

import (
	"fmt"
	"strings"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/foureyes-dev/foureyes/bot"
)

// X-Gitlab-Event values foureyes acts on.
const (
	HookMergeRequest = "Merge Request Hook"
	HookPush         = "Push Hook"
	HookTagPush      = "Tag Push Hook"
	HookNote         = "Note Hook"
	HookPipeline     = "Pipeline Hook"
)

const zeroSHA = "0000000000000000000000000000000000000000"

// The payload types below read only what foureyes needs, with timestamps
// as strings: GitLab writes them in several formats (RFC 3339,
// "2015-05-17 18:21:36 UTC", and its documentation even has
// "2015-04-08T21: 00:25-07:00"), and a timestamp foureyes does not use must
// not make a delivery undecodable.

type hookUser struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Username string `json:"username"`
	Email    string `json:"email"`
}

type hookProject struct {
	ID                int64  `json:"id"`
	PathWithNamespace string `json:"path_with_namespace"`
	DefaultBranch     string `json:"default_branch"`
	WebURL            string `json:"web_url"`
}

type hookCommit struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	Author    struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"author"`
	Added    []string `json:"added"`
	Modified []string `json:"modified"`
	Removed  []string `json:"removed"`
}

type mrHook struct {
	User             hookUser    `json:"user"`
	Project          hookProject `json:"project"`
	ObjectAttributes struct {
		IID          int        `json:"iid"`
		Action       string     `json:"action"`
		TargetBranch string     `json:"target_branch"`
		OldRev       string     `json:"oldrev"`
		UpdatedAt    string     `json:"updated_at"`
		LastCommit   hookCommit `json:"last_commit"`
	} `json:"object_attributes"`
	Changes map[string]jsontext.Value `json:"changes"`
}

type pushHook struct {
	Before            string       `json:"before"`
	After             string       `json:"after"`
	Ref               string       `json:"ref"`
	UserID            int64        `json:"user_id"`
	UserName          string       `json:"user_name"`
	UserUsername      string       `json:"user_username"`
	UserEmail         string       `json:"user_email"`
	Project           hookProject  `json:"project"`
	Commits           []hookCommit `json:"commits"`
	TotalCommitsCount int          `json:"total_commits_count"`
}

type hookMR struct {
	IID          int        `json:"iid"`
	TargetBranch string     `json:"target_branch"`
	State        string     `json:"state"`
	LastCommit   hookCommit `json:"last_commit"`
}

type noteHook struct {
	User             hookUser    `json:"user"`
	Project          hookProject `json:"project"`
	ObjectAttributes struct {
		Note         string `json:"note"`
		NoteableType string `json:"noteable_type"`
		System       bool   `json:"system"`
		Action       string `json:"action"`
	} `json:"object_attributes"`
	MergeRequest *hookMR `json:"merge_request"`
}

type pipelineHook struct {
	User             hookUser    `json:"user"`
	Project          hookProject `json:"project"`
	ObjectAttributes struct {
		Status string `json:"status"`
	} `json:"object_attributes"`
	MergeRequest *hookMR `json:"merge_request"`
}

// Decode turns a GitLab webhook delivery (eventName is the X-Gitlab-Event
// header) into bot events. Deliveries that need no work return
// bot.ErrIgnored; a body that cannot be read returns another error.
func (f *Forge) Decode(eventName string, body []byte) ([]bot.Event, error) {
	switch strings.TrimSpace(eventName) {
	case HookMergeRequest:
		return f.decodeMR(eventName, body)
	case HookPush:
		return f.decodePush(eventName, body, false)
	case HookTagPush:
		return f.decodePush(eventName, body, true)
	case HookNote:
		return f.decodeNote(eventName, body)
	case HookPipeline:
		return f.decodePipeline(eventName, body)
	}
	return nil, fmt.Errorf("gitlab: %q events: %w", eventName, bot.ErrIgnored)
}

// unmarshal decodes a webhook body with the json v2 decoder, about twice
// as fast as encoding/json on these mostly skipped payloads (see the GitHub
// adapter's unmarshal); the options keep encoding/json's leniency.
func unmarshal(eventName string, body []byte, v any) error {
	if err := json.Unmarshal(body, v, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)); err != nil {
		return fmt.Errorf("gitlab: decode %s payload: %w", eventName, err)
	}
	return nil
}

func (p hookProject) repo(eventName string) (bot.Repo, error) {
	if p.PathWithNamespace == "" {
		return bot.Repo{}, fmt.Errorf("gitlab: %s payload has no project.path_with_namespace", eventName)
	}
	return bot.Repo{FullName: p.PathWithNamespace, ID: p.ID, DefaultBranch: p.DefaultBranch, URL: p.WebURL}, nil
}

func (u hookUser) user() bot.User {
	return bot.User{Login: u.Username, ID: u.ID, Name: u.Name, Email: email(u.Email), Bot: isTokenBot(u.Username)}
}

// email drops the placeholder GitLab sends where it hides an address.
func email(s string) string {
	if s == "" || strings.EqualFold(s, "[REDACTED]") || !strings.Contains(s, "@") {
		return ""
	}
	return s
}

func (f *Forge) event(eventName, action string, kind bot.EventKind, repo bot.Repo, sender bot.User) bot.Event {
	return bot.Event{
		Forge: bot.GitLab, Name: eventName, Action: action, Kind: kind,
		Repo: repo, Sender: sender, Received: f.now(),
	}
}

func (f *Forge) decodeMR(eventName string, body []byte) ([]bot.Event, error) {
	var h mrHook
	if err := unmarshal(eventName, body, &h); err != nil {
		return nil, err
	}
	repo, err := h.Project.repo(eventName)
	if err != nil {
		return nil, err
	}
	a := h.ObjectAttributes
	if a.IID == 0 {
		return nil, fmt.Errorf("gitlab: %s payload has no object_attributes.iid", eventName)
	}
	ce := &bot.ChangeEvent{Number: a.IID, HeadSHA: a.LastCommit.ID, BaseRef: a.TargetBranch}
	sender := h.User.user()
	switch a.Action {
	case "open":
		// Whoever opens a merge request need not have pushed its head: the
		// head's pushers come from push hooks and the project events API.
	case "reopen":
		// Not a push: the reopener did not necessarily push anything, and
		// naming them would overwrite the real pusher of the head.
	case "update":
		switch {
		case a.OldRev != "":
			// GitLab sets oldrev only when the code changed: a push, by the
			// event's user.
			ce.Pushed = true
		case h.Changes["target_branch"] != nil:
			// Retargeted: another base means another policy and diff.
		default:
			return nil, fmt.Errorf("gitlab: merge request update without code or target change: %w", bot.ErrIgnored)
		}
	case "approval", "approved":
		ce.Review = &bot.Review{Reviewer: sender, State: bot.Approved, CommitSHA: a.LastCommit.ID, At: parseTime(a.UpdatedAt)}
	case "unapproval", "unapproved":
		ce.Review = &bot.Review{Reviewer: sender, State: bot.Dismissed, CommitSHA: a.LastCommit.ID, At: parseTime(a.UpdatedAt)}
	case "merge":
		ce.Merged = true
	default: // close, and actions foureyes has no use for
		return nil, fmt.Errorf("gitlab: merge request %q: %w", a.Action, bot.ErrIgnored)
	}
	if ce.HeadSHA == "" {
		return nil, fmt.Errorf("gitlab: %s payload has no object_attributes.last_commit.id", eventName)
	}
	ev := f.event(eventName, a.Action, bot.EventChange, repo, sender)
	ev.Change = ce
	return []bot.Event{ev}, nil
}

func (f *Forge) decodePush(eventName string, body []byte, tag bool) ([]bot.Event, error) {
	var h pushHook
	if err := unmarshal(eventName, body, &h); err != nil {
		return nil, err
	}
	repo, err := h.Project.repo(eventName)
	if err != nil {
		return nil, err
	}
	if h.Ref == "" {
		return nil, fmt.Errorf("gitlab: %s payload has no ref", eventName)
	}
	pusher := bot.User{Login: h.UserUsername, ID: h.UserID, Name: h.UserName, Email: email(h.UserEmail), Bot: isTokenBot(h.UserUsername)}
	p := &bot.PushEvent{
		Ref: h.Ref, Before: h.Before, After: h.After,
		Created: isZeroSHA(h.Before), Deleted: isZeroSHA(h.After),
		Pusher:    pusher,
		Truncated: h.TotalCommitsCount > len(h.Commits),
	}
	seen := map[string]bool{}
	for _, c := range h.Commits {
		p.Commits = append(p.Commits, bot.PushCommit{
			SHA: c.ID, Message: c.Message, Time: parseTime(c.Timestamp),
			Author: bot.User{Name: c.Author.Name, Email: email(c.Author.Email)},
		})
		for _, list := range [][]string{c.Added, c.Modified, c.Removed} {
			for _, path := range list {
				if !seen[path] {
					seen[path] = true
					p.ChangedFiles = append(p.ChangedFiles, path)
				}
			}
		}
	}
	if tag {
		if p.Deleted {
			return nil, fmt.Errorf("gitlab: tag %s deleted: %w", h.Ref, bot.ErrIgnored)
		}
		ev := f.event(eventName, "", bot.EventTagPush, repo, pusher)
		ev.Push = p
		return []bot.Event{ev}, nil
	}
	ev := f.event(eventName, "", bot.EventBranchPush, repo, pusher)
	ev.Push = p
	events := []bot.Event{ev}
	// A truncated payload may hide a policy change among the commits it
	// left out: re-evaluating the open changes then is the safe side.
	if !p.Deleted && (p.Truncated || touchesPolicy(p.ChangedFiles)) {
		pe := f.event(eventName, "", bot.EventPolicyPush, repo, pusher)
		cp := *p
		pe.Push = &cp
		events = append(events, pe)
	}
	return events, nil
}

func touchesPolicy(paths []string) bool { return bot.TouchesPolicy(paths) }

func isZeroSHA(s string) bool { return s == "" || s == zeroSHA }

func (f *Forge) decodeNote(eventName string, body []byte) ([]bot.Event, error) {
	var h noteHook
	if err := unmarshal(eventName, body, &h); err != nil {
		return nil, err
	}
	repo, err := h.Project.repo(eventName)
	if err != nil {
		return nil, err
	}
	a := h.ObjectAttributes
	switch {
	case a.NoteableType != "MergeRequest" || h.MergeRequest == nil || h.MergeRequest.IID == 0:
		return nil, fmt.Errorf("gitlab: note on a %s: %w", a.NoteableType, bot.ErrIgnored)
	case a.System:
		return nil, fmt.Errorf("gitlab: system note: %w", bot.ErrIgnored)
	case strings.Contains(a.Note, NoteMarker):
		// foureyes' own note: re-evaluating on it would loop.
		return nil, fmt.Errorf("gitlab: foureyes' own note: %w", bot.ErrIgnored)
	}
	if evs, ok, err := f.decodeBreakGlassNote(eventName, body, repo); ok {
		return evs, err
	}
	ev := f.event(eventName, a.Action, bot.EventChange, repo, h.User.user())
	ev.Change = &bot.ChangeEvent{Number: h.MergeRequest.IID, HeadSHA: h.MergeRequest.LastCommit.ID, BaseRef: h.MergeRequest.TargetBranch}
	return []bot.Event{ev}, nil
}

func (f *Forge) decodePipeline(eventName string, body []byte) ([]bot.Event, error) {
	var h pipelineHook
	if err := unmarshal(eventName, body, &h); err != nil {
		return nil, err
	}
	repo, err := h.Project.repo(eventName)
	if err != nil {
		return nil, err
	}
	if h.MergeRequest == nil || h.MergeRequest.IID == 0 {
		return nil, fmt.Errorf("gitlab: pipeline without a merge request: %w", bot.ErrIgnored)
	}
	ev := f.event(eventName, h.ObjectAttributes.Status, bot.EventChange, repo, h.User.user())
	// No head SHA: a merged-results pipeline runs on a merge ref, not on the
	// head; the statuses to re-read are those of the current head.
	ev.Change = &bot.ChangeEvent{Number: h.MergeRequest.IID, BaseRef: h.MergeRequest.TargetBranch, ChecksChanged: true}
	return []bot.Event{ev}, nil
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05 MST",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02T15:04:05Z0700",
}

// parseTime reads a GitLab webhook timestamp; zero when unreadable.
func parseTime(s string) time.Time {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
