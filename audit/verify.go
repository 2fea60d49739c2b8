package audit

import (
	"errors"
	"fmt"
)

// Problems Verify reports; match them with errors.Is.
var (
	// ErrHashMismatch: a record's content does not hash to its Hash.
	ErrHashMismatch = errors.New("hash mismatch")
	// ErrBrokenLink: a record's PrevHash is not the previous record's Hash.
	ErrBrokenLink = errors.New("prev_hash does not match")
	// ErrSeqGap: Seq does not increase by exactly 1.
	ErrSeqGap = errors.New("seq does not follow")
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
// millions of records through it. The zero value expects a complete trail:
// the first record has Seq 1 and PrevHash Genesis.
type Verifier struct {
	n        int
	lastSeq  int64
	lastHash string
}

// StartAfter makes v verify a segment of a trail that continues after the
// record with the given seq and hash (e.g. an incremental export).
func (v *Verifier) StartAfter(seq int64, hash string) {
	v.lastSeq, v.lastHash = seq, hash
}

// Add checks r against its own content and the record before it. After the
// first error, the trail is broken and further calls are meaningless.
func (v *Verifier) Add(r Record) error {
	hashOK := Hash(r) == r.Hash
	linkOK := r.PrevHash == v.lastHash
	prev := "the start of the trail"
	if v.lastSeq > 0 {
		prev = fmt.Sprintf("record %d", v.lastSeq)
	}
	fail := func(p error, detail string) error {
		return &ChainError{Seq: r.Seq, PrevSeq: v.lastSeq, Problem: p, Detail: detail}
	}
	switch {
	case !hashOK && !linkOK:
		// Both broken: the row was moved here from elsewhere (a swap) or its
		// prev_hash column itself was edited.
		return fail(ErrHashMismatch, fmt.Sprintf("hash mismatch and prev_hash does not match %s (reordered or replaced)", prev))
	case !hashOK:
		return fail(ErrHashMismatch, "hash mismatch (content edited)")
	case !linkOK:
		return fail(ErrBrokenLink, fmt.Sprintf("prev_hash does not match %s (deleted or reordered)", prev))
	case r.Seq != v.lastSeq+1:
		// Hash and link are fine but the numbering is not: only possible if
		// the chain was rebuilt by something other than a store.
		return fail(ErrSeqGap, fmt.Sprintf("seq does not follow %d (renumbered)", v.lastSeq))
	}
	v.n++
	v.lastSeq, v.lastHash = r.Seq, r.Hash
	return nil
}

// Count is the number of records verified so far.
func (v *Verifier) Count() int { return v.n }

// Head returns the seq and hash of the last verified record. Keeping the
// head somewhere else (a ticket, a chat message, an off-site copy) is what
// detects truncation of the newest records, which a chain cannot see.
func (v *Verifier) Head() (seq int64, hash string) { return v.lastSeq, v.lastHash }

// Verify checks the records next yields, in order, until it reports false.
// It returns the number of records that verified and, on failure, a
// *ChainError naming the first bad record (or next's error, wrapped).
func Verify(next func() (Record, bool, error)) (int, error) {
	var v Verifier
	for {
		r, ok, err := next()
		if err != nil {
			return v.Count(), fmt.Errorf("read audit record after seq %d: %w", v.lastSeq, err)
		}
		if !ok {
			return v.Count(), nil
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

// Link fills in r's Seq, PrevHash and Hash so that it follows the record
// with prevSeq and prevHash (0 and Genesis for the first record). Stores call
// it inside the transaction that serializes appends.
func Link(r Record, prevSeq int64, prevHash string) Record {
	r.Seq, r.PrevHash = prevSeq+1, prevHash
	r.Hash = Hash(r)
	return r
}
