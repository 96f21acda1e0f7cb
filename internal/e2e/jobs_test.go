//go:build cgo && (linux || darwin) && (amd64 || arm64)

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/crdt/crdttest"
	"github.com/unosync/uno/server/jobs"
)

// Background jobs on one Postgres shared by real uno serve processes:
// nodes a and b run jobs, node c only enqueues them.
//
// The same compaction, enqueued by two processes at once, is one job and
// runs once, on a or b. Compaction enqueued by c for the tenant written
// through it runs on a or b, and spares a client connected to c at an old
// cursor, which a and b know only from c's heartbeat; once that client
// leaves, the next compaction goes past it.
func TestJobs_TwoProcessesOnePostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pg := newPG(t)
	// uno migrate up, as the tables' owner, creates the queue's tables;
	// the serving role gets the grants an operator gives it.
	if out, err := exec.Command(unoBinary, "migrate", "up", "--postgres", pg.admin).CombinedOutput(); err != nil {
		t.Fatalf("uno migrate up: %v\n%s", err, out)
	}
	appCfg, err := pgx.ParseConfig(pg.app)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, pg.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	role := pgx.Identifier{appCfg.User}.Sanitize()
	for _, s := range []string{"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + role,
		"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO " + role} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	a := startUno(t, freeAddr(t), t.TempDir(), "--postgres", pg.app, "--node", "a", "--compact-interval", "0")
	startUno(t, freeAddr(t), t.TempDir(), "--postgres", pg.app, "--node", "b", "--compact-interval", "0")
	c := startUno(t, freeAddr(t), t.TempDir(), "--postgres", pg.app, "--node", "c", "--job-workers", "0", "--compact-interval", "200ms")
	q, err := jobs.Open(ctx, jobs.Config{Postgres: pg.admin, Node: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(context.Background())
	get := func(id int64) jobs.Job {
		t.Helper()
		jb, err := q.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return jb
	}

	// Two processes enqueue the same compaction at once.
	var wg sync.WaitGroup
	outs := make([]string, 2)
	for i := range outs {
		wg.Go(func() {
			out, err := exec.Command(unoBinary, "compact", "--job", "--job-in", "5s", "--tenant", "dev", "--postgres", pg.app).CombinedOutput()
			if err != nil {
				t.Errorf("uno compact --job: %v\n%s", err, out)
			}
			outs[i] = string(out)
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	for _, out := range outs {
		m := regexp.MustCompile(`^job (\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("uno compact --job printed %q", out)
		}
		ids[m[1]] = true
	}
	if len(ids) != 1 || !strings.Contains(outs[0]+outs[1], "the same work is already") {
		t.Fatalf("the same compaction enqueued twice: %q", outs)
	}
	var id int64
	for s := range ids {
		json.Unmarshal([]byte(s), &id)
	}
	waitFor(t, func() bool { return get(id).State == "completed" })
	if jb := get(id); jb.Attempt != 1 || len(jb.AttemptedBy) != 1 || !slices.Contains([]string{"a", "b"}, jb.AttemptedBy[0]) {
		t.Fatalf("the compaction job ran %d times, by %v; want once, by a or b", jb.Attempt, jb.AttemptedBy)
	}
	done, err := q.List(ctx, jobs.Filter{Kinds: []string{jobs.KindCompact}})
	if err != nil || len(done) != 1 {
		t.Fatalf("compaction jobs: %+v, %v; want the one", done, err)
	}
	// Every node's /metrics counts the queue's jobs.
	res, err := http.Get("http://" + a.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := `uno_jobs{kind="uno_compact",state="completed"} 1`; !strings.Contains(string(body), want) {
		t.Fatalf("/metrics lacks %s:\n%s", want, body)
	}

	// Writes through c; a reader on c stays at cursor 4.
	cp := pg.log
	url := "ws://" + c.addr + "/v1/sync"
	site := crdt.SiteID{0xc0, 2}
	w, _ := openRaw(t, ctx, url, site, c.token, 16)
	ed := crdttest.NewEditor(t, site)
	push := func(seq uint64) {
		t.Helper()
		ch := ed.Change(func(d *crdt.Document) error { return d.Splice(crdt.Path{"text"}, 0, 0, "x") })
		var ops []crdt.Op
		if seq == 1 {
			ops = append(ops, reviveOp("notes", "n1"))
		}
		if rejected, _ := pushAll(t, ctx, w, pushTx(site, seq, append(ops, changeOp("notes", "n1", "body", ch))...)); len(rejected) > 0 {
			t.Fatalf("tx %d refused: %v", seq, rejected)
		}
	}
	for seq := uint64(1); seq <= 4; seq++ {
		push(seq)
	}
	behind := dialRaw(t, ctx, url, c.token, 0, 4)
	// c's heartbeat records the reader's cursor for every node.
	waitFor(t, func() bool {
		var low int64
		err := conn.QueryRow(ctx, `SELECT min(low) FROM jobs_floors WHERE node = 'c' AND tenant = 'dev'`).Scan(&low)
		return err == nil && low == 4
	})
	for seq := uint64(5); seq <= 10; seq++ {
		push(seq)
	}
	// Wait for a compaction that c enqueued after these writes to run.
	pushed := time.Now()
	waitFor(t, func() bool {
		ran, err := q.List(ctx, jobs.Filter{Kinds: []string{jobs.KindCompact}, States: []string{"completed"}, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		return len(ran) > 0 && ran[0].CreatedAt.After(pushed)
	})
	floorIs := func(want uint64) {
		t.Helper()
		waitFor(t, func() bool {
			f, err := cp.CompactFloor(ctx, "dev")
			if err != nil || f > want {
				t.Fatalf("compaction floor %d, %v; want %d", f, err, want)
			}
			return f == want
		})
	}
	floorIs(5)
	if got, err := cp.Read(ctx, "dev", 4, 100, 0); err != nil || len(got) != 6 || got[0].Seq != 5 || len(got[0].Tx.Ops) != 1 {
		t.Fatalf("entries after the live cursor: %d, %v; want 5..10 with their changes", len(got), err)
	}
	// The compactions c enqueued ran on a or b.
	ran, err := q.List(ctx, jobs.Filter{Kinds: []string{jobs.KindCompact}, States: []string{"completed"}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var byOthers int
	for _, jb := range ran {
		var out jobs.CompactOutput
		if json.Unmarshal(jb.Output, &out) == nil && out.Node != "c" && out.Rewritten > 0 && jb.ID != id {
			byOthers++
			if out.Floor > 5 {
				t.Fatalf("a compaction moved the floor to %d, past the reader at 4: %+v", out.Floor, out)
			}
		}
	}
	if byOthers == 0 {
		t.Fatalf("no compaction enqueued by c ran on a or b: %+v", ran)
	}
	// Once the reader leaves, c's next heartbeat drops its floor and the
	// next compaction goes to the head.
	behind.ws.Close(websocket.StatusNormalClosure, "")
	push(11)
	floorIs(12)
}

// uno serve on the embedded log runs the jobs the commands enqueue into
// its data directory while it runs: an export, and a failing one that
// uno jobs cancels and, once its cause is gone, retries.
func TestJobs_ServeSQLite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	data := t.TempDir()
	node := startUno(t, freeAddr(t), data)
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "w.db"), Server: "ws://" + node.addr + "/v1/sync",
		Token: node.token, ManualSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if err := c.Collection("todos").Put(ctx, fmt.Sprintf("r%d", i), map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
		syncCtx(t, c) // one transaction, one log entry, each
	}
	uno := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(unoBinary, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("uno %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	jobID := func(out string) string {
		t.Helper()
		m := regexp.MustCompile(`^job (\d+) enqueued`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no job enqueued: %q", out)
		}
		return m[1]
	}
	state := func(id string) string {
		out := uno("jobs", "list", "--data", data)
		m := regexp.MustCompile(`(?m)^` + id + `\s+uno_export\s+.*?\s(available|scheduled|running|retryable|completed|cancelled|discarded)\s+(\d+)/`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("job %s not listed:\n%s", id, out)
		}
		return m[1] + " " + m[2]
	}
	jobID(uno("tenant", "export", "dev", "--job", "--data", data))
	exported := filepath.Join(data, "exports", "dev.jsonl")
	waitFor(t, func() bool { b, err := os.ReadFile(exported); return err == nil && strings.Count(string(b), "\n") == 3 })

	dir := filepath.Join(t.TempDir(), "later")
	id := jobID(uno("tenant", "export", "dev", "--job", "--data", data, "--to", filepath.Join(dir, "dev.jsonl")))
	// It failed once at least (no such directory).
	waitFor(t, func() bool { s := state(id); return !strings.HasSuffix(s, " 0") && !strings.HasPrefix(s, "running") })
	if out := uno("jobs", "cancel", id, "--data", data); !strings.Contains(out, "cancelled") {
		t.Fatalf("jobs cancel: %q", out)
	}
	waitFor(t, func() bool { return strings.HasPrefix(state(id), "cancelled") })
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	uno("jobs", "retry", id, "--data", data)
	waitFor(t, func() bool { return strings.HasPrefix(state(id), "completed") })
	if b, err := os.ReadFile(filepath.Join(dir, "dev.jsonl")); err != nil || strings.Count(string(b), "\n") != 3 {
		t.Fatalf("retried export: %q, %v", b, err)
	}
}
