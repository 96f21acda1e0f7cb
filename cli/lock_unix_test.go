//go:build unix

package cli

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockDir(dir)
	if err == nil {
		t.Fatal("a locked directory locked again")
	}
	for _, want := range []string{dir, fmt.Sprintf("process %d", os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	release()
	release, err = lockDir(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	release()
}
