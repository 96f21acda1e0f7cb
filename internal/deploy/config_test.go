package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The ConfigMap's config.json is a config uno serve takes: the built
// binary starts with it (its paths and address moved to the test's) and
// answers ready; a copy with an unknown key is refused, naming it.
func TestKubernetesConfigStartsUno(t *testing.T) {
	bin := built(t)
	b, err := os.ReadFile(filepath.Join(root, "docs/deploy/k8s/configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(b, &cm); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(cm.Data["config.json"]), &cfg); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "jwt-key")
	if err := os.WriteFile(key, []byte("a test secret of thirty-two bytes!"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfg["addr"], cfg["data"], cfg["jwt-key"] = addr, filepath.Join(dir, "data"), key
	write := func(cfg map[string]any) string {
		path := filepath.Join(t.TempDir(), "config.json")
		raw, _ := json.Marshal(cfg)
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cmd := exec.Command(bin, "serve", "--config", write(cfg))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := health(bin, "http://"+addr+"/readyz"); err == nil {
			break
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("uno serve --config (the ConfigMap's) exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("uno serve with the ConfigMap's config not ready within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	cfg["drain-dealy"] = "5s"
	got, err := exec.Command(bin, "serve", "--config", write(cfg)).CombinedOutput()
	if err == nil || !strings.Contains(string(got), "drain-dealy") {
		t.Fatalf("a config with an unknown key: err %v, out %q; want it refused naming the key", err, got)
	}
}
