// Package gitlab is the GitLab adapter of foureyes: it implements
// bot.Forge on top of go-gitlab (the only package of the module that
// imports it) for gitlab.com and self-managed instances, and decodes
// GitLab webhook deliveries into bot events.
//
// GitLab differs from GitHub in ways that shape this package:
//   - approvals carry no commit SHA: the service binds each one to the head
//     named by its approval event (Change leaves Review.CommitSHA empty);
//   - the approvals endpoint may be unavailable (403/404): Change then says
//     so (ReviewsFromEvents) and the service uses the stored events;
//   - the bot flag is only on the full user (GET /users/:id);
//   - a commit status named "foureyes" can be posted by any Developer, so
//     Change reports the ones foureyes did not write and Publish re-asserts
//     its own;
//   - GitLab answers 400 to a status re-posted in the state it has, so
//     Publish posts on change only.
package gitlab

//lint:file-ignore SA1019 issue 5 pins github.com/xanzy/go-gitlab v0.115.0, which marks itself deprecated in favour of gitlab.com/gitlab-org/api/client-go; moving is a separate change.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gl "github.com/xanzy/go-gitlab"

	"github.com/foureyes-dev/foureyes/bot"
)

// DefaultBaseURL is gitlab.com.
const DefaultBaseURL = "https://gitlab.com"

// StatusName is the name of the commit status foureyes posts.
const StatusName = "foureyes"

// NoteMarker starts the body of foureyes' merge request note, so the note
// can be found again (with its author) and edited instead of re-posted.
const NoteMarker = "<!-- foureyes -->"

// PolicyPaths are the policy file locations on GitLab, in lookup order,
// as the domain decides them (bot.PolicyPaths).
var PolicyPaths = bot.PolicyPaths(bot.GitLab)

// Config configures a Forge.
type Config struct {
	// BaseURL is the instance URL (default https://gitlab.com); the API is
	// at BaseURL/api/v4.
	BaseURL string
	// Token is a bot user's personal access token or a project/group
	// access token with the api scope.
	Token string
	// Transport carries the API requests (default http.DefaultTransport).
	Transport http.RoundTripper
	Logger    *slog.Logger
	Now       func() time.Time
	// CacheTTL bounds how long user lookups (bot flag, e-mail matches) are
	// reused; default 10 minutes. What a head SHA fixes (diffs, commits)
	// is cached regardless, as it cannot change.
	CacheTTL time.Duration
	// MembershipTTL bounds how long a found project or group membership is
	// reused (default 1 minute): a member removed on GitLab can count for
	// that long, as GitLab sends project hooks no member event.
	MembershipTTL time.Duration
	// Memory, when set, keeps who the token's user is across restarts
	// and replicas (self.go); store.DB implements it.
	Memory Memory
}

// defaultCacheTTL keeps user lookups short-lived: a user who makes an
// e-mail public or becomes a bot is seen within minutes.
const defaultCacheTTL = 10 * time.Minute

// Forge is the GitLab adapter. It is safe for concurrent use.
type Forge struct {
	client  *gl.Client
	baseURL *url.URL
	log     *slog.Logger
	now     func() time.Time
	ttl     time.Duration

	// transport also carries the requests made with a viewer's OAuth
	// token (viewers.go).
	transport http.RoundTripper

	selfMu  sync.Mutex
	self    bot.User
	memory  Memory
	selfKey string

	heads    *ttlCache[string, headFacts]
	users    *ttlCache[int, *gl.User]
	emails   *ttlCache[string, bot.User]
	mrs      *ttlCache[string, mrMemo]
	statuses *ttlCache[string, statusMemo]
	members  *ttlCache[string, membership]
	pushes   *ttlCache[string, pushMemo]
}

var _ bot.Forge = (*Forge)(nil)

