package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/foureyes-dev/foureyes/internal/fakegitlab"
)

// Issue 11 on GitLab: facts GitLab serves incomplete never pass.

const glInfraPolicy = `version: 1
categories:
  infra:
    paths: ["deploy/**"]
    approvals: 1
    reviewers: { teams: ["gitlabhq/sre"] }
  code:
    paths: ["**"]
    approvals: 1
`

// The attack: an infra file hidden past GitLab's diff limit (the fake
// lists the first 1,000 files, as GitLab does by default) is never
// classified, so one non-SRE approval would pass it.
func TestGitLabDiffOverLimitFailsClosed(t *testing.T) {
	e := newGLE2E(t)
	e.policy(glInfraPolicy)
	files := make([]string, 0, fakegitlab.DefaultDiffFiles+1)
	for i := range fakegitlab.DefaultDiffFiles {
		files = append(files, fmt.Sprintf("app/f%04d.go", i))
	}
	files = append(files, "deploy/prod.yml")
	mr := e.openMR(files...)
	e.approve(mr, glBob)
	st := e.status(mr.SHA)
	if st.State != "failed" {
		t.Fatalf("status %s (%s); want failed: the infra file past the diff limit was never judged", st.State, st.Description)
	}
	if note := e.note(mr.IID); !strings.Contains(note, "more than 1000 changed files") || !strings.Contains(note, "split the change") {
		t.Fatalf("the note does not say why:\n%s", note)
	}
	// A later push that edits only the hidden file: still judged incomplete,
	// never success on a digest of the visible part.
	old := mr.SHA
	head := glSHA(t.Name() + "-2")
	e.fake.UpdateMergeRequest(glProject, mr.IID, func(m *fakegitlab.MergeRequest) {
		m.SHA = head
		m.Commits = append([]fakegitlab.Commit{{ID: head, Message: "more", AuthorName: "Alice", AuthorEmail: "alice@example.com"}}, m.Commits...)
		m.Diffs[len(m.Diffs)-1].Diff += "+replicas: 0\n"
	})
	mr.SHA = head
	e.deliver(e.mrHook(mr, "update", glAlice, old))
	if st := e.status(mr.SHA); st.State != "failed" {
		t.Fatalf("after a push to the hidden file: %s (%s)", st.State, st.Description)
	}
}

// The honest path beside it: at the limit exactly, the list is complete.
func TestGitLabDiffAtLimitIsJudged(t *testing.T) {
	e := newGLE2E(t)
	e.policy(glInfraPolicy)
	e.fake.SetDiffLimit(3)
	mr := e.openMR("app/a.go", "app/b.go", "deploy/prod.yml")
	e.approve(mr, glBob)
	e.approve(mr, glSam)
	if st := e.status(mr.SHA); st.State != "success" {
		t.Fatalf("status %s (%s); want success", st.State, st.Description)
	}
}
