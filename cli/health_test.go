package cli

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func runHealth(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	root := rootCmd(Options{})
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"health"}, args...))
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

func TestHealth(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	}))
	defer srv.Close()
	out, err := runHealth(t, "--url", srv.URL+"/readyz")
	if err != nil || !strings.Contains(out, "ready") {
		t.Fatalf("ready server: out %q, err %v", out, err)
	}
	ready.Store(false)
	_, err = runHealth(t, "--url", srv.URL+"/readyz")
	if !errors.Is(err, ErrNotHealthy) || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "draining") {
		t.Fatalf("draining server: err %v, want ErrNotHealthy naming 503 and draining", err)
	}

	// Nothing listening: a refused connection, said clearly.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = runHealth(t, "--url", "http://"+addr+"/readyz", "--timeout", "2s")
	if !errors.Is(err, ErrNotHealthy) || !strings.Contains(err.Error(), "is uno serve running there?") {
		t.Fatalf("no server: err %v", err)
	}
}

func TestHealth_BadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--url", "127.0.0.1:8080/readyz"},
		{"--url", "ftp://127.0.0.1/readyz"},
		{"--timeout", "0s"},
	} {
		_, err := runHealth(t, args...)
		if err == nil || errors.Is(err, ErrNotHealthy) || !strings.Contains(err.Error(), "want") {
			t.Errorf("uno health %v: err %v, want a usage error saying what to give", args, err)
		}
	}
}
