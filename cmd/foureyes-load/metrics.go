package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serverMetrics is what the tool reads from the server's /metrics before
// and after the run (absent when /metrics is not served).
type serverMetrics struct {
	OK         bool
	CPUSeconds float64 // process_cpu_seconds_total
	Processed  float64 // foureyes_deliveries_processed_total{result="ok"}
	Retried    float64 // ...{result="retry"}
	Dead       float64 // ...{result="dead_letter"}
	Accepted   float64 // foureyes_webhooks_received_total{result="accepted"}
}

func scrape(ctx context.Context, base string) serverMetrics {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return serverMetrics{}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return serverMetrics{}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverMetrics{}
	}
	m, err := parseMetrics(resp.Body)
	if err != nil {
		return serverMetrics{}
	}
	return m
}

// parseMetrics reads the few series the report uses from the Prometheus
// text format, summing over the labels not named.
func parseMetrics(r io.Reader) (serverMetrics, error) {
	m := serverMetrics{OK: true}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		series := line[:i]
		name, labels, _ := strings.Cut(series, "{")
		switch name {
		case "process_cpu_seconds_total":
			m.CPUSeconds += v
		case "foureyes_deliveries_processed_total":
			switch {
			case strings.Contains(labels, `result="ok"`):
				m.Processed += v
			case strings.Contains(labels, `result="retry"`):
				m.Retried += v
			case strings.Contains(labels, `result="dead_letter"`):
				m.Dead += v
			}
		case "foureyes_webhooks_received_total":
			if strings.Contains(labels, `result="accepted"`) {
				m.Accepted += v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return serverMetrics{}, fmt.Errorf("read /metrics: %w", err)
	}
	return m, nil
}
