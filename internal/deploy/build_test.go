package deploy

import (
	"bufio"
	"debug/elf"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// root is the repository's top directory.
const root = "../.."

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
	buildDir  string
)

// built runs docs/deploy/build.sh once and returns the binary's path.
func built(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "uno-deploy-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		binary = filepath.Join(dir, "uno")
		out, err := exec.Command(filepath.Join(root, "docs/deploy/build.sh"), binary).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build.sh: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// The binary build.sh makes is static: no ELF interpreter, no shared
// libraries, built with CGO_ENABLED=0 and -trimpath.
func TestBuild_Static(t *testing.T) {
	bin := built(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: dynamically linked", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath=true", "github.com/unosync/uno/cmd/uno"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("go version -m %s lacks %q:\n%s", bin, want, out)
		}
	}
}

func TestBuild_Usage(t *testing.T) {
	out, err := exec.Command(filepath.Join(root, "docs/deploy/build.sh")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "usage:") {
		t.Fatalf("build.sh with no OUT: err %v, out %q; want a usage error", err, out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// health runs the built binary's `uno health` against url.
func health(bin, url string) (string, error) {
	out, err := exec.Command(bin, "health", "--url", url, "--timeout", "5s").CombinedOutput()
	return string(out), err
}

// waitFor polls cond every 50ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The static binary serves, and `uno health` (the image's HEALTHCHECK)
// tells: non-zero with a clear message before it listens, 0 once ready,
// non-zero naming "draining" during --drain-delay after SIGTERM, and the
// server still exits 0 after its drain.
func TestBuild_HealthAgainstTheBinary(t *testing.T) {
	bin := built(t)
	addr := freeAddr(t)
	url := "http://" + addr + "/readyz"
	out, err := health(bin, url)
	if err == nil || !strings.Contains(out, "not healthy") || !strings.Contains(out, "is uno serve running there?") {
		t.Fatalf("uno health with no server: err %v, out %q", err, out)
	}

	cmd := exec.Command(bin, "serve", "--addr", addr, "--data", t.TempDir(), "--drain-delay", "10s", "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor(t, 60*time.Second, "uno health exits 0 against the started server", func() bool {
		_, err := health(bin, url)
		return err == nil
	})
	if out, err := health(bin, "http://"+addr+"/healthz"); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("uno health --url .../healthz: err %v, out %q", err, out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "uno health fails naming draining after SIGTERM", func() bool {
		out, err := health(bin, url)
		return err != nil && strings.Contains(out, "503") && strings.Contains(out, "draining")
	})
	// Still serving during the delay: liveness answers.
	if out, err := health(bin, "http://"+addr+"/healthz"); err != nil {
		t.Fatalf("during --drain-delay /healthz should answer: err %v, out %q", err, out)
	}
	// Once the delay ends it drains and exits 0.
	select {
	case err := <-exited:
		if err != nil {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("uno serve exited %v\n%s", err, strings.Join(lines, "\n"))
		}
	case <-time.After(90 * time.Second):
		t.Fatal("uno serve did not exit within 90s of SIGTERM with --drain-delay 10s")
	}
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(lines, "\n")
	for _, want := range []string{"not ready, serving 10s more before draining", "uno serve: stopped"} {
		if !strings.Contains(all, want) {
			t.Errorf("uno serve's output lacks %q:\n%s", want, all)
		}
	}
}
