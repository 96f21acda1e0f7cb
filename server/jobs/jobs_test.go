//go:build cgo && (linux || darwin) && (amd64 || arm64)

package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/jobs"
	"github.com/unosync/uno/server/sqlitelog"
	"github.com/unosync/uno/tenancy"
)

// docTxs returns n transactions of one site, each with a change to one
// document: entries compaction rewrites.
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

// fixture is a real log.db with a server on it.
type fixture struct {
	path string
	log  *sqlitelog.Log
	srv  *server.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := sqlitelog.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	auth, err := tenancy.NewDevAuth("t")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Log: l, Auth: auth, Registry: l.Registry(), CompactInterval: -1, RetentionInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &fixture{path: path, log: l, srv: srv}
}

func (f *fixture) open(t *testing.T, cfg jobs.Config) *jobs.Jobs {
	t.Helper()
	cfg.SQLitePath = f.path
	if cfg.Workers > 0 && cfg.Work.Compact == nil {
		reg := f.log.Registry()
		cfg.Work = jobs.Work{Compact: f.srv.Compact, Retain: f.srv.Retain, Export: reg.Export, Delete: reg.Delete, Floors: cfg.Work.Floors,
			Rebuild: func(ctx context.Context, name string) error { return jobs.ErrBadArgs }}
	}
	cfg.FetchPollInterval = 100 * time.Millisecond
	j, err := jobs.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		j.Close(ctx)
	})
	return j
}

