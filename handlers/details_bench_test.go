package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/foureyes-dev/foureyes/handlers"
)

// BenchmarkVerifyDetails is the cost of refusing or accepting a link
// before any store or forge is asked.
func BenchmarkVerifyDetails(b *testing.B) {
	tok := handlers.SignDetails(detailsKey, sampleRef(), time.Now().Add(time.Hour))
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := handlers.VerifyDetails(detailsKey, tok, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDetailsPage renders a public verdict end to end in-process.
func BenchmarkDetailsPage(b *testing.B) {
	src := &memVerdicts{}
	ref := sampleRef()
	src.put(ref, sampleVerdict(ref))
	h, err := handlers.DetailsHandler(handlers.DetailsConfig{Key: detailsKey, Verdicts: src, Forges: linkOnly})
	if err != nil {
		b.Fatal(err)
	}
	target := "/details/" + handlers.SignDetails(detailsKey, ref, time.Now().Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
