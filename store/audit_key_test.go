package store_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/store"
	"github.com/foureyes-dev/foureyes/store/storetest"
)

func testChain(t *testing.T, key string) *audit.Chain {
	t.Helper()
	c, err := audit.NewChain([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	serverKey   = "0123456789abcdef0123456789abcdef-server-key"
	attackerKey = "an attacker's own key, 32 bytes or more"
)

// dropGuards removes the append-only triggers, as whoever can edit rows can.
func dropGuards(t *testing.T, env *storetest.Env) {
	t.Helper()
	storetest.RawExec(t, env, "DROP TRIGGER audit_records_no_update"+onTable(env))
	if env.Backend == "sqlite" {
		storetest.RawExec(t, env, "DROP TRIGGER audit_records_no_delete")
	}
}

// rewrite replaces every record from seq `from` on with what link computes,
// the way an attacker with write access re-hashes after an edit: the edit
// is applied to record `from` first.
func rewrite(t *testing.T, env *storetest.Env, from int64, edit func(*audit.Record), link func(audit.Record, int64, string) audit.Record) {
	t.Helper()
	ctx := context.Background()
	all, err := env.DB.AuditRecords(ctx, store.AuditFilter{})
	must(t, err)
	raw := storetest.RawDB(t, env)
	prevSeq, prevHash := int64(0), audit.Genesis
	for _, r := range all {
		if r.Seq < from {
			prevSeq, prevHash = r.Seq, r.Hash
			continue
		}
		if r.Seq == from {
			edit(&r)
		}
		r = link(r, prevSeq, prevHash)
		q := "UPDATE audit_records SET verdict = ?, prev_hash = ?, hash = ? WHERE seq = ?"
		if env.Backend == "postgres" {
			q = "UPDATE audit_records SET verdict = $1, prev_hash = $2, hash = $3 WHERE seq = $4"
		}
		if _, err := raw.Exec(q, r.Verdict, r.PrevHash, r.Hash, r.Seq); err != nil {
			t.Fatal(err)
		}
		prevSeq, prevHash = r.Seq, r.Hash
	}
}

// TestKeyedAuditDetectsTampering is the attack of a database administrator
// on a keyed trail: each tampering is caught, by the chain alone or by a
// checkpoint taken before it, and the untouched trail verifies.
func TestKeyedAuditDetectsTampering(t *testing.T) {
	key := testChain(t, serverKey)
	flip := func(r *audit.Record) { r.Verdict = "success" }
	cases := []struct {
		name string
		// tamper edits the 20-record trail; problem is what verify with a
		// checkpoint reports, bare what it reports without one (nil: the
		// chain alone cannot see it).
		tamper  func(t *testing.T, env *storetest.Env)
		problem error
		bare    error
	}{
		{
			name: "edited",
			tamper: func(t *testing.T, env *storetest.Env) {
				storetest.RawExec(t, env, "UPDATE audit_records SET verdict = 'success' WHERE seq = 5")
			},
			problem: audit.ErrHashMismatch,
		},
		{
			name: "deleted tail",
			tamper: func(t *testing.T, env *storetest.Env) {
				storetest.RawExec(t, env, "DELETE FROM audit_records WHERE seq > 15")
			},
			problem: audit.ErrShorterThanCheckpoint,
			bare:    nil,
		},
		{
			name: "deleted middle",
			tamper: func(t *testing.T, env *storetest.Env) {
				storetest.RawExec(t, env, "DELETE FROM audit_records WHERE seq = 9")
			},
			problem: audit.ErrBrokenLink,
		},
		{
			name: "reordered",
			tamper: func(t *testing.T, env *storetest.Env) {
				storetest.RawExec(t, env, "UPDATE audit_records SET seq = -1 WHERE seq = 7")
				storetest.RawExec(t, env, "UPDATE audit_records SET seq = 7 WHERE seq = 8")
				storetest.RawExec(t, env, "UPDATE audit_records SET seq = 8 WHERE seq = -1")
			},
			problem: audit.ErrHashMismatch,
		},
		{
			// Plain SHA-256 as the unkeyed chain used to be: the rewrite
			// that passed before keys existed.
			name: "re-hashed unkeyed",
			tamper: func(t *testing.T, env *storetest.Env) {
				rewrite(t, env, 5, flip, audit.Link)
			},
			problem: audit.ErrDowngrade,
		},
		{
			name: "re-hashed with a guessed key",
			tamper: func(t *testing.T, env *storetest.Env) {
				rewrite(t, env, 5, flip, testChain(t, attackerKey).Link)
			},
			problem: audit.ErrHashMismatch,
		},
		{
			// Every record rewritten unkeyed from the first: no keyed
			// record is left to contradict it.
			name: "rewritten whole unkeyed",
			tamper: func(t *testing.T, env *storetest.Env) {
				rewrite(t, env, 1, flip, audit.Link)
			},
			problem: audit.ErrCheckpointMismatch,
			bare:    audit.ErrUnanchored,
		},
		{
			name: "rewritten whole with another key and truncated",
			tamper: func(t *testing.T, env *storetest.Env) {
				rewrite(t, env, 1, flip, testChain(t, attackerKey).Link)
				storetest.RawExec(t, env, "DELETE FROM audit_records WHERE seq > 18")
			},
			problem: audit.ErrHashMismatch,
		},
	}
	for i := range cases {
		if cases[i].name != "deleted tail" && cases[i].bare == nil {
			cases[i].bare = cases[i].problem
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
				ctx := context.Background()
				for i := 0; i < 20; i++ {
					clk.Advance(time.Second)
					if _, err := env.DB.AppendAudit(ctx, evalRecord(i)); err != nil {
						t.Fatal(err)
					}
				}
				seq, head, err := env.DB.AuditHead(ctx)
				must(t, err)
				if seq != 20 || !audit.IsKeyed(head) {
					t.Fatalf("head = %d %q, want 20 and a keyed hash", seq, head)
				}
				cp := key.Checkpoint(seq, head, clk.Now())
				verify := func(withCheckpoint bool) (int, error) {
					v := audit.NewVerifier(key)
					if withCheckpoint {
						v.Expect(cp)
					}
					err := env.DB.VerifyAuditWith(ctx, v)
					return v.Count(), err
				}
				for _, withCP := range []bool{false, true} {
					if n, err := verify(withCP); err != nil || n != 20 {
						t.Fatalf("untouched trail (checkpoint %v): %d, %v", withCP, n, err)
					}
				}
				dropGuards(t, env)
				c.tamper(t, env)
				_, err = verify(true)
				if !errors.Is(err, c.problem) {
					t.Fatalf("verify with checkpoint = %v, want %v", err, c.problem)
				}
				var ce *audit.ChainError
				if !errors.As(err, &ce) {
					t.Fatalf("not a ChainError: %T", err)
				}
				_, err = verify(false)
				if c.bare == nil && err != nil {
					t.Fatalf("without a checkpoint this tampering is invisible to the chain, yet verify = %v", err)
				}
				if c.bare != nil && !errors.Is(err, c.bare) {
					t.Fatalf("verify without checkpoint = %v, want %v", err, c.bare)
				}
			}, store.WithClock(clk.Now), store.WithAuditChain(key))
		})
	}
}

