package fakegithub

import (
	"crypto/sha1"
	"encoding/hex"
	"time"
)

// User is a GitHub account (a person or a bot).
type User struct {
	Login string
	ID    int64  // 0: derived from the login
	Type  string // "User" (default) or "Bot"
}

// Identity is a git author or committer. Login names the GitHub account
// GitHub linked the e-mail to ("" = not linked: the REST API then shows
// author/committer null).
type Identity struct {
	Name  string
	Email string
	Date  time.Time
	Login string
	ID    int64
}

// Commit is a git commit as the pulls/commits and compare endpoints show it.
type Commit struct {
	SHA       string
	Message   string
	Author    Identity
	Committer Identity
	Parents   []string
}

// File is one changed file of a pull request. An empty Patch is left out of
// the JSON, as GitHub does for binary and very large diffs.
type File struct {
	Filename         string
	PreviousFilename string
	Status           string // added, modified, removed, renamed, ... (default modified)
	Patch            string
	SHA              string // blob SHA; derived from the patch when empty
	Additions        int
	Deletions        int
}

// PR is a pull request. Commits are listed oldest first, so the last one is
// the head (HeadSHA defaults to it).
type PR struct {
	Number         int
	Title          string
	Body           string
	Author         User
	State          string // open (default) or closed
	Draft          bool
	Merged         bool
	MergeCommitSHA string
	MergedAt       time.Time
	MergedBy       User
	HeadRef        string
	HeadSHA        string
	// HeadRepo is the full name of the fork the head branch is in ("":
	// the repository itself).
	HeadRepo string
	// PushedBy is who pushed the head (default: Author). Adding the pull
	// request or moving its head records the push in the activity API of
	// the head repository, as GitHub records every push.
	PushedBy User
	BaseRef  string
	BaseSHA  string
	Files    []File
	Commits  []Commit
	// CommitsCount and ChangedFiles override the counts the PR object
	// reports (0: len(Commits), len(Files)); GitHub lists at most 250
	// commits and 3,000 files while the counts say the truth.
	CommitsCount int
	ChangedFiles int
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Review is one pull request review. State is upper-case as in REST
// (APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING).
type Review struct {
	ID          int64
	User        User
	State       string
	CommitID    string
	Body        string
	SubmittedAt time.Time
}

// CheckRun is a check run as stored by the fake. AppID/AppSlug record the
// App whose installation token created it.
type CheckRun struct {
	ID          int64
	HeadSHA     string
	Name        string
	Status      string
	Conclusion  string
	ExternalID  string
	DetailsURL  string
	Title       string
	Summary     string
	Text        string
	AppID       int64
	AppSlug     string
	StartedAt   time.Time
	CompletedAt time.Time
	// Updates counts PATCH requests applied to this run.
	Updates int
}

// Status is a commit status.
type Status struct {
	ID          int64
	SHA         string
	State       string
	Context     string
	Description string
	TargetURL   string
	Creator     string
	CreatedAt   time.Time
}

// Issue is a repository issue.
type Issue struct {
	Number    int
	Title     string
	Body      string
	State     string
	Labels    []string
	Author    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Request is one request the fake answered.
type Request struct {
	Method string
	Path   string // without the GHES prefix
	Query  string
	Status int
	// Installation is the installation whose token authenticated the
	// request (0: App JWT or unauthenticated).
	Installation int64
}

// Failure makes the next Times matching requests fail instead of being
// served (retry tests).
type Failure struct {
	Method string // "" = any
	// Path matches when it is a substring of the request path (without the
	// GHES prefix); "" = any.
	Path  string
	Times int // default 1
	// Status defaults to 502, or 403 when RateLimited or Secondary.
	Status int
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// RateLimited answers as GitHub does when the primary rate limit is
	// spent: X-RateLimit-Remaining: 0 and X-RateLimit-Reset = now+ResetAfter.
	RateLimited bool
	ResetAfter  time.Duration
	// Secondary answers like a secondary rate limit (message only; combine
	// with RetryAfter).
	Secondary bool
	// AfterHandling serves the request (its effects happen) and only then
	// answers with the failure: GitHub failing after doing the work.
	AfterHandling bool
}

// SHA returns a deterministic 40-hex "commit SHA" for s: tests use it to
// make readable fixtures.
func SHA(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// App is a GitHub App registered with the fake (the one it was created for
// and those created through the manifest flow).
type App struct {
	ID            int64
	Slug          string
	Name          string
	ClientID      string
	ClientSecret  string
	WebhookSecret string
	PEM           string // private key, only for manifest-created Apps
}
