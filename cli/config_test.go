package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFile writes a config file named name in a new directory.
func writeFile(tb testing.TB, name, text string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// loadWith loads uno serve's settings from these command-line arguments
// and environment variables.
func loadWith(tb testing.TB, env map[string]string, args ...string) (serveOptions, map[string]source, error) {
	tb.Helper()
	cmd := serveCmd(Options{})
	if err := cmd.ParseFlags(args); err != nil {
		tb.Fatalf("parse %v: %v", args, err)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return config{flags: cmd.Flags(), lookup: lookup}.load()
}

// Each file format gives the line of a refused value, the key, and what is
// allowed.
func TestConfig_FileErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"uno.yaml", "addr: 127.0.0.1:9000\n# limits\n\n\n\n\nmax-push-txs: -3\n",
			[]string{"uno.yaml:7:1: max-push-txs: -3 is negative: want 0 (the default, 1,000) or more"}},
		{"uno.yml", "log-level: loud\n", []string{"uno.yml:1:1: log-level: want debug, info, warn or error"}},
		{"uno.json", "{\n  \"addr\": \"127.0.0.1:9000\",\n  \"max-push-txs\": -3\n}\n",
			[]string{"uno.json:3:3: max-push-txs: -3 is negative"}},
		{"uno.json", "{\n  \"drain-timeout\": 5\n}", []string{"uno.json:2:3: drain-timeout:", "not a duration"}},
		{"uno.toml", "addr = \"127.0.0.1:9000\"\n\nmax-push-txs = -3\n",
			[]string{"uno.toml:3:1: max-push-txs: -3 is negative: want 0 (the default, 1,000) or more"}},
		{"uno.toml", "[rules.notes]\nprivate_read = true\n", []string{"uno.toml:1:2: rules: notes: private_read needs owner"}},
		{"uno.toml", "addr = 'x'\n  \"log-level\" = 'loud'\n", []string{"uno.toml:2:3: log-level: want debug"}},
		{"uno.yaml", "rules:\n  notes: {private_read: true}\n", []string{"uno.yaml:1:1: rules: notes: private_read needs owner"}},
		{"uno.yaml", "addr: x\nadr: 127.0.0.1:1\n", []string{"uno.yaml:2:1", `unknown key "adr"`}},
		{"uno.json", "{\"addr\": \"x\",\n \"max_push_txs\": 1}", []string{"uno.json:2:2", `unknown key "max_push_txs"`}},
		{"uno.toml", "addr = 'x'\nmaxpush = 1\n", []string{"uno.toml:2:1", `unknown key "maxpush"`}},
		{"uno.yaml", "addr: x\n  bad: [\n", []string{"uno.yaml:2"}},
		{"uno.json", "{\n\"addr\": \"x\",,\n}", []string{"uno.json:2"}},
		{"uno.toml", "addr = 'x'\nmax-push-txs = = 3\n", []string{"uno.toml:2:"}},
		{"uno.toml", "schema = 3\n", []string{"uno.toml:1:1: schema: want an object"}},
		{"uno.yaml", "origins: {a: b}\n", []string{"uno.yaml:1:1: origins: want a list"}},
		{"uno.ini", "addr=x\n", []string{`unknown file type ".ini"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.name, tt.text)
			_, _, err := loadWith(t, nil, "--config", path)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("load(%q) = %v, want ErrConfig", tt.text, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("load(%q) = %v, want it to say %q", tt.text, err, w)
				}
			}
		})
	}
}

// The same settings read the same from each format.
func TestConfig_Formats(t *testing.T) {
	files := map[string]string{
		"uno.yaml": "addr: 127.0.0.1:9000\nmax-push-txs: 50\norigins: [app.example, b.example]\nregistry: true\n" +
			"drain-timeout: 5s\nrules:\n  todos: {owner: by}\nschema:\n  version: 1\n  collections:\n    todos: {title: register}\n",
		"uno.json": `{"addr": "127.0.0.1:9000",
			"max-push-txs": 50, "origins": ["app.example", "b.example"], "registry": true,
			"drain-timeout": "5s", "rules": {"todos": {"owner": "by"}}, "schema": {"version": 1, "collections": {"todos": {"title": "register"}}}}`,
		"uno.toml": "addr = \"127.0.0.1:9000\"\nmax-push-txs = 50\norigins = [\"app.example\", \"b.example\"]\nregistry = true\n" +
			"drain-timeout = \"5s\"\n[rules.todos]\nowner = \"by\"\n[schema]\nversion = 1\n[schema.collections.todos]\ntitle = \"register\"\n",
	}
	for name, text := range files {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, name, text)
			o, srcs, err := loadWith(t, nil, "--config", path)
			if err != nil {
				t.Fatal(err)
			}
			if o.Addr != "127.0.0.1:9000" || o.MaxPushTxs != 50 || len(o.Origins) != 2 || !o.Registry ||
				time.Duration(o.DrainTimeout) != 5*time.Second || o.Rules["todos"].Owner != "by" ||
				o.Schema == nil || o.Schema.Collections["todos"]["title"] != "register" {
				t.Fatalf("loaded %+v", o)
			}
			if s := srcs["max-push-txs"]; s.kind != "file" || s.line != 2 {
				t.Errorf("max-push-txs source %v, want %s:2", s, path)
			}
			if s := srcs["data"]; s.kind != "default" {
				t.Errorf("data source %v, want the default", s)
			}
		})
	}
}

// Flags win over environment variables, which win over the file, which
// wins over the profile's defaults.
func TestConfig_Precedence(t *testing.T) {
	path := writeFile(t, "uno.yaml", "addr: 127.0.0.1:1\nmax-push-txs: 10\nbatch-rows: 20\nlog-format: text\n")
	env := map[string]string{"UNO_MAX_PUSH_TXS": "11", "UNO_BATCH_ROWS": "21", "UNO_PROFILE": "prod", "UNO_ORIGINS": "a.example,b.example", "UNO_JWT_AUD": "uno"}
	o, srcs, err := loadWith(t, env, "--config", path, "--batch-rows", "22")
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != "127.0.0.1:1" || o.MaxPushTxs != 11 || o.BatchRows != 22 || o.LogFormat != "text" || o.Profile != "prod" ||
		strings.Join(o.Origins, " ") != "a.example b.example" {
		t.Fatalf("loaded %+v", o)
	}
	// jwt-aud is declared by serveOptions' tags alone.
	if o.JWTAudience != "uno" || srcs["jwt-aud"].String() != "env UNO_JWT_AUD" {
		t.Errorf("jwt-aud %q from %v, want uno from UNO_JWT_AUD", o.JWTAudience, srcs["jwt-aud"])
	}
	for key, want := range map[string]string{"addr": path + ":1", "max-push-txs": "env UNO_MAX_PUSH_TXS",
		"batch-rows": "flag --batch-rows", "log-format": path + ":4", "profile": "env UNO_PROFILE", "data": "default"} {
		if got := srcs[key].String(); got != want {
			t.Errorf("%s: source %q, want %q", key, got, want)
		}
	}
	// Without the file's log-format, prod's default applies.
	o, srcs, err = loadWith(t, map[string]string{"UNO_PROFILE": "prod"})
	if err != nil || o.LogFormat != "json" || srcs["log-format"].String() != "profile prod" {
		t.Fatalf("prod: %v, log-format %q from %v", err, o.LogFormat, srcs["log-format"])
	}
	// UNO_CONFIG names the file.
	o, _, err = loadWith(t, map[string]string{"UNO_CONFIG": path})
	if err != nil || o.MaxPushTxs != 10 {
		t.Fatalf("UNO_CONFIG: %v, max-push-txs %d", err, o.MaxPushTxs)
	}
}

// A refused environment variable or flag is named with its value and what
// is allowed.
func TestConfig_EnvAndFlagErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"UNO_LOG_LEVEL": "loud"}, nil, "UNO_LOG_LEVEL=loud: want debug, info, warn or error"},
		{map[string]string{"UNO_MAX_PUSH_TXS": "many"}, nil, `UNO_MAX_PUSH_TXS=many: "many" is not a whole number: want 0 (the default, 1,000) or more`},
		{map[string]string{"UNO_PROFILE": "staging"}, nil, "UNO_PROFILE=staging: want dev or prod"},
		{map[string]string{"UNO_REGISTRY": "yes please"}, nil, "UNO_REGISTRY=yes please: want true or false"},
		{map[string]string{"UNO_HELLO_TIMEOUT": "-1s"}, nil, "UNO_HELLO_TIMEOUT=-1s: want a positive duration"},
		{map[string]string{"UNO_MAX_MESSAGE_BYTES": "10"}, nil, "UNO_MAX_MESSAGE_BYTES=10: 10 is too small: want 0 (the default, 16 MiB) or at least 1024"},
		{nil, []string{"--max-push-txs", "-3"}, "--max-push-txs -3: -3 is negative: want 0 (the default, 1,000) or more"},
		{nil, []string{"--log-format", "xml"}, "--log-format xml: want text or json"},
		{nil, []string{"--drain-timeout", "soon"}, `--drain-timeout soon: "soon" is not a duration`},
		{nil, []string{"--addr", "localhost"}, "host:port"},
		// A flag wins over a bad variable.
		{map[string]string{"UNO_LOG_LEVEL": "loud"}, []string{"--log-level", "loud2"}, "--log-level loud2"},
	}
	for _, tt := range tests {
		_, _, err := loadWith(t, tt.env, tt.args...)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("load(%v, %v) = %v, want %q", tt.env, tt.args, err, tt.want)
		}
	}
	if _, _, err := loadWith(t, map[string]string{"UNO_LOG_LEVEL": "loud"}, "--log-level", "debug"); err != nil {
		t.Errorf("a flag over a bad variable: %v", err)
	}
}

// uno config print shows each setting's value and source, with secrets
// masked.
func TestConfigPrint(t *testing.T) {
	path := writeFile(t, "uno.yaml", "# settings\nmax-push-txs: 7\npostgres: postgres://uno:hunter2@db.example/uno\n")
	t.Setenv("UNO_BATCH_ROWS", "9")
	var out strings.Builder
	root := rootCmd(Options{})
	root.SetOut(&out)
	root.SetArgs([]string{"config", "print", "--config", path, "--max-streams", "3", "--profile", "prod"})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = strings.Join(f[1:], " ")
		}
	}
	for key, want := range map[string]string{
		"max-push-txs": "7 " + path + ":2", "batch-rows": "9 env UNO_BATCH_ROWS", "max-streams": "3 flag --max-streams",
		"log-format": "json profile prod", "addr": "127.0.0.1:8080 default",
		"postgres": "postgres://uno:xxxxx@db.example/uno " + path + ":3",
	} {
		if lines[key] != want {
			t.Errorf("%s: %q, want %q", key, lines[key], want)
		}
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("the DSN's password is printed:\n%s", out.String())
	}
	for _, dsn := range []string{"host=db password=hunter2 user=uno", "host=db password='hunter2' user=uno"} {
		if m := maskDSN(dsn); strings.Contains(m, "hunter2") || !strings.Contains(m, "user=uno") {
			t.Errorf("maskDSN(%q) = %q", dsn, m)
		}
	}
	root.SetArgs([]string{"config", "print", "--max-push-txs", "-1"})
	if err := root.ExecuteContext(t.Context()); !errors.Is(err, ErrConfig) {
		t.Errorf("config print with a bad flag: %v", err)
	}
}

// docs/configuration.md is what uno config docs generates.
func TestConfigDocs_UpToDate(t *testing.T) {
	got, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != configDocs() {
		t.Fatal("docs/configuration.md differs from what uno config docs generates: run\n" +
			"\tgo run ./cmd/uno config docs > docs/configuration.md\nat the module root")
	}
	for i := range settings {
		if !strings.Contains(string(got), "| `"+settings[i].name+"` |") {
			t.Errorf("docs/configuration.md lacks %s", settings[i].name)
		}
	}
}
