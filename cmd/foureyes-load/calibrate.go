package main

import (
	"encoding/json"
	"slices"
	"time"
)

// calibrationRuns is how many times calibrate decodes the payload.
const calibrationRuns = 101

// calibrate returns the median time this process takes to decode body with
// encoding/json, measured before the load starts. The figures of a run are
// only comparable with another's next to a measure of the machine's speed
// taken in the same minutes: on the two-CPU VM the benchmarks were made on,
// the same binary's throughput varied 1.5-2x within a day (the server's own
// decoding of GitHub's example took 64 us in fast minutes, 113 us in slow
// ones). encoding/json into any is used because it is the same work in every
// version of the server.
func calibrate(body []byte) time.Duration {
	runs := make([]time.Duration, calibrationRuns)
	for i := range runs {
		start := time.Now()
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return 0
		}
		runs[i] = time.Since(start)
	}
	slices.Sort(runs)
	return runs[len(runs)/2]
}
