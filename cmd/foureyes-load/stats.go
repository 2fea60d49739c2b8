package main

import (
	"math"
	"slices"
	"time"
)

// latencySummary describes a set of acknowledgement latencies.
type latencySummary struct {
	Count int
	Min   time.Duration
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// summarize returns the summary of ds, which it leaves as it is (callers
// keep it parallel to other slices). Percentiles use the
// nearest-rank method: the p-th percentile is the smallest sample that is
// greater than or equal to p percent of the samples, so it is always one of
// the measured values and p100 is the maximum.
func summarize(ds []time.Duration) latencySummary {
	if len(ds) == 0 {
		return latencySummary{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return latencySummary{
		Count: len(ds),
		Min:   ds[0],
		Mean:  sum / time.Duration(len(ds)),
		P50:   percentile(ds, 50),
		P90:   percentile(ds, 90),
		P99:   percentile(ds, 99),
		Max:   ds[len(ds)-1],
	}
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be sorted ascending and non-empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// rate is n events over d, per second (0 when d is not positive).
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ms converts a duration to fractional milliseconds for reports.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000
}

// second is one second of a run: the acknowledgements that arrived in it.
type second struct {
	Start int     `json:"t"` // seconds since the start of the run
	Acked int     `json:"acked"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

// timeline buckets acknowledgements by the second they arrived in (ackedAt
// and lats are parallel). It shows stalls that a whole-run percentile
// averages away.
func timeline(ackedAt, lats []time.Duration) []second {
	var buckets [][]time.Duration
	for i, at := range ackedAt {
		s := int(at / time.Second)
		for len(buckets) <= s {
			buckets = append(buckets, nil)
		}
		buckets[s] = append(buckets[s], lats[i])
	}
	out := make([]second, len(buckets))
	for s, b := range buckets {
		sum := summarize(b)
		out[s] = second{Start: s, Acked: sum.Count, P99MS: ms(sum.P99), MaxMS: ms(sum.Max)}
	}
	return out
}
