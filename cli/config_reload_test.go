package cli

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
	"github.com/unosync/uno/tenancy"
)

type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A reload applies the environment's log level and reads the certificate
// again; what it refuses changes nothing.
func TestReloader_LevelAndCertificate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, _ := selfSigned(t, dir)
	env := map[string]string{"UNO_TLS_CERT": certPath, "UNO_TLS_KEY": keyPath, "UNO_LOG_LEVEL": "warn"}
	var mu sync.Mutex
	lookup := func(k string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		v, ok := env[k]
		return v, ok
	}
	setEnv := func(k, v string) {
		mu.Lock()
		env[k] = v
		mu.Unlock()
	}
	c := config{lookup: lookup}
	o, _, err := c.load()
	if err != nil {
		t.Fatal(err)
	}
	l, err := sqlitelog.Open(t.Context(), filepath.Join(dir, "log.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	auth, _ := tenancy.NewDevAuth("dev")
	srv, err := server.New(server.Config{Log: l, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var level slog.LevelVar
	level.Set(slog.LevelWarn)
	var logs syncBuilder
	cert := &certificate{cert: certPath, key: keyPath}
	if err := cert.load(); err != nil {
		t.Fatal(err)
	}
	first := cert.current.Load()
	r := &reloader{load: c.load, level: &level, srv: srv, cert: cert, cur: o,
		logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: &level}))}

	// A renewed certificate in the same files, and another level.
	selfSigned(t, dir)
	setEnv("UNO_LOG_LEVEL", "debug")
	setEnv("UNO_TENANT", "other")
	if err := r.reload(); err != nil {
		t.Fatal(err)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("level %v after the reload, want debug", level.Level())
	}
	if cert.current.Load() == first || string(cert.current.Load().Certificate[0]) == string(first.Certificate[0]) {
		t.Error("the certificate was not read again")
	}
	out := logs.String()
	if !strings.Contains(out, `msg="reload: applied" keys=log-level`) || !strings.Contains(out, "keys=tenant") {
		t.Errorf("reload logs:\n%s", out)
	}

	// A certificate file gone bad: nothing changes.
	renewed := cert.current.Load()
	if err := os.WriteFile(certPath, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	setEnv("UNO_LOG_LEVEL", "error")
	if err := r.reload(); err == nil || !strings.Contains(err.Error(), "tls-cert") {
		t.Errorf("reload with a bad certificate: %v", err)
	}
	if level.Level() != slog.LevelDebug || cert.current.Load() != renewed {
		t.Error("a refused reload changed the level or the certificate")
	}
	setEnv("UNO_LOG_LEVEL", "loud")
	if err := r.reload(); err == nil || !strings.Contains(err.Error(), "UNO_LOG_LEVEL=loud") {
		t.Errorf("reload with a bad level: %v", err)
	}
}
