package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// KeyedPrefix starts the Hash (and so the next record's PrevHash) of every
// record chained with a key. Records without it are the unkeyed records of
// trails written before keys existed; they may only come before the first
// keyed record (see Verifier), so stripping the prefix and re-hashing with
// plain SHA-256 is detected as a downgrade.
const KeyedPrefix = "hmac-sha256:"

// MinKeyLen is the shortest audit key accepted, in bytes: a key an attacker
// could guess would let them re-hash an edited trail.
const MinKeyLen = 32

// Chain links records with a key kept outside the database, so that whoever
// can write the database (a DBA, someone holding the SQLite file) cannot
// recompute the hashes after editing, deleting or reordering records.
//
// A keyed hash is KeyedPrefix + lowercase hex HMAC-SHA256(key, Canonical(r)).
// A nil *Chain links unkeyed records (legacy: plain SHA-256, see Hash).
type Chain struct {
	key []byte
}

// NewChain returns a Chain keyed by key (at least MinKeyLen bytes).
func NewChain(key []byte) (*Chain, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("audit key is %d bytes, want at least %d (e.g. openssl rand -hex 32)", len(key), MinKeyLen)
	}
	return &Chain{key: append([]byte(nil), key...)}, nil
}

// IsKeyed reports whether hash was computed with a key.
func IsKeyed(hash string) bool { return strings.HasPrefix(hash, KeyedPrefix) }

// Keyed reports whether c chains with a key.
func (c *Chain) Keyed() bool { return c != nil }

// Hash returns r's keyed hash, or the unkeyed Hash(r) when c is nil.
func (c *Chain) Hash(r Record) string {
	if c == nil {
		return Hash(r)
	}
	return KeyedPrefix + hex.EncodeToString(c.mac(Canonical(r)))
}

// Link fills in r's Seq, PrevHash and Hash so that it follows the record
// with prevSeq and prevHash (0 and Genesis for the first record). Stores call
// it inside the transaction that serializes appends.
func (c *Chain) Link(r Record, prevSeq int64, prevHash string) Record {
	r.Seq, r.PrevHash = prevSeq+1, prevHash
	r.Hash = c.Hash(r)
	return r
}

// KeyID names the key without revealing it, so that an operator can tell
// which key a checkpoint or a trail needs.
func (c *Chain) KeyID() string {
	if c == nil {
		return ""
	}
	return hex.EncodeToString(c.mac([]byte(keyIDLabel))[:8])
}

// Labels of the other MACs made with the audit key. Canonical always starts
// with '{', so no label is ever the canonical form of a record: a MAC made
// for one purpose is never valid for another.
const (
	keyIDLabel       = "foureyes audit key id v1"
	signingSeedLabel = "foureyes audit checkpoint signing key v1"
)

func (c *Chain) mac(msg []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(msg)
	return m.Sum(nil)
}
