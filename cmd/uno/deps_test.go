package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// testOnly reports whether a package is test-only code, which neither the
// uno binary nor an app linking the client may link: package testing
// (whose init-time flags and helpers come with it), rapid, and the
// throwaway-Postgres helper.
func testOnly(pkg string) bool {
	for _, p := range []string{"testing", "pgregory.net/rapid", "github.com/unosync/uno/internal/pgtest"} {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

func TestLinksNoTestOnlyCode(t *testing.T) {
	// The go command of the toolchain that built this test: a test
	// binary runs where it was built, so its GOROOT is meaningful.
	//lint:ignore SA1019 see above
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, root := range []string{"github.com/unosync/uno/cmd/uno", "github.com/unosync/uno/client"} {
		t.Run(filepath.Base(root), func(t *testing.T) {
			out, err := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", root).Output()
			if err != nil {
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				t.Fatalf("go list -deps %s: %v\n%s", root, err, stderr)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) < 10 {
				t.Fatalf("go list -deps %s listed %d packages: %q", root, len(lines), out)
			}
			for _, line := range lines {
				f := strings.Fields(line)
				pkg, imports := f[0], f[1:]
				if testOnly(pkg) {
					continue // reported at its importers
				}
				for _, imp := range slices.DeleteFunc(imports, func(p string) bool { return !testOnly(p) }) {
					t.Errorf("%s links %s, test-only code: %s imports it", root, imp, pkg)
				}
			}
		})
	}
}
