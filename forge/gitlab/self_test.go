package gitlab_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
)

func asksSelf(got []fakegitlab.Request) bool {
	for _, r := range got {
		if r.Method == "GET" && r.Path == "/user" {
			return true
		}
	}
	return false
}

// A fresh process takes who the token's user is from the shared store
// (learnt from the author of the status the previous process posted), and
// still tells a forgery made while it was down from its own status.
func TestSelfRememberedAcrossRestartStillCatchesForgery(t *testing.T) {
	b := newBudgetEnv(t)
	b.evaluate() // pending, posted by this token's user
	b.clock = b.clock.Add(10 * time.Second)
	if _, err := b.fake.PostStatus(projectID, headSHA, idMallory, "foureyes", "feature", "success"); err != nil {
		t.Fatal(err)
	}
	b.restart()
	c, got := b.evaluate()
	if asksSelf(got) {
		t.Errorf("the fresh process asked GET /user although the store knew: %v", got)
	}
	if len(c.Foreign) != 1 || c.Foreign[0].By.Login != "mallory" {
		t.Fatalf("forgery made while foureyes was down: %+v", c.Foreign)
	}
	if l := b.latestStatuses(); l != "pending by foureyes" {
		t.Fatalf("latest statuses: %s", l)
	}
}

// The attack: the operator moves foureyes to another token, of another
// user; statuses the old token's user posts must not count as foureyes'
// own. What the store remembers is keyed by the token, so the new one asks
// GitLab who it is.
func TestSelfRememberedPerToken(t *testing.T) {
	b := newBudgetEnv(t)
	b.evaluate() // the store now remembers tok-foureyes' user
	b.fake.AddToken("tok-new", idCarol)
	f := b.process("tok-new", b.db)
	b.fake.ResetRequests()
	self, err := f.Self(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if self.ID != idCarol || !asksSelf(b.fake.Requests()) {
		t.Fatalf("new token: self %+v, requests %v", self, b.fake.Requests())
	}
	// And the old token still recalls its own without a request.
	b.fake.ResetRequests()
	if self, err := b.process("tok-foureyes", b.db).Self(b.ctx); err != nil || self.ID != idFoureyes || len(b.fake.Requests()) != 0 {
		t.Fatalf("old token: self %+v (%v), requests %v", self, err, b.fake.Requests())
	}
}

// failingMemory is a store that cannot be read or written.
type failingMemory struct{}

func (failingMemory) PutFact(context.Context, string, string, string) error {
	return errors.New("disk full")
}
func (failingMemory) Facts(context.Context, string) (map[string]string, error) {
	return nil, errors.New("database is locked")
}

var _ gitlab.Memory = failingMemory{}

// A store that fails costs the saving, never the distinction.
func TestSelfWithFailingMemoryAsksGitLab(t *testing.T) {
	b := newBudgetEnv(t)
	b.forge = b.process("tok-foureyes", failingMemory{})
	b.evaluate()
	if _, err := b.fake.PostStatus(projectID, headSHA, idMallory, "foureyes", "feature", "success"); err != nil {
		t.Fatal(err)
	}
	b.clock = b.clock.Add(10 * time.Second)
	b.forge = b.process("tok-foureyes", failingMemory{})
	c, got := b.evaluate()
	if !asksSelf(got) || len(c.Foreign) != 1 || c.Foreign[0].By.Login != "mallory" {
		t.Fatalf("foreign %+v, requests %v", c.Foreign, got)
	}
	if l := b.latestStatuses(); l != "pending by foureyes" {
		t.Fatalf("latest statuses: %s", l)
	}
}
