//go:build cgo && (linux || darwin) && (amd64 || arm64)

package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
)

// docTxs returns n transactions of one site, each with a change to one
// document.
func docTxs(t *testing.T, n int) []crdt.Tx {
	t.Helper()
	site := crdt.SiteID{7}
	d, err := crdt.OpenDocument(&crdt.DocState{}, site)
	if err != nil {
		t.Fatal(err)
	}
	var out []crdt.Tx
	for i := range n {
		if err := d.Splice(crdt.Path{"text"}, i, 0, "x"); err != nil {
			t.Fatal(err)
		}
		ts := crdt.MakeTimestamp(1_700_000_000_000+int64(i), 0)
		ch, err := d.Commit(ts)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, crdt.Tx{Site: site, Seq: uint64(i + 1), Time: ts, Ops: []crdt.Op{
			{Type: crdt.OpRevive, Collection: "notes", Row: "n", CL: 1},
			{Type: crdt.OpChange, Kind: crdt.KindDoc, Collection: "notes", Row: "n", Field: "body", CL: 1, Value: ch},
		}})
	}
	return out
}

func runOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := rootCmd(Options{})
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// uno compact rewrites the entries below --before (all by default) of
// each tenant, or of --tenant, and says what it did.
func TestCompactCommand(t *testing.T) {
	check := func(t *testing.T, l server.Log, flags ...string) {
		ctx := context.Background()
		if _, err := l.Append(ctx, "t1", docTxs(t, 3)); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, "t2", docTxs(t, 2)); err != nil {
			t.Fatal(err)
		}
		l.Close()
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--tenant", "t1", "--before", "2"}, "tenant t1: 1 entries rewritten"},
			{[]string{"--tenant", "t1"}, "tenant t1: 2 entries rewritten"},
			{nil, "2 tenant(s): 2 entries rewritten"}, // t2's two; t1's are done
			{nil, "2 tenant(s): 0 entries rewritten, 0 bytes saved"},
		} {
			out, err := runOut(t, append(append([]string{"compact"}, flags...), c.args...)...)
			if err != nil || !strings.Contains(out, c.want) {
				t.Fatalf("uno compact %v: %q, %v; want %q", c.args, out, err, c.want)
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		l, err := sqlitelog.Open(context.Background(), filepath.Join(dir, "log.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		check(t, l, "--data", dir)
		if _, err := runOut(t, "compact", "--data", t.TempDir()); err == nil {
			t.Error("compact of a directory without a log succeeded")
		}
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		if err := run(t.Context(), []string{"migrate", "up", "--postgres", dsn}); err != nil {
			t.Fatal(err)
		}
		for _, tn := range []string{"t1", "t2"} {
			if err := run(t.Context(), []string{"tenant", "create", tn, "--postgres", dsn}); err != nil {
				t.Fatal(err)
			}
		}
		l, err := pglog.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		check(t, l, "--postgres", dsn)
	})
	if _, err := runOut(t, "compact"); err == nil || !strings.Contains(err.Error(), "--data") {
		t.Errorf("compact without a log: %v", err)
	}
}
