package main

import (
	"sync"
	"time"
)

// arrivals tells whether webhook deliveries arrive fast enough that the
// queue's workers, all but one, should yield to intake (queue.Pool.Busy):
// arrivalsBusy or more within one arrivalWindow, until intakeQuiet after
// the last of those.
//
// The signal is the arrival rate, not the number of deliveries in flight:
// a slow database (PostgreSQL in another zone) keeps deliveries in flight
// at a modest rate, and yielding then would cut the evaluations to one
// worker while the CPU, which yielding is meant to free, sits idle.
//
// Measured on the two CPUs of the load tool's machine, 4 workers, slow
// minutes (docs/benchmarks.md, "Connections, round trips, and who yields
// to whom"): yielding took the PostgreSQL closed loop at 32 senders from
// 1,711-1,754 to 2,063-2,424 deliveries/s, SQLite's p99 at 1,000/s from
// 17.3-21.5 to 13.5-15.2 ms, and a burst's rate-limited requests per
// delivery from 0.52 to 0.43; its time to final went from 3.77-3.79 to
// 3.95-4.01 s, as more of the work waits for the burst's end. Without the
// quiet period the workers leased again in every short lull at 1,000/s,
// and on SQLite their write transactions delayed intake's group commits.
type arrivals struct {
	mu       sync.Mutex
	window   int64 // current window: Unix ns / arrivalWindow
	n        int   // arrivals in it
	lastBusy int64 // Unix ns of the last arrival at or past arrivalsBusy in its window
}

const (
	arrivalWindow = 50 * time.Millisecond
	// arrivalsBusy in arrivalWindow is 400 deliveries a second. At 100/s
	// the workers never yield.
	arrivalsBusy = 20
	intakeQuiet  = 50 * time.Millisecond
)

func (a *arrivals) arrive(now time.Time) {
	t := now.UnixNano()
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := t / int64(arrivalWindow); w != a.window {
		a.window, a.n = w, 0
	}
	a.n++
	if a.n >= arrivalsBusy {
		a.lastBusy = t
	}
}

func (a *arrivals) busy(now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastBusy != 0 && now.UnixNano()-a.lastBusy < int64(intakeQuiet)
}