// TestAuditCutOverKeepsOldTrail: a database written before audit keys keeps
// verifying up to the cut-over record, and what comes after is keyed.
func TestAuditCutOverKeepsOldTrail(t *testing.T) {
	key := testChain(t, serverKey)
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		for i := 0; i < 5; i++ {
			_, err := env.DB.AppendAudit(ctx, evalRecord(i))
			must(t, err)
		}
		keyed := storetest.Reopen(t, env, store.WithAuditChain(key))
		// Before the cut-over a keyed verify refuses to vouch for it.
		if _, err := keyed.VerifyAudit(ctx); !errors.Is(err, audit.ErrUnanchored) {
			t.Fatalf("unkeyed trail under a key: %v, want ErrUnanchored", err)
		}
		ok, err := keyed.KeyAudit(ctx, audit.Record{Kind: audit.KindKeyed})
		must(t, err)
		if !ok {
			t.Fatal("no cut-over record appended")
		}
		if ok, err := keyed.KeyAudit(ctx, audit.Record{Kind: audit.KindKeyed}); err != nil || ok {
			t.Fatalf("second cut-over: %v %v", ok, err)
		}
		for i := 5; i < 8; i++ {
			_, err := keyed.AppendAudit(ctx, evalRecord(i))
			must(t, err)
		}
		v := audit.NewVerifier(key)
		if err := keyed.VerifyAuditWith(ctx, v); err != nil || v.Count() != 9 || v.Unkeyed() != 5 {
			t.Fatalf("after cut-over: %d records (%d unkeyed), %v", v.Count(), v.Unkeyed(), err)
		}
		all, err := keyed.AuditRecords(ctx, store.AuditFilter{})
		must(t, err)
		if all[5].Kind != audit.KindKeyed || !audit.IsKeyed(all[5].Hash) || all[5].PrevHash != all[4].Hash {
			t.Fatalf("cut-over record = %+v", all[5])
		}
		// A process without the key can no longer extend the trail.
		if _, err := env.DB.AppendAudit(ctx, evalRecord(9)); !errors.Is(err, audit.ErrKeyRequired) {
			t.Fatalf("unkeyed append after cut-over: %v", err)
		}
		// Nor read it as intact.
		if _, err := env.DB.VerifyAudit(ctx); !errors.Is(err, audit.ErrKeyRequired) {
			t.Fatalf("unkeyed verify of a keyed trail: %v", err)
		}
		// The old records are vouched for: re-hashing one of them breaks
		// the link into the cut-over record.
		dropGuards(t, env)
		rewrite(t, env, 2, func(r *audit.Record) { r.Verdict = "success" }, func(r audit.Record, s int64, p string) audit.Record {
			if r.Seq <= 5 {
				return audit.Link(r, s, p)
			}
			return r // keyed records cannot be re-hashed without the key
		})
		_, err = keyed.VerifyAudit(ctx)
		var ce *audit.ChainError
		if !errors.As(err, &ce) || ce.Seq != 6 || !errors.Is(err, audit.ErrBrokenLink) {
			t.Fatalf("re-hashed old record: %v, want a broken link at the cut-over record 6", err)
		}
	})
}

