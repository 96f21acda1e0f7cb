package cli

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/unosync/uno/client"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key,
// returning their paths and a pool trusting it.
func selfSigned(tb testing.TB, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "uno test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certPath, keyPath, pool
}

// jwtKey writes an EdDSA public key file and returns a token minter.
func jwtKey(tb testing.TB, dir string) (path string, token func(tenant string) string) {
	tb.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	path = filepath.Join(dir, "jwt.pem")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	return path, func(tenant string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
			"tenant": tenant, "sub": "u", "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString(priv)
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
}

// --profile prod refuses the development token and plain HTTP, saying
// what it needs; half a TLS setting is refused in any profile.
func TestServe_ProdRefusals(t *testing.T) {
	dir := t.TempDir()
	keyFile, _ := jwtKey(t, dir)
	cert, key, _ := selfSigned(t, dir)
	base := []string{"serve", "--data", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0"}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--profile", "prod"}, []string{"development token is refused", "--jwt-alg", "--jwt-key"}},
		{[]string{"--profile", "prod", "--jwt-alg", "EdDSA", "--jwt-key", keyFile}, []string{"needs TLS", "--tls-cert", "--tls-key", "--trusted-proxies"}},
		{[]string{"--tls-cert", cert}, []string{"tls-cert and tls-key go together"}},
		{[]string{"--profile", "prod", "--jwt-alg", "EdDSA", "--jwt-key", keyFile, "--tls-key", key}, []string{"go together"}},
	}
	for _, tt := range tests {
		err := run(t.Context(), append(base, tt.args...))
		if !errors.Is(err, ErrProfile) {
			t.Errorf("uno serve %v = %v, want ErrProfile", tt.args, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("uno serve %v = %v, want it to say %q", tt.args, err, w)
			}
		}
	}
	// A certificate file that is not one.
	err := run(t.Context(), append(base, "--tls-cert", keyFile, "--tls-key", key))
	if err == nil || !strings.Contains(err.Error(), "tls-cert") {
		t.Errorf("a bad certificate: %v", err)
	}
	// A trusted proxy that is no CIDR.
	err = run(t.Context(), append(base, "--trusted-proxies", "10.0.0.0/33"))
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--trusted-proxies") {
		t.Errorf("a bad trusted proxy: %v", err)
	}
}

// startServe runs uno serve in this process until the test ends and
// returns the address it listens on.
func startServe(tb testing.TB, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		root := rootCmd(Options{})
		root.SetOut(pw)
		root.SetArgs(append([]string{"serve"}, args...))
		err := root.ExecuteContext(ctx)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "uno serve: listening on "); ok {
				u, _, _ := strings.Cut(rest, " ")
				_, a, _ := strings.Cut(u, "://")
				addr <- a
			}
		}
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			tb.Error("uno serve did not stop")
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-done:
		tb.Fatalf("uno serve %v: %v", args, err)
	case <-time.After(60 * time.Second):
		tb.Fatal("uno serve did not start")
	}
	return ""
}

// Under --profile prod with a certificate, two real clients sync over
// wss:// and the server refuses plain HTTP.
func TestServe_ProdTLS(t *testing.T) {
	dir := t.TempDir()
	keyFile, token := jwtKey(t, dir)
	cert, key, pool := selfSigned(t, dir)
	addr := startServe(t, "--profile", "prod", "--data", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0",
		"--jwt-alg", "EdDSA", "--jwt-key", keyFile, "--tls-cert", cert, "--tls-key", key)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	open := func(name string) *client.Client {
		c, err := client.Open(ctx, client.Config{Path: filepath.Join(dir, name+".db"), Server: "wss://" + addr + "/v1/sync",
			Token: token("acme"), ManualSync: true, TLS: &tls.Config{RootCAs: pool}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := open("a"), open("b")
	if err := a.Collection("todos").Put(ctx, "t1", map[string]any{"title": "over TLS"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatalf("sync over wss: %v", err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatalf("sync over wss: %v", err)
	}
	d, err := b.Collection("todos").Get(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	var title string
	if err := json.Unmarshal(d.Fields["title"], &title); err != nil || title != "over TLS" {
		t.Fatalf("b reads %v (%v), want the title a wrote", d.Fields, err)
	}
	// Without the CA the client refuses the server.
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(dir, "c.db"), Server: "wss://" + addr + "/v1/sync",
		Token: token("acme"), ManualSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Sync(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("sync without trusting the certificate: %v", err)
	}
	// Plain HTTP gets no answer but TLS's.
	resp, err := http.Get("http://" + addr + "/v1/sync")
	if err == nil {
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP: %s", resp.Status)
		}
		resp.Body.Close()
	}
}

// Behind trusted proxies, X-Forwarded-For names the client; under prod
// without a certificate, other peers and plain HTTP are refused.
func TestProxied(t *testing.T) {
	var remote string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { remote = r.RemoteAddr })
	proxies, err := parseProxies([]string{"10.0.0.0/8", "192.168.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		requireTLS     bool
		peer, xff, xfp string
		status         int
		remote         string
	}{
		{true, "10.1.2.3:5000", "203.0.113.9, 10.0.0.7", "https", 200, "203.0.113.9:0"},
		{true, "192.168.1.1:5000", "203.0.113.9", "https", 200, "203.0.113.9:0"},
		{true, "10.1.2.3:5000", "203.0.113.9", "http", 403, ""},
		{true, "198.51.100.1:5000", "203.0.113.9", "https", 403, ""},
		{false, "198.51.100.1:5000", "203.0.113.9", "https", 200, "198.51.100.1:5000"},
		{false, "10.1.2.3:5000", "", "", 200, "10.1.2.3:5000"},
	}
	for _, tt := range tests {
		remote = ""
		h := &proxied{next: next, proxies: proxies, requireTLS: tt.requireTLS}
		r := httptest.NewRequest("GET", "/v1/sync", nil)
		r.RemoteAddr = tt.peer
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if tt.xfp != "" {
			r.Header.Set("X-Forwarded-Proto", tt.xfp)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.status || remote != tt.remote {
			t.Errorf("%+v: status %d, remote %q", tt, w.Code, remote)
		}
	}
	if _, err := parseProxies([]string{"example.com"}); err == nil {
		t.Error("a name taken as a proxy")
	}
}
