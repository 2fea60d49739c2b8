package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Checkpoint is a signed statement of a trail's head: the record with Seq
// had hash Head when the checkpoint was made at Time. Kept off-site, it
// detects what a hash chain alone cannot: a trail rewritten by someone with
// the key's help, or whose newest records were deleted.
//
// The signature is ed25519 over SignedText. The signing key is derived from
// the audit key (Chain.SigningKey), so there is one secret to keep; the
// public key is in every checkpoint so that an auditor who pinned it once can
// check signatures without the audit key.
type Checkpoint struct {
	Version   int       `json:"version"`
	Seq       int64     `json:"seq"`
	Head      string    `json:"head"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"key_id"`
	PublicKey string    `json:"public_key"` // base64 (standard) of the 32-byte ed25519 public key
	Signature string    `json:"signature"`  // base64 (standard) of the ed25519 signature of SignedText
}

// CheckpointVersion is the only Version this package writes and reads.
const CheckpointVersion = 1

// Problems of a checkpoint itself; match them with errors.Is.
var (
	ErrBadCheckpoint = errors.New("malformed checkpoint")
	ErrBadSignature  = errors.New("checkpoint signature does not verify")
	ErrForeignKey    = errors.New("checkpoint signed by another key")
)

// SignedText is the exact byte string signed, one "name: value" per line:
//
//	foureyes audit checkpoint v1
//	seq: 42
//	head: hmac-sha256:…
//	time: 2026-12-01T07:00:00Z   (UTC, RFC 3339 with nanoseconds trimmed)
//	key_id: 0123456789abcdef
func (cp Checkpoint) SignedText() []byte {
	var b bytes.Buffer
	b.WriteString("foureyes audit checkpoint v" + strconv.Itoa(cp.Version) + "\n")
	b.WriteString("seq: " + strconv.FormatInt(cp.Seq, 10) + "\n")
	b.WriteString("head: " + cp.Head + "\n")
	b.WriteString("time: " + cp.Time.UTC().Format(time.RFC3339Nano) + "\n")
	b.WriteString("key_id: " + cp.KeyID + "\n")
	return b.Bytes()
}

// SigningKey is the ed25519 key checkpoints are signed with: its seed is
// HMAC-SHA256(audit key, "foureyes audit checkpoint signing key v1").
func (c *Chain) SigningKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(c.mac([]byte(signingSeedLabel)))
}

// PublicKey is the public half of SigningKey.
func (c *Chain) PublicKey() ed25519.PublicKey {
	return c.SigningKey().Public().(ed25519.PublicKey)
}

// Checkpoint signs the head (seq, head) at time t. The caller must have
// verified the trail up to it: a checkpoint vouches for everything before.
func (c *Chain) Checkpoint(seq int64, head string, t time.Time) Checkpoint {
	cp := Checkpoint{
		Version: CheckpointVersion,
		Seq:     seq,
		Head:    head,
		Time:    t.UTC(),
		KeyID:   c.KeyID(),
	}
	priv := c.SigningKey()
	cp.PublicKey = base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	cp.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, cp.SignedText()))
	return cp
}

// VerifyCheckpoint checks that cp was signed with c's key. The public key in
// cp is not trusted: anyone can sign with a key of their own.
func (c *Chain) VerifyCheckpoint(cp Checkpoint) error {
	if cp.PublicKey != base64.StdEncoding.EncodeToString(c.PublicKey()) {
		return fmt.Errorf("%w: key_id %q, this audit key is %q", ErrForeignKey, cp.KeyID, c.KeyID())
	}
	return VerifyCheckpointSignature(cp, c.PublicKey())
}

// VerifyCheckpointSignature checks cp's signature with a public key the
// verifier already trusts (e.g. one pinned from an earlier checkpoint).
func VerifyCheckpointSignature(cp Checkpoint, pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(cp.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is not a base64 ed25519 signature", ErrBadCheckpoint)
	}
	if !ed25519.Verify(pub, cp.SignedText(), sig) {
		return ErrBadSignature
	}
	return nil
}

// ParseCheckpoint decodes a checkpoint file strictly: unknown members, a
// missing member or another version are errors, never a checkpoint that
// vouches for less than it seems to.
func ParseCheckpoint(data []byte) (Checkpoint, error) {
	var cp Checkpoint
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cp); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	if dec.More() {
		return Checkpoint{}, fmt.Errorf("%w: more than one JSON value", ErrBadCheckpoint)
	}
	switch {
	case cp.Version != CheckpointVersion:
		return Checkpoint{}, fmt.Errorf("%w: version %d, want %d", ErrBadCheckpoint, cp.Version, CheckpointVersion)
	case cp.Seq < 1:
		return Checkpoint{}, fmt.Errorf("%w: seq %d", ErrBadCheckpoint, cp.Seq)
	case cp.Head == "", cp.Time.IsZero(), cp.PublicKey == "", cp.Signature == "":
		return Checkpoint{}, fmt.Errorf("%w: head, time, public_key and signature are required", ErrBadCheckpoint)
	}
	return cp, nil
}

// MarshalCheckpoint is the file form of cp: indented JSON and a newline.
func MarshalCheckpoint(cp Checkpoint) []byte {
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("audit: encode checkpoint: %v", err)) // only strings, ints and a time
	}
	return append(b, '\n')
}
