package bot

import (
	"context"
	"errors"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
)

// ErrIgnored is returned by a decoder for a delivery that needs no work
// (the webhook answers 200/204 and nothing is stored).
var ErrIgnored = errors.New("event needs no work")

// ErrIssuesDisabled is wrapped by an adapter that cannot open an issue
// because the repository has issues turned off (GitHub: 410 Gone). It is
// permanent: retrying cannot help.
var ErrIssuesDisabled = errors.New("issues are disabled in the repository")

// PolicyFile is a policy file as found on a forge.
type PolicyFile struct {
	Source string // e.g. "acme/app@base:.github/foureyes.yml"
	Data   []byte
	Found  bool // false: the repository (and its org) has none
	// Note says where the lookup could not see (e.g. an org .github
	// repository the installation cannot read); shown in the report.
	Note string
}

// Report is a verdict to publish on the forge.
type Report struct {
	Ref      ChangeRef
	Verdict  Verdict
	Title    string
	Markdown string // the summary (check run output / MR note)
	// QuietMarkdown is Markdown with mentions written as code spans, for
	// forges where editing a comment notifies whom it mentions (GitLab).
	// Empty means Markdown mentions nobody.
	QuietMarkdown string
	DetailsURL    string
	// PriorID is the forge object foureyes created for this head before
	// ("" if none): the adapter updates it in place instead of creating a
	// second one. For GitLab it may hold "statusState|noteID".
	PriorID string
}

// Forge is what the service needs from a code host. Adapters implement it
// with the forge's SDK; the fakes in tests speak the forge's real REST API.
type Forge interface {
	// Policy returns the policy file on ref (a base branch or SHA) in the
	// forge's lookup order, then the org-level file; Found=false when none.
	Policy(ctx context.Context, repo Repo, ref string) (PolicyFile, error)
	// Change gathers the facts of a change. teams are the teams the policy
	// names: only those memberships are looked up. The returned
	// Change.Ref.HeadSHA is the change's head on the forge now.
	Change(ctx context.Context, ref ChangeRef, teams []string) (*Change, error)
	// Publish reports a verdict, idempotently (see Report.PriorID), and
	// returns the ID of the forge object to remember for the next time.
	Publish(ctx context.Context, r Report) (string, error)
	// OpenChanges lists the open changes whose base is branch ("" lists
	// every open change of the repository).
	OpenChanges(ctx context.Context, repo Repo, branch string) ([]ChangeRef, error)
}

// PushReader is an optional Forge capability (checked by type assertion):
// reading who pushed the commits of a change from the forge's own record
// (GitHub's repository activity API, GitLab's project push events), for a
// head no push delivery named (foureyes installed later, a lost delivery,
// a branch pushed before the change was opened). It appends to c.Pushes,
// or sets c.PusherNote when the record cannot be read.
type PushReader interface {
	HeadPushes(ctx context.Context, c *Change) error
}

// ChecksWatcher is an optional Forge capability (checked by type
// assertion): told that the forge reported a change to a change's checks
// (ChangeEvent.ChecksChanged), the adapter stops reusing what it remembers
// of them, so the evaluation that follows reads them from the forge.
type ChecksWatcher interface {
	ChecksChanged(ref ChangeRef)
}

// Store is what the service needs to remember between events. Facts are
// small strings grouped by scope (e.g. the pusher of each head of a change);
// PutFact overwrites; PutFacts overwrites several (scope -> key -> value)
// in one commit.
type Store interface {
	PutFact(ctx context.Context, scope, key, value string) error
	PutFacts(ctx context.Context, facts map[string]map[string]string) error
	Facts(ctx context.Context, scope string) (map[string]string, error)
	AppendAudit(ctx context.Context, rec audit.Record) (audit.Record, error)
	// AppendAuditWith appends rec and writes facts (as PutFacts) in one
	// commit.
	AppendAuditWith(ctx context.Context, rec audit.Record, facts map[string]map[string]string) (audit.Record, error)
}

// The break-glass capabilities below are checked by type assertion, so
// that Forge stays small; forge/github and forge/gitlab implement all three.

// PeopleLookup looks up the standing of people who did not review (the
// break-glass voters, with the login and forge ID their comment named):
// permission, bot flag and membership of the given teams, keyed by
// lower-cased login. A Forge without it leaves them unknown, so their
// votes never count.
type PeopleLookup interface {
	People(ctx context.Context, repo Repo, users []User, teams []string) (map[string]ReviewerFacts, error)
}

// Commenter posts a comment on a change (replies to break-glass comments).
type Commenter interface {
	Comment(ctx context.Context, ref ChangeRef, body string) error
}

// Issuer opens issues (the post-incident review of an override). FindIssue
// returns the URL of a recent issue whose body holds marker, or "".
type Issuer interface {
	OpenIssue(ctx context.Context, repo Repo, title, body string, labels []string) (string, error)
	FindIssue(ctx context.Context, repo Repo, marker string) (string, error)
}

// ErrViewerToken is returned (wrapped) by Viewers when the forge refuses a
// viewer's OAuth token (revoked or expired): the viewer must sign in again.
var ErrViewerToken = errors.New("the forge refused the viewer's token")

// Viewers is optionally implemented by a Forge adapter (checked by type
// assertion): it tells the details page who may read a verdict. The
// answers come from the forge; when one is unknown the page treats the
// repository as private.
type Viewers interface {
	// RepoPublic reports whether everyone, signed in or not, can read
	// repo (GitHub: not private and not internal; GitLab: visibility
	// public). It asks with the forge adapter's own credentials.
	RepoPublic(ctx context.Context, repo Repo) (bool, error)
	// Viewer returns the login of the person a user OAuth token belongs to.
	Viewer(ctx context.Context, token string) (string, error)
	// CanRead reports whether the person of token may read the change:
	// asked with their token, so the forge applies their own access.
	CanRead(ctx context.Context, token string, ref ChangeRef) (bool, error)
}

// RateBudget is what is left of a forge's request budget.
type RateBudget struct {
	Remaining int
	Limit     int       // 0 when not reported
	Reset     time.Time // when the window resets
}

// RateLimited is implemented by forges that give a request budget per
// installation (GitHub). The service asks it before work that costs
// requests, so that urgent work goes first when the budget runs low.
type RateLimited interface {
	// RateBudget returns the last reported budget of the installation
	// that serves repo; ok is false while it is unknown.
	RateBudget(repo Repo) (b RateBudget, ok bool)
}
