package sqlitelog

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
)

// Appends go on while the log is checkpointed beside them, and the log
// starts over within its preallocated space: without the background
// checkpoints SQLite's automatic one (at walBackstopPages) lets it grow
// to twice that.
func TestLog_CheckpointsInTheBackground(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var site crdt.SiteID
	site[0] = 1
	const appends = 3000 // ~10,000 pages of log
	for i := range appends {
		tx := crdt.Tx{Site: site, Seq: uint64(i + 1), Time: crdt.Timestamp(i + 1), Ops: []crdt.Op{
			{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: fmt.Sprint("r", i%500), Field: "f", CL: 1, Value: []byte(fmt.Sprint(i))},
		}}
		if _, err := l.Append(ctx, "t", []crdt.Tx{tx}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for l.ckpt.runs.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no background checkpoint completed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > walPrefill {
		t.Errorf("log of %d bytes after %d appends, want at most its preallocated %d", fi.Size(), appends, walPrefill)
	}
	t.Logf("%d background checkpoints, log of %d bytes", l.ckpt.runs.Load(), fi.Size())
}
