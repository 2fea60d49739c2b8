package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
	if note := e.note(mr.IID); !strings.Contains(note, "more than 1000 changed files") || !strings.Contains(note, "split the") {
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

// statusesIn returns foureyes' own latest status on sha in a project.
func (e *glE2E) statusesIn(project int, sha string) []fakegitlab.Status {
	var out []fakegitlab.Status
	for _, s := range e.fake.Statuses(project, sha) {
		if s.Name == "foureyes" && s.AuthorID == glBot && !s.Retried {
			out = append(out, s)
		}
	}
	return out
}

// A merge request from a fork: its status belongs on the commit of the
// source branch, in the fork; when the token cannot write there, on the
// target project's merge request ref, and the note says so.
func TestGitLabForkMergeRequestStatus(t *testing.T) {
	const fork = 77
	for _, canWrite := range []bool{true, false} {
		t.Run(fmt.Sprintf("token writes to fork: %v", canWrite), func(t *testing.T) {
			e := newGLE2E(t)
			e.fake.AddProject(fakegitlab.Project{ID: fork, PathWithNamespace: "alice/gitlab-test", DefaultBranch: glTarget})
			if canWrite {
				e.fake.SetMember(fork, glBot, fakegitlab.Developer)
			}
			mr := e.openMRWith(func(m *fakegitlab.MergeRequest) { m.SourceProjectID = fork }, "app/main.go")
			e.approve(mr, glBob)
			if err := e.sb.Drain(context.Background(), 30*time.Second); err != nil {
				t.Fatal(err)
			}
			inFork, inTarget := e.statusesIn(fork, mr.SHA), e.statusesIn(glProject, mr.SHA)
			note := e.note(mr.IID)
			if canWrite {
				if len(inFork) == 0 || len(inTarget) != 0 {
					t.Fatalf("statuses in fork %+v, in target %+v; want them in the fork only", inFork, inTarget)
				}
				if last := inFork[len(inFork)-1]; last.State != "success" || last.Ref != mr.SourceBranch {
					t.Fatalf("fork status %+v; want success on %s", last, mr.SourceBranch)
				}
				if strings.Contains(note, "fork") {
					t.Errorf("the note talks of a fallback that did not happen:\n%s", note)
				}
				return
			}
			if len(inTarget) == 0 || len(inFork) != 0 {
				t.Fatalf("statuses in fork %+v, in target %+v; want the target fallback", inFork, inTarget)
			}
			want := fmt.Sprintf("refs/merge-requests/%d/head", mr.IID)
			if last := inTarget[len(inTarget)-1]; last.State != "success" || last.Ref != want {
				t.Fatalf("target status %+v; want success on %s", last, want)
			}
			if !strings.Contains(note, "fork that foureyes' token cannot write to") {
				t.Errorf("the note does not say the status went to the target project:\n%s", note)
			}
		})
	}
}

// GitLab refuses a status whose target_url is over 255 characters: a long
// project URL makes the signed details link that long. The status is still
// posted (without the link), and the note carries the link.
func TestGitLabLongDetailsLinkStillPostsStatus(t *testing.T) {
	e := newGLE2E(t)
	e.n++
	head := glSHA(t.Name())
	mr := fakegitlab.MergeRequest{IID: e.n, Title: "change", AuthorID: glAlice, SourceBranch: "f", TargetBranch: glTarget, SHA: head,
		Commits: []fakegitlab.Commit{{ID: head, Message: "change", AuthorName: "Alice", AuthorEmail: "alice@example.com"}},
		Diffs:   []fakegitlab.Diff{{OldPath: "app/a.go", NewPath: "app/a.go", Diff: "+x\n"}}}
	e.fake.AddMergeRequest(glProject, mr)
	hook := e.mrHook(mr, "open", glAlice, "")
	obj(hook, "project")["web_url"] = "https://gitlab.example.com/" + strings.Repeat("very-long-group-name/", 8) + "gitlab-test"
	e.deliver(hook)
	e.approve(mr, glBob)
	st := e.status(mr.SHA)
	if st.State != "success" || strings.Contains(st.TargetURL, "/details/") || !strings.Contains(st.TargetURL, "/-/merge_requests/") {
		t.Fatalf("status %+v; want success linking the merge request", st)
	}
	if note := e.note(mr.IID); !strings.Contains(note, "[Details of this verdict](") || !strings.Contains(note, "/details/") {
		t.Fatalf("the note does not link the details page:\n%s", note)
	}
}

// Older GitLab matches a user search against e-mails by substring: the
// commit e-mail sam@example.com finds eve (public e-mail xsam@example.com).
// Only an exact e-mail match links a commit to an account; otherwise the
// identity is reported unverified rather than pinned on the wrong person.
func TestGitLabPartialEmailMatchDoesNotLinkCommit(t *testing.T) {
	e := newGLE2E(t)
	e.fake.SetPartialEmailSearch(true)
	e.fake.AddUser(fakegitlab.User{ID: 600, Username: "eve", PublicEmail: "xsam@example.com"})
	e.fake.SetMember(glProject, 600, fakegitlab.Developer)
	mr := e.openMRWith(func(m *fakegitlab.MergeRequest) {
		m.Commits[0].CommitterName, m.Commits[0].CommitterEmail = "Sam", "sam@example.com"
	}, "app/main.go")
	e.approve(mr, glBob)
	e.status(mr.SHA)
	note := e.note(mr.IID)
	if !strings.Contains(note, "Unverified identities") || !strings.Contains(note, "sam@example.com") {
		t.Fatalf("the commit e-mail was linked to an account on a partial match:\n%s", note)
	}
	if strings.Contains(note, "@eve") {
		t.Fatalf("eve is named although her e-mail is not the commit's:\n%s", note)
	}
}
