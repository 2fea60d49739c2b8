package main

import "net/http"

// forgeTransport is the base transport of the forge API clients, for up
// to busy requests in flight at once. http.DefaultTransport keeps two idle
// connections per host, and all of foureyes' requests go to one host
// (api.github.com, the GitLab instance): with more than two in flight,
// every connection that finished a request beyond the second was closed,
// and the next request opened another, with a TLS handshake on HTTPS. In
// a burst of 5,000 deliveries with 4 workers that was 249 new connections.
func forgeTransport(busy int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(busy, 2)
	t.MaxIdleConns = max(t.MaxIdleConns, 2*t.MaxIdleConnsPerHost)
	return t
}

// forgeBusy is how many forge requests may be in flight at once: one per
// worker, plus the reconciler, the break-glass and page handlers' reads.
func forgeBusy(workers int) int { return workers + 4 }
