package github

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/foureyes-dev/foureyes/bot"
)

// coAuthorRe finds Co-authored-by trailers. It matches on any line of the
// message, not only in the final trailer paragraph as git interpret-trailers
// does: a co-author line anywhere is a claim of authorship, and counting
// one too many co-authors can only make fewer reviewers eligible (fail
// closed), never more.
var coAuthorRe = regexp.MustCompile(`(?im)^[ \t]*co-authored-by[ \t]*:[ \t]*(.*?)[ \t]*<([^<>\s]+)>[ \t]*$`)

// noreplyRe matches GitHub's private commit e-mails, ID+login@users.noreply.HOST
// and the older login@users.noreply.HOST (github.com or a GHES host), bot
// accounts ("41898282+github-actions[bot]@...") included.
var noreplyRe = regexp.MustCompile(`(?i)^(?:(\d+)\+)?([a-z0-9][a-z0-9-]*(?:\[bot\])?)@users\.noreply\.[a-z0-9.-]+$`)

// noreplyLogin returns the login (and ID, 0 if absent) named by a noreply
// address.
func noreplyLogin(email string) (string, int64, bool) {
	m := noreplyRe.FindStringSubmatch(strings.TrimSpace(email))
	if m == nil {
		return "", 0, false
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	return m[2], id, true
}

// CoAuthor is one Co-authored-by trailer.
type CoAuthor struct{ Name, Email string }

// ParseCoAuthors returns the Co-authored-by trailers of a commit message,
// case-insensitively, from anywhere in the message.
func ParseCoAuthors(message string) []CoAuthor {
	var out []CoAuthor
	for _, m := range coAuthorRe.FindAllStringSubmatch(message, -1) {
		out = append(out, CoAuthor{Name: m[1], Email: m[2]})
	}
	return out
}

// isWebFlow reports GitHub's own committer of web-UI edits and merges:
// not a person, so it is neither a committer nor unverified.
func isWebFlow(account *gh.User, git *gh.CommitAuthor) bool {
	if account != nil {
		return strings.EqualFold(account.GetLogin(), "web-flow")
	}
	return strings.EqualFold(git.GetEmail(), "noreply@github.com")
}

// convertCommits turns GitHub's commits into bot.Commits and collects the
// identities that could not be linked to an account (Change.Unverified).
//
// Identities are linked, in order: by the commit's own author/committer
// account (GitHub's linking of verified e-mails), by a noreply address, and
// by the same e-mail linked to an account on another commit of the change.
// A co-author matching none of these is kept with its e-mail and listed as
// unverified — never dropped.
func convertCommits(raw []*gh.RepositoryCommit) ([]bot.Commit, []string) {
	linked := map[string]bot.User{}
	for _, rc := range raw {
		for _, p := range []struct {
			acc *gh.User
			git *gh.CommitAuthor
		}{{rc.Author, rc.GetCommit().GetAuthor()}, {rc.Committer, rc.GetCommit().GetCommitter()}} {
			if p.acc.GetLogin() != "" && p.git.GetEmail() != "" && !isWebFlow(p.acc, p.git) {
				linked[strings.ToLower(p.git.GetEmail())] = bot.User{Login: p.acc.GetLogin(), ID: p.acc.GetID(), Bot: p.acc.GetType() == "Bot"}
			}
		}
	}
	resolve := func(acc *gh.User, name, email string) bot.User {
		u := bot.User{Name: name, Email: email}
		switch {
		case acc.GetLogin() != "":
			u.Login, u.ID, u.Bot = acc.GetLogin(), acc.GetID(), acc.GetType() == "Bot"
		default:
			if login, id, ok := noreplyLogin(email); ok {
				u.Login, u.ID = login, id
			} else if l, ok := linked[strings.ToLower(email)]; ok && email != "" {
				u.Login, u.ID, u.Bot = l.Login, l.ID, l.Bot
			}
		}
		u.Bot = u.Bot || strings.HasSuffix(u.Login, "[bot]")
		return u
	}
	unverified := map[string]bool{}
	note := func(u bot.User) {
		if !u.Known() {
			if id := u.Display(); id != "" {
				unverified[id] = true
			}
		}
	}
	out := make([]bot.Commit, 0, len(raw))
	for _, rc := range raw {
		gc := rc.GetCommit()
		bc := bot.Commit{SHA: rc.GetSHA(), Message: gc.GetMessage(), Time: gc.GetAuthor().GetDate().Time}
		bc.Author = resolve(rc.Author, gc.GetAuthor().GetName(), gc.GetAuthor().GetEmail())
		note(bc.Author)
		if !isWebFlow(rc.Committer, gc.GetCommitter()) {
			bc.Committer = resolve(rc.Committer, gc.GetCommitter().GetName(), gc.GetCommitter().GetEmail())
			note(bc.Committer)
		}
		seen := map[string]bool{}
		for _, ca := range ParseCoAuthors(gc.GetMessage()) {
			k := strings.ToLower(ca.Email)
			if seen[k] {
				continue
			}
			seen[k] = true
			var acc *gh.User
			// The commit's own author/committer account vouches for its
			// own e-mail.
			if strings.EqualFold(ca.Email, gc.GetAuthor().GetEmail()) {
				acc = rc.Author
			} else if strings.EqualFold(ca.Email, gc.GetCommitter().GetEmail()) && !isWebFlow(rc.Committer, gc.GetCommitter()) {
				acc = rc.Committer
			}
			u := resolve(acc, ca.Name, ca.Email)
			note(u)
			bc.CoAuthors = append(bc.CoAuthors, u)
		}
		out = append(out, bc)
	}
	list := make([]string, 0, len(unverified))
	for k := range unverified {
		list = append(list, k)
	}
	slices.Sort(list)
	if len(list) == 0 {
		list = nil
	}
	return out, list
}
