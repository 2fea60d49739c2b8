package bot

import "time"

// EventKind is what a normalized event asks foureyes to do.
type EventKind string

// The kinds of normalized events. Adapters decode forge payloads into these;
// events that need no work are not decoded at all (ErrIgnored).
const (
	// EventChange: a change was opened, pushed to, retargeted, reviewed or
	// re-requested; evaluate it at Event.Change.HeadSHA.
	EventChange EventKind = "change"
	// EventPolicyPush: a push to a branch changed the policy file; every
	// open change targeting that branch is re-evaluated.
	EventPolicyPush EventKind = "policy_push"
	// EventBranchPush: a push to a branch (release guard input).
	EventBranchPush EventKind = "branch_push"
	// EventTagPush: a tag was pushed (release report input).
	EventTagPush EventKind = "tag_push"
	// EventForeignCheck: a "foureyes" check or status written by someone
	// else; audited, called out and overwritten with foureyes' own verdict.
	EventForeignCheck EventKind = "foreign_check"
	// EventMergeGroup: a merge queue asks for checks on a queued group.
	EventMergeGroup EventKind = "merge_group"
	// EventBreakGlass: a "/foureyes break-glass ..." comment on a change
	// (Event.BreakGlass); Change.HeadSHA is the head the comment was
	// written on when the forge says it, else "" (the current head).
	EventBreakGlass EventKind = "break_glass"
	// EventInstallation: foureyes was installed on Event.Repo (GitHub
	// installation.created, installation_repositories.added); every open
	// change of it is queued for evaluation.
	EventInstallation EventKind = "installation"
)

// Event is a webhook delivery decoded into forge-neutral terms. It is what
// the durable queue stores, so it must round-trip through JSON.
type Event struct {
	Forge      ForgeName `json:"forge"`
	DeliveryID string    `json:"delivery_id"`
	Name       string    `json:"name"`             // forge event name (pull_request, Merge Request Hook, ...)
	Action     string    `json:"action,omitempty"` // forge action (synchronize, approved, ...)
	Kind       EventKind `json:"kind"`
	Repo       Repo      `json:"repo"`
	Sender     User      `json:"sender"`
	Received   time.Time `json:"received"`

	// Change is set for EventChange and EventForeignCheck.
	Change *ChangeEvent `json:"change,omitempty"`
	// Push is set for EventPolicyPush, EventBranchPush and EventTagPush.
	Push *PushEvent `json:"push,omitempty"`
	// MergeGroup is set for EventMergeGroup.
	MergeGroup *MergeGroupEvent `json:"merge_group,omitempty"`
	// Foreign is set for EventForeignCheck.
	Foreign *ForeignCheck `json:"foreign,omitempty"`
	// BreakGlass is set for EventBreakGlass.
	BreakGlass *BreakGlassCommand `json:"break_glass,omitempty"`
}

// ChangeEvent is the part of an event about one change.
type ChangeEvent struct {
	Number  int    `json:"number"`
	HeadSHA string `json:"head_sha"`
	BaseRef string `json:"base_ref,omitempty"`
	BaseSHA string `json:"base_sha,omitempty"`
	// Pushed is true when this event reports a new head (opened,
	// synchronize, GitLab update with oldrev); Sender is then its pusher.
	Pushed bool `json:"pushed,omitempty"`
	// Review is the review (or GitLab approval) the event reports, if any.
	// For GitLab approvals CommitSHA is the MR head at the time of the event.
	Review *Review `json:"review,omitempty"`
	// Merged is set when the event reports a merge.
	Merged bool `json:"merged,omitempty"`
	// ChecksChanged is set when the forge reports that the change's checks
	// changed (GitLab's Pipeline Hook): what the adapter remembers of them
	// is not reused (ChecksWatcher).
	ChecksChanged bool `json:"checks_changed,omitempty"`
}

// PushEvent is a push to a branch or tag.
type PushEvent struct {
	Ref       string       `json:"ref"` // full ref, refs/heads/x or refs/tags/x
	Before    string       `json:"before"`
	After     string       `json:"after"`
	Forced    bool         `json:"forced,omitempty"`
	Created   bool         `json:"created,omitempty"`
	Deleted   bool         `json:"deleted,omitempty"`
	Pusher    User         `json:"pusher"`
	Commits   []PushCommit `json:"commits,omitempty"`
	Truncated bool         `json:"truncated,omitempty"` // payload holds fewer commits than the push
	// ChangedFiles lists paths added, modified or removed by the commits in
	// the payload, used to notice a policy file change.
	ChangedFiles []string `json:"changed_files,omitempty"`
	// FilesIncomplete is set when ChangedFiles may miss paths (GitHub lists
	// at most 3,000 files per commit and 2,048 commits per push): whether
	// the policy changed must then be asked of the forge.
	FilesIncomplete bool `json:"files_incomplete,omitempty"`
	// Reconciled is set on a push foureyes found by comparing the forge's
	// refs with the ones it last judged: the forge never delivered it.
	Reconciled bool `json:"reconciled,omitempty"`
}

// PushCommit is a commit as a push payload lists it.
type PushCommit struct {
	SHA       string    `json:"sha"`
	Message   string    `json:"message,omitempty"`
	Author    User      `json:"author"`
	Committer User      `json:"committer"`
	Time      time.Time `json:"time,omitempty"`
}

// MergeGroupEvent is a GitHub merge queue group.
type MergeGroupEvent struct {
	HeadSHA string `json:"head_sha"`
	HeadRef string `json:"head_ref"`
	BaseRef string `json:"base_ref"`
	BaseSHA string `json:"base_sha,omitempty"`
}

// ForeignCheck is a "foureyes" check run or status that foureyes did not
// write.
type ForeignCheck struct {
	HeadSHA    string `json:"head_sha"`
	ID         int64  `json:"id,omitempty"`
	App        string `json:"app,omitempty"` // GitHub App slug, or GitLab user
	Conclusion string `json:"conclusion,omitempty"`
	By         User   `json:"by"`
}
