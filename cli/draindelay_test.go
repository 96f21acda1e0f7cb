package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --drain-delay: 0 by default, a duration in the config file, never
// negative.
func TestServeOptions_DrainDelay(t *testing.T) {
	o := serveOptions{Addr: "127.0.0.1:8080", DataDir: "d"}
	if err := o.validate(); err != nil || o.DrainDelay != 0 {
		t.Fatalf("default: %v, drain-delay %s; want valid and 0", err, &o.DrainDelay)
	}
	o.DrainDelay = duration(-time.Second)
	if err := o.validate(); err == nil || !strings.Contains(err.Error(), "drain-delay -1s: must not be negative") {
		t.Fatalf("negative drain-delay: %v", err)
	}
	path := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(path, []byte(`{"drain-delay": "5s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"UNO_CONFIG": path}
	f, _, err := config{lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}.load()
	if err != nil || time.Duration(f.DrainDelay) != 5*time.Second {
		t.Fatalf("config drain-delay: %v, %s", err, &f.DrainDelay)
	}
	env = map[string]string{"UNO_DRAIN_DELAY": "-2s"}
	if _, _, err := (config{lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}).load(); err == nil || !strings.Contains(err.Error(), "UNO_DRAIN_DELAY=-2s: -2s is negative") {
		t.Fatalf("UNO_DRAIN_DELAY=-2s: %v, want refused naming the variable", err)
	}
	if err := (&f.DrainDelay).Set("soon"); err == nil || !strings.Contains(err.Error(), "duration") {
		t.Fatalf("--drain-delay soon: %v", err)
	}
}
