package github

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/internal/testfixtures"
)

// The struct-tag shapes the walked types replaced: decoding with them is
// the reference the walk must agree with.
type (
	tagUser struct {
		Login string `json:"login"`
		ID    int64  `json:"id"`
		Type  string `json:"type"`
	}
	tagRef struct {
		Ref  string `json:"ref"`
		SHA  string `json:"sha"`
		Repo *struct {
			FullName string `json:"full_name"`
		} `json:"repo"`
	}
	tagPull struct {
		Number       int       `json:"number"`
		State        string    `json:"state"`
		Title        string    `json:"title"`
		HTMLURL      string    `json:"html_url"`
		Draft        bool      `json:"draft"`
		Merged       bool      `json:"merged"`
		User         tagUser   `json:"user"`
		UpdatedAt    time.Time `json:"updated_at"`
		Head         tagRef    `json:"head"`
		Base         tagRef    `json:"base"`
		Commits      *int      `json:"commits"`
		ChangedFiles *int      `json:"changed_files"`
	}
	tagPayload struct {
		Repository *struct {
			ID            int64  `json:"id"`
			FullName      string `json:"full_name"`
			DefaultBranch string `json:"default_branch"`
			HTMLURL       string `json:"html_url"`
		} `json:"repository"`
		Sender      tagUser  `json:"sender"`
		PullRequest *tagPull `json:"pull_request"`
	}
	walkedPayload struct {
		Repository  *pRepo `json:"repository"`
		Sender      pUser  `json:"sender"`
		PullRequest *pPull `json:"pull_request"`
	}
)

func (r tagRef) walked() pRef {
	w := pRef{Ref: r.Ref, SHA: r.SHA}
	if r.Repo != nil {
		w.Repo = &pRepoName{FullName: r.Repo.FullName}
	}
	return w
}

func (p tagPayload) walked() walkedPayload {
	var w walkedPayload
	if r := p.Repository; r != nil {
		w.Repository = &pRepo{ID: r.ID, FullName: r.FullName, DefaultBranch: r.DefaultBranch, HTMLURL: r.HTMLURL}
	}
	w.Sender = pUser(p.Sender)
	if pr := p.PullRequest; pr != nil {
		w.PullRequest = &pPull{
			Number: pr.Number, State: pr.State, Title: pr.Title, HTMLURL: pr.HTMLURL,
			Draft: pr.Draft, Merged: pr.Merged, User: pUser(pr.User), UpdatedAt: pr.UpdatedAt,
			Head: pr.Head.walked(), Base: pr.Base.walked(), Commits: pr.Commits, ChangedFiles: pr.ChangedFiles,
		}
	}
	return w
}

// FuzzMembersMatchStructDecoding: the walked types accept exactly what the
// struct decoder accepts and read the same values from it, so the faster
// decoding changes no verdict and rejects no delivery.
func FuzzMembersMatchStructDecoding(f *testing.F) {
	for _, path := range testfixtures.Glob(f, "github", "*.json") {
		f.Add(testfixtures.Read(f, "github", filepath.Base(path)))
	}
	for _, s := range []string{
		`{"sender":{"log\u0069n":"esc","id":7,"type":"User"}}`,
		`{"sender":null,"repository":null,"pull_request":null}`,
		`{"sender":{"login":"a","login":"b"},"pull_request":{"user":{"id":1},"user":{"login":"c"}}}`,
		`{"sender":{"id":"7"}}`,
		`{"sender":{"id":1.5}}`,
		`{"sender":{"id":null,"login":null}}`,
		`{"sender":"alice"}`,
		`{"sender":[]}`,
		`{"sender":{"Login":"wrongcase"}}`,
		`{"pull_request":{"head":{"repo":{"full_name":"a/b","owner":{"login":{"deep":[1,2,{"x":null}]}}}}}}`,
		`{"pull_request":{"head":{"repo":{"full_name":"a/b","x":[1,}}}}`,
		`{"pull_request":{"commits":3,"changed_files":null,"updated_at":"2026-12-01T10:00:00Z"}}`,
		`{"pull_request":{"updated_at":"yesterday"}}`,
		`{"repository":{"id":1,"full_name":"o/r","default_branch":"main","html_url":"u"}} trailing`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var tagged tagPayload
		tagErr := unmarshal(body, &tagged)
		var walked walkedPayload
		walkErr := unmarshal(body, &walked)
		if (tagErr == nil) != (walkErr == nil) {
			t.Fatalf("struct decoding: %v; walked: %v", tagErr, walkErr)
		}
		if tagErr != nil {
			return
		}
		if want := tagged.walked(); !reflect.DeepEqual(walked, want) {
			t.Fatalf("walked\n %+v\nstruct decoding\n %+v", walked, want)
		}
	})
}
