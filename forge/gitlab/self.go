package gitlab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	gl "github.com/xanzy/go-gitlab"

	"github.com/foureyes-dev/foureyes/bot"
)

// Memory keeps small facts across restarts and replicas; store.DB
// implements it. The adapter keeps one there: who the token's user is.
//
// Why: a process that has not posted yet must tell foureyes' own
// "foureyes" statuses from forged ones before it posts, and without the
// fact that costs a GET /user in every fresh process (issue 16: a small
// merge request's approval in a fresh process within 10 requests). A
// token belongs to one user for its whole life, so the fact is keyed by a
// digest of the instance and the token: a new token is a new key, and the
// token itself is never stored.
type Memory interface {
	PutFact(ctx context.Context, scope, key, value string) error
	Facts(ctx context.Context, scope string) (map[string]string, error)
}

const selfScope = "gitlab/self"

type storedSelf struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name,omitempty"`
}

func selfKey(baseURL, token string) string {
	sum := sha256.Sum256([]byte(baseURL + "\x00" + token))
	return hex.EncodeToString(sum[:16])
}

// Self returns the user the token belongs to: remembered by this process,
// else by Memory, else asked once (GET /user). foureyes' own statuses and
// notes are the ones this user wrote.
func (f *Forge) Self(ctx context.Context) (bot.User, error) {
	f.selfMu.Lock()
	defer f.selfMu.Unlock()
	if f.self.ID != 0 {
		return f.self, nil
	}
	if u, ok := f.recalledSelf(ctx); ok {
		f.self = u
		return u, nil
	}
	u, _, err := f.client.Users.CurrentUser(gl.WithContext(ctx))
	if err != nil {
		return bot.User{}, fmt.Errorf("gitlab: discover the token's user (GET /user): %w", err)
	}
	f.self = bot.User{Login: u.Username, ID: int64(u.ID), Name: u.Name, Bot: u.Bot}
	f.keepSelf(ctx, f.self)
	return f.self, nil
}

// learnSelf records the token's user from the author of something foureyes
// just created with the token (a status, a note): GitLab makes the
// requester the author, so GET /user is not needed to know it later.
func (f *Forge) learnSelf(ctx context.Context, id int, username, name string) {
	if id == 0 {
		return
	}
	f.selfMu.Lock()
	defer f.selfMu.Unlock()
	if f.self.ID == 0 {
		f.self = bot.User{Login: username, ID: int64(id), Name: name}
		f.keepSelf(ctx, f.self)
	}
}

// recalledSelf reads the fact from Memory. A failed or unreadable read is
// only a missed saving: Self then asks GitLab.
func (f *Forge) recalledSelf(ctx context.Context) (bot.User, bool) {
	if f.memory == nil {
		return bot.User{}, false
	}
	facts, err := f.memory.Facts(ctx, selfScope)
	if err != nil {
		f.log.Warn("gitlab: cannot read the remembered token user; asking GitLab", "err", err)
		return bot.User{}, false
	}
	raw, ok := facts[f.selfKey]
	if !ok {
		return bot.User{}, false
	}
	var s storedSelf
	if err := json.Unmarshal([]byte(raw), &s); err != nil || s.ID == 0 {
		f.log.Warn("gitlab: the remembered token user is unreadable; asking GitLab", "err", err)
		return bot.User{}, false
	}
	return bot.User{Login: s.Username, ID: s.ID, Name: s.Name}, true
}

func (f *Forge) keepSelf(ctx context.Context, u bot.User) {
	if f.memory == nil {
		return
	}
	raw, _ := json.Marshal(storedSelf{ID: u.ID, Username: u.Login, Name: u.Name})
	// The evaluation that learned it may be ending; the fact is worth
	// keeping regardless.
	if err := f.memory.PutFact(context.WithoutCancel(ctx), selfScope, f.selfKey, string(raw)); err != nil {
		f.log.Warn("gitlab: cannot remember the token user; the next process asks GitLab", "err", err)
	}
}
