package gitlab_test

import (
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
)

func note(body string, edit func(oa map[string]any)) func(map[string]any) {
	return func(m map[string]any) {
		oa := m["object_attributes"].(map[string]any)
		oa["note"] = body
		if edit != nil {
			edit(oa)
		}
	}
}

func TestDecodeBreakGlassNote(t *testing.T) {
	ev := decodeOne(t, "Note Hook", derive(t, "note.merge_request.json", note("Context.\n/foureyes break-glass db failover INC-4", nil)))
	bg := ev.BreakGlass
	if ev.Kind != bot.EventBreakGlass || bg == nil || ev.Change.Number != 1 || ev.Change.HeadSHA != "562e173be03b8ff2efb05345d12df18815438a4b" || ev.Change.BaseRef != "markdown" {
		t.Fatalf("event %+v %+v", ev, ev.Change)
	}
	if bg.Reason != "db failover INC-4" || bg.Confirm || bg.CommentID != 1244 || bg.Author.Login != "root" || bg.Author.ID != 1 ||
		!bg.At.Equal(time.Date(2015, 5, 17, 18, 21, 36, 0, time.UTC)) || bg.URL == "" {
		t.Errorf("command %+v", bg)
	}
	if ev := decodeOne(t, "Note Hook", derive(t, "note.merge_request.json", note("/foureyes break-glass confirm", nil))); !ev.BreakGlass.Confirm {
		t.Errorf("confirm: %+v", ev.BreakGlass)
	}
	wantIgnored(t, "Note Hook", derive(t, "note.merge_request.json", note("/foureyes break-glass confirm", func(oa map[string]any) { oa["action"] = "update" })))
	wantIgnored(t, "Note Hook", derive(t, "note.merge_request.json", note("@root, your break-glass comment did not count\n"+bot.ReplyMarker, nil)))
	wantIgnored(t, "Note Hook", derive(t, "note.merge_request.json", note("/foureyes break-glass x", func(oa map[string]any) { oa["system"] = true })))
	// Any other note still re-evaluates the merge request.
	if ev := decodeOne(t, "Note Hook", derive(t, "note.merge_request.json", note("> /foureyes break-glass quoted", nil))); ev.Kind != bot.EventChange {
		t.Errorf("quoted command: %s", ev.Kind)
	}
}
