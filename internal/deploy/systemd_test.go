package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// verifyUnit runs systemd-analyze verify on unit text, saved as uno.service
// in a fresh directory. It returns verify's output and whether it found
// nothing to say: exit status 0 and no warnings (systemd ignores an
// unknown key or a bad value with a warning, exit status 0).
func verifyUnit(t *testing.T, text string) (string, bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "uno.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	return string(out), err == nil && strings.TrimSpace(string(out)) == ""
}

// The unit passes systemd-analyze verify with its ExecStart pointing at a
// binary built by build.sh (verify checks that it exists), and verify
// refuses broken copies of it.
func TestSystemdUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze is needed (Debian package systemd)")
	}
	b, err := os.ReadFile(filepath.Join(root, "docs/deploy/uno.service"))
	if err != nil {
		t.Fatal(err)
	}
	const execPath = "ExecStart=/usr/local/bin/uno "
	text := string(b)
	if !strings.Contains(text, execPath) {
		t.Fatalf("uno.service has no %q", execPath)
	}
	bin, err := filepath.Abs(built(t))
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.Replace(text, execPath, "ExecStart="+bin+" ", 1)
	if out, ok := verifyUnit(t, unit); !ok {
		t.Fatalf("systemd-analyze verify uno.service:\n%s", out)
	}
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=uno", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"CapabilityBoundingSet=\n", "KillSignal=SIGTERM", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
		"EnvironmentFile=", "SystemCallFilter=@system-service"} {
		if !strings.Contains(unit, want) {
			t.Errorf("uno.service lacks %q", want)
		}
	}
	broken := []struct{ name, from, to string }{
		{"missing binary", "ExecStart=" + bin, "ExecStart=" + bin + "-missing"},
		{"typo'd key", "ProtectSystem=strict", "ProtectSystm=strict"},
		{"bad value", "Restart=on-failure", "Restart=sometimes"},
		{"typo'd section", "[Service]", "[Servce]"},
	}
	for _, bc := range broken {
		if out, ok := verifyUnit(t, strings.Replace(unit, bc.from, bc.to, 1)); ok {
			t.Errorf("%s: systemd-analyze verify found nothing wrong (%q)", bc.name, out)
		}
	}
}
