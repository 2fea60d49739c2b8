package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Genesis is the PrevHash of the first record of a trail.
const Genesis = ""

// canonicalRecord fixes the field order of the hashed encoding. It must never
// be reordered or have fields renamed: every stored hash depends on it.
type canonicalRecord struct {
	Seq          int64           `json:"seq"`
	Time         string          `json:"time"`
	Kind         string          `json:"kind"`
	Forge        string          `json:"forge"`
	Repo         string          `json:"repo"`
	Change       int             `json:"change"`
	HeadSHA      string          `json:"head_sha"`
	DeliveryID   string          `json:"delivery_id"`
	PolicyDigest string          `json:"policy_digest"`
	Verdict      string          `json:"verdict"`
	Data         json.RawMessage `json:"data"`
	PrevHash     string          `json:"prev_hash"`
}

// Canonical returns the bytes Hash digests: one JSON object with exactly these
// members in this order, no insignificant whitespace and no HTML escaping:
//
//	seq, time, kind, forge, repo, change, head_sha, delivery_id,
//	policy_digest, verdict, data, prev_hash
//
// Every member is always present (empty strings and 0 included). time is
// Time in UTC formatted as RFC 3339 with nanoseconds and trailing zeros
// removed (Go's time.RFC3339Nano). data is Data re-encoded with object keys
// sorted and whitespace removed (numbers keep their literal text), or null
// when Data is empty; Data that is not valid JSON is encoded as a JSON
// string of its bytes so that Hash is total. Hash is excluded: it is what is
// being computed.
//
// An auditor can recompute a hash without this package: build that object,
// then take the lowercase hex SHA-256 of it.
func Canonical(r Record) []byte {
	c := canonicalRecord{
		Seq:          r.Seq,
		Time:         r.Time.UTC().Format(time.RFC3339Nano),
		Kind:         r.Kind,
		Forge:        r.Forge,
		Repo:         r.Repo,
		Change:       r.Change,
		HeadSHA:      r.HeadSHA,
		DeliveryID:   r.DeliveryID,
		PolicyDigest: r.PolicyDigest,
		Verdict:      r.Verdict,
		Data:         canonicalData(r.Data),
		PrevHash:     r.PrevHash,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		// Every field is a string, an integer or already-valid JSON, so
		// encoding cannot fail; reaching this is a bug in canonicalData.
		panic(fmt.Sprintf("audit: canonical encoding failed: %v", err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// Hash returns the lowercase hex SHA-256 of Canonical(r).
func Hash(r Record) string {
	sum := sha256.Sum256(Canonical(r))
	return hex.EncodeToString(sum[:])
}

// CanonicalData re-encodes a JSON document with sorted object keys and no
// insignificant whitespace. Stores keep Data in this form so that what they
// return is byte-for-byte what was hashed.
func CanonicalData(data json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	if flatCanonical(data) {
		return bytes.Clone(data), nil
	}
	return reencode(data)
}

// flatCanonical reports whether data is an object of string members
// already in the form reencode gives: no whitespace, keys in increasing
// byte order, keys and values of printable ASCII without '"' or '\' (so
// that no escaping can differ). Every accepted delivery's record has such
// data, and decoding and re-encoding it was a sixth of the server's
// allocations; FuzzFlatCanonical holds the shortcut to reencode's answer.
func flatCanonical(data []byte) bool {
	if len(data) < 2 || data[0] != '{' || data[len(data)-1] != '}' {
		return false
	}
	rest := data[1 : len(data)-1]
	var prev []byte
	for i := 0; len(rest) > 0; i++ {
		if i > 0 {
			if rest[0] != ',' {
				return false
			}
			rest = rest[1:]
		}
		key, after, ok := plainString(rest)
		if !ok || (i > 0 && bytes.Compare(key, prev) <= 0) || len(after) == 0 || after[0] != ':' {
			return false
		}
		if _, rest, ok = plainString(after[1:]); !ok {
			return false
		}
		prev = key
	}
	return true
}

// plainString splits a leading JSON string of printable ASCII without
// escapes from b.
func plainString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[1:i], b[i+1:], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// reencode is CanonicalData's general case.
func reencode(data json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	// UseNumber keeps numbers as their literal text: converting through
	// float64 would change large integers and so the hash.
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("audit data is not valid JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("audit data holds more than one JSON value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// encoding/json writes map keys in sorted order, which is what makes
	// the result canonical.
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("re-encode audit data: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func canonicalData(data json.RawMessage) json.RawMessage {
	c, err := CanonicalData(data)
	if err != nil {
		s, _ := json.Marshal(string(data))
		return s
	}
	if c == nil {
		return json.RawMessage("null")
	}
	return c
}
