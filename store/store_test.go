package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/audit"
	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/store"
	"github.com/foureyes-dev/foureyes/store/storetest"
)

// The service hands *store.DB to the bot as its Store.
var _ bot.Store = (*store.DB)(nil)

// clock is a manual clock for the store's own timestamps.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestOpenRejectsUnknownDSN(t *testing.T) {
	for _, dsn := range []string{"mysql://x", "foureyes.db", "sqlite:", "sqlite::memory:", "sqlite:a.db?mode=ro"} {
		if db, err := store.Open(context.Background(), dsn, nil); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}

func TestOpenIsIdempotentAndConcurrent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		// Several replicas starting at once on an already-migrated
		// database: migrations must neither fail nor run twice.
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db, err := store.Open(context.Background(), env.DSN, nil)
				if err != nil {
					errs <- err
					return
				}
				errs <- db.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if env.DB.Dialect() != env.Backend {
			t.Fatalf("dialect %s", env.DB.Dialect())
		}
	})
}

func TestOpenConcurrentFreshPostgres(t *testing.T) {
	// Fresh database, several replicas: the advisory lock serializes them.
	env := storetest.Open(t, "postgres")
	storetest.RawExec(t, env, "DROP TABLE deliveries, facts, reports, audit_records, schema_migrations CASCADE")
	storetest.RawExec(t, env, "DROP FUNCTION audit_records_append_only")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := store.Open(context.Background(), env.DSN, nil)
			if err == nil {
				err = db.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestFacts(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		if m, err := db.Facts(ctx, "none"); err != nil || len(m) != 0 {
			t.Fatalf("Facts(none) = %v, %v", m, err)
		}
		must(t, db.PutFact(ctx, "github/acme/app#1", "pusher:abc", "alice"))
		must(t, db.PutFact(ctx, "github/acme/app#1", "pusher:abc", "bob"))
		must(t, db.PutFact(ctx, "github/acme/app#1", "pusher:def", "carol"))
		must(t, db.PutFact(ctx, "github/acme/app#2", "pusher:abc", "dave"))
		m, err := db.Facts(ctx, "github/acme/app#1")
		must(t, err)
		if len(m) != 2 || m["pusher:abc"] != "bob" || m["pusher:def"] != "carol" {
			t.Fatalf("facts = %v", m)
		}
		must(t, db.DeleteFact(ctx, "github/acme/app#1", "pusher:def"))
		if m, _ := db.Facts(ctx, "github/acme/app#1"); len(m) != 1 {
			t.Fatalf("after delete: %v", m)
		}

		// PutFacts overwrites and adds across scopes in one call; an
		// empty call writes nothing.
		must(t, db.PutFacts(ctx, nil))
		must(t, db.PutFacts(ctx, map[string]map[string]string{
			"github/acme/app#1": {"pusher:abc": "erin", "pusher:ghi": "frank"},
			"github/acme/app#3": {"pusher:abc": "grace"},
		}))
		if m, _ := db.Facts(ctx, "github/acme/app#1"); len(m) != 2 || m["pusher:abc"] != "erin" || m["pusher:ghi"] != "frank" {
			t.Fatalf("after PutFacts: %v", m)
		}
		if m, _ := db.Facts(ctx, "github/acme/app#3"); len(m) != 1 || m["pusher:abc"] != "grace" {
			t.Fatalf("after PutFacts, other scope: %v", m)
		}
		if m, _ := db.Facts(ctx, "github/acme/app#2"); len(m) != 1 || m["pusher:abc"] != "dave" {
			t.Fatalf("PutFacts touched a scope it did not name: %v", m)
		}

		// If-absent: exactly one of many concurrent callers wins, and the
		// first value stays.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				ok, err := db.PutFactIfAbsent(ctx, "flags", "push:deadbeef", fmt.Sprint(i))
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}(i)
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d callers stored the idempotency key", wins)
		}
		ok, err := db.PutFactIfAbsent(ctx, "flags", "push:deadbeef", "again")
		if err != nil || ok {
			t.Fatalf("PutFactIfAbsent on present key = %v, %v", ok, err)
		}
	})
}

// FactsIn reads many scopes in one go and answers as Facts would for each,
// including the empty ones, across more scopes than one query takes.
func TestFactsIn(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		const n = 1200
		facts := map[string]map[string]string{}
		var scopes []string
		for i := range n {
			sc := fmt.Sprintf("github/acme/app@%040d/pushed", i)
			scopes = append(scopes, sc)
			if i%3 == 0 {
				facts[sc] = map[string]string{"bob": fmt.Sprintf(`{"login":"bob","n":%d}`, i), "carol": "x"}
			}
		}
		must(t, env.DB.PutFacts(ctx, facts))
		must(t, env.DB.PutFact(ctx, "other", "k", "v"))
		got, err := env.DB.FactsIn(ctx, append(scopes, scopes[0]))
		must(t, err)
		if len(got) != n {
			t.Fatalf("%d scopes answered, want %d", len(got), n)
		}
		for _, sc := range scopes {
			want, err := env.DB.Facts(ctx, sc)
			must(t, err)
			if m, ok := got[sc]; !ok || !maps.Equal(m, want) {
				t.Fatalf("FactsIn[%s] = %v, %v; Facts = %v", sc, m, ok, want)
			}
		}
		if _, ok := got["other"]; ok {
			t.Fatal("FactsIn answered a scope not asked for")
		}
	})
}

