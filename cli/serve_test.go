package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
)

func TestServeOptions_Validate(t *testing.T) {
	base := serveOptions{Addr: "127.0.0.1:8080", DataDir: "d"}
	tests := []struct {
		name string
		edit func(*serveOptions)
		want string // error substring; empty means valid
	}{
		{"defaults", func(*serveOptions) {}, ""},
		{"addr without port", func(o *serveOptions) { o.Addr = "localhost" }, "host:port"},
		{"no data dir", func(o *serveOptions) { o.DataDir = "" }, "data"},
		{"negative limit", func(o *serveOptions) { o.MaxPushTxs = -1 }, "max-push-txs"},
		{"tiny message limit", func(o *serveOptions) { o.MaxMessage = 10 }, "max-message-bytes"},
		{"bad drift", func(o *serveOptions) { o.MaxDrift = "soon" }, "max-drift"},
		{"good drift", func(o *serveOptions) { o.MaxDrift = "2h" }, ""},
		{"bad hello timeout", func(o *serveOptions) { o.HelloTimeout = "-1s" }, "hello-timeout"},
		{"negative push bytes", func(o *serveOptions) { o.MaxPushBytes = -1 }, "max-push-bytes"},
		{"negative batch bytes", func(o *serveOptions) { o.BatchBytes = -1 }, "batch-bytes"},
		{"bounds", func(o *serveOptions) {
			o.HelloTimeout, o.MaxPushBytes, o.BatchBytes, o.MaxStreams = "5s", 32<<20, 512<<10, 10
		}, ""},
		{"negative drain timeout", func(o *serveOptions) { o.DrainTimeout = duration(-time.Second) }, "drain-timeout"},
		{"negative write timeout", func(o *serveOptions) { o.WriteTimeout = duration(-time.Second) }, "write-timeout"},
		{"tiny header limit", func(o *serveOptions) { o.MaxHeaderBytes = 100 }, "max-header-bytes"},
		{"negative compact interval", func(o *serveOptions) { o.CompactInterval = duration(-time.Minute) }, "compact-interval"},
		{"no compaction", func(o *serveOptions) { o.CompactInterval = 0 }, ""},
		{"timeouts", func(o *serveOptions) { o.ReadTimeout, o.IdleTimeout = duration(time.Second), duration(time.Minute) }, ""},
		{"private read without owner", func(o *serveOptions) { o.Rules = map[string]ruleOptions{"notes": {PrivateRead: true}} }, "owner"},
		{"owner rule", func(o *serveOptions) { o.Rules = map[string]ruleOptions{"notes": {Owner: "owner", PrivateRead: true}} }, ""},
		{"schema", func(o *serveOptions) {
			o.Schema = &schemaOptions{Version: 1, Collections: map[string]map[string]string{"todos": {"title": "register", "votes": "counter"}}}
		}, ""},
		{"schema with an unknown kind", func(o *serveOptions) {
			o.Schema = &schemaOptions{Collections: map[string]map[string]string{"todos": {"title": "text"}}}
		}, "todos.title"},
		{"schema with a bad name", func(o *serveOptions) {
			o.Schema = &schemaOptions{Collections: map[string]map[string]string{"To Dos": {"title": "register"}}}
		}, "schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.edit(&o)
			err := o.validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("validate() = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// Zero takes the defaults, which uno serve --help states.
func TestServeOptions_Defaults(t *testing.T) {
	o := serveOptions{Addr: "127.0.0.1:8080", DataDir: "d", ReadTimeout: duration(time.Second)}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	want := serveOptions{Addr: "127.0.0.1:8080", DataDir: "d", ReadTimeout: duration(time.Second),
		DrainTimeout: duration(defaultDrainTimeout), ReadHeaderTimeout: duration(defaultReadHeaderTimeout),
		WriteTimeout: duration(defaultWriteTimeout), IdleTimeout: duration(defaultIdleTimeout), MaxHeaderBytes: defaultMaxHeaderBytes}
	if diff := cmp.Diff(want, o); diff != "" {
		t.Fatalf("validated options (-want +got):\n%s", diff)
	}
	var help strings.Builder
	cmd := serveCmd(Options{})
	cmd.SetOut(&help)
	cmd.Help()
	for _, s := range []string{"--drain-timeout duration", "(default 30s)", "--read-header-timeout duration", "(default 10s)",
		"--write-timeout duration", "(default 2m0s)", "--max-header-bytes int", "(default 65536)", "--dev-token-on-network", "SIGTERM", "LOCK",
		"--compact-interval duration", "(default 1h0m0s)"} {
		if !strings.Contains(help.String(), s) {
			t.Errorf("uno serve --help lacks %q", s)
		}
	}
}

// Flags given on the command line win over the config file.
func TestServe_FlagsOverrideConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.json")
	os.WriteFile(cfg, []byte(`{"addr": "localhost", "data": "`+filepath.Join(dir, "data")+`"}`), 0o600)
	// The file's addr is invalid; the flag's is not, and wins.
	err := run(t.Context(), []string{"serve", "--config", cfg, "--addr", "127.0.0.1:notaport"})
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("run = %v, want the flag's address to be used (and fail to listen)", err)
	}
}

func TestMigrateCommand(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	var out strings.Builder
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "status", "--postgres", dsn}, "at version 0"},
		{[]string{"migrate", "up", "--postgres", dsn}, fmt.Sprintf("at version %d", pglog.SchemaVersion)},
		{[]string{"migrate", "down", "1", "--postgres", dsn}, "at version 1"},
		{[]string{"migrate", "down", "0", "--postgres", dsn}, "at version 0"},
		{[]string{"migrate", "up", "--postgres", dsn}, fmt.Sprintf("at version %d", pglog.SchemaVersion)},
	} {
		out.Reset()
		root := rootCmd(Options{})
		root.SetOut(&out)
		root.SetArgs(tc.args)
		if err := root.ExecuteContext(t.Context()); err != nil || !strings.Contains(out.String(), tc.want) {
			t.Fatalf("uno %v: %v, %q; want %q", tc.args, err, out.String(), tc.want)
		}
	}
	for _, bad := range [][]string{{"migrate", "up"}, {"migrate", "down", "--postgres", dsn}, {"migrate", "sideways", "--postgres", dsn}} {
		if err := run(t.Context(), bad); err == nil {
			t.Errorf("uno %v succeeded", bad)
		}
	}
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestJWTAuthFromFlags(t *testing.T) {
	dir := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	keyFile := filepath.Join(dir, "pub.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	if _, err := jwtAuth(serveOptions{JWTAlg: "EdDSA", JWTKey: keyFile, JWTAudience: "uno"}); err != nil {
		t.Fatalf("EdDSA key from PEM: %v", err)
	}
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef"), 0o600)
	if _, err := jwtAuth(serveOptions{JWTAlg: "HS256", JWTKey: secret}); err != nil {
		t.Fatalf("HS256 secret: %v", err)
	}
	for _, bad := range []serveOptions{
		{JWTAlg: "EdDSA", JWTKey: secret},                   // not PEM
		{JWTAlg: "EdDSA", JWTKey: filepath.Join(dir, "no")}, // missing
		{JWTAlg: "RS256", JWTKey: keyFile},                  // unsupported
	} {
		if _, err := jwtAuth(bad); err == nil {
			t.Errorf("jwtAuth(%+v) succeeded", bad)
		}
	}
}

