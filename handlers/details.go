package handlers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/foureyes-dev/foureyes/bot"
)

// The details token is base64url(compact JSON) "." base64url(HMAC-SHA256).
// The JSON names the change at one head and when the link expires; the MAC
// covers the encoded JSON exactly as sent, so there is no canonicalization
// to get wrong. For a public repository the token is a capability: whoever
// holds the link can read the verdict until it expires, and nobody can
// make one up. For any other repository the holder must also sign in with
// the forge and be able to read the change (signin.go).

// detailsMACContext separates details MACs from anything else the same key
// might sign. v2 added the expiry: a v1 token (no expiry) no longer
// verifies and gets the not-found page.
const detailsMACContext = "foureyes details token v2\x00"

// maxDetailsToken bounds the work done on a token before its MAC is known
// to be good. Real tokens are a few hundred bytes.
const maxDetailsToken = 4096

// ErrDetailsToken is returned (wrapped) by VerifyDetails for every token it
// refuses.
var ErrDetailsToken = errors.New("invalid details token")

// ErrDetailsExpired is returned by VerifyDetails for a genuine token whose
// expiry has passed. It wraps ErrDetailsToken.
var ErrDetailsExpired = fmt.Errorf("%w: the link has expired", ErrDetailsToken)

type detailsClaims struct {
	Forge   string `json:"f"`
	Repo    string `json:"r"`
	RepoURL string `json:"u,omitempty"`
	Number  int    `json:"n"`
	HeadSHA string `json:"h"`
	Expires int64  `json:"x"` // Unix seconds
}

// SignDetails returns the URL-safe token of the details page of ref (forge,
// repo full name and URL, change number, head SHA), valid until expires and
// signed with key. Only those fields are kept: the page looks the verdict
// up by them. key must be secret and non-empty; VerifyDetails refuses every
// token under an empty key.
func SignDetails(key []byte, ref bot.ChangeRef, expires time.Time) string {
	payload, _ := json.Marshal(detailsClaims{ // plain strings and ints cannot fail
		Forge:   string(ref.Forge),
		Repo:    ref.Repo.FullName,
		RepoURL: ref.Repo.URL,
		Number:  ref.Number,
		HeadSHA: ref.HeadSHA,
		Expires: expires.Unix(),
	})
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(detailsMAC(key, p))
}

func detailsMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(detailsMACContext))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// VerifyDetails checks token's MAC in constant time and its expiry against
// now, and returns the change it names. Every failure wraps
// ErrDetailsToken; a genuine but expired token is ErrDetailsExpired.
func VerifyDetails(key []byte, token string, now time.Time) (bot.ChangeRef, error) {
	if len(key) == 0 {
		return bot.ChangeRef{}, fmt.Errorf("%w: no signing key", ErrDetailsToken)
	}
	if len(token) > maxDetailsToken {
		return bot.ChangeRef{}, fmt.Errorf("%w: too long", ErrDetailsToken)
	}
	p, sig, ok := strings.Cut(token, ".")
	if !ok || p == "" || strings.Contains(sig, ".") {
		return bot.ChangeRef{}, fmt.Errorf("%w: malformed", ErrDetailsToken)
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return bot.ChangeRef{}, fmt.Errorf("%w: signature: %w", ErrDetailsToken, err)
	}
	if !hmac.Equal(mac, detailsMAC(key, p)) {
		return bot.ChangeRef{}, fmt.Errorf("%w: bad signature", ErrDetailsToken)
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return bot.ChangeRef{}, fmt.Errorf("%w: payload: %w", ErrDetailsToken, err)
	}
	// The MAC is good, so the payload is ours; the checks below only guard
	// against tokens signed by an older or buggy version.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var c detailsClaims
	if err := dec.Decode(&c); err != nil {
		return bot.ChangeRef{}, fmt.Errorf("%w: payload: %w", ErrDetailsToken, err)
	}
	forge := bot.ForgeName(c.Forge)
	if (forge != bot.GitHub && forge != bot.GitLab) || c.Repo == "" || c.Number <= 0 || c.HeadSHA == "" || c.Expires <= 0 {
		return bot.ChangeRef{}, fmt.Errorf("%w: incomplete", ErrDetailsToken)
	}
	if !now.Before(time.Unix(c.Expires, 0)) {
		return bot.ChangeRef{}, ErrDetailsExpired
	}
	return bot.ChangeRef{
		Forge:   forge,
		Repo:    bot.Repo{FullName: c.Repo, URL: c.RepoURL},
		Number:  c.Number,
		HeadSHA: c.HeadSHA,
	}, nil
}

// VerdictSource looks up the verdict foureyes published for a change at a
// head. *bot.Service implements it.
type VerdictSource interface {
	StoredVerdict(ctx context.Context, ref bot.ChangeRef) (bot.Verdict, bool, error)
}

// detailsPages is parsed once per process; the templates are immutable.
var detailsPages = parsePages("details", "notfound", "error")

