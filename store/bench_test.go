package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/store"
	"github.com/foureyes-dev/foureyes/store/storetest"
)

// benchEnqueue measures committed intake: parallel Enqueue calls, as
// concurrent webhook requests make them.
func benchEnqueue(b *testing.B, backend string) {
	env := storetest.Open(b, backend)
	ctx := context.Background()
	payload := make([]byte, 2048) // a typical normalized event
	for i := range payload {
		payload[i] = 'x'
	}
	var n atomic.Int64
	b.SetParallelism(4) // 4×GOMAXPROCS concurrent requests
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			d := store.Delivery{ID: fmt.Sprintf("bench-%d", i), Forge: "github",
				Key: fmt.Sprintf("github/acme/app#%d", i%50), Kind: "change", Payload: payload, ReceivedAt: time.Now()}
			if ok, err := env.DB.Enqueue(ctx, d); err != nil || !ok {
				b.Fatalf("Enqueue = %v, %v", ok, err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkEnqueueSQLite(b *testing.B)   { benchEnqueue(b, "sqlite") }
func BenchmarkEnqueuePostgres(b *testing.B) { benchEnqueue(b, "postgres") }

// benchLeaseComplete measures the worker side: lease + complete of
// pre-enqueued deliveries spread over 50 keys.
func benchLeaseComplete(b *testing.B, backend string) {
	env := storetest.Open(b, backend)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		d := store.Delivery{ID: fmt.Sprintf("bench-%d", i), Forge: "github",
			Key: fmt.Sprintf("github/acme/app#%d", i%50), Kind: "change", Payload: []byte(`{}`)}
		if _, err := env.DB.Enqueue(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	var owner atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o := fmt.Sprintf("w/%d", owner.Add(1))
			for {
				ld, err := env.DB.Lease(ctx, o, time.Now(), time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				if ld == nil {
					continue // the key's predecessor is still leased by another goroutine
				}
				if err := env.DB.Complete(ctx, ld.Seq, o); err != nil {
					b.Fatal(err)
				}
				break
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkLeaseCompleteSQLite(b *testing.B)   { benchLeaseComplete(b, "sqlite") }
func BenchmarkLeaseCompletePostgres(b *testing.B) { benchLeaseComplete(b, "postgres") }

// benchLeaseBehindDeferred measures a lease when the oldest unfinished
// deliveries are all waiting (deferred until a rate limit resets, one per
// pull request): the state a queue is in once an installation's budget is
// spent and deliveries keep arriving. Each lease must find the ready
// delivery behind them.
func benchLeaseBehindDeferred(b *testing.B, backend string, deferred int) {
	env := storetest.Open(b, backend)
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	for i := 0; i < deferred; i++ {
		d := store.Delivery{ID: fmt.Sprintf("deferred-%d", i), Forge: "github",
			Key: fmt.Sprintf("github/acme/app#%d", i), Kind: "change", Payload: []byte(`{}`)}
		if _, err := env.DB.Enqueue(ctx, d); err != nil {
			b.Fatal(err)
		}
		ld, err := env.DB.Lease(ctx, "w", time.Now(), time.Minute)
		if err != nil || ld == nil {
			b.Fatalf("Lease = %v, %v", ld, err)
		}
		if err := env.DB.Retry(ctx, ld.Seq, "w", later, "waiting for the rate limit"); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d := store.Delivery{ID: fmt.Sprintf("ready-%d", i), Forge: "github",
			Key: fmt.Sprintf("github/acme/other#%d", i), Kind: "change", Payload: []byte(`{}`)}
		if _, err := env.DB.Enqueue(ctx, d); err != nil {
			b.Fatal(err)
		}
		ld, err := env.DB.Lease(ctx, "w", time.Now(), time.Minute)
		if err != nil || ld == nil || ld.ID != d.ID {
			b.Fatalf("Lease = %+v, %v; want %s", ld, err, d.ID)
		}
		if err := env.DB.Complete(ctx, ld.Seq, "w"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLeaseBehindDeferredSQLite(b *testing.B) {
	for _, n := range []int{0, 2000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchLeaseBehindDeferred(b, "sqlite", n) })
	}
}

func BenchmarkLeaseBehindDeferredPostgres(b *testing.B) {
	for _, n := range []int{0, 2000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchLeaseBehindDeferred(b, "postgres", n) })
	}
}
