package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestForgeTransportKeepsItsConnections: busy clients that each send
// requests one after another, with other work between them, as workers do
// to the forge's one host,
// keep reusing the connections they opened. Through http.DefaultTransport,
// which keeps two idle, the same load keeps opening new ones.
func TestForgeTransportKeepsItsConnections(t *testing.T) {
	const busy = 8
	// opened returns how many connections the second of two rounds of
	// requests opened: the first may open more than busy while clients
	// start together.
	opened := func(rt http.RoundTripper) int64 {
		srv, conns := countingServer(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Millisecond) // a forge takes a while: requests overlap
			io.WriteString(w, `{"ok":true}`)
		})
		defer srv.Close()
		client := &http.Client{Transport: rt}
		round := func(perClient int) {
			var wg sync.WaitGroup
			for range busy {
				wg.Go(func() {
					for range perClient {
						resp, err := client.Get(srv.URL)
						if err != nil {
							t.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						// A worker does other work (the store) between its
						// requests, so connections sit idle together.
						time.Sleep(time.Millisecond)
					}
				})
			}
			wg.Wait()
		}
		round(2)
		warm := conns.Load()
		round(25)
		return conns.Load() - warm
	}
	ft := forgeTransport(busy)
	defer ft.CloseIdleConnections()
	// A few may still be opened when a request starts in the instant
	// before another's connection is back in the pool (seen under -race on
	// a loaded machine: 3).
	if n := opened(ft); n > busy/2 {
		t.Fatalf("%d busy clients opened %d more connections after the first round", busy, n)
	}
	// The contrast that makes the case: with two kept idle, the clients
	// open connections all along.
	dt := http.DefaultTransport.(*http.Transport).Clone()
	defer dt.CloseIdleConnections()
	n := opened(dt)
	t.Logf("after the first round, the default transport opened %d connections", n)
	if n < busy {
		t.Fatalf("the default transport opened only %d connections after the first round", n)
	}
}

// TestForgeTransportKeepsConnectionsOfPartlyReadBodies: go-github's
// Client.Do decodes one JSON value from a response with a json.Decoder and
// closes the body, leaving what follows the value unread: the newline an
// encoder writes, the end of a chunked body. Over HTTP/1.1 such a
// connection was closed instead of kept, and every check run created
// opened a new one (505 in a burst of 5,000 deliveries).
func TestForgeTransportKeepsConnectionsOfPartlyReadBodies(t *testing.T) {
	opened := func(rt http.RoundTripper) int64 {
		srv, conns := countingServer(func(w http.ResponseWriter, r *http.Request) {
			// Larger than net/http's 2 KB chunking buffer, so the body is
			// chunked; flushed before the handler returns, so its end
			// arrives after the value, as from a forge across a network.
			json.NewEncoder(w).Encode(map[string]string{"id": "1", "output": strings.Repeat("x", 4096)})
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		})
		defer srv.Close()
		client := &http.Client{Transport: rt}
		for range 20 {
			resp, err := client.Post(srv.URL, "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			var v map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v["id"] != "1" {
				t.Fatalf("decode: %v, %v", v["id"], err)
			}
			resp.Body.Close()
		}
		return conns.Load()
	}
	ft := forgeTransport(2)
	defer ft.CloseIdleConnections()
	if n := opened(ft); n != 1 {
		t.Fatalf("20 requests one after another opened %d connections, want 1", n)
	}
	// Without the drain, the same requests open a connection each.
	bare := http.DefaultTransport.(*http.Transport).Clone()
	defer bare.CloseIdleConnections()
	n := opened(bare)
	t.Logf("without draining, 20 requests opened %d connections", n)
	if n < 10 {
		t.Fatalf("without draining, 20 requests opened only %d connections", n)
	}
}

// TestForgeTransportDrainIsBounded: Close reads no more than maxDrain of
// what is left; a body with more is dropped with its connection.
func TestForgeTransportDrainIsBounded(t *testing.T) {
	for _, left := range []int64{0, 10, maxDrain, 16 * maxDrain} {
		body := &countingCloser{r: io.LimitReader(zeros{}, left)}
		if err := (drainingBody{body}).Close(); err != nil {
			t.Fatal(err)
		}
		if want := min(left, maxDrain); body.n != want || !body.closed {
			t.Errorf("%d bytes left: Close read %d and closed=%v, want %d read and closed", left, body.n, body.closed, want)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type countingCloser struct {
	r      io.Reader
	n      int64
	closed bool
}

func (c *countingCloser) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingCloser) Close() error { c.closed = true; return nil }

// countingServer serves h and counts the connections opened to it.
func countingServer(h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	conns := new(atomic.Int64)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	return srv, conns
}