// serveDetails answers GET /details/{token}: the verdict of one change at
// one head, for people. A token that does not verify and a verdict that
// does not exist get the same 404 page, so the page reveals nothing about
// what exists; an expired token says so. A repository the forge does not
// confirm as public needs a signed-in viewer who can read the change.
func (d *details) serveDetails(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	token, ok := mux.Vars(r)["token"]
	if !ok {
		token = strings.TrimPrefix(r.URL.Path, "/details/")
	}
	ref, err := VerifyDetails(d.cfg.Key, token, d.now())
	if errors.Is(err, ErrDetailsExpired) {
		d.expired(w)
		return
	}
	if err != nil {
		d.log.DebugContext(r.Context(), "details token refused", "error", err)
		d.notFound(w)
		return
	}
	// A slow store or forge must not hold the request forever.
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	v, found, err := d.cfg.Verdicts.StoredVerdict(ctx, ref)
	if err != nil {
		d.log.ErrorContext(r.Context(), "details: load verdict", "change", ref.Key(), "head", ref.HeadSHA, "error", err)
		d.errorPage(w, http.StatusInternalServerError, "The verdict could not be loaded",
			"foureyes could not read its database. Try again in a minute; if it persists, the operators will find the error in the server log.")
		return
	}
	if !found {
		d.notFound(w)
		return
	}
	if !d.mayView(ctx, w, r, token, ref, v) {
		return
	}
	view := newDetailsView(ref, v)
	detailsPages.render(w, d.log, http.StatusOK, "details", pageData{
		Title: "foureyes: " + view.StateWord + " — " + ref.Repo.FullName + view.ChangeSigil + strconv.Itoa(ref.Number),
		Tone:  view.State,
		Page:  view,
	})
}

func (d *details) notFound(w http.ResponseWriter) {
	detailsPages.render(w, d.log, http.StatusNotFound, "notfound", pageData{Title: "foureyes: verdict not found"})
}

// expired answers 410 Gone: the link was genuine, and will not work again.
func (d *details) expired(w http.ResponseWriter) {
	msg := "Details links expire"
	if days := int(d.cfg.TTL.Hours() / 24); days >= 1 {
		msg += " " + strconv.Itoa(days) + " days after the check was written"
	}
	msg += ", so that a link pasted somewhere does not show the verdict forever. Open the Details link of the foureyes check on the pull or merge request again; if that link is old too, re-run the check (a new review or push does the same) to get a fresh one."
	detailsPages.render(w, d.log, http.StatusGone, "error", pageData{
		Title: "foureyes: link expired",
		Tone:  "pending",
		Page:  errorView{Heading: "This link has expired", Message: msg},
	})
}

func (d *details) errorPage(w http.ResponseWriter, status int, heading, msg string) {
	detailsPages.render(w, d.log, status, "error", pageData{
		Title: "foureyes: " + strings.ToLower(heading),
		Tone:  "failure",
		Page:  errorView{Heading: heading, Message: msg},
	})
}

// errorView is the data of the generic error page.
type errorView struct {
	Heading string
	Message string
	// Steps are things to do, in order (none: no list).
	Steps []string
	// Action is a button-like link (zero: none), e.g. "Sign in with GitHub".
	Action link
	// Links are further links under the message.
	Links []link
	// Home links back to the start of a flow ("" for none).
	Home string
}

// link is a link on a page; URL is always built by foureyes, never taken
// from a request.
type link struct {
	URL, Text string
}

// detailsView is the verdict shaped for the template: every decision about
// wording is made here, in Go, where it is tested, not in the template.
type detailsView struct {
	State, StateWord, Lead string
	Title                  string

	Repo, RepoURL          string
	ChangeLabel, ChangeURL string
	ChangeSigil            string
	HeadSHA, CommitURL     string
	PolicySource           string
	PolicyDigest           string
	DiffDigest             string
	Failures               []string
	Blocking               []string
	Categories             []categoryView
	Elsewhere              []rejectionView // approvals rejected outside every category's list
	Exempt                 fileList
	Unverified, Notices    []string
	// BreakGlass holds the lines of the break-glass section (none without
	// votes on the head).
	BreakGlass []string
}

type categoryView struct {
	Name              string
	Tone, Status      string
	Required, Missing int
	Counted           []string
	Allowed           string // "acme/sre, alice" or ""
	Rejected          []rejectionView
	Files             fileList
}

type rejectionView struct {
	Reviewer string
	Reasons  []string
	Detail   string
	Commit   string
}

// fileList shows the first few files and folds the rest into <details>.
type fileList struct {
	Total        int
	Shown, Later []string
}

// visibleDetailsFiles is how many paths of a list stay unfolded.
const visibleDetailsFiles = 15

func newFileList(files []string) fileList {
	fl := fileList{Total: len(files), Shown: files}
	// Folding just one or two files would only add a click.
	if len(files) > visibleDetailsFiles+2 {
		fl.Shown, fl.Later = files[:visibleDetailsFiles], files[visibleDetailsFiles:]
	}
	return fl
}

