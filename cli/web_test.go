package cli

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// The web app's files are served beside the server's paths; large
// compressible ones go gzipped to clients that accept it, the same bytes
// once decompressed; the server's own paths are not the files'.
func TestWeb_Gzip(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("(module wasm-ish bytes) "), 4000)
	if err := os.WriteFile(filepath.Join(dir, "app.wasm"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><p>hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("server:" + r.URL.Path)) })
	wb, err := newWeb(api, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	hs := httptest.NewServer(wb)
	defer hs.Close()
	get := func(path string, gz bool) *http.Response {
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no transparent decompression
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := get("/app.wasm", true)
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Content-Type") != "application/wasm" {
		t.Fatalf("gzip request: %v", resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, big) {
		t.Fatalf("decompressed %d bytes, want the file's %d", len(got), len(big))
	}
	resp = get("/app.wasm", false)
	if got, _ := io.ReadAll(resp.Body); resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(got, big) {
		t.Fatalf("plain request: %v, %d bytes", resp.Header, len(got))
	}
	resp = get("/", true)
	if got, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" || string(got) != "<!doctype html><p>hi" {
		t.Fatalf("index (small, not gzipped): %d %v %q", resp.StatusCode, resp.Header, got)
	}
	for _, p := range []string{"/v1/sync", "/healthz", "/metrics"} {
		if got, _ := io.ReadAll(get(p, true).Body); string(got) != "server:"+p {
			t.Errorf("%s went to %q", p, got)
		}
	}
	if resp := get("/../../etc/passwd", true); resp.StatusCode == 200 {
		t.Error("a path out of the directory was served")
	}
}

// Only regular files inside the directory are served: no dotfiles or
// dot-directories, no symlink out of it, no listings (a directory serves
// its index.html or nothing), gzipped or not.
func TestWeb_OnlyFilesInside(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	big := bytes.Repeat([]byte("console.log('secret');\n"), 100)
	for name, content := range map[string][]byte{
		"outside/secret.txt":  []byte("secret"),
		"outside/big.js":      big,
		"root/index.html":     []byte("home"),
		"root/app.js":         []byte("app"),
		"root/.env":           []byte("KEY=1"),
		"root/.big.js":        big,
		"root/.git/config":    []byte("[core]"),
		"root/sub/index.html": []byte("sub home"),
		"root/sub/.hidden":    []byte("hidden"),
		"root/noindex/a.txt":  []byte("a"),
	} {
		p := filepath.Join(base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"link-in.txt":  "app.js",
		"sub/up.txt":   "../app.js",
		"link-out.txt": "../outside/secret.txt",
		"link-abs.txt": filepath.Join(outside, "secret.txt"),
		"link-out.js":  "../outside/big.js",
		"link-dir":     "../outside",
		"link-git":     ".git",
		"link-env":     "sub/../.env",
		"link-loop":    "link-loop",
		"sub/link-up":  "..",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	wb, err := newWeb(http.NotFoundHandler(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	hs := httptest.NewServer(wb)
	defer hs.Close()
	tests := []struct {
		method, path string
		gzip         bool
		status       int
		body         string // when 200; the Location when 301
	}{
		{"GET", "/", false, 200, "home"},
		{"GET", "/index.html", false, 200, "home"},
		{"HEAD", "/app.js", false, 200, ""},
		{"GET", "/app.js", false, 200, "app"},
		{"GET", "/sub/", false, 200, "sub home"},
		{"GET", "/sub", false, 301, "/sub/"},
		{"GET", "/noindex/a.txt", false, 200, "a"},
		{"GET", "/link-in.txt", false, 200, "app"},
		{"GET", "/sub/up.txt", false, 200, "app"},
		{"GET", "/.env", false, 404, ""},
		{"GET", "/.big.js", true, 404, ""},
		{"GET", "/.git/config", false, 404, ""},
		{"GET", "/.git/", false, 404, ""},
		{"GET", "/sub/.hidden", false, 404, ""},
		{"GET", "/link-git/config", false, 404, ""},
		{"GET", "/link-env", false, 404, ""},
		{"GET", "/link-loop", false, 404, ""},
		{"GET", "/sub/link-up/app.js", false, 200, "app"},
		{"GET", "/sub/link-up/link-out.txt", false, 404, ""},
		{"GET", "/noindex/", false, 404, ""},
		{"GET", "/noindex", false, 404, ""},
		{"GET", "/empty/", false, 404, ""},
		{"GET", "/link-out.txt", false, 404, ""},
		{"GET", "/link-abs.txt", false, 404, ""},
		{"GET", "/link-out.js", true, 404, ""},
		{"GET", "/link-dir/secret.txt", false, 404, ""},
		{"GET", "/../outside/secret.txt", false, 404, ""},
		{"GET", "/%2e%2e/outside/secret.txt", false, 404, ""},
		{"GET", "/missing", false, 404, ""},
		{"POST", "/", false, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, hs.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = tt.path // as written, uncleaned
			if tt.gzip {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %.80q)", resp.StatusCode, tt.status, body)
			}
			switch tt.status {
			case 200:
				if string(body) != tt.body {
					t.Fatalf("body %q, want %q", body, tt.body)
				}
			case 301:
				if loc := resp.Header.Get("Location"); loc != tt.body {
					t.Fatalf("Location %q, want %q", loc, tt.body)
				}
			case 404:
				if bytes.Contains(body, []byte("secret")) || bytes.Contains(body, []byte("KEY")) {
					t.Fatalf("404 with %q", body)
				}
			}
		})
	}
}
