package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestTodo(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "todo.db")
	run1 := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, append([]string{"-db", db}, args...), &out); err != nil {
			t.Fatalf("todo %v: %v", args, err)
		}
		return out.String()
	}
	added := run1("add", "-tag", "home", "Buy", "milk")
	id := strings.TrimSpace(strings.TrimPrefix(added, "added "))
	run1("add", "Write", "report")
	list := run1("list")
	if !strings.Contains(list, "[ ] Buy milk  #home") || !strings.Contains(list, "[ ] Write report") || !strings.Contains(list, "2 todos, 2 changes not yet synced") {
		t.Fatalf("list:\n%s", list)
	}
	run1("done", id)
	if list := run1("list"); strings.Contains(list, "Buy milk") || !strings.Contains(list, "1 todos") {
		t.Fatalf("list after done:\n%s", list)
	}
	if list := run1("list", "-all"); !strings.Contains(list, "[x] Buy milk") {
		t.Fatalf("list -all after done:\n%s", list)
	}
	run1("remove", id)
	if list := run1("list", "-all"); strings.Contains(list, "Buy milk") {
		t.Fatalf("list after remove:\n%s", list)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"-db", db, "done", "zzzzzzzz"}, &out); err == nil {
		t.Fatal("done with an unknown id succeeded")
	}
	if err := run(ctx, []string{"-db", db, "frobnicate"}, &out); err == nil {
		t.Fatal("unknown command succeeded")
	}
}
