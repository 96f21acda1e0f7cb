package browser

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// root is the repository's root.
var root, _ = filepath.Abs("../..")

// built holds what TestMain built: the uno binary and the web app's
// directory (examples/web with the client's build in uno/).
var built struct {
	uno, web string
}

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "browser tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	chromium := os.Getenv("UNO_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		return 0, fmt.Errorf("no Chromium at %s: install it (apt-get install chromium) or run .ci/test, which does", chromium)
	}
	if _, err := os.Stat(filepath.Join(root, "wasm/node_modules/playwright-core")); err != nil {
		return 0, fmt.Errorf("playwright-core is not installed: npm ci --prefix wasm (.ci/test does it)")
	}
	dir, err := os.MkdirTemp("", "uno-browser-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	built.uno = filepath.Join(dir, "uno")
	if out, err := exec.Command("go", "build", "-o", built.uno, "github.com/unosync/uno/cmd/uno").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build uno: %v\n%s", err, out)
	}
	built.web = filepath.Join(dir, "web")
	if out, err := exec.Command("cp", "-r", filepath.Join(root, "examples/web"), built.web).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("copy the web app: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(root, "wasm/build.sh"), filepath.Join(built.web, "uno")).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build the wasm client: %v\n%s", err, out)
	}
	return m.Run(), nil
}

// artifacts is where screenshots go.
func artifacts(t testing.TB) string {
	dir := os.Getenv("UNO_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(root, "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serveProc is a `uno serve --web` process.
type serveProc struct {
	t       testing.TB
	cmd     *exec.Cmd
	addr    string
	dataDir string
	token   string
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe starts uno serve on addr with its data in dataDir (the
// development token is kept there, so a restart keeps it).
func startServe(t testing.TB, addr, dataDir string) *serveProc {
	t.Helper()
	cmd := exec.Command(built.uno, "serve", "--addr", addr, "--data", dataDir, "--web", built.web, "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &serveProc{t: t, cmd: cmd, addr: addr, dataDir: dataDir}
	t.Cleanup(s.stop)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if tok, ok := strings.CutPrefix(sc.Text(), "web app: http://"+addr+"/#token="); ok {
			s.token = tok
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if s.token == "" {
		t.Fatal("uno serve printed no web app URL")
	}
	return s
}

// url is the web app's URL, with the token and the database's name.
func (s *serveProc) url(db string) string {
	return fmt.Sprintf("http://%s/#token=%s&db=%s", s.addr, s.token, db)
}

// stop kills the server (as a crash would: the log is durable).
func (s *serveProc) stop() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// browser is the Chromium driver (wasm/test/browser.mjs).
type browser struct {
	t     testing.TB
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	mu    sync.Mutex
	names map[string]bool
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	cmd := exec.Command("node", filepath.Join(root, "wasm/test/browser.mjs"))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out), names: map[string]bool{}}
	b.out.Buffer(make([]byte, 1<<20), 16<<20)
	t.Cleanup(func() {
		for name := range b.names {
			if t.Failed() {
				if logs, err := b.try(map[string]any{"cmd": "logs", "profile": name}); err == nil {
					t.Logf("console of %s: %s", name, logs)
				}
			}
		}
		b.try(map[string]any{"cmd": "quit"})
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	return b
}

// try sends one command and returns its value.
func (b *browser) try(cmd map[string]any) (json.RawMessage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	line, _ := json.Marshal(cmd)
	if _, err := b.in.Write(append(line, '\n')); err != nil {
		return nil, err
	}
	if !b.out.Scan() {
		return nil, fmt.Errorf("the browser driver ended: %v", b.out.Err())
	}
	var r struct {
		OK    bool            `json:"ok"`
		Value json.RawMessage `json:"value"`
		Error string          `json:"error"`
	}
	if err := json.Unmarshal(b.out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("driver: %v: %s", err, b.out.Bytes())
	}
	if !r.OK {
		return nil, fmt.Errorf("%s", r.Error)
	}
	return r.Value, nil
}

// do sends a command and fails the test on error.
func (b *browser) do(cmd map[string]any) json.RawMessage {
	b.t.Helper()
	v, err := b.try(cmd)
	if err != nil {
		b.t.Fatalf("%v: %v", cmd["cmd"], err)
	}
	return v
}

// appReady is true once the app opened its database.
const appReady = `window.uno !== undefined`

// launch starts a profile (a persistent browser profile in dir).
func (b *browser) launch(name, dir string) {
	b.t.Helper()
	b.names[name] = true
	b.do(map[string]any{"cmd": "launch", "profile": name, "dir": dir})
}

func (b *browser) open(name, url string) {
	b.t.Helper()
	b.do(map[string]any{"cmd": "goto", "profile": name, "url": url, "ready": appReady})
}

// eval evaluates a JavaScript expression (a Promise is awaited) in the
// profile's page and decodes its value into dst (if not nil).
func (b *browser) eval(name, js string, dst any) {
	b.t.Helper()
	v := b.do(map[string]any{"cmd": "eval", "profile": name, "js": js})
	if dst != nil {
		if err := json.Unmarshal(v, dst); err != nil {
			b.t.Fatalf("eval %s: %v: %s", js, err, v)
		}
	}
}

func (b *browser) waitFor(name, js string, timeout time.Duration) {
	b.t.Helper()
	b.do(map[string]any{"cmd": "waitFor", "profile": name, "js": js, "timeout": timeout.Milliseconds()})
}

func (b *browser) screenshot(name, file string) {
	b.t.Helper()
	b.do(map[string]any{"cmd": "screenshot", "profile": name, "path": filepath.Join(artifacts(b.t), file)})
}

// addTodo adds a todo through the page's form, as a user would.
func (b *browser) addTodo(name, title string) {
	b.t.Helper()
	js, _ := json.Marshal(title)
	b.eval(name, fmt.Sprintf(`(async () => {
		const n = document.querySelectorAll('#list li').length;
		document.getElementById('title').value = %s;
		document.getElementById('new').requestSubmit();
		for (let i = 0; i < 500 && document.querySelectorAll('#list li').length === n; i++) await new Promise(r => setTimeout(r, 10));
	})()`, js), nil)
}

// titles returns the titles the page lists, in order.
func (b *browser) titles(name string) []string {
	b.t.Helper()
	var out []string
	b.eval(name, `[...document.querySelectorAll('#list li span')].map(s => s.textContent)`, &out)
	return out
}

// upToDate is true when the page's database is synced with nothing pending.
const upToDate = `document.getElementById('status').dataset.state === 'upToDate' && document.getElementById('pending').textContent === '0 pending'`

var _ = context.Background

// killProfile SIGKILLs every process whose command line names the profile
// directory (the browser and its helpers) and returns how many.
func killProfile(t testing.TB, dir string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "--user-data-dir="+dir) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}
