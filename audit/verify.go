package audit

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"time"
)

// Problems Verify reports; match them with errors.Is.
var (
	// ErrHashMismatch: a record's content does not hash to its Hash.
	ErrHashMismatch = errors.New("hash mismatch")
	// ErrBrokenLink: a record's PrevHash is not the previous record's Hash.
	ErrBrokenLink = errors.New("prev_hash does not match")
	// ErrSeqGap: Seq does not increase by exactly 1.
	ErrSeqGap = errors.New("seq does not follow")
	// ErrDowngrade: an unkeyed record follows a keyed one. Only records
	// written before the trail was first keyed may be unkeyed; a later one
	// was re-hashed by someone without the key.
	ErrDowngrade = errors.New("unkeyed record after keyed records")
	// ErrKeyRequired: the trail holds keyed records and no key was given.
	ErrKeyRequired = errors.New("audit key required")
	// ErrUnanchored: verifying with a key, the trail holds records but none
	// is keyed. A running server keys the trail at start, so a trail
	// without keyed records was either never served with a key or was
	// rewritten whole by someone without it.
	ErrUnanchored = errors.New("no keyed record")
	// ErrCheckpointMismatch: the record at a checkpoint's seq does not have
	// the checkpoint's head hash.
	ErrCheckpointMismatch = errors.New("record differs from checkpoint")
	// ErrShorterThanCheckpoint: the trail ends before a checkpoint's seq
	// (its newest records were deleted).
	ErrShorterThanCheckpoint = errors.New("trail shorter than checkpoint")
)

// ChainError names the first record of a trail that fails verification.
type ChainError struct {
	Seq     int64  // the bad record's Seq as stored
	PrevSeq int64  // Seq of the record before it (0 for the first)
	Problem error  // ErrHashMismatch, ErrBrokenLink or ErrSeqGap
	Detail  string // human-readable explanation
}

func (e *ChainError) Error() string { return fmt.Sprintf("record seq %d: %s", e.Seq, e.Detail) }

// Unwrap lets errors.Is match the Problem.
func (e *ChainError) Unwrap() error { return e.Problem }

// Verifier checks a trail one record at a time, so a store can stream
// millions of records through it. The zero value expects a complete,
// unkeyed trail: the first record has Seq 1 and PrevHash Genesis. Use
// NewVerifier to check keyed records, and call End after the last record.
type Verifier struct {
	chain    *Chain
	n        int
	unkeyed  int
	keyed    bool // a keyed record was seen: no unkeyed one may follow
	lastSeq  int64
	lastHash string
	want     []Checkpoint
}

// NewVerifier returns a Verifier that checks keyed records with c. Unkeyed
// records are accepted only before the first keyed one (trails written
// before keys existed), and End fails unless at least one record is keyed.
func NewVerifier(c *Chain) *Verifier { return &Verifier{chain: c} }

// Expect makes v check that the record at cp.Seq has hash cp.Head, and End
// fail when the trail ends before cp.Seq. Verify cp's signature first
// (Chain.VerifyCheckpoint): Expect trusts it.
func (v *Verifier) Expect(cp Checkpoint) { v.want = append(v.want, cp) }

// StartAfter makes v verify a segment of a trail that continues after the
// record with the given seq and hash (e.g. an incremental export).
func (v *Verifier) StartAfter(seq int64, hash string) {
	v.lastSeq, v.lastHash = seq, hash
}

