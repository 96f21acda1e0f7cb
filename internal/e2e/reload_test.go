package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// waitOutput polls what p printed until it holds each of want, at most
// 30s, and returns it.
func waitOutput(t *testing.T, p *unoProc, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := p.output()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(out, w)
		}
		if ok {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("uno serve did not print %q in 30s:\n%s", want, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// On SIGHUP uno serve reads its config file again: a limit and a rule take
// effect for new sessions while the live ones go on, a setting that needs
// a restart is named, and a bad file changes nothing.
func TestServe_ReloadOnSIGHUP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "uno.yaml")
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("max-push-txs: 100\n")
	addr := freeAddr(t)
	p := startUno(t, addr, filepath.Join(dir, "data"), "--config", cfg, "--log-level", "info")
	url := "ws://" + addr + "/v1/sync"

	old, w := dialSite(t, ctx, url, p.token, crdt.SiteID{1})
	if w.Limits.MaxPushTxs != 100 {
		t.Fatalf("Welcome limits %+v, want max-push-txs 100", w.Limits)
	}
	write("# changed\nmax-push-txs: 7\nrules:\n  c: {read_only: true}\naddr: 127.0.0.1:1\nmax-frame-bytes: 1048576\n")
	hup := func() {
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	hup()
	waitOutput(t, p, "reload: applied", "keys=max-push-txs,rules", "reload: these need a restart", "keys=max-frame-bytes")

	if out := p.output(); strings.Contains(out, "keys=addr") {
		t.Errorf("addr, given as a flag, is named as changed:\n%s", out)
	}
	// A new session has the new limit and rule.
	fresh, w := dialSite(t, ctx, url, p.token, crdt.SiteID{2})
	if w.Limits.MaxPushTxs != 7 {
		t.Fatalf("Welcome limits after the reload %+v, want max-push-txs 7", w.Limits)
	}
	fresh.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(crdt.SiteID{2}, 1)}})
	if r := nextOf[*usync.Reject](t, ctx, fresh); r.Seq != 1 {
		t.Fatalf("Reject %+v", r)
	}
	// The session from before the reload goes on, with its settings.
	old.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(crdt.SiteID{1}, 1)}})
	if a := nextOf[*usync.Ack](t, ctx, old); a.HighWater != 1 {
		t.Fatalf("Ack %+v on the session from before the reload", a)
	}

	// A bad file is refused, naming its line; the running settings stay.
	write("max-push-txs: 9\nbatch-rows: -3\n")
	hup()
	waitOutput(t, p, "reload refused", "uno.yaml:2:1: batch-rows: -3 is negative")
	_, w = dialSite(t, ctx, url, p.token, crdt.SiteID{3})
	if w.Limits.MaxPushTxs != 7 {
		t.Fatalf("Welcome limits after a refused reload %+v, want max-push-txs 7", w.Limits)
	}
	select {
	case <-p.exited:
		t.Fatalf("uno serve exited: %v\n%s", p.err, p.output())
	default:
	}
}
