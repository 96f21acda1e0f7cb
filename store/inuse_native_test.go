//go:build unix

package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/unosync/uno/store"
)

// holdEnv names the store the test binary, started again by
// TestOpenSQLite_InUse, holds open instead of running tests.
const holdEnv = "UNO_TEST_HOLD_STORE"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		os.Exit(holdStore(path))
	}
	os.Exit(m.Run())
}

// holdStore is the other process of TestOpenSQLite_InUse: it opens the
// store, says so, and keeps it open until its stdin closes.
func holdStore(path string) int {
	s, err := store.OpenSQLite(context.Background(), path, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	os.Stdout.WriteString("open\n")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// A store is used by one process at a time: another process's open is
// refused with ErrInUse, and succeeds once the first has closed it.
func TestOpenSQLite_InUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	opened := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "open\n" {
			err = errors.New("helper said " + line)
		}
		opened <- err
		io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("helper process: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the helper process did not open the store within a minute")
	}

	ctx := context.Background()
	_, err = store.OpenSQLite(ctx, path, store.Options{BusyTimeout: 50 * time.Millisecond})
	if !errors.Is(err, store.ErrInUse) {
		t.Fatalf("open while another process has the store: %v, want ErrInUse", err)
	}

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v", err)
	}
	s, err := store.OpenSQLite(ctx, path, store.Options{})
	if err != nil {
		t.Fatalf("open after the other process closed the store: %v", err)
	}
	s.Close()
}
