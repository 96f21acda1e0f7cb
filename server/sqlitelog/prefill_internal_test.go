package sqlitelog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/unosync/uno/crdt"
)

// The log opens with its write-ahead log preallocated (package walfill),
// and appends go on into it.
func TestOpen_PrefillsTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	size := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if got := size(); got != walPrefill {
		t.Fatalf("log of %d bytes on open, want %d", got, walPrefill)
	}
	tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: 1, Time: 1, Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
	if _, err := l.Append(t.Context(), "t1", []crdt.Tx{tx}); err != nil {
		t.Fatal(err)
	}
	if got := size(); got != walPrefill {
		t.Errorf("log of %d bytes after an append, want %d: it grew", got, walPrefill)
	}
}