// waitFor polls job id until done says so, for up to a minute.
func waitFor(t *testing.T, j *jobs.Jobs, id int64, what string, done func(jobs.Job) bool) jobs.Job {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		jb, err := j.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if done(jb) {
			return jb
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d: not %s after a minute: %+v", id, what, jb)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func inState(s string) func(jobs.Job) bool { return func(jb jobs.Job) bool { return jb.State == s } }

// The periodic retention job runs on its own, again and again.
func TestJobs_PeriodicRetention(t *testing.T) {
	f := newFixture(t)
	if err := f.log.Registry().Create(t.Context(), tenancy.Tenant{ID: "t", RetentionDays: 1}); err != nil {
		t.Fatal(err)
	}
	j := f.open(t, jobs.Config{Workers: 2, RetentionInterval: 500 * time.Millisecond})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		js, err := j.List(t.Context(), jobs.Filter{Kinds: []string{jobs.KindRetain}, States: []string{"completed"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(js) >= 2 {
			if js[0].Args != "all tenants" || len(js[0].AttemptedBy) != 1 {
				t.Fatalf("periodic retention job: %+v", js[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d periodic retention jobs completed in 2 minutes, want 2", len(js))
		}
		time.Sleep(100 * time.Millisecond)
	}
	counts, err := j.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range counts {
		if c.Kind == jobs.KindRetain && c.State == "completed" {
			n = c.N
		}
	}
	if n < 2 {
		t.Fatalf("counts: %+v, want ≥2 completed %s", counts, jobs.KindRetain)
	}
}

// A job that fails is retried with backoff, then discarded; retried by
// hand once its cause is gone, it completes.
func TestJobs_FailingJobRetriesThenDiscarded(t *testing.T) {
	f := newFixture(t)
	if err := f.log.Registry().Create(t.Context(), tenancy.Tenant{ID: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.log.Append(t.Context(), "t", docTxs(t, 2)); err != nil {
		t.Fatal(err)
	}
	j := f.open(t, jobs.Config{Workers: 2})
	dir := filepath.Join(t.TempDir(), "missing")
	e, err := j.Enqueue(t.Context(), jobs.ExportArgs{Tenant: "t", Path: filepath.Join(dir, "t.jsonl")}, &jobs.EnqueueOpts{MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	// River makes a job whose retry is due within seconds available at
	// once; the second retry waits 2⁴ = 16s, in retryable.
	jb := waitFor(t, j, e.Job.ID, "retryable", inState("retryable"))
	if jb.Attempt != 2 || !strings.Contains(jb.LastError, "missing") {
		t.Fatalf("after the first failure: %+v", jb)
	}
	jb = waitFor(t, j, e.Job.ID, "discarded", inState("discarded"))
	if jb.Attempt != 3 || jb.FinishedAt.IsZero() {
		t.Fatalf("after the last failure: %+v", jb)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Retry(t.Context(), e.Job.ID); err != nil {
		t.Fatal(err)
	}
	jb = waitFor(t, j, e.Job.ID, "completed", inState("completed"))
	b, err := os.ReadFile(filepath.Join(dir, "t.jsonl"))
	if err != nil || strings.Count(string(b), "\n") != 2 {
		t.Fatalf("export: %q, %v; want 2 lines", b, err)
	}
	var out jobs.RunOutput
	if err := json.Unmarshal(jb.Output, &out); err != nil || out.N != 2 {
		t.Fatalf("output %s: %v", jb.Output, err)
	}
	if _, err := j.Retry(t.Context(), 99999); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("retry of an unknown job: %v, want ErrNotFound", err)
	}
}

// The same work is enqueued once while it waits; other work is not
// blocked; bad arguments are refused; a job with impossible arguments is
// cancelled, not retried.
func TestJobs_Enqueue(t *testing.T) {
	f := newFixture(t)
	j := f.open(t, jobs.Config{Workers: 1})
	later := &jobs.EnqueueOpts{At: time.Now().Add(time.Hour)}
	a, err := j.Enqueue(t.Context(), jobs.CompactArgs{Tenant: "t"}, later)
	if err != nil || a.Duplicate || a.Job.State != "scheduled" {
		t.Fatalf("first: %+v, %v", a, err)
	}
	b, err := j.Enqueue(t.Context(), jobs.CompactArgs{Tenant: "t", By: "other"}, later)
	if err != nil || !b.Duplicate || b.Job.ID != a.Job.ID {
		t.Fatalf("same work again: %+v, %v; want duplicate of %d", b, err, a.Job.ID)
	}
	c, err := j.Enqueue(t.Context(), jobs.CompactArgs{Tenant: "u"}, later)
	if err != nil || c.Duplicate {
		t.Fatalf("other tenant: %+v, %v", c, err)
	}
	for _, bad := range []jobs.Args{jobs.CompactArgs{}, jobs.RebuildArgs{}, jobs.DeleteArgs{}, jobs.ExportArgs{Tenant: "t", Path: "rel.jsonl"}} {
		if _, err := j.Enqueue(t.Context(), bad, nil); !errors.Is(err, jobs.ErrBadArgs) {
			t.Errorf("enqueue %#v: %v, want ErrBadArgs", bad, err)
		}
	}
	if _, err := j.List(t.Context(), jobs.Filter{States: []string{"bogus"}}); !errors.Is(err, jobs.ErrBadArgs) {
		t.Errorf("list by an unknown state: %v", err)
	}
	if _, err := j.Cancel(t.Context(), a.Job.ID); err != nil {
		t.Fatal(err)
	}
	d, err := j.Enqueue(t.Context(), jobs.CompactArgs{Tenant: "t"}, later)
	if err != nil || d.Duplicate {
		t.Fatalf("after cancelling: %+v, %v; want a new job", d, err)
	}
	r, err := j.Enqueue(t.Context(), jobs.RebuildArgs{Projection: "nope"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if jb := waitFor(t, j, r.Job.ID, "cancelled", inState("cancelled")); jb.Attempt != 1 {
		t.Fatalf("rebuild of an unknown projection: %+v, want cancelled after one attempt", jb)
	}
}

// Compaction spares the live sessions of another node, known from its
// heartbeat only, and stops sparing them once that node stops.
func TestJobs_CompactionFloorFromOtherNode(t *testing.T) {
	f := newFixture(t)
	if _, err := f.log.Append(t.Context(), "t", docTxs(t, 5)); err != nil {
		t.Fatal(err)
	}
	hb := 200 * time.Millisecond
	b := f.open(t, jobs.Config{Node: "b", HeartbeatInterval: hb,
		Work: jobs.Work{Floors: func() map[string]uint64 { return map[string]uint64{"t": 2} }}})
	a := f.open(t, jobs.Config{Node: "a", Workers: 1, HeartbeatInterval: hb})
	compact := func(by *jobs.Jobs, want jobs.CompactOutput) {
		t.Helper()
		e, err := by.Enqueue(t.Context(), jobs.CompactArgs{Tenant: "t", By: "b"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		jb := waitFor(t, a, e.Job.ID, "completed", inState("completed"))
		var got jobs.CompactOutput
		if err := json.Unmarshal(jb.Output, &got); err != nil {
			t.Fatal(err)
		}
		if got.Node != "a" || got.Before != want.Before || got.Rewritten != want.Rewritten {
			t.Fatalf("compaction: %+v, want node a, before %d, %d rewritten", got, want.Before, want.Rewritten)
		}
	}
	// b's session at position 2 needs entries 3.. : only 1 and 2 go.
	compact(b, jobs.CompactOutput{Before: 3, Rewritten: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	compact(a, jobs.CompactOutput{Before: 1<<64 - 1, Rewritten: 3})
}

// A tenant export job writes the tenant's log to the file; a delete job
// removes the tenant from the registry with its log and rows, and leaves
// the other tenants alone.
func TestJobs_ExportThenDelete(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	reg := f.log.Registry()
	for _, id := range []string{"gone", "kept"} {
		if err := reg.Create(ctx, tenancy.Tenant{ID: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.log.Append(ctx, id, docTxs(t, 4)); err != nil {
			t.Fatal(err)
		}
	}
	j := f.open(t, jobs.Config{Workers: 2})

	path := filepath.Join(t.TempDir(), "gone.jsonl")
	e, err := j.Enqueue(ctx, jobs.ExportArgs{Tenant: "gone", Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, j, e.Job.ID, "completed", inState("completed"))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 4 {
		t.Fatalf("the export holds %d lines, want the 4 entries", n)
	}

	e, err = j.Enqueue(ctx, jobs.DeleteArgs{Tenant: "gone"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if jb := waitFor(t, j, e.Job.ID, "completed", inState("completed")); jb.Attempt != 1 {
		t.Fatalf("delete job: %+v, want done at the first attempt", jb)
	}
	if _, err := reg.Tenant(ctx, "gone"); !errors.Is(err, tenancy.ErrUnknownTenant) {
		t.Fatalf("the deleted tenant: %v, want ErrUnknownTenant", err)
	}
	if h, err := f.log.Head(ctx, "gone"); err != nil || h != 0 {
		t.Fatalf("the deleted tenant's head: %d, %v; want 0", h, err)
	}
	if rows, _, err := f.log.SnapshotSize(ctx, "gone"); err != nil || rows != 0 {
		t.Fatalf("the deleted tenant's rows: %d, %v; want 0", rows, err)
	}
	if h, err := f.log.Head(ctx, "kept"); err != nil || h != 4 {
		t.Fatalf("the other tenant's head: %d, %v; want 4", h, err)
	}
	if rows, _, err := f.log.SnapshotSize(ctx, "kept"); err != nil || rows != 1 {
		t.Fatalf("the other tenant's rows: %d, %v; want 1", rows, err)
	}
}