func TestTenantCommand(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	if err := run(t.Context(), []string{"migrate", "up", "--postgres", dsn}); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tenant", "create", "acme", "--ops-per-sec", "7", "--max-rows", "100", "--postgres", dsn}, "created tenant acme"},
		{[]string{"tenant", "limits", "acme", "--max-bytes", "5000", "--retention-days", "30", "--postgres", dsn}, "ops/s 7, rows 100, bytes 5000, retention 30 days"},
		{[]string{"tenant", "list", "--postgres", dsn}, "30d"},
		{[]string{"tenant", "suspend", "acme", "--postgres", dsn}, "tenant acme suspended"},
		{[]string{"tenant", "list", "--postgres", dsn}, "acme"},
		{[]string{"tenant", "resume", "acme", "--postgres", dsn}, "tenant acme resumed"},
		{[]string{"tenant", "export", "acme", "--postgres", dsn}, ""},
		{[]string{"tenant", "delete", "acme", "--postgres", dsn}, "deleted tenant acme"},
	} {
		out.Reset()
		root := rootCmd(Options{})
		root.SetOut(&out)
		root.SetArgs(tc.args)
		if err := root.ExecuteContext(t.Context()); err != nil || !strings.Contains(out.String(), tc.want) {
			t.Fatalf("uno %v: %v, %q; want %q", tc.args, err, out.String(), tc.want)
		}
	}
	for _, bad := range [][]string{{"tenant", "list"}, {"tenant", "create", "--postgres", dsn}, {"tenant", "delete", "nobody", "--postgres", dsn}, {"tenant", "frob", "x", "--postgres", dsn}, {"tenant", "limits", "acme", "--max-rows", "-1", "--postgres", dsn}, {"tenant", "limits", "nobody", "--postgres", dsn}} {
		if err := run(t.Context(), bad); err == nil {
			t.Errorf("uno %v succeeded", bad)
		}
	}
	if err := (&serveOptions{Addr: "127.0.0.1:1", DataDir: "d", Registry: true}).validate(); err != nil {
		t.Errorf("--registry on the embedded log: %v", err)
	}
	if err := run(t.Context(), []string{"tenant", "list", "--postgres", dsn, "--data", t.TempDir()}); err == nil {
		t.Error("tenant list with both --postgres and --data succeeded")
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080":        true,
		"127.0.0.2:8080":        true,
		"[::1]:8080":            true,
		"[::ffff:127.0.0.1]:80": true,
		"localhost:8080":        true,
		"0.0.0.0:8080":          false,
		":8080":                 false,
		"[::]:8080":             false,
		"192.168.1.10:8080":     false,
		"[2001:db8::1]:8080":    false,
		"10.0.0.1:8080":         false,
		"no-port":               false,
	} {
		if got := loopbackOnly(t.Context(), addr); got != want {
			t.Errorf("loopbackOnly(%q) = %v, want %v", addr, got, want)
		}
	}
}

