// Package audit defines the append-only, hash-chained audit record and the
// pure functions that hash and verify a chain. Storage lives elsewhere; this
// package has no dependencies so an auditor's tool can verify an exported
// trail with nothing but it.
package audit

import (
	"encoding/json"
	"time"
)

// Kinds of audit records.
const (
	KindDelivery   = "delivery"   // a webhook delivery was accepted
	KindEvaluation = "evaluation" // a change was evaluated
	KindFlag       = "flag"       // an unreviewed commit reached a release branch
	KindOverride   = "override"   // break-glass override
	KindTamper     = "tamper"     // a "foureyes" check/status written by someone else
	KindReport     = "report"     // a release tag report
	KindDeadLetter = "dead_letter"
	// KindKeyed is the cut-over record: the first record chained with the
	// audit key on a trail that began unkeyed. Its PrevHash vouches for
	// every unkeyed record before it.
	KindKeyed = "audit_keyed"
)

// Record is one entry of the audit trail. Hash covers every other field
// (canonical JSON, see Hash), PrevHash links it to the record before it.
type Record struct {
	Seq          int64           `json:"seq"`
	Time         time.Time       `json:"time"`
	Kind         string          `json:"kind"`
	Forge        string          `json:"forge,omitempty"`
	Repo         string          `json:"repo,omitempty"`
	Change       int             `json:"change,omitempty"`
	HeadSHA      string          `json:"head_sha,omitempty"`
	DeliveryID   string          `json:"delivery_id,omitempty"`
	PolicyDigest string          `json:"policy_digest,omitempty"`
	Verdict      string          `json:"verdict,omitempty"`
	Data         json.RawMessage `json:"data,omitempty"` // kind-specific details (per-category counted / rejected with reasons, ...)
	PrevHash     string          `json:"prev_hash"`
	Hash         string          `json:"hash"`
}
