package bot

// State is the outcome of an evaluation.
type State string

// The three verdict states. There is no "error" state: anything that goes
// wrong is a Failure, so foureyes never reports success by accident.
const (
	Success      State = "success"
	PendingState State = "pending"
	Failure      State = "failure"
)

// Reason says why an approval did not count.
type Reason string

// Every reason an approval can be rejected for.
const (
	ReasonAuthor        Reason = "author"         // the change's author
	ReasonCommitter     Reason = "committer"      // authored or committed a commit of the change, or pushed an earlier head
	ReasonCoAuthor      Reason = "co-author"      // Co-authored-by trailer of a commit
	ReasonLastPusher    Reason = "last-pusher"    // pushed the current head
	ReasonBot           Reason = "bot"            // a bot account
	ReasonPermission    Reason = "permission"     // below min_permission
	ReasonNotInTeam     Reason = "not-in-team"    // not among the category's reviewers
	ReasonStale         Reason = "stale"          // given on an earlier head with a different (or unknown) diff
	ReasonDismissed     Reason = "dismissed"      // the review was dismissed
	ReasonSuperseded    Reason = "superseded"     // a later review by the same person replaced it
	ReasonUnknownPusher Reason = "unknown-pusher" // not a rejection of a person: the head's pusher is unknown
)

// Rejection is one approval that did not count, with every reason.
type Rejection struct {
	Reviewer  string   `json:"reviewer"`
	ReviewID  int64    `json:"review_id,omitempty"`
	CommitSHA string   `json:"commit_sha,omitempty"`
	Reasons   []Reason `json:"reasons"`
	// Detail explains the reasons in words (e.g. "committed abc1234").
	Detail string `json:"detail,omitempty"`
}

// CategoryResult is the verdict of one touched category.
type CategoryResult struct {
	Name     string   `json:"name"`
	Files    []string `json:"files"`
	Required int      `json:"required"`
	// Counted lists the reviewers whose approvals counted, in review order.
	Counted []string `json:"counted"`
	// Missing is how many more independent approvals are needed.
	Missing int `json:"missing"`
	// Teams and Users restate who may approve, for "needs 1 more from ..."
	Teams []string `json:"teams,omitempty"`
	Users []string `json:"users,omitempty"`
	// Excluded lists the Users who cannot approve this change (its author,
	// a committer, a pusher): they are never offered as approvers.
	Excluded []string `json:"excluded,omitempty"`
	// Rejected lists the approvals that did not count for this category.
	Rejected []Rejection `json:"rejected,omitempty"`
}

// Satisfied reports whether the category has its approvals.
func (c CategoryResult) Satisfied() bool { return c.Missing == 0 }

// Verdict is the engine's decision with every reason that led to it.
type Verdict struct {
	State State     `json:"state"`
	Ref   ChangeRef `json:"ref"`
	// Title is one line saying what is missing (or that all is well).
	Title        string           `json:"title"`
	PolicySource string           `json:"policy_source,omitempty"`
	PolicyDigest string           `json:"policy_digest,omitempty"`
	DiffDigest   string           `json:"diff_digest,omitempty"`
	Categories   []CategoryResult `json:"categories"`
	Exempt       []string         `json:"exempt,omitempty"`
	// Blocking lists reviewers whose "changes requested" fails the check.
	Blocking []string `json:"blocking,omitempty"`
	// Failures explains a failure that is not about approvals: an invalid
	// policy (with FILE:LINE:COL), facts that could not be gathered, too many
	// commits.
	Failures   []string `json:"failures,omitempty"`
	Unverified []string `json:"unverified,omitempty"`
	Notices    []string `json:"notices,omitempty"`
	// Ignored lists approvals that count nowhere (rejected for every
	// category), so the summary can say who approved in vain and why.
	Ignored []Rejection `json:"ignored,omitempty"`
	// BreakGlass is the judgement of the break-glass votes on the head
	// (nil when there are none).
	BreakGlass *BreakGlassResult `json:"break_glass,omitempty"`
}
