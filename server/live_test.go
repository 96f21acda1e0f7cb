package server_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
	"github.com/unosync/uno/tenancy"
)

// SetLive replaces the live settings, filling defaults as New does, and
// refuses bad ones without changing anything.
func TestServer_SetLive(t *testing.T) {
	l, err := sqlitelog.Open(t.Context(), filepath.Join(t.TempDir(), "log.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	auth, err := tenancy.NewDevAuth("dev")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Log: l, Auth: auth, BatchRows: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	want := server.Live{MaxConnections: 10_000, MaxStreams: 1_000, BatchRows: 50, BatchBytes: 1 << 20,
		HelloTimeout: 10 * time.Second, MaxDrift: 24 * time.Hour}
	if diff := cmp.Diff(want, srv.Live(), cmp.Comparer(func(a, b map[string]server.Rule) bool { return len(a) == len(b) })); diff != "" {
		t.Fatalf("Live after New (-want +got):\n%s", diff)
	}
	next := server.Live{MaxPushTxs: 7, BatchRows: 20, Rules: map[string]server.Rule{"plans": {ReadOnly: true}}}
	if err := srv.SetLive(next); err != nil {
		t.Fatal(err)
	}
	got := srv.Live()
	if got.MaxPushTxs != 7 || got.BatchRows != 20 || got.MaxConnections != 10_000 || !got.Rules["plans"].ReadOnly {
		t.Fatalf("Live after SetLive: %+v", got)
	}
	if err := srv.SetLive(server.Live{BatchRows: 1, Rules: map[string]server.Rule{"notes": {PrivateRead: true}}}); err == nil {
		t.Fatal("SetLive took PrivateRead without Owner")
	}
	if got := srv.Live(); got.BatchRows != 20 || !got.Rules["plans"].ReadOnly {
		t.Fatalf("a refused SetLive changed the settings: %+v", got)
	}
}