func newDetailsView(ref bot.ChangeRef, v bot.Verdict) detailsView {
	d := detailsView{
		State:        string(v.State),
		Title:        v.Title,
		Repo:         ref.Repo.FullName,
		HeadSHA:      ref.HeadSHA,
		PolicySource: v.PolicySource,
		PolicyDigest: v.PolicyDigest,
		DiffDigest:   v.DiffDigest,
		Failures:     v.Failures,
		Blocking:     v.Blocking,
		Exempt:       newFileList(v.Exempt),
		Unverified:   v.Unverified,
		Notices:      v.Notices,
	}
	d.BreakGlass = breakGlassLines(v)
	switch v.State {
	case bot.Success:
		d.StateWord, d.Lead = "Success", "Every kind of change in this "+changeNoun(ref.Forge)+" has its independent approvals."
		if v.BreakGlass != nil && v.BreakGlass.Applied {
			// It has not, and the page must not say so.
			d.Lead = "Review was overridden by break glass: the approvals listed below were missing."
		}
	case bot.PendingState:
		d.StateWord, d.Lead = "Pending", "Independent approvals are still missing; the check stays pending until they arrive."
	default:
		// Fail closed in words too: anything unexpected reads as a failure.
		d.State = string(bot.Failure)
		d.StateWord, d.Lead = "Failure", "The check fails; the reasons are below."
	}

	base := forgeRepoURL(ref, v)
	d.RepoURL = base
	n := strconv.Itoa(ref.Number)
	switch ref.Forge {
	case bot.GitLab:
		d.ChangeSigil, d.ChangeLabel = "!", "merge request !"+n
		if base != "" {
			d.ChangeURL, d.CommitURL = base+"/-/merge_requests/"+n, base+"/-/commit/"+url.PathEscape(ref.HeadSHA)
		}
	default:
		d.ChangeSigil, d.ChangeLabel = "#", "pull request #"+n
		if base != "" {
			d.ChangeURL, d.CommitURL = base+"/pull/"+n, base+"/commit/"+url.PathEscape(ref.HeadSHA)
		}
	}

	inCategory := map[string]bool{}
	for _, c := range v.Categories {
		cv := categoryView{
			Name:     c.Name,
			Required: c.Required,
			Missing:  c.Missing,
			Counted:  c.Counted,
			Allowed:  strings.Join(append(slices.Clone(c.Teams), c.Users...), ", "),
			Files:    newFileList(c.Files),
		}
		switch {
		case c.Required == 0:
			cv.Tone, cv.Status = "success", "No approval required"
		case c.Missing == 0:
			cv.Tone, cv.Status = "success", "Approved"
		default:
			cv.Tone, cv.Status = "pending", "Needs "+strconv.Itoa(c.Missing)+" more"
			if v.State == bot.Failure {
				cv.Tone = "failure"
			}
		}
		for _, r := range c.Rejected {
			inCategory[rejectionKey(r)] = true
			cv.Rejected = append(cv.Rejected, newRejectionView(r, cv.Allowed, ref.HeadSHA))
		}
		d.Categories = append(d.Categories, cv)
	}
	for _, r := range v.Ignored {
		if !inCategory[rejectionKey(r)] {
			d.Elsewhere = append(d.Elsewhere, newRejectionView(r, "", ref.HeadSHA))
		}
	}
	return d
}

func rejectionKey(r bot.Rejection) string {
	return strings.ToLower(r.Reviewer) + "\x00" + strconv.FormatInt(r.ReviewID, 10)
}

func newRejectionView(r bot.Rejection, allowed, head string) rejectionView {
	rv := rejectionView{Reviewer: r.Reviewer, Detail: r.Detail}
	// Which head was approved matters only when it is not the current one.
	if r.CommitSHA != head {
		rv.Commit = r.CommitSHA
	}
	for _, reason := range r.Reasons {
		w := bot.ReasonText(reason)
		if reason == bot.ReasonNotInTeam && allowed != "" {
			w = "not among this category's reviewers (" + allowed + ")"
		}
		rv.Reasons = append(rv.Reasons, w)
	}
	// The detail often restates the reasons ("author of the change"); only
	// keep the parts that add a fact.
	var extra []string
	for _, part := range strings.Split(r.Detail, "; ") {
		if part != "" && !slices.Contains(rv.Reasons, part) {
			extra = append(extra, part)
		}
	}
	rv.Detail = strings.Join(extra, "; ")
	return rv
}

func changeNoun(f bot.ForgeName) string {
	if f == bot.GitLab {
		return "merge request"
	}
	return "pull request"
}

// forgeRepoURL is the web URL of the repository: the one the token or the
// verdict carries (the forge's own html_url / web_url), else github.com's
// for GitHub. GitLab has no safe default (self-managed hosts), so no link.
// Only http(s) URLs are used.
func forgeRepoURL(ref bot.ChangeRef, v bot.Verdict) string {
	for _, raw := range []string{ref.Repo.URL, v.Ref.Repo.URL} {
		if u, err := url.Parse(raw); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			return strings.TrimRight(raw, "/")
		}
	}
	if ref.Forge == bot.GitHub {
		return "https://github.com/" + ref.Repo.FullName
	}
	return ""
}
