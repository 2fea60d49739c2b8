package github

import (
	"bytes"
	"fmt"
	"strconv"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// members walks the object at dec, calling set with each member's name;
// set reads that member's value when the name is one it wants and says so,
// and every other value is skipped whole. The struct decoder looks every
// member name up twice, exactly and case-folded, before it can skip one.
// GitHub's repository, pull request and user objects have 20 to 100
// members of which foureyes reads a few, so in a pull_request payload
// those lookups cost as much as scanning the 28 KB. Walking them instead
// takes BenchmarkDecodePullRequest from 65 to 48 µs (117 to 87 µs when the
// machine is slow); FuzzMembersMatchStructDecoding holds the walk to what
// the struct decoder accepts and reads.
func members(dec *jsontext.Decoder, set func(name []byte) (bool, error)) error {
	switch k := dec.PeekKind(); k {
	case 'n':
		_, err := dec.ReadToken()
		return err
	case '{':
	default:
		return fmt.Errorf("expected an object, found %v", k)
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	var scratch []byte
	for dec.PeekKind() != '}' {
		raw, err := dec.ReadValue()
		if err != nil {
			return err
		}
		name := raw[1 : len(raw)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			if scratch, err = jsontext.AppendUnquote(scratch[:0], raw); err != nil {
				return err
			}
			name = scratch
		}
		done, err := set(name)
		if err != nil {
			return fmt.Errorf("%s: %w", strconv.Quote(string(name)), err)
		}
		if !done {
			if err := dec.SkipValue(); err != nil {
				return err
			}
		}
	}
	_, err := dec.ReadToken()
	return err
}

// member decodes the next value into v.
func member(dec *jsontext.Decoder, v any) (bool, error) {
	return true, json.UnmarshalDecode(dec, v)
}
