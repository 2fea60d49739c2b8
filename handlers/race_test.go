//go:build race

package handlers_test

// raceEnabled: the race detector makes sync.Pool drop a quarter of what is
// put back, on purpose, so tests of buffer reuse have nothing to measure.
const raceEnabled = true
