package gitlab

import (
	"context"
	"fmt"
	"strings"
	"time"

	gl "github.com/xanzy/go-gitlab"

	"github.com/foureyes-dev/foureyes/bot"
)

// breakGlassNote is the part of a Note Hook foureyes reads for a
// break-glass command ("Webhook events: Comment events": object_attributes
// holds the note's id, note, action, url and created_at; merge_request the
// merge request with its last_commit, i.e. the head the note was written
// on).
type breakGlassNote struct {
	User             hookUser `json:"user"`
	ObjectAttributes struct {
		ID        int64  `json:"id"`
		Note      string `json:"note"`
		Action    string `json:"action"`
		URL       string `json:"url"`
		CreatedAt string `json:"created_at"`
	} `json:"object_attributes"`
	MergeRequest *hookMR `json:"merge_request"`
}

// decodeBreakGlassNote returns the EventBreakGlass of a merge request note
// holding a "/foureyes break-glass ..." line (ok=false for any other note,
// which decodeNote handles). Only new notes count: editing an old note into
// a command must not cast a vote after the fact.
func (f *Forge) decodeBreakGlassNote(eventName string, body []byte, repo bot.Repo) ([]bot.Event, bool, error) {
	var h breakGlassNote
	if err := unmarshal(eventName, body, &h); err != nil {
		return nil, true, err
	}
	a := h.ObjectAttributes
	if strings.Contains(a.Note, bot.ReplyMarker) {
		// foureyes' own reply: re-evaluating on it would only cost requests.
		return nil, true, fmt.Errorf("gitlab: foureyes' own reply: %w", bot.ErrIgnored)
	}
	cmd, ok := bot.ParseBreakGlass(a.Note)
	if !ok {
		return nil, false, nil
	}
	if a.Action != "" && a.Action != "create" {
		return nil, true, fmt.Errorf("gitlab: break-glass note %s: %w", a.Action, bot.ErrIgnored)
	}
	cmd.CommentID, cmd.Author, cmd.At, cmd.URL = a.ID, h.User.user(), parseTime(a.CreatedAt), a.URL
	ev := f.event(eventName, a.Action, bot.EventBreakGlass, repo, h.User.user())
	ev.Change = &bot.ChangeEvent{Number: h.MergeRequest.IID, HeadSHA: h.MergeRequest.LastCommit.ID, BaseRef: h.MergeRequest.TargetBranch}
	ev.BreakGlass = &cmd
	return []bot.Event{ev}, true, nil
}

// Comment posts a note on a merge request (bot.Commenter): POST
// /projects/:id/merge_requests/:iid/notes.
func (f *Forge) Comment(ctx context.Context, ref bot.ChangeRef, body string) error {
	if _, _, err := f.client.Notes.CreateMergeRequestNote(pid(ref.Repo), ref.Number,
		&gl.CreateMergeRequestNoteOptions{Body: gl.Ptr(body)}, gl.WithContext(ctx)); err != nil {
		return fmt.Errorf("gitlab: note on %s!%d: %w", ref.Repo.FullName, ref.Number, err)
	}
	return nil
}

// People looks up the access level, bot flag and group memberships of
// people who did not approve (bot.PeopleLookup). A user without an ID (the
// hook named none) is left out: unknown, so their vote cannot count.
func (f *Forge) People(ctx context.Context, repo bot.Repo, users []bot.User, teams []string) (map[string]bot.ReviewerFacts, error) {
	out := map[string]bot.ReviewerFacts{}
	for _, u := range users {
		if u.ID <= 0 || u.Login == "" {
			continue
		}
		// Memberships found in the last MembershipTTL are reused, as for
		// approvals whose event is older than the lookup.
		facts, err := f.reviewerFacts(ctx, repo, int(u.ID), u.Login, teams, time.Time{})
		if err != nil {
			return nil, err
		}
		out[strings.ToLower(u.Login)] = facts
	}
	return out, nil
}

var (
	_ bot.Commenter    = (*Forge)(nil)
	_ bot.PeopleLookup = (*Forge)(nil)
	_ bot.Issuer       = (*Forge)(nil)
)
