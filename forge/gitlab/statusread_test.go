package gitlab_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/forge/gitlab"
	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
)

// latestStatuses are the "foureyes" statuses GitLab counts on the head:
// the ones no later status of the name superseded.
func (b *budgetEnv) latestStatuses() string {
	var latest []string
	for _, st := range b.fake.Statuses(projectID, headSHA) {
		if !st.Retried {
			who := "foureyes"
			if st.AuthorID != idFoureyes {
				who = fmt.Sprint(st.AuthorID)
			}
			latest = append(latest, st.State+" by "+who)
		}
	}
	return strings.Join(latest, ",")
}

func readsStatuses(got []fakegitlab.Request) bool {
	for _, r := range got {
		if r.Method == "GET" && strings.HasSuffix(r.Path, "/statuses") {
			return true
		}
	}
	return false
}

func (b *budgetEnv) forge2() *gitlab.Forge {
	return b.process("tok-foureyes", b.db)
}

// TestStatusesForgedWhilePendingAreReadAgain: foureyes' own status is
// pending and this process remembers so; mallory (Developer) posts a
// "foureyes" success. The next evaluation, still pending, must read the
// statuses, audit the forgery and re-assert pending: a skipped read here
// would leave the merge request mergeable.
func TestStatusesForgedWhilePendingAreReadAgain(t *testing.T) {
	b := newBudgetEnv(t)
	b.evaluate()
	b.clock = b.clock.Add(10 * time.Second)
	if _, err := b.fake.PostStatus(projectID, headSHA, idMallory, "foureyes", "feature", "success"); err != nil {
		t.Fatal(err)
	}
	c, got := b.evaluate()
	if !readsStatuses(got) || len(c.Foreign) != 1 || c.Foreign[0].By.Login != "mallory" {
		t.Fatalf("forgery while pending not read: %+v %v", c.Foreign, got)
	}
	if l := b.latestStatuses(); l != "pending by foureyes" {
		t.Fatalf("latest statuses: %s", l)
	}
}

// TestStatusesForgedWhileSuccessAreOutVoted: foureyes said success and
// left the statuses unread since; mallory posts a "foureyes" success and
// the approval is revoked. The evaluation does not read the statuses (its
// own success is the latest as far as it knows), but the new verdict
// differs from it, so foureyes posts pending over the forgery.
func TestStatusesForgedWhileSuccessAreOutVoted(t *testing.T) {
	b := newBudgetEnv(t)
	b.fake.Approve(projectID, mrIID, idBob)
	b.evaluate()
	b.clock = b.clock.Add(10 * time.Second)
	if _, err := b.fake.PostStatus(projectID, headSHA, idMallory, "foureyes", "feature", "success"); err != nil {
		t.Fatal(err)
	}
	b.fake.Unapprove(projectID, mrIID, idBob)
	_, got := b.evaluate()
	if readsStatuses(got) {
		t.Errorf("statuses read although foureyes' own success was the latest it knew: %v", got)
	}
	if l := b.latestStatuses(); l != "pending by foureyes" {
		t.Fatalf("the forged success stands over the revoked approval: %s", l)
	}
}

// TestStatusesPipelineHookForcesARead: a forged "failed" while foureyes
// says success changes the pipeline's status, so GitLab sends a Pipeline
// Hook; the evaluation it causes (ChecksChanged first, as bot.Service
// does) reads the statuses, audits the forgery and re-asserts success.
func TestStatusesPipelineHookForcesARead(t *testing.T) {
	b := newBudgetEnv(t)
	b.fake.Approve(projectID, mrIID, idBob)
	b.evaluate()
	b.clock = b.clock.Add(10 * time.Second)
	if _, err := b.fake.PostStatus(projectID, headSHA, idMallory, "foureyes", "feature", "failed"); err != nil {
		t.Fatal(err)
	}
	evs, err := b.forge.Decode("Pipeline Hook", []byte(`{"object_kind":"pipeline","object_attributes":{"status":"failed"},
		"project":{"id":42,"path_with_namespace":"acme/app"},"merge_request":{"iid":7,"target_branch":"main"}}`))
	if err != nil || len(evs) != 1 || !evs[0].Change.ChecksChanged {
		t.Fatalf("pipeline hook: %+v, %v", evs, err)
	}
	b.forge.ChecksChanged(b.ref())
	c, got := b.evaluate()
	if !readsStatuses(got) || len(c.Foreign) != 1 {
		t.Fatalf("a Pipeline Hook did not make the next evaluation read the statuses: %+v %v", c.Foreign, got)
	}
	if l := b.latestStatuses(); l != "success by foureyes" {
		t.Fatalf("latest statuses: %s", l)
	}
}