// Add checks r against its own content and the record before it. After the
// first error, the trail is broken and further calls are meaningless.
func (v *Verifier) Add(r Record) error {
	prev := "the start of the trail"
	if v.lastSeq > 0 {
		prev = fmt.Sprintf("record %d", v.lastSeq)
	}
	fail := func(p error, detail string) error {
		return &ChainError{Seq: r.Seq, PrevSeq: v.lastSeq, Problem: p, Detail: detail}
	}
	keyed := IsKeyed(r.Hash)
	switch {
	case keyed && v.chain == nil:
		return fail(ErrKeyRequired, "record is chained with a key; verify with the audit key (FOUREYES_AUDIT_KEY)")
	case !keyed && v.keyed:
		return fail(ErrDowngrade, fmt.Sprintf("unkeyed hash after keyed records (re-hashed without the key) following %s", prev))
	}
	var hashOK bool
	if keyed {
		hashOK = hmacEqual(v.chain.Hash(r), r.Hash)
	} else {
		hashOK = Hash(r) == r.Hash
	}
	linkOK := r.PrevHash == v.lastHash
	edited := "hash mismatch (content edited)"
	if keyed {
		edited = "hash mismatch (content edited, re-hashed without the key, or another audit key)"
	}
	switch {
	case !hashOK && !linkOK:
		// Both broken: the row was moved here from elsewhere (a swap) or its
		// prev_hash column itself was edited.
		return fail(ErrHashMismatch, fmt.Sprintf("hash mismatch and prev_hash does not match %s (reordered or replaced)", prev))
	case !hashOK:
		return fail(ErrHashMismatch, edited)
	case !linkOK:
		return fail(ErrBrokenLink, fmt.Sprintf("prev_hash does not match %s (deleted or reordered)", prev))
	case r.Seq != v.lastSeq+1:
		// Hash and link are fine but the numbering is not: only possible if
		// the chain was rebuilt by something other than a store.
		return fail(ErrSeqGap, fmt.Sprintf("seq does not follow %d (renumbered)", v.lastSeq))
	}
	for _, cp := range v.want {
		if cp.Seq == r.Seq && cp.Head != r.Hash {
			return fail(ErrCheckpointMismatch, fmt.Sprintf("hash %s is not the head %s signed in the checkpoint of %s (the trail was rewritten)", clipHash(r.Hash), clipHash(cp.Head), cp.Time.UTC().Format(time.RFC3339)))
		}
	}
	v.n++
	if keyed {
		v.keyed = true
	} else {
		v.unkeyed++
	}
	v.lastSeq, v.lastHash = r.Seq, r.Hash
	return nil
}

// End reports what only the end of the trail shows: that it is shorter than
// an expected checkpoint, or (with a key) that no record is keyed.
func (v *Verifier) End() error {
	for _, cp := range v.want {
		if v.lastSeq < cp.Seq {
			return &ChainError{Seq: v.lastSeq, PrevSeq: v.lastSeq, Problem: ErrShorterThanCheckpoint,
				Detail: fmt.Sprintf("trail ends at seq %d, shorter than the checkpoint of %s at seq %d (newest records deleted)", v.lastSeq, cp.Time.UTC().Format(time.RFC3339), cp.Seq)}
		}
	}
	if v.chain != nil && v.n > 0 && !v.keyed {
		return &ChainError{Seq: v.lastSeq, PrevSeq: v.lastSeq, Problem: ErrUnanchored,
			Detail: fmt.Sprintf("none of the %d records is chained with the audit key (never served with a key, or rewritten whole)", v.n)}
	}
	return nil
}

// Unkeyed is the number of verified records chained without a key (written
// before the trail was keyed).
func (v *Verifier) Unkeyed() int { return v.unkeyed }

func hmacEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

func clipHash(h string) string {
	if len(h) > len(KeyedPrefix)+16 {
		return h[:len(KeyedPrefix)+16] + "…"
	}
	return h
}

// Count is the number of records verified so far.
func (v *Verifier) Count() int { return v.n }

// Head returns the seq and hash of the last verified record. Keeping the
// head somewhere else (a ticket, a chat message, an off-site copy) is what
// detects truncation of the newest records, which a chain cannot see.
func (v *Verifier) Head() (seq int64, hash string) { return v.lastSeq, v.lastHash }

// Verify checks the unkeyed records next yields, in order, until it reports
// false. It returns the number of records that verified and, on failure, a
// *ChainError naming the first bad record (or next's error, wrapped).
func Verify(next func() (Record, bool, error)) (int, error) {
	return (&Verifier{}).Run(next)
}

// Run feeds v the records next yields until it reports false, then calls
// End. It returns the number of records verified and the first problem.
func (v *Verifier) Run(next func() (Record, bool, error)) (int, error) {
	for {
		r, ok, err := next()
		if err != nil {
			return v.Count(), fmt.Errorf("read audit record after seq %d: %w", v.lastSeq, err)
		}
		if !ok {
			return v.Count(), v.End()
		}
		if err := v.Add(r); err != nil {
			return v.Count(), err
		}
	}
}

// VerifySlice is Verify over records already in memory.
func VerifySlice(records []Record) (int, error) {
	i := 0
	return Verify(func() (Record, bool, error) {
		if i == len(records) {
			return Record{}, false, nil
		}
		i++
		return records[i-1], true, nil
	})
}

// Link is Chain.Link without a key: the unkeyed chaining of trails written
// before audit keys existed.
func Link(r Record, prevSeq int64, prevHash string) Record {
	return (*Chain)(nil).Link(r, prevSeq, prevHash)
}
