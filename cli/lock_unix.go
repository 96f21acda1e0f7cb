//go:build unix

package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockDir takes the lock on a data directory: an exclusive flock on the
// LOCK file in it, holding the owner's process ID. Two servers never share
// a directory: the second is refused at once, told the first's ID. The
// kernel releases the lock when the process ends, however it ends (kill
// -9 too); release releases it before.
func lockDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
		}
		owner := "another process"
		if b, _ := io.ReadAll(io.LimitReader(f, 32)); len(b) > 0 {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				owner = fmt.Sprintf("process %d", pid)
			}
		}
		return nil, fmt.Errorf("data directory %s is in use by %s (another uno serve; %s is locked): stop it, or give this one another --data", dir, owner, path)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil // closing the file drops the lock
}
