package audit

import (
	"bytes"
	"testing"
)

// FuzzFlatCanonical: whenever the shortcut takes data as already
// canonical, decoding and re-encoding it gives back the same bytes, so the
// shortcut never changes a hash.
func FuzzFlatCanonical(f *testing.F) {
	for _, s := range []string{
		`{"action":"opened","event":"pull_request","kind":"change","sender":"alice (1)"}`,
		`{}`,
		`{"a":"1","a":"2"}`,
		`{"b":"1","a":"2"}`,
		`{"a":"x y"}`,
		`{"a": "x"}`,
		`{"a":"<&>"}`,
		`{"a":"\u00e9"}`,
		`{"a":"é"}`,
		`{"a":1}`,
		`{"a":"1",}`,
		`{"a":"1"}x`,
		`{"":""}`,
		`{"a":"1","b":{"c":"2"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !flatCanonical(data) {
			return
		}
		got, err := reencode(data)
		if err != nil {
			t.Fatalf("taken as canonical but not valid JSON: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("taken as canonical:\n %s\nre-encoded:\n %s", data, got)
		}
	})
}

// TestFlatCanonicalTakesDeliveryRecords: the shortcut applies to what
// intake records (or it saves nothing), and not to data that re-encoding
// changes.
func TestFlatCanonicalTakesDeliveryRecords(t *testing.T) {
	for s, want := range map[string]bool{
		`{"action":"opened","event":"pull_request","kind":"change","sender":"alice (1)"}`: true,
		`{}`:                true,
		`{"b":"1","a":"2"}`: false, // reordered
		`{"a":"1","a":"2"}`: false, // the map keeps one
		`{"a": "x"}`:        false, // whitespace
		`{"a":"\u00e9"}`:    false, // escaped
		`{"a":1}`:           false, // not a string
	} {
		if got := flatCanonical([]byte(s)); got != want {
			t.Errorf("flatCanonical(%s) = %v, want %v", s, got, want)
		}
	}
}
