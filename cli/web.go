package cli

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	gosync "sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// web serves the files of a directory at / beside the server's own paths:
// regular files inside the directory only (opened through an os.Root; a
// symlink is followed while it stays inside), never a dotfile or anything
// in a dot-directory (.git, .env), directly or through a symlink, and no
// listings: a directory serves its index.html, or 404. Files are revalidated on every load (no stale app
// after a rebuild); large text and WebAssembly files go gzipped to
// clients that accept it (uno.wasm: 21 MB raw, 5.5 MB gzipped),
// compressed once per version of the file.
type web struct {
	srv  http.Handler
	root *os.Root
	gz   gzipCache
}

// newWeb serves dir beside srv. Close releases the directory.
func newWeb(srv http.Handler, dir string) (*web, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if fi, err := root.Stat("."); err != nil || !fi.IsDir() {
		root.Close()
		return nil, fmt.Errorf("web: %s is not a directory", dir)
	}
	return &web{srv: srv, root: root, gz: gzipCache{m: map[string]gzipped{}}}, nil
}

// Close releases the directory.
func (wb *web) Close() error { return wb.root.Close() }

func (wb *web) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/v1/"), p == "/healthz", p == "/readyz", p == "/metrics":
		wb.srv.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, fi, name, typeName, redirect := wb.open(r.URL.Path)
	if redirect {
		http.Redirect(w, r, path.Base(r.URL.Path)+"/", http.StatusMovedPermanently)
		return
	}
	if f == nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Add("Vary", "Accept-Encoding")
	if wb.gz.serve(w, r, name, typeName, f, fi) {
		return
	}
	http.ServeContent(w, r, typeName, fi.ModTime(), f)
}

// open opens the regular file a URL path names inside the root, or a
// directory's index.html (redirect: the path lacks the directory's
// trailing slash). It returns the file's name in the root and the name
// its type goes by (the URL's), or a nil file for anything it does not
// serve.
func (wb *web) open(urlPath string) (f *os.File, fi os.FileInfo, name, typeName string, redirect bool) {
	typeName = path.Clean("/" + urlPath)
	name, ok := wb.resolve(typeName)
	if !ok {
		return nil, nil, "", "", false
	}
	// Stat before opening: opening a FIFO would block.
	fi, err := wb.root.Stat(name)
	if err == nil && fi.IsDir() {
		if name, ok = wb.resolve(path.Join(name, "index.html")); !ok {
			return nil, nil, "", "", false
		}
		typeName = "index.html"
		if fi, err = wb.root.Stat(name); err == nil && fi.Mode().IsRegular() && !strings.HasSuffix(urlPath, "/") {
			return nil, nil, "", "", true
		}
	}
	if err != nil || !fi.Mode().IsRegular() {
		return nil, nil, "", "", false
	}
	if f, err = wb.root.Open(name); err != nil {
		return nil, nil, "", "", false
	}
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() { // replaced meanwhile
		f.Close()
		return nil, nil, "", "", false
	}
	return f, fi, name, typeName, false
}

// resolve follows the symlinks along a slash-separated path in the root,
// one component at a time, and returns the path it leads to ("." for the
// root itself). It refuses (false) a path that leads out of the root,
// through an absolute link, or through a component that starts with a
// dot, in the path or in a link's target: a symlink does not reach a
// dotfile. The root refuses escapes again when the file is opened, in
// case a link changes meanwhile.
func (wb *web) resolve(p string) (string, bool) {
	var done []string
	rest := strings.Split(p, "/")
	for hops := 0; len(rest) > 0; {
		seg := rest[0]
		rest = rest[1:]
		switch {
		case seg == "" || seg == ".":
			continue
		case seg == "..":
			if len(done) == 0 {
				return "", false
			}
			done = done[:len(done)-1]
			continue
		case strings.HasPrefix(seg, "."):
			return "", false
		}
		cur := path.Join(append(done, seg)...)
		fi, err := wb.root.Lstat(cur)
		if err != nil {
			return "", false
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, seg)
			continue
		}
		target, err := wb.root.Readlink(cur)
		if hops++; err != nil || hops > 40 || path.IsAbs(filepath.ToSlash(target)) {
			return "", false
		}
		rest = append(strings.Split(filepath.ToSlash(target), "/"), rest...)
	}
	if len(done) == 0 {
		return ".", true
	}
	return path.Join(done...), true
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

// gzipCache holds the gzipped versions of files, by name in the root.
type gzipCache struct {
	mu gosync.Mutex
	m  map[string]gzipped
}

// serve answers r with the gzipped version of f (name in the root, fi
// its info, typeName the name its type goes by), if the client accepts
// gzip and the file is worth it; it reports whether it answered.
func (g *gzipCache) serve(w http.ResponseWriter, r *http.Request, name, typeName string, f *os.File, fi os.FileInfo) bool {
	ctype, ok := compressible[path.Ext(typeName)]
	if !ok || !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") || fi.Size() < 1024 {
		return false
	}
	g.mu.Lock()
	c, ok := g.m[name]
	g.mu.Unlock()
	if !ok || !c.mod.Equal(fi.ModTime()) || c.size != fi.Size() {
		raw, err := io.ReadAll(f)
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
