package github_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/forge/github"
	"github.com/foureyes-dev/foureyes/internal/fakegithub"
	"github.com/foureyes-dev/foureyes/internal/testfixtures"
)

// prComment is issue_comment.created.with-installation.json as a comment
// on pull request 1: GitHub marks an issue that is a pull request with an
// "issue.pull_request" object (REST "Issues" docs); the example is a plain
// issue, so the key is added.
func prComment(t *testing.T, body string) map[string]any {
	m := fixture(t, "issue_comment.created.with-installation.json")
	set(t, m, "issue.pull_request", map[string]any{"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"})
	set(t, m, "comment.body", body)
	return m
}

func TestDecodeBreakGlassComment(t *testing.T) {
	e := newEnv(t, envOpt{})
	evs := decodeOne(t, e, "issue_comment", prComment(t, "Checkout is down.\r\n/foureyes break-glass  rollback blocked, INC-3 "))
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	ev := evs[0]
	bg := ev.BreakGlass
	if ev.Kind != bot.EventBreakGlass || ev.Change == nil || ev.Change.Number != 1 || ev.Change.HeadSHA != "" || bg == nil {
		t.Fatalf("event %+v", ev)
	}
	if bg.Confirm || bg.Reason != "rollback blocked, INC-3" || bg.CommentID != 492700400 || bg.Author.Login != "Codertocat" ||
		!bg.At.Equal(time.Date(2019, 5, 15, 15, 20, 21, 0, time.UTC)) || !strings.Contains(bg.URL, "issuecomment-492700400") || ev.Repo.Installation != 1 {
		t.Errorf("command %+v repo %+v", bg, ev.Repo)
	}
	if ev := decodeOne(t, e, "issue_comment", prComment(t, "/foureyes break-glass confirm"))[0]; !ev.BreakGlass.Confirm {
		t.Errorf("confirm: %+v", ev.BreakGlass)
	}
	bot := prComment(t, "/foureyes break-glass confirm")
	set(t, bot, "comment.user.type", "Bot")
	set(t, bot, "comment.user.login", "renovate[bot]")
	if ev := decodeOne(t, e, "issue_comment", bot)[0]; !ev.BreakGlass.Author.Bot {
		t.Errorf("a bot's comment lost its bot flag: %+v", ev.BreakGlass.Author)
	}
}

func TestDecodeCommentsThatNeedNoWork(t *testing.T) {
	e := newEnv(t, envOpt{})
	plain := fixture(t, "issue_comment.created.with-installation.json") // on an issue
	set(t, plain, "comment.body", "/foureyes break-glass on an issue")
	edited := prComment(t, "/foureyes break-glass edited in later")
	set(t, edited, "action", "edited")
	nullPR := prComment(t, "/foureyes break-glass x")
	set(t, nullPR, "issue.pull_request", nil)
	ours := prComment(t, "/foureyes break-glass x")
	set(t, ours, "comment.performed_via_github_app", map[string]any{"id": appID})
	for name, m := range map[string]map[string]any{
		"issue":     plain,
		"edited":    edited,
		"null pr":   nullPR,
		"no cmd":    prComment(t, "LGTM, but please run /foureyes break-glass later"),
		"quoted":    prComment(t, "> /foureyes break-glass quoted\nno"),
		"own reply": prComment(t, "@x, your break-glass comment did not count\n"+bot.ReplyMarker),
		"our app":   ours,
	} {
		if evs, err := e.forge.Decode("issue_comment", encode(t, m)); !errors.Is(err, bot.ErrIgnored) {
			t.Errorf("%s: %+v, %v; want ErrIgnored", name, evs, err)
		}
	}
	bad := prComment(t, "x")
	delete(bad, "comment")
	if _, err := e.forge.Decode("issue_comment", encode(t, bad)); err == nil || errors.Is(err, bot.ErrIgnored) {
		t.Errorf("comment-less payload: %v", err)
	}
}

// FuzzDecodeComment holds issue_comment decoding to its contract on any
// body: no panic; an event only for a pull request comment holding a
// command, naming the pull request; everything else ignored or an error.
func FuzzDecodeComment(f *testing.F) {
	f.Add(testfixtures.Read(f, "github", "issue_comment.created.with-installation.json"))
	f.Add([]byte(`{"action":"created","repository":{"full_name":"a/b"},"issue":{"number":3,"pull_request":{}},"comment":{"id":1,"body":"/foureyes break-glass x","user":{"login":"u"}}}`))
	f.Add([]byte(`{"action":"created","repository":{"full_name":"a/b"},"issue":{"number":-1,"pull_request":null},"comment":{"body":"/foureyes break-glass confirm"}}`))
	_, pemBytes, err := fakegithub.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	// Decoding makes no request: no fake server is needed.
	forge, err := github.New(github.Config{AppID: appID, PrivateKey: pemBytes})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := forge.Decode("issue_comment", body)
		if err != nil {
			if len(evs) != 0 {
				t.Fatalf("events with an error: %+v", evs)
			}
			return
		}
		for _, ev := range evs {
			if ev.Kind != bot.EventBreakGlass || ev.BreakGlass == nil || ev.Change == nil || ev.Change.Number <= 0 || ev.Repo.FullName == "" {
				t.Fatalf("incomplete event %+v", ev)
			}
		}
	})
}