// TestMustExistNeverCreates: commands that read the trail must not create
// an empty database and find it intact.
func TestMustExistNeverCreates(t *testing.T) {
	ctx := context.Background()
	missing := t.TempDir() + "/nothing-here.db"
	if _, err := store.Open(ctx, "sqlite:"+missing, nil, store.MustExist()); !errors.Is(err, store.ErrNoDatabase) {
		t.Fatalf("missing sqlite file: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("the missing file was created: %v", err)
	}
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			dsn := storetest.EmptyDSN(t, b)
			_, err := store.Open(ctx, dsn, nil, store.MustExist())
			if !errors.Is(err, store.ErrNoDatabase) || !strings.Contains(err.Error(), "never wrote") {
				t.Fatalf("empty database: %v", err)
			}
			// The honest path: a database foureyes made opens.
			env := storetest.Open(t, b)
			db, err := store.Open(ctx, env.DSN, nil, store.MustExist())
			must(t, err)
			db.Close()
		})
	}
}

// TestKeyedAuditConcurrentAppends: keyed appends from several goroutines
// and two handles (two replicas sharing the key) build one chain.
func TestKeyedAuditConcurrentAppends(t *testing.T) {
	key := testChain(t, serverKey)
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		other := storetest.Reopen(t, env, store.WithAuditChain(key))
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			go func(g int) {
				db := env.DB
				if g%2 == 1 {
					db = other
				}
				for i := 0; i < 15; i++ {
					if _, err := db.AppendAudit(ctx, evalRecord(g*100+i)); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}(g)
		}
		for g := 0; g < 8; g++ {
			must(t, <-errs)
		}
		v := audit.NewVerifier(key)
		if err := env.DB.VerifyAuditWith(ctx, v); err != nil || v.Count() != 120 || v.Unkeyed() != 0 {
			t.Fatalf("verify = %d records (%d unkeyed), %v", v.Count(), v.Unkeyed(), err)
		}
	}, store.WithAuditChain(key))
}
