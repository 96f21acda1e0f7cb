//go:build cgo && (linux || darwin) && (amd64 || arm64)

package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
	"github.com/unosync/uno/tenancy"
)

// Two people edit one note offline, in different places, and sync
// through a server: both see one merged text and each other's names.
func TestNotes_TwoEditorsMerge(t *testing.T) {
	ctx := context.Background()
	l, err := sqlitelog.Open(ctx, filepath.Join(t.TempDir(), "server.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	auth, err := tenancy.NewDevAuth("dev")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Log: l, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/sync"
	dir := t.TempDir()
	notes := func(db, as string, args ...string) string {
		t.Helper()
		var out bytes.Buffer
		args = append([]string{"-db", filepath.Join(dir, db), "-server", url, "-token", auth.Token, "-as", as}, args...)
		if err := run(ctx, args, &out); err != nil {
			t.Fatalf("notes %v: %v", args, err)
		}
		return out.String()
	}
	id := strings.TrimSpace(strings.TrimPrefix(notes("ann.db", "ann", "new", "Plans"), "new note "))
	notes("ann.db", "ann", "append", id, "We meet on Monday.")
	notes("ann.db", "ann", "sync")
	notes("bob.db", "bob", "sync")
	// Offline, both edit: ann at the start, bob at the end.
	notes("ann.db", "ann", "insert", id, "0", "Update: ")
	notes("bob.db", "bob", "append", id, " Bring cake.")
	for _, s := range []string{"ann.db", "bob.db", "ann.db"} {
		notes(s, "x", "sync")
	}
	want := "Update: We meet on Monday. Bring cake."
	for _, db := range []string{"ann.db", "bob.db"} {
		out := notes(db, "x", "show", id)
		if !strings.Contains(out, want+"\n") || !strings.Contains(out, "edited by ann, bob") {
			t.Errorf("%s shows:\n%s\nwant the text %q, edited by ann, bob", db, out, want)
		}
	}
	if list := notes("bob.db", "bob", "list"); !strings.Contains(list, "Plans") || !strings.Contains(list, "1 notes, 0 changes") {
		t.Errorf("list:\n%s", list)
	}
	if out := notes("bob.db", "bob", "delete", id, "0", "8"); !strings.Contains(out, "We meet") || strings.Contains(out, "Update:") {
		t.Errorf("after delete:\n%s", out)
	}
}

func TestDiff(t *testing.T) {
	for _, tt := range []struct {
		a, b, ins string
		pos, del  int
	}{
		{"hello world", "hello brave world", "brave ", 6, 0},
		{"hello world", "hello", "", 5, 6},
		{"", "x", "x", 0, 0},
		{"aé", "aéb", "b", 2, 0},
	} {
		pos, del, ins := diff(tt.a, tt.b)
		if pos != tt.pos || del != tt.del || ins != tt.ins {
			t.Errorf("diff(%q, %q) = %d, %d, %q; want %d, %d, %q", tt.a, tt.b, pos, del, ins, tt.pos, tt.del, tt.ins)
		}
	}
}
