package handlers

import (
	"bytes"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
)

// The pages are server-rendered html/template documents with their CSS
// inline: no external asset, no script, so they work behind strict proxies
// and with JavaScript off, and the CSP below can forbid everything else.
//
//go:embed pages/*.html
var pageFiles embed.FS

// pageCSP allows inline styles and data: images (the favicon) and nothing
// else: no scripts, no fetches, no frames. frame-ancestors and base-uri do
// not fall back to default-src, hence spelled out (clickjacking of the
// setup button, <base> injection).
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'"

// pageTemplates parses the layout with one content template per page.
// Each page gets its own clone because every page defines "content".
type pageTemplates map[string]*template.Template

var pageFuncs = template.FuncMap{
	"plural": func(n int, word string) string {
		if n == 1 {
			return "1 " + word
		}
		return strconv.Itoa(n) + " " + word + "s"
	},
	"short": func(sha string) string {
		if len(sha) > 12 {
			return sha[:12]
		}
		return sha
	},
	"add": func(a, b int) int { return a + b },
}

// parsePages parses the embedded pages. It panics on error: the templates
// are compiled into the binary, so an error is a build mistake that every
// test run catches.
func parsePages(names ...string) pageTemplates {
	layout := template.Must(template.New("layout.html").Funcs(pageFuncs).ParseFS(pageFiles, "pages/layout.html"))
	out := make(pageTemplates, len(names))
	for _, n := range names {
		out[n] = template.Must(template.Must(layout.Clone()).ParseFS(pageFiles, "pages/"+n+".html"))
	}
	return out
}

// pageData is what the layout needs besides the page's own data.
type pageData struct {
	Title string
	// Tone colours the header stripe: "success", "pending", "failure" or "".
	Tone string
	Page any
}

// render writes a complete page. It renders into a buffer first so a
// template error becomes a clean 500 instead of half a page.
func (p pageTemplates) render(w http.ResponseWriter, log *slog.Logger, status int, name string, data pageData) {
	var buf bytes.Buffer
	if err := p[name].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		log.Error("render page", "page", name, "error", err)
		setPageHeaders(w)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("internal error\n"))
		return
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// setPageHeaders sets the headers every human-facing page carries.
// no-store: a verdict changes with every review, and setup pages must not
// linger in a shared cache. no-referrer: the details token is in the URL
// and must not leak to the forge through links.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
}