func TestReports(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		if _, err := db.Report(ctx, "github", "acme/app", "v1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing report: %v", err)
		}
		must(t, db.SaveReport(ctx, "github", "acme/app", "v1", []byte(`{"a":1}`)))
		must(t, db.SaveReport(ctx, "github", "acme/app", "v1", []byte(`{"a":2}`)))
		got, err := db.Report(ctx, "github", "acme/app", "v1")
		must(t, err)
		if string(got) != `{"a":2}` {
			t.Fatalf("report = %s", got)
		}
	})
}

func TestBackup(t *testing.T) {
	ctx := context.Background()
	env := storetest.Open(t, "sqlite")
	must(t, env.DB.PutFact(ctx, "s", "k", "v"))
	if _, err := env.DB.AppendAudit(ctx, audit.Record{Kind: audit.KindDelivery}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	must(t, env.DB.Backup(ctx, path))
	if err := env.DB.Backup(ctx, path); err == nil {
		t.Fatal("backup overwrote an existing file")
	}
	copyDB, err := store.Open(ctx, "sqlite:"+path, nil)
	must(t, err)
	defer copyDB.Close()
	if m, _ := copyDB.Facts(ctx, "s"); m["k"] != "v" {
		t.Fatalf("backup facts = %v", m)
	}
	if n, err := copyDB.VerifyAudit(ctx); err != nil || n != 1 {
		t.Fatalf("backup audit verify = %d, %v", n, err)
	}

	pg := storetest.Open(t, "postgres")
	if err := pg.DB.Backup(ctx, path+"2"); !errors.Is(err, store.ErrBackupUnsupported) {
		t.Fatalf("postgres backup: %v", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func evalRecord(i int) audit.Record {
	return audit.Record{
		Kind:         audit.KindEvaluation,
		Forge:        "github",
		Repo:         "acme/app",
		Change:       12,
		HeadSHA:      fmt.Sprintf("sha%d", i),
		DeliveryID:   fmt.Sprintf("d%d", i),
		PolicyDigest: "sha256:pol",
		Verdict:      "pass",
		Data:         json.RawMessage(fmt.Sprintf(`{"counted": ["alice"], "i": %d, "rejected": {"bob": "author"}}`, i)),
	}
}

func TestAuditAppendAndRead(t *testing.T) {
	c := newClock()
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		db := env.DB
		if n, err := db.VerifyAudit(ctx); err != nil || n != 0 {
			t.Fatalf("empty trail: %d, %v", n, err)
		}
		first, err := db.AppendAudit(ctx, evalRecord(0))
		must(t, err)
		if first.Seq != 1 || first.PrevHash != audit.Genesis || first.Hash != audit.Hash(first) || !first.Time.Equal(c.Now()) {
			t.Fatalf("first record = %+v", first)
		}
		if string(first.Data) != `{"counted":["alice"],"i":0,"rejected":{"bob":"author"}}` {
			t.Fatalf("data not canonical: %s", first.Data)
		}
		// A caller-supplied time is kept, at microsecond precision.
		r := evalRecord(1)
		r.Repo = "acme/other"
		r.Time = time.Date(2025, 5, 31, 0, 0, 0, 123456789, time.FixedZone("X", 7200))
		second, err := db.AppendAudit(ctx, r)
		must(t, err)
		if second.Seq != 2 || second.PrevHash != first.Hash || !second.Time.Equal(r.Time.Truncate(time.Microsecond)) {
			t.Fatalf("second record = %+v", second)
		}
		if _, err := db.AppendAudit(ctx, audit.Record{Kind: "x", Data: json.RawMessage(`{`)}); err == nil {
			t.Fatal("invalid data accepted")
		}
		if _, err := db.AppendAudit(ctx, audit.Record{}); err == nil {
			t.Fatal("record without kind accepted")
		}
		c.Advance(time.Hour)
		third, err := db.AppendAudit(ctx, audit.Record{Kind: audit.KindFlag, Repo: "acme/app"})
		must(t, err)

		all, err := db.AuditRecords(ctx, store.AuditFilter{})
		must(t, err)
		if len(all) != 3 {
			t.Fatalf("%d records", len(all))
		}
		for i, want := range []audit.Record{first, second, third} {
			if !recordsEqual(all[i], want) {
				t.Fatalf("record %d read back as\n%+v\nwant\n%+v", i, all[i], want)
			}
		}
		got, err := db.AuditRecords(ctx, store.AuditFilter{Repo: "acme/app"})
		must(t, err)
		if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 3 {
			t.Fatalf("repo filter: %v", seqs(got))
		}
		got, err = db.AuditRecords(ctx, store.AuditFilter{Since: c.Now()})
		must(t, err)
		if len(got) != 1 || got[0].Seq != 3 {
			t.Fatalf("since filter: %v", seqs(got))
		}
		got, err = db.AuditRecords(ctx, store.AuditFilter{Until: c.Now()})
		must(t, err)
		if len(got) != 2 {
			t.Fatalf("until filter: %v", seqs(got))
		}
		got, err = db.AuditRecords(ctx, store.AuditFilter{AfterSeq: 1, Limit: 1})
		must(t, err)
		if len(got) != 1 || got[0].Seq != 2 {
			t.Fatalf("after/limit: %v", seqs(got))
		}
	}, store.WithClock(c.Now))
}

func recordsEqual(a, b audit.Record) bool {
	ta, tb := a.Time, b.Time
	a.Time, b.Time = time.Time{}, time.Time{}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return ta.Equal(tb) && string(ja) == string(jb)
}

func seqs(rs []audit.Record) []int64 {
	var s []int64
	for _, r := range rs {
		s = append(s, r.Seq)
	}
	return s
}

// TestAuditConcurrentAppends: appenders in several goroutines and through
// two separate handles (as two processes or replicas would) still build one
// unbroken chain.
func TestAuditConcurrentAppends(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		ctx := context.Background()
		other := storetest.Reopen(t, env)
		const goroutines, each = 10, 20
		var wg sync.WaitGroup
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				db := env.DB
				if g%2 == 1 {
					db = other
				}
				for i := 0; i < each; i++ {
					if _, err := db.AppendAudit(ctx, evalRecord(g*100+i)); err != nil {
						t.Error(err)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		n, err := env.DB.VerifyAudit(ctx)
		if err != nil || n != goroutines*each {
			t.Fatalf("verify = %d, %v", n, err)
		}
	})
}

func TestAuditTriggersBlockEdits(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, env *storetest.Env) {
		if _, err := env.DB.AppendAudit(context.Background(), evalRecord(0)); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"UPDATE audit_records SET verdict = 'fail'", "DELETE FROM audit_records"} {
			if _, err := storetest.RawDB(t, env).Exec(q); err == nil {
				t.Fatalf("%s succeeded on an append-only table", q)
			}
		}
	})
}

