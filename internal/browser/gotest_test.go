package browser

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The store's own tests — the storetest conformance suite on SQLite in
// IndexedDB, and the SQLite driver's tests — run inside Chromium: the test
// binaries are built for GOOS=js and run in a page (wasm/test/gotest.html,
// with an in-memory file system for their temporary directories), on the
// browser's real IndexedDB. So do crdt's Document tests, on the browser
// binding of doc fields: @automerge/automerge as build.sh lays it out,
// loaded by uno.js the first time a test opens a document.
func TestBrowser_StoreSuites(t *testing.T) {
	dir := t.TempDir()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ from, to string }{
		{filepath.Join(strings.TrimSpace(string(goroot)), "lib/wasm/wasm_exec.js"), "wasm_exec.js"},
		{filepath.Join(root, "wasm/test/memfs.js"), "memfs.js"},
		{filepath.Join(root, "wasm/test/gotest.html"), "gotest.html"},
		{filepath.Join(built.web, "uno/uno.js"), "uno.js"},
		{filepath.Join(built.web, "uno/uno-sqlite.mjs"), "uno-sqlite.mjs"},
	} {
		b, err := os.ReadFile(f.from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.to), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"automerge", "sqlite3"} {
		if out, err := exec.Command("cp", "-r", filepath.Join(built.web, "uno", d), dir).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v\n%s", d, err, out)
		}
	}
	// Each package, the tests to run, and how long they take in Chromium
	// on a quiet machine.
	pkgs := map[string]struct {
		path  string
		args  string
		quiet time.Duration
	}{
		"store":    {"./store", "-test.v", 40 * time.Second},
		"sqlitejs": {"./store/sqlitejs", "-test.v", 8 * time.Second},
		"crdt":     {"./crdt", "-test.v -test.run=^(TestDocument|TestAutomergeModule)_", 5 * time.Second},
	}
	for name, pkg := range pkgs {
		cmd := exec.Command("go", "test", "-c", "-o", filepath.Join(dir, name+".test.wasm"), pkg.path)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s's tests for js: %v\n%s", pkg.path, err, out)
		}
	}
	hs := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer hs.Close()
	b := newBrowser(t)
	for name, pkg := range pkgs {
		t.Run(name, func(t *testing.T) {
			b.t = t
			b.launch(name, filepath.Join(t.TempDir(), "profile"))
			b.do(map[string]any{"cmd": "goto", "profile": name, "url": hs.URL + "/gotest.html?bin=" + name + ".test.wasm&args=" + url.QueryEscape(pkg.args)})
			timeout := run.deadline(t, pkg.quiet)
			start := time.Now()
			b.do(map[string]any{"cmd": "waitFor", "profile": name, "js": `window.goExit !== undefined`, "timeout": timeout})
			t.Logf("%s's tests ended in Chromium after %s (deadline %s)", name, time.Since(start).Round(time.Millisecond), timeout)
			var code int
			b.eval(name, `window.goExit`, &code)
			var out []string
			raw := b.do(map[string]any{"cmd": "eval", "profile": name, "js": `window.goOutput`})
			json.Unmarshal(raw, &out)
			passed := 0
			for _, l := range out {
				if strings.HasPrefix(strings.TrimSpace(l), "--- PASS") {
					passed++
				}
			}
			if code != 0 || passed == 0 {
				tail := out
				if len(tail) > 80 {
					tail = tail[len(tail)-80:]
				}
				t.Fatalf("%s's tests in Chromium: exit %d, %d passed; the output ends:\n%s", name, code, passed, strings.Join(tail, "\n"))
			}
			t.Logf("%s's tests in Chromium: %d passed", name, passed)
			b.do(map[string]any{"cmd": "close", "profile": name})
		})
	}
}
