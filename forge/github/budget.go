package github

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/foureyes-dev/foureyes/bot"
)

// GitHub gives each App installation its own budget of REST requests per
// hour (the "core" resource) and reports what is left on every answer:
// X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (epoch
// seconds) and X-RateLimit-Resource ("Rate limits for the REST API",
// https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#checking-the-status-of-your-rate-limit).
// The adapter keeps the last figures per installation, so the service can
// put urgent work first when the budget runs low (bot.RateLimited).

// budgets holds the last reported core budget per installation.
type budgets struct {
	mu     sync.Mutex
	m      map[int64]bot.RateBudget
	report func(installation int64, b bot.RateBudget)
}

func (b *budgets) get(inst int64) (bot.RateBudget, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[inst]
	return v, ok
}

// observe records the budget an answer reports. Answers about other
// resources (search, GraphQL) and answers without the headers (some error
// pages) leave it alone.
func (b *budgets) observe(inst int64, h http.Header) {
	if r := h.Get("X-RateLimit-Resource"); r != "" && r != "core" {
		return
	}
	remaining, err1 := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Remaining")))
	limit, err2 := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Limit")))
	reset, err3 := strconv.ParseInt(strings.TrimSpace(h.Get("X-RateLimit-Reset")), 10, 64)
	if err1 != nil || err3 != nil {
		return
	}
	if err2 != nil {
		limit = 0
	}
	v := bot.RateBudget{Remaining: remaining, Limit: limit, Reset: time.Unix(reset, 0).UTC()}
	b.mu.Lock()
	if b.m == nil {
		b.m = map[int64]bot.RateBudget{}
	}
	b.m[inst] = v
	report := b.report
	b.mu.Unlock()
	if report != nil {
		report(inst, v)
	}
}

// budgetTransport sits above ghinstallation (below the ETag cache), so it
// knows the installation and sees every answer, 304s included.
type budgetTransport struct {
	next    http.RoundTripper
	inst    int64
	budgets *budgets
}

func (t *budgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil && resp != nil {
		t.budgets.observe(t.inst, resp.Header)
	}
	return resp, err
}

// RateBudget returns the last reported request budget of the installation
// that delivered repo's events (see bot.RateLimited). Until the first
// answer it is unknown: ok is false.
func (f *Forge) RateBudget(repo bot.Repo) (bot.RateBudget, bool) {
	b, ok := f.budgets.get(repo.Installation)
	if ok && !b.Reset.IsZero() && !f.now().Before(b.Reset) {
		// The window has reset since: the figure is stale.
		return bot.RateBudget{}, false
	}
	return b, ok
}

var _ bot.RateLimited = (*Forge)(nil)