// TestAuditVerifyDetectsTampering edits the stored trail with raw SQL, as
// someone with database access would, and checks that verification names
// the first bad record.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name    string
		tamper  []string
		problem error
		msg     string
	}{
		{
			name:    "edited column",
			tamper:  []string{"UPDATE audit_records SET verdict = 'fail' WHERE seq = 17"},
			problem: audit.ErrHashMismatch,
			msg:     "record seq 17: hash mismatch (content edited)",
		},
		{
			name:    "edited data",
			tamper:  []string{`UPDATE audit_records SET data = '{"counted":["mallory"]}' WHERE seq = 3`},
			problem: audit.ErrHashMismatch,
			msg:     "record seq 3: hash mismatch (content edited)",
		},
		{
			name:    "deleted row",
			tamper:  []string{"DELETE FROM audit_records WHERE seq = 17"},
			problem: audit.ErrBrokenLink,
			msg:     "record seq 18: prev_hash does not match record 16 (deleted or reordered)",
		},
		{
			name: "swapped pair",
			tamper: []string{
				"UPDATE audit_records SET seq = -1 WHERE seq = 17",
				"UPDATE audit_records SET seq = 17 WHERE seq = 18",
				"UPDATE audit_records SET seq = 18 WHERE seq = -1",
			},
			problem: audit.ErrHashMismatch,
			msg:     "record seq 17: hash mismatch and prev_hash does not match record 16 (reordered or replaced)",
		},
		{
			name: "swapped times",
			tamper: []string{
				"UPDATE audit_records SET time = (SELECT time FROM audit_records WHERE seq = 1) WHERE seq = 2",
			},
			problem: audit.ErrHashMismatch,
			msg:     "record seq 2: hash mismatch (content edited)",
		},
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
				if n, err := env.DB.VerifyAudit(ctx); err != nil || n != 20 {
					t.Fatalf("untouched trail: %d, %v", n, err)
				}
				// Whoever can edit rows can drop the guard triggers too.
				storetest.RawExec(t, env, "DROP TRIGGER audit_records_no_update"+onTable(env))
				if env.Backend == "sqlite" {
					storetest.RawExec(t, env, "DROP TRIGGER audit_records_no_delete")
				}
				for _, q := range c.tamper {
					storetest.RawExec(t, env, q)
				}
				_, err := env.DB.VerifyAudit(ctx)
				if !errors.Is(err, c.problem) || err.Error() != c.msg {
					t.Fatalf("verify = %v, want %q", err, c.msg)
				}
				var ce *audit.ChainError
				if !errors.As(err, &ce) {
					t.Fatalf("not a ChainError: %T", err)
				}
			}, store.WithClock(clk.Now))
		})
	}
}

func onTable(env *storetest.Env) string {
	if env.Backend == "postgres" {
		return " ON audit_records"
	}
	return ""
}
