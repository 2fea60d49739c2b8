package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func keyedChain(t *testing.T, c *Chain, n int) []Record {
	t.Helper()
	recs := chain(t, n) // unkeyed content, re-linked with the key
	var prevSeq int64
	prevHash := Genesis
	for i := range recs {
		recs[i] = c.Link(recs[i], prevSeq, prevHash)
		prevSeq, prevHash = recs[i].Seq, recs[i].Hash
	}
	return recs
}

func mustChain(t *testing.T, key string) *Chain {
	t.Helper()
	c, err := NewChain([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewChainRefusesShortKeys(t *testing.T) {
	if _, err := NewChain([]byte("short")); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

func TestKeyedHashIsHMACOfCanonical(t *testing.T) {
	c := mustChain(t, strings.Repeat("k", 32))
	r := chain(t, 1)[0]
	h := c.Hash(r)
	// Independently: HMAC-SHA256(key, Canonical(r)), hex, with the prefix.
	want := KeyedPrefix + hmacHex([]byte(strings.Repeat("k", 32)), Canonical(r))
	if h != want {
		t.Fatalf("keyed hash %s, want %s", h, want)
	}
	if other := mustChain(t, strings.Repeat("j", 32)); other.Hash(r) == h {
		t.Fatal("two keys give the same hash")
	}
}

func TestCheckpointSignAndVerify(t *testing.T) {
	c := mustChain(t, strings.Repeat("k", 32))
	recs := keyedChain(t, c, 5)
	cp := c.Checkpoint(5, recs[4].Hash, time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC))
	parsed, err := ParseCheckpoint(MarshalCheckpoint(cp))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyCheckpoint(parsed); err != nil {
		t.Fatalf("honest checkpoint: %v", err)
	}
	// A checkpoint edited to vouch for a shorter (truncated) trail.
	forged := parsed
	forged.Seq, forged.Head = 3, recs[2].Hash
	if err := c.VerifyCheckpoint(forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("edited checkpoint: %v", err)
	}
	// A checkpoint the attacker signed with a key of their own.
	mine := mustChain(t, strings.Repeat("m", 32)).Checkpoint(3, recs[2].Hash, cp.Time)
	if err := c.VerifyCheckpoint(mine); !errors.Is(err, ErrForeignKey) {
		t.Fatalf("foreign checkpoint: %v", err)
	}
	// ...even when it claims our public key.
	mine.PublicKey = base64.StdEncoding.EncodeToString(c.PublicKey())
	if err := c.VerifyCheckpoint(mine); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("foreign signature under our public key: %v", err)
	}
	for _, bad := range []string{`{}`, `{"version":1,"seq":1}`, `{"version":2,"seq":1,"head":"h","time":"2026-01-01T00:00:00Z","public_key":"p","signature":"s"}`, string(MarshalCheckpoint(cp)) + `{}`, strings.Replace(string(MarshalCheckpoint(cp)), `"seq"`, `"extra": 1, "seq"`, 1)} {
		if _, err := ParseCheckpoint([]byte(bad)); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("ParseCheckpoint(%.60s) = %v", bad, err)
		}
	}
}

func TestVerifierWithCheckpoint(t *testing.T) {
	c := mustChain(t, strings.Repeat("k", 32))
	recs := keyedChain(t, c, 6)
	cp := c.Checkpoint(4, recs[3].Hash, time.Now())
	run := func(rs []Record) error {
		v := NewVerifier(c)
		v.Expect(cp)
		i := 0
		_, err := v.Run(func() (Record, bool, error) {
			if i == len(rs) {
				return Record{}, false, nil
			}
			i++
			return rs[i-1], true, nil
		})
		return err
	}
	if err := run(recs); err != nil {
		t.Fatalf("honest trail: %v", err)
	}
	if err := run(recs[:3]); !errors.Is(err, ErrShorterThanCheckpoint) {
		t.Fatalf("truncated: %v", err)
	}
	// Records re-linked from scratch with a different key end in a
	// different head at the checkpoint's seq... and fail their own MACs.
	other := keyedChain(t, mustChain(t, strings.Repeat("x", 32)), 6)
	if err := run(other); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("foreign chain: %v", err)
	}
	// An unkeyed trail (the attacker's rewrite) under a key.
	if err := run(chain(t, 6)); !errors.Is(err, ErrCheckpointMismatch) {
		t.Fatalf("unkeyed rewrite: %v", err)
	}
	v := NewVerifier(c)
	for _, r := range chain(t, 3) {
		if err := v.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.End(); !errors.Is(err, ErrUnanchored) {
		t.Fatalf("unkeyed only: %v", err)
	}
	// The zero Verifier (no key) cannot vouch for keyed records.
	var bare Verifier
	if err := bare.Add(recs[0]); !errors.Is(err, ErrKeyRequired) {
		t.Fatalf("keyed record without key: %v", err)
	}
}

func hmacHex(key, msg []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}
