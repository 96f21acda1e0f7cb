package e2e

import (
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// The uno binary knows its module and the Go that built it.
func TestUnoVersion(t *testing.T) {
	out, err := exec.Command(unoBinary, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("uno version: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if !strings.HasPrefix(lines[0], "uno ") || strings.Contains(lines[0], "no build information") {
		t.Errorf("first line %q, want uno's module version", lines[0])
	}
	if want := "go " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH; lines[len(lines)-1] != want {
		t.Errorf("last line %q, want %q", lines[len(lines)-1], want)
	}
	for _, l := range lines[1 : len(lines)-1] {
		if rev, ok := strings.CutPrefix(l, "revision "); ok && len(strings.Fields(rev)[0]) < 7 {
			t.Errorf("revision line %q", l)
		}
	}
}
