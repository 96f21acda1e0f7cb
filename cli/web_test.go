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
func TestWithWeb(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("(module wasm-ish bytes) "), 4000)
	if err := os.WriteFile(filepath.Join(dir, "app.wasm"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><p>hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("server:" + r.URL.Path)) })
	hs := httptest.NewServer(withWeb(api, dir))
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
