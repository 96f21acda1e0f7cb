package browser

import (
	"bufio"
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
func startServe(t testing.TB, addr, dataDir string, extra ...string) *serveProc {
	t.Helper()
	args := append([]string{"serve", "--addr", addr, "--data", dataDir, "--web", built.web, "--log-level", "warn"}, extra...)
	cmd := exec.Command(built.uno, args...)
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

// browser is the Chromium driver (wasm/test/browser.mjs). Every command
// it sends carries a deadline derived from the run's pace (run), never a
// fixed one.
type browser struct {
	t     testing.TB
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	mu    sync.Mutex
	names map[string]bool
	// closest is the command that came closest to its deadline.
	closest struct {
		what     string
		took, of time.Duration
	}
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	spin := run.calibrate()
	t.Logf("pace: this calibration %s/round; %s; step deadline %s", spin.Round(10*time.Microsecond), run, run.deadline(t, quietPage))
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
		if b.closest.of > 0 {
			t.Logf("pace: %s; the closest call: %s took %s of its %s deadline", run, b.closest.what, b.closest.took.Round(time.Millisecond), b.closest.of)
		}
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
		case <-time.After(run.deadline(t, time.Second)):
			cmd.Process.Kill()
		}
	})
	return b
}

// step is the deadline of one ordinary step (a page becoming usable, a
// write reaching another browser, the offline banner showing): on a quiet
// machine each takes at most about as long as the first page.
func (b *browser) step() time.Duration {
	return run.deadline(b.t, quietPage)
}

// try sends one command and returns its value. The command's deadline
// ("timeout", in ms) is the step's unless cmd has one; the driver applies
// it, and if the driver does not answer within floor more, try kills it.
func (b *browser) try(cmd map[string]any) (json.RawMessage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	timeout, ok := cmd["timeout"].(time.Duration)
	if !ok {
		timeout = b.step()
	}
	cmd["timeout"] = timeout.Milliseconds()
	line, _ := json.Marshal(cmd)
	start := time.Now()
	if _, err := b.in.Write(append(line, '\n')); err != nil {
		return nil, err
	}
	scanned := make(chan bool, 1)
	go func() { scanned <- b.out.Scan() }()
	select {
	case ok = <-scanned:
	case <-time.After(timeout + floor):
		b.cmd.Process.Kill()
		<-scanned
		return nil, fmt.Errorf("the browser driver did not answer within %s; killed it", timeout+floor)
	}
	if !ok {
		return nil, fmt.Errorf("the browser driver ended: %v", b.out.Err())
	}
	if took := time.Since(start); float64(took)/float64(timeout) > float64(b.closest.took)/float64(max(b.closest.of, 1)) {
		b.closest.what, b.closest.took, b.closest.of = fmt.Sprint(cmd["cmd"]), took, timeout
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
		return nil, fmt.Errorf("%s (deadline %s; %s)", r.Error, timeout, run)
	}
	return r.Value, nil
}

// do sends a command and fails the test on error. A "timeout"
// (time.Duration) in cmd replaces the step's deadline.
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
	timeout := b.step()
	start := time.Now()
	b.do(map[string]any{"cmd": "launch", "profile": name, "dir": dir, "timeout": timeout})
	took := time.Since(start)
	run.sawLaunch(took)
	b.t.Logf("launch %s: %s (deadline %s)", name, took.Round(time.Millisecond), timeout)
}

// open loads url in the profile's page and waits until the app is
// usable, recording how long that took in the run's pace.
func (b *browser) open(name, url string) {
	b.t.Helper()
	b.page(map[string]any{"cmd": "goto", "profile": name, "url": url, "ready": appReady})
}

// page runs a command that loads a page and waits for its ready
// condition (goto, newPage, reload), and records how long it took.
func (b *browser) page(cmd map[string]any) {
	b.t.Helper()
	timeout := b.step()
	cmd["timeout"] = timeout
	start := time.Now()
	b.do(cmd)
	took := time.Since(start)
	run.sawPage(took)
	b.t.Logf("%s %s: usable in %s (deadline %s)", cmd["cmd"], cmd["profile"], took.Round(time.Millisecond), timeout)
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

// waitFor waits until js is true in the profile's page, for one step.
func (b *browser) waitFor(name, js string) {
	b.t.Helper()
	b.do(map[string]any{"cmd": "waitFor", "profile": name, "js": js})
}

func (b *browser) screenshot(name, file string) {
	b.t.Helper()
	b.do(map[string]any{"cmd": "screenshot", "profile": name, "path": filepath.Join(artifacts(b.t), file)})
}

// addTodo adds a todo through the page's form, as a user would, and
// waits until the list shows it (the write is committed).
func (b *browser) addTodo(name, title string) {
	b.t.Helper()
	js, _ := json.Marshal(title)
	b.eval(name, fmt.Sprintf(`(() => {
		document.getElementById('title').value = %s;
		document.getElementById('new').requestSubmit();
	})()`, js), nil)
	b.waitFor(name, fmt.Sprintf(`[...document.querySelectorAll('#list li span')].some(s => s.textContent === %s)`, js))
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

// killProfile SIGKILLs every process whose command line names the profile
// directory (the browser and its helpers), waits until they are gone and
// returns how many there were.
func killProfile(t testing.TB, dir string) int {
	t.Helper()
	n := 0
	for _, pid := range profilePIDs(dir) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	deadline := run.deadline(t, time.Second)
	for end := time.Now().Add(deadline); len(profilePIDs(dir)) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the profile's processes outlived a SIGKILL by %s: %v", deadline, profilePIDs(dir))
		}
	}
	return n
}

// profilePIDs lists the processes whose command line names the profile
// directory (a killed process that is not yet reaped has none).
func profilePIDs(dir string) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "--user-data-dir="+dir) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
