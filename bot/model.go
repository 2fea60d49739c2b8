// Package bot is the forge-neutral heart of foureyes: the model of a change
// and its facts, the pure decision function (Decide), the renderers of a
// verdict, and the small interfaces a forge and a store must offer to the
// service that ties them together. It imports no forge SDK.
package bot

import (
	"strconv"
	"strings"
	"time"

	"github.com/foureyes-dev/foureyes/policies"
)

// ForgeName names a code host.
type ForgeName string

// The supported forges.
const (
	GitHub ForgeName = "github"
	GitLab ForgeName = "gitlab"
)

// User is a person or bot account on a forge. Login is the stable handle
// used to compare identities (case-insensitively); Email is kept for commit
// identities that could not be linked to an account.
type User struct {
	Login string `json:"login,omitempty"`
	ID    int64  `json:"id,omitempty"`
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
	Bot   bool   `json:"bot,omitempty"`
}

// Known reports whether the user is linked to a forge account.
func (u User) Known() bool { return u.Login != "" }

// Same reports whether two users are the same account. Unlinked identities
// are never the same as anybody: independence is judged on accounts.
func (u User) Same(o User) bool {
	return u.Login != "" && strings.EqualFold(u.Login, o.Login)
}

// Display returns the best human-readable handle.
func (u User) Display() string {
	switch {
	case u.Login != "":
		return u.Login
	case u.Email != "":
		return u.Email
	default:
		return u.Name
	}
}

// Repo identifies a repository (GitHub owner/name, GitLab full path).
type Repo struct {
	FullName      string `json:"full_name"`
	ID            int64  `json:"id,omitempty"`
	DefaultBranch string `json:"default_branch,omitempty"`
	// Installation is the GitHub App installation that delivered the event.
	Installation int64  `json:"installation,omitempty"`
	URL          string `json:"url,omitempty"`
}

// Owner returns the part of FullName before the last slash.
func (r Repo) Owner() string {
	if i := strings.LastIndexByte(r.FullName, '/'); i >= 0 {
		return r.FullName[:i]
	}
	return ""
}

// Name returns the part of FullName after the last slash.
func (r Repo) Name() string { return r.FullName[strings.LastIndexByte(r.FullName, '/')+1:] }

// ChangeRef names one change (pull request / merge request) at one head.
type ChangeRef struct {
	Forge   ForgeName `json:"forge"`
	Repo    Repo      `json:"repo"`
	Number  int       `json:"number"`
	HeadSHA string    `json:"head_sha"`
}

// Key is the ordering key of a change: events of one change never run
// concurrently or out of order.
func (c ChangeRef) Key() string {
	return string(c.Forge) + "/" + c.Repo.FullName + "#" + strconv.Itoa(c.Number)
}

// File is one changed file of a change.
type File struct {
	Path         string `json:"path"`
	PreviousPath string `json:"previous_path,omitempty"` // renames: the old path is classified too
	Status       string `json:"status,omitempty"`
	// PatchDigest is the hex SHA-256 of the file's patch, as the forge shows
	// it. The change's DiffDigest is computed from these.
	PatchDigest string `json:"patch_digest,omitempty"`
}

// Commit is one commit of a change with every identity that took part in it.
type Commit struct {
	SHA       string    `json:"sha"`
	Author    User      `json:"author"`
	Committer User      `json:"committer"`
	CoAuthors []User    `json:"co_authors,omitempty"`
	Message   string    `json:"message,omitempty"`
	Time      time.Time `json:"time,omitempty"`
}

// Push records that Pusher pushed the commit HeadSHA of the change (as the
// new tip of the head branch, or among the commits one push brought). A
// zero Pusher means the pusher is not (yet) known. See pushers.go.
type Push struct {
	HeadSHA string    `json:"head_sha"`
	Pusher  User      `json:"pusher"`
	At      time.Time `json:"at,omitempty"`
	// Before is the branch tip the push replaced, when known.
	Before string `json:"before,omitempty"`
	// Via says how the push became known (ViaPush, ViaActivity, ...).
	Via string `json:"via,omitempty"`
}

// ReviewState is the state of one review.
type ReviewState string

// Review states, normalized across forges (GitHub upper-cases them in REST
// and lower-cases them in webhooks; GitLab has only approvals).
const (
	Approved         ReviewState = "approved"
	ChangesRequested ReviewState = "changes_requested"
	Commented        ReviewState = "commented"
	Dismissed        ReviewState = "dismissed"
	Pending          ReviewState = "pending" // a draft review; ignored
)

// NormalizeReviewState maps a forge's spelling onto ReviewState.
func NormalizeReviewState(s string) ReviewState {
	return ReviewState(strings.ToLower(strings.TrimSpace(s)))
}

