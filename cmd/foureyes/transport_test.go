package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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
		var conns atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Millisecond) // a forge takes a while: requests overlap
			io.WriteString(w, `{"ok":true}`)
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.Start()
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
	if n := opened(ft); n != 0 {
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
