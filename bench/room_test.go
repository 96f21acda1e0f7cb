package bench

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// A room's peers end, each having been delivered every other peer's
// writes (never its own) and acknowledged its own; a peer that only
// writes ends once acknowledged.
func TestRoomPeer_Ends(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := sqlitelog.Open(ctx, filepath.Join(t.TempDir(), "server.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := tenancy.NewDevAuth("bench")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Log: l, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close(); l.Close() })
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/sync"

	const peers, writes = 3, 5
	ps := make([]*peer, peers+1)
	for i := range ps {
		if ps[i], _, err = dialPeer(ctx, url, auth.Token, 8); err != nil {
			t.Fatal(err)
		}
		defer ps[i].close()
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ps))
	var mu sync.Mutex
	got := map[int]int{}
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, want := writes, peers*writes // the other peers' and the writer's
			if i == peers {                 // the writer: delivered nothing of its own
				n, want = writes, 0
			}
			errs[i] = roomPeer(ctx, p, n, 0, want, func(usync.Change) { mu.Lock(); got[i]++; mu.Unlock() })
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("peer %d: %v", i, err)
		}
	}
	for i := range peers {
		if got[i] < peers*writes {
			t.Errorf("peer %d was delivered %d writes, want at least the %d of the others", i, got[i], peers*writes)
		}
	}
}