// replicaBPostedPending sets up two replicas sharing the store: A judged
// bob's approval and posted success; then B, judging the revoked approval,
// posted pending. It returns the environment (on B) and replica A.
func replicaBPostedPending(t *testing.T) (*budgetEnv, *gitlab.Forge) {
	t.Helper()
	b := newBudgetEnv(t)
	replicaA := b.forge
	b.fake.Approve(projectID, mrIID, idBob)
	b.evaluate()

	b.clock = b.clock.Add(5 * time.Second)
	b.forge = b.forge2()
	b.fake.Unapprove(projectID, mrIID, idBob)
	b.evaluate()
	if l := b.latestStatuses(); l != "pending by foureyes" {
		t.Fatalf("replica B: %s", l)
	}
	return b, replicaA
}

// TestStatusesAnotherReplicaPosted: replica A remembers posting success;
// replica B then judged the revoked approval and posted pending; mallory
// forges a success. A, judging pending, does not read, but posts pending,
// since it differs from what A remembers: the forgery does not stand.
func TestStatusesAnotherReplicaPosted(t *testing.T) {
	b, replicaA := replicaBPostedPending(t)

	b.clock = b.clock.Add(5 * time.Second)
	if _, err := b.fake.PostStatus(projectID, headSHA, idMallory, "foureyes", "feature", "success"); err != nil {
		t.Fatal(err)
	}
	b.forge = replicaA
	b.evaluate()
	if l := b.latestStatuses(); l != "pending by foureyes" {
		t.Fatalf("replica A left the forgery standing: %s", l)
	}
}

// TestStatusesStaleMemoryYieldsToTheStore: replica A remembers posting
// success; replica B posted pending since (the approval was revoked); bob
// approves again and A judges success. A's memory says its success is the
// latest, the shared report ID says pending: A posts success.
func TestStatusesStaleMemoryYieldsToTheStore(t *testing.T) {
	b, replicaA := replicaBPostedPending(t)

	b.clock = b.clock.Add(5 * time.Second)
	b.fake.Approve(projectID, mrIID, idBob)
	b.forge = replicaA
	b.evaluate()
	if l := b.latestStatuses(); l != "success by foureyes" {
		t.Fatalf("replica A trusted its memory over the shared report ID: %s", l)
	}
}

// TestStatusesPipelineHookThroughTheService: the same through bot.Service
// handling the decoded Pipeline Hook: the evaluation it causes reads the
// statuses and out-votes the forged failure.
func TestStatusesPipelineHookThroughTheService(t *testing.T) {
	b := newPolicyEnv(t)
	svc := b.service()
	if st, _ := b.judge(svc); st != "success" {
		t.Fatalf("first: %s", st)
	}
	b.clock = b.clock.Add(10 * time.Second)
	if _, err := b.fake.PostStatus(projectID, headSHA, idMallory, "foureyes", "feature", "failed"); err != nil {
		t.Fatal(err)
	}
	evs, err := b.forge.Decode("Pipeline Hook", []byte(`{"object_kind":"pipeline","object_attributes":{"status":"failed"},
		"project":{"id":42,"path_with_namespace":"acme/app"},"merge_request":{"iid":7,"target_branch":"main"}}`))
	if err != nil {
		t.Fatal(err)
	}
	b.fake.ResetRequests()
	if err := svc.HandleFolded(b.ctx, evs); err != nil {
		t.Fatal(err)
	}
	if !readsStatuses(b.fake.Requests()) {
		t.Fatalf("the Pipeline Hook's evaluation did not read the statuses: %v", b.fake.Requests())
	}
	if l := b.latestStatuses(); l != "success by foureyes" {
		t.Fatalf("latest statuses: %s", l)
	}
}
