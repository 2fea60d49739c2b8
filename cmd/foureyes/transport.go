package main

import (
	"io"
	"net/http"
)

// forgeTransport is the base transport of the forge API clients, for up
// to busy requests in flight at once. http.DefaultTransport keeps two idle
// connections per host, and all of foureyes' requests go to one host
// (api.github.com, the GitLab instance): with more than two in flight,
// every connection that finished a request beyond the second was closed,
// and the next request opened another, with a TLS handshake on HTTPS. In
// a burst of 5,000 deliveries with 4 workers that was 249 new connections.
func forgeTransport(busy int) *drainingTransport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(busy, 2)
	t.MaxIdleConns = max(t.MaxIdleConns, 2*t.MaxIdleConnsPerHost)
	return &drainingTransport{t}
}

// forgeBusy is how many forge requests may be in flight at once: one per
// worker, plus the reconciler, the break-glass and page handlers' reads.
func forgeBusy(workers int) int { return workers + 4 }

// drainingTransport reads what is left of a response body, up to
// maxDrain, when it is closed. An HTTP/1.1 connection goes back to the
// idle pool only once its response was read to the end, and go-github's
// Client.Do decodes one JSON value with a json.Decoder and closes the
// body: whatever follows the value (the newline an encoder writes, the
// last chunk of a chunked body) was left unread, and the connection was
// closed. In a burst of 5,000 deliveries that was 505 new connections to
// the fake GitHub, one per check run created.
type drainingTransport struct{ *http.Transport }

// maxDrain bounds the bytes read only to keep a connection: a body with
// more left than that is cheaper to drop with its connection.
const maxDrain = 64 << 10

func (t *drainingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.Transport.RoundTrip(req)
	if err != nil || resp.Body == nil || resp.Body == http.NoBody {
		return resp, err
	}
	resp.Body = drainingBody{resp.Body}
	return resp, nil
}

type drainingBody struct{ io.ReadCloser }

func (b drainingBody) Close() error {
	_, _ = io.CopyN(io.Discard, b.ReadCloser, maxDrain)
	return b.ReadCloser.Close()
}
