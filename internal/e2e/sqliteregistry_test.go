package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	usync "github.com/unosync/uno/sync"
)

// The zero-setup server is first class: `uno serve --registry` on the
// embedded log admits only registered tenants and enforces their quotas,
// administered with `uno tenant --data` while it runs; deleting a tenant
// waits for the server to stop.
func TestServe_SQLiteRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr, dataDir := freeAddr(t), t.TempDir()
	p := startUno(t, addr, dataDir, "--registry")
	uno := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, unoBinary, args...).CombinedOutput()
		return string(out), err
	}
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "c.db"), Server: "ws://" + addr + "/v1/sync", Token: p.token, ManualSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Sync(ctx); usync.CodeOf(err) != usync.CodeForbidden {
		t.Fatalf("an unregistered tenant synced: %v", err)
	}
	if out, err := uno("tenant", "create", "dev", "--data", dataDir, "--max-rows", "3"); err != nil {
		t.Fatalf("tenant create: %v\n%s", err, out)
	}
	for i := range 5 {
		if err := c.Collection("items").Put(ctx, fmt.Sprint("r", i), map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	syncCtx(t, c)
	rej, err := c.Rejections(ctx, 0, 0)
	if err != nil || len(rej) != 2 || usync.Code(rej[0].Code) != usync.CodeQuotaExceeded {
		t.Fatalf("rejections %+v, %v; want 2 over the 3-row quota", rej, err)
	}
	out, err := uno("tenant", "list", "--data", dataDir)
	if err != nil || !strings.Contains(out, "dev") {
		t.Fatalf("tenant list: %v\n%s", err, out)
	}
	if out, err := uno("tenant", "delete", "dev", "--data", dataDir); err == nil || !strings.Contains(out, "stop uno serve first") {
		t.Fatalf("tenant delete while the server runs: %v\n%s", err, out)
	}
}