// New returns a GitLab adapter. It makes no request: the token's own user
// is discovered on first use.
func New(cfg Config) (*Forge, error) {
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, errors.New("gitlab: a token is required")
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("gitlab: base URL %q is not an absolute URL: %w", base, errOrInvalid(err))
	}
	hc := &http.Client{Transport: cfg.Transport, Timeout: 60 * time.Second}
	client, err := gl.NewClient(cfg.Token, gl.WithBaseURL(base), gl.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("gitlab: create client for %s: %w", base, err)
	}
	f := &Forge{client: client, baseURL: u, log: cfg.Logger, now: cfg.Now, ttl: cfg.CacheTTL, transport: cfg.Transport,
		memory: cfg.Memory, selfKey: selfKey(base, cfg.Token)}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.ttl <= 0 {
		f.ttl = defaultCacheTTL
	}
	// Head facts never change for a given head and base; the TTL only
	// bounds memory in a long-running server.
	f.heads = newTTLCache[string, headFacts](f.now, 24*time.Hour, 4096)
	f.users = newTTLCache[int, *gl.User](f.now, f.ttl, 20000)
	f.emails = newTTLCache[string, bot.User](f.now, f.ttl, 20000)
	f.mrs = newTTLCache[string, mrMemo](f.now, 24*time.Hour, 20000)
	// What Change saw of a head's statuses (or Publish posted) is trusted
	// by the Publish of the same evaluation, and for 2 minutes lets Change
	// leave out a read that cannot matter (statusread.go).
	f.statuses = newTTLCache[string, statusMemo](f.now, 2*time.Minute, 20000)
	memberTTL := cfg.MembershipTTL
	if memberTTL <= 0 {
		memberTTL = defaultMembershipTTL
	}
	f.members = newTTLCache[string, membership](f.now, memberTTL, 20000)
	// Who pushed a head is re-read after a minute: a later push back to the
	// same head adds a pusher (push hooks add it at once).
	f.pushes = newTTLCache[string, pushMemo](f.now, time.Minute, 20000)
	return f, nil
}

func errOrInvalid(err error) error {
	if err != nil {
		return err
	}
	return errors.New("missing scheme or host")
}

// pid is the project identifier for go-gitlab: the numeric ID when known
// (stable across renames), else the full path.
func pid(r bot.Repo) any {
	if r.ID != 0 {
		return int(r.ID)
	}
	return r.FullName
}

func pidString(r bot.Repo) string {
	if r.ID != 0 {
		return strconv.FormatInt(r.ID, 10)
	}
	return r.FullName
}

// projectKey names a project in cache keys.
func projectKey(r bot.Repo) string {
	if r.ID != 0 {
		return strconv.FormatInt(r.ID, 10)
	}
	return strings.ToLower(r.FullName)
}

// httpStatus returns the HTTP status of a go-gitlab error (0 if none).
func httpStatus(err error) int {
	if errors.Is(err, gl.ErrNotFound) {
		return http.StatusNotFound
	}
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

func isNotFound(err error) bool { return httpStatus(err) == http.StatusNotFound }

// maxPages stops a runaway pagination (a server that always says "next"):
// 200 pages of 100 is far more than any change foureyes can judge.
const maxPages = 200

// paginate collects every page that fetch returns.
func paginate[T any](what string, fetch func(page int) ([]T, *gl.Response, error)) ([]T, error) {
	var all []T
	page := 1
	for range maxPages {
		items, resp, err := fetch(page)
		if err != nil {
			return nil, fmt.Errorf("list %s (page %d): %w", what, page, err)
		}
		all = append(all, items...)
		if resp == nil || resp.NextPage == 0 || resp.NextPage <= page {
			return all, nil
		}
		page = resp.NextPage
	}
	return nil, fmt.Errorf("list %s: more than %d pages", what, maxPages)
}

// getJSON issues a GET through go-gitlab into a local type, for responses
// whose fields go-gitlab v0.115.0 does not model (a diff's too_large, an
// approval's approved_at).
func (f *Forge) getJSON(ctx context.Context, path string, opt any, v any) (*gl.Response, error) {
	req, err := f.client.NewRequest(http.MethodGet, path, opt, []gl.RequestOptionFunc{gl.WithContext(ctx)})
	if err != nil {
		return nil, err
	}
	return f.client.Do(req, v)
}
