package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/unosync/uno/server/jobs"
	"github.com/unosync/uno/server/sqlitelog"
	"github.com/unosync/uno/tenancy"
)

// uno jobs list, cancel and retry act on the queue in a data directory's
// log; a node running jobs then runs the retried one.
func TestJobsCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log.db")
	l, err := sqlitelog.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Registry().Create(t.Context(), tenancy.Tenant{ID: "t"}); err != nil {
		t.Fatal(err)
	}
	out, err := runOut(t, "tenant", "export", "t", "--job", "--job-in", "1h", "--data", dir)
	m := regexp.MustCompile(`^job (\d+) enqueued \(uno_export tenant=t path=(\S+)\)`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("tenant export --job: %q, %v", out, err)
	}
	id, exported := m[1], m[2]
	if exported != filepath.Join(dir, "exports", "t.jsonl") {
		t.Fatalf("export path %s, want it in the data directory", exported)
	}
	if out, err := runOut(t, "tenant", "export", "t", "--job", "--job-in", "1h", "--data", dir); err != nil || !strings.Contains(out, "job "+id+": the same work is already scheduled") {
		t.Fatalf("same export again: %q, %v", out, err)
	}
	list := func(want string, flags ...string) {
		t.Helper()
		out, err := runOut(t, append([]string{"jobs", "list", "--data", dir}, flags...)...)
		if err != nil || !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("jobs list %v: %q, %v; want %s", flags, out, err, want)
		}
	}
	list(`(?m)^ID\s+KIND\s+ARGS\s+STATE\s+ATTEMPTS\s+SCHEDULED\s+FINISHED\s+NODE\s+LAST ERROR\n` + id + `\s+uno_export\s+tenant=t path=\S+\s+scheduled\s+0/5`)
	if out, err := runOut(t, "jobs", "cancel", id, "--data", dir); err != nil || !strings.Contains(out, "cancelled") {
		t.Fatalf("jobs cancel: %q, %v", out, err)
	}
	list(`(?m)^`+id+`\s+uno_export.*cancelled`, "--state", "cancelled", "--kind", "uno_export")
	list(`(?m)^ID.*\n$`, "--state", "scheduled")
	if out, err := runOut(t, "jobs", "retry", id, "--data", dir); err != nil || !strings.Contains(out, "available") {
		t.Fatalf("jobs retry: %q, %v", out, err)
	}
	// A node with workers runs it now.
	j, err := jobs.Open(t.Context(), jobs.Config{SQLitePath: path, Workers: 1, FetchPollInterval: 100 * time.Millisecond,
		Work: jobs.Work{Export: l.Registry().Export}})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer j.Close(context.Background())
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := runOut(t, "jobs", "list", "--data", dir, "--state", "completed")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "uno_export") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retried export not completed in a minute: %q", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(exported); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"jobs", "retry", "--data", dir}, "needs the job's ID"},
		{[]string{"jobs", "cancel", "x1", "--data", dir}, "want a positive number"},
		{[]string{"jobs", "retry", "424242", "--data", dir}, "no such job"},
		{[]string{"jobs", "list", "--data", dir, "--state", "done"}, `state "done"`},
		{[]string{"jobs", "list", "--data", dir, "--kind", "x"}, `kind "x"`},
		{[]string{"jobs", "list"}, "--postgres DSN or --data DIR is required"},
		{[]string{"jobs", "list", "--data", t.TempDir()}, "no SQLite log"},
		{[]string{"jobs", "purge", "--data", dir}, "want list, retry or cancel"},
		{[]string{"compact", "--job", "--data", dir}, "--job needs --tenant"},
		{[]string{"projection", "rebuild", "rows", "--job", "--data", dir}, `no projection "rows"`},
		{[]string{"tenant", "export", "t", "--job", "--data", dir, "--to", "rel.jsonl"}, "want an absolute path"},
		{[]string{"tenant", "suspend", "t", "--job", "--data", dir}, "only delete and export"},
		{[]string{"compact", "--job", "--tenant", "t", "--job-in", "-1s", "--data", dir}, "must not be negative"},
	} {
		if _, err := runOut(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("uno %v: %v, want an error with %q", c.args, err, c.want)
		}
	}
}