// Review is one review (or GitLab approval) with the head it was given on.
type Review struct {
	ID        int64       `json:"id"`
	Reviewer  User        `json:"reviewer"`
	State     ReviewState `json:"state"`
	CommitSHA string      `json:"commit_sha"` // head SHA the review was given on; "" = unknown = stale
	At        time.Time   `json:"at,omitempty"`
	// Digest is the diff digest of the change when foureyes first saw the
	// review (its head against the base of that moment): what the reviewer
	// approved. An approval counts only while the change's digest equals
	// it. "" = not recorded (then CommitSHA and DiffDigests decide).
	Digest string `json:"digest,omitempty"`
}

// Key identifies a review across evaluations: the forge's review ID, or
// (GitLab approvals have none) the reviewer and the approved head.
func (r Review) Key() string {
	if r.ID != 0 {
		return strconv.FormatInt(r.ID, 10)
	}
	return strings.ToLower(r.Reviewer.Login) + "@" + r.CommitSHA
}

// ReviewerFacts is what the forge says about a reviewer.
type ReviewerFacts struct {
	Permission policies.Permission `json:"permission"`
	// Teams lists the teams / groups (as written in the policy) the reviewer
	// is a member of. Only teams the policy names are looked up.
	Teams []string `json:"teams,omitempty"`
	Bot   bool     `json:"bot,omitempty"`
}

// InTeam reports whether the reviewer is a member of team.
func (f ReviewerFacts) InTeam(team string) bool {
	for _, t := range f.Teams {
		if strings.EqualFold(t, team) {
			return true
		}
	}
	return false
}

// Change is everything the engine needs to know about one change at one
// head. Adapters fill it from the forge's API and the service completes it
// with what only webhooks tell (pushers, earlier diff digests).
type Change struct {
	Ref     ChangeRef `json:"ref"`
	Title   string    `json:"title,omitempty"`
	URL     string    `json:"url,omitempty"`
	Author  User      `json:"author"`
	BaseRef string    `json:"base_ref"`
	BaseSHA string    `json:"base_sha,omitempty"`
	// HeadRef is the head (source) branch, without refs/heads/.
	HeadRef string `json:"head_ref,omitempty"`
	// HeadRepo is the repository the head branch lives in when it is not
	// Ref.Repo (a fork); its pushes are recorded under it.
	HeadRepo string `json:"head_repo,omitempty"`
	State    string `json:"state,omitempty"` // open, closed, merged
	Draft    bool   `json:"draft,omitempty"`

	Files   []File   `json:"files"`
	Commits []Commit `json:"commits"`
	Pushes  []Push   `json:"pushes,omitempty"`
	// PusherNote, set by an adapter that could not learn who pushed the
	// head, says why and what would resolve it; it is shown in the check.
	PusherNote string   `json:"pusher_note,omitempty"`
	Reviews    []Review `json:"reviews,omitempty"`
	// Reviewers holds facts per reviewer login (lower-cased).
	Reviewers map[string]ReviewerFacts `json:"reviewers,omitempty"`

	// DiffDigests maps earlier head SHAs to the digest of the change's diff
	// recorded when that head was evaluated (the diff-digest rule).
	DiffDigests map[string]string `json:"diff_digests,omitempty"`

	// Unverified lists commit identities (e-mails) that could not be linked
	// to an account. They are named in the report, never silently ignored.
	Unverified []string `json:"unverified,omitempty"`
	// Notices are adapter remarks shown in the report (e.g. approvals read
	// from stored webhook events because the API was unavailable, or a
	// foreign "foureyes" check).
	Notices []string `json:"notices,omitempty"`
	// Foreign lists "foureyes" checks/statuses on the head that foureyes did
	// not write (audited and called out; the service re-asserts its own).
	Foreign []ForeignCheck `json:"foreign,omitempty"`
	// ReviewsFromEvents is set by an adapter whose approvals API is
	// unavailable (GitLab 403/404): the service then uses the approvals it
	// stored from webhook events, and the report says so.
	ReviewsFromEvents bool `json:"reviews_from_events,omitempty"`
	// EvalError, when set, says why the facts are incomplete; the verdict
	// is then a failure (fail closed).
	EvalError string `json:"eval_error,omitempty"`
}

// Facts returns the reviewer facts of login (zero value if unknown).
func (c *Change) Facts(login string) ReviewerFacts {
	return c.Reviewers[strings.ToLower(login)]
}

// PusherOf returns a pusher of head (the first known), if any. A head may
// have several: see HeadPushers.
func (c *Change) PusherOf(head string) (User, bool) {
	for _, p := range c.Pushes {
		if p.HeadSHA == head && p.Pusher.Known() {
			return p.Pusher, true
		}
	}
	return User{}, false
}
