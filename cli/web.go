package cli

import (
	"bytes"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	gosync "sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// withWeb serves the files of dir at / beside the server's own paths.
// Files are revalidated on every load (no stale app after a rebuild);
// large text and WebAssembly files go gzipped to clients that accept it
// (uno.wasm: 21 MB raw, 5.5 MB gzipped), compressed once per version of
// the file.
func withWeb(srv http.Handler, dir string) http.Handler {
	files := http.FileServer(http.Dir(dir))
	gz := &gzipCache{dir: dir, m: map[string]gzipped{}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, "/v1/"), p == "/healthz", p == "/readyz", p == "/metrics":
			srv.ServeHTTP(w, r)
		default:
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Add("Vary", "Accept-Encoding")
			if gz.serve(w, r) {
				return
			}
			files.ServeHTTP(w, r)
		}
	})
}

// compressible lists the extensions worth gzipping.
var compressible = map[string]string{
	".wasm": "application/wasm", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8", ".ts": "text/plain; charset=utf-8",
}

type gzipped struct {
	mod  time.Time
	size int64
	data []byte
}

type gzipCache struct {
	dir string
	mu  gosync.Mutex
	m   map[string]gzipped
}

// serve answers r with the gzipped file, if the client accepts gzip and
// the file is worth it; it reports whether it answered.
func (g *gzipCache) serve(w http.ResponseWriter, r *http.Request) bool {
	ctype, ok := compressible[path.Ext(r.URL.Path)]
	if !ok || !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	name := filepath.Join(g.dir, filepath.FromSlash(path.Clean("/"+r.URL.Path)))
	fi, err := os.Stat(name)
	if err != nil || fi.IsDir() || fi.Size() < 1024 {
		return false
	}
	g.mu.Lock()
	c, ok := g.m[name]
	g.mu.Unlock()
	if !ok || !c.mod.Equal(fi.ModTime()) || c.size != fi.Size() {
		raw, err := os.ReadFile(name)
		if err != nil {
			return false
		}
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
		zw.Write(raw)
		zw.Close()
		c = gzipped{mod: fi.ModTime(), size: fi.Size(), data: b.Bytes()}
		g.mu.Lock()
		g.m[name] = c
		g.mu.Unlock()
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Encoding", "gzip")
	http.ServeContent(w, r, "", c.mod, bytes.NewReader(c.data))
	return true
}