// The development token is refused on an address other machines reach
// (before anything listens), unless allowed; JWTs are not.
func TestServe_DevTokenOnNetwork(t *testing.T) {
	tests := []struct {
		name string
		o    serveOptions
		ok   bool
	}{
		{"loopback", serveOptions{Addr: "127.0.0.1:8080"}, true},
		{"every interface", serveOptions{Addr: "0.0.0.0:8080"}, false},
		{"every interface, no host", serveOptions{Addr: ":8080"}, false},
		{"LAN address", serveOptions{Addr: "192.168.1.10:8080"}, false},
		{"allowed", serveOptions{Addr: "0.0.0.0:8080", DevTokenOnNetwork: true}, true},
		{"JWTs", serveOptions{Addr: "0.0.0.0:8080", JWTAlg: "EdDSA"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Tenant = "dev"
			err := tt.o.checkExposure(t.Context(), tt.o.Addr)
			if tt.ok != (err == nil) {
				t.Fatalf("checkExposure(%s) = %v, want ok %v", tt.o.Addr, err, tt.ok)
			}
			if err != nil && (!strings.Contains(err.Error(), "--dev-token-on-network") || !strings.Contains(err.Error(), tt.o.Addr)) {
				t.Fatalf("error %q names neither the flag nor the address", err)
			}
		})
	}
	// uno serve refuses before it listens or touches the data directory.
	data := filepath.Join(t.TempDir(), "data")
	err := run(t.Context(), []string{"serve", "--addr", "0.0.0.0:0", "--data", data})
	if err == nil || !strings.Contains(err.Error(), "--dev-token-on-network") {
		t.Fatalf("uno serve --addr 0.0.0.0:0 = %v, want the development token refused", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("the refused server made its data directory: %v", err)
	}
}

// A projection is served only on a log it has a fold for: uno serve
// says which flag selects the other.
func TestServe_ProjectionsNeedTheirLog(t *testing.T) {
	pgOnly := Options{Projections: []pglog.Projection{{Name: "stats"}}}
	root := rootCmd(pgOnly)
	root.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir()})
	err := root.ExecuteContext(t.Context())
	if err == nil || !strings.Contains(err.Error(), "--postgres") || !strings.Contains(err.Error(), "SQLiteProjections") {
		t.Fatalf("uno serve with a Postgres-only projection on the embedded log: %v, want a refusal naming --postgres", err)
	}
	liteOnly := Options{SQLiteProjections: []sqlitelog.Projection{{Name: "stats"}}}
	root = rootCmd(liteOnly)
	root.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--postgres", "postgres://127.0.0.1:1/x"})
	err = root.ExecuteContext(t.Context())
	if err == nil || !strings.Contains(err.Error(), "drop --postgres") {
		t.Fatalf("uno serve --postgres with a SQLite-only projection: %v, want a refusal naming --postgres and --data", err)
	}
}

// Every setting is a field of serveOptions under its own key, and every
// flag of uno serve is a setting.
func TestServe_EveryFlagIsASetting(t *testing.T) {
	cmd := rootCmd(Options{})
	serve, _, err := cmd.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[serveOptions]()) {
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" {
			fields[tag] = f.Name
		}
	}
	for _, s := range settings {
		var o serveOptions
		p := reflect.ValueOf(s.field(&o))
		var name string
		for _, f := range reflect.VisibleFields(reflect.TypeFor[serveOptions]()) {
			if reflect.ValueOf(&o).Elem().FieldByIndex(f.Index).Addr().Pointer() == p.Pointer() {
				name = f.Name
			}
		}
		if fields[s.name] != name {
			t.Errorf("setting %s sets field %s, want %s (its key)", s.name, name, fields[s.name])
		}
	}
	serve.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "config" && f.Name != "help" && lookupSetting(f.Name) == nil {
			t.Errorf("flag --%s is no setting", f.Name)
		}
	})
	for tag := range fields {
		if lookupSetting(tag) == nil {
			t.Errorf("serveOptions key %s is no setting: declare it in settings (cli/config_schema.go)", tag)
		}
	}
}
