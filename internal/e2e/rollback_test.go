package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

// copyDB copies a closed client's database files (the file and any WAL)
// from one directory to another, removing the destination's first.
func copyDB(t *testing.T, name, from, to string) { copyDBInto(t, name, from, to, false) }

// copyDBInto is copyDB that, with inPlace, writes over the destination's
// files (the same inodes, as `cp` does) rather than replacing them.
func copyDBInto(t *testing.T, name, from, to string, inPlace bool) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_, statErr := os.Stat(filepath.Join(from, name+suffix))
		if !inPlace || os.IsNotExist(statErr) {
			if err := os.Remove(filepath.Join(to, name+suffix)); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		src, err := os.Open(filepath.Join(from, name+suffix))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.OpenFile(filepath.Join(to, name+suffix), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err == nil {
			_, err = io.Copy(dst, src)
		}
		src.Close()
		if err == nil {
			err = dst.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A replica's database rolled back to an earlier copy — what a power cut
// does to the commits a relaxed store had not synced (remote changes and
// acknowledgements in every mode, local writes too under
// DurabilityRelaxed), or a restored backup — loses a batch of changes
// received from the server and a batch of its own writes the server
// acknowledged. It fetches both again and converges with the others,
// nothing duplicated (the counter adds each increment once, the log holds
// each write once), and its next writes take new sequence numbers rather
// than ones the server already holds.
func TestRollback_RefetchesAndConverges(t *testing.T) {
	for _, d := range []client.Durability{client.DurabilityFull, client.DurabilityRelaxed} {
		t.Run(fmt.Sprint("durability=", d), func(t *testing.T) { testRollback(t, d) })
	}
}

func testRollback(t *testing.T, durability client.Durability) {
	ctx := context.Background()
	e := startServer(t)
	dir, backup := t.TempDir(), t.TempDir()
	open := opener(t, e, dir, durability)
	a, b := open("a"), open("b")
	defer func() { a.Close() }()
	write := func(c *client.Client, who string, from, n, votes int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := c.Collection("todos").Put(ctx, fmt.Sprintf("%s%d", who, i), map[string]any{"title": who, "n": i}); err != nil {
				t.Fatal(err)
			}
		}
		for range votes {
			if err := c.Collection("todos").Increment(ctx, "shared", "votes", 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	syncAll := func() {
		t.Helper()
		syncCtx(t, a)
		syncCtx(t, b)
		syncCtx(t, a)
	}
	write(a, "a", 0, 5, 1)
	write(b, "b", 0, 5, 3)
	syncAll()

	// The copy taken before the batch.
	b.Close()
	copyDB(t, "b.db", dir, backup)
	b = open("b")

	write(a, "a", 5, 5, 2) // a batch b receives
	write(b, "b", 5, 4, 4) // a batch of b's own, acknowledged
	syncAll()
	b.Close()
	copyDB(t, "b.db", backup, dir)
	b = open("b")
	defer func() { b.Close() }()
	if _, err := b.Collection("todos").Get(ctx, "b5"); err == nil {
		t.Fatal("the rolled-back replica still has its later writes: the copy is not older")
	}

	syncCtx(t, b) // finds the server ahead of it, and bootstraps
	write(b, "b", 9, 1, 1)
	syncAll()

	sameAsServer(t, e, map[string]*client.Client{"a": a, "b": b})
	for name, c := range map[string]*client.Client{"a": a, "b": b} {
		doc, err := c.Collection("todos").Get(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		if v := string(doc.Fields["votes"]); v != "11" {
			t.Errorf("%s: votes = %s, want 11 (1+3, then 2+4, then 1: each once)", name, v)
		}
		for _, id := range []string{"a9", "b8", "b9"} {
			if _, err := c.Collection("todos").Get(ctx, id); err != nil {
				t.Errorf("%s: %s: %v", name, id, err)
			}
		}
	}
	// The log holds each of b's writes once, with sequence numbers 1 to 18.
	seqs, n := logSeqs(t, e)
	if len(seqs) != 2 {
		t.Fatalf("the log holds %d sites' writes, want 2", len(seqs))
	}
	if n != 6+8+7+8+2 {
		t.Errorf("the log holds %d entries, want %d", n, 6+8+7+8+2)
	}
}

// sameAsServer checks that every client equals the server's read model
// and has nothing pending.
func sameAsServer(t *testing.T, e *env, cs map[string]*client.Client) {
	t.Helper()
	ctx := context.Background()
	want, err := e.log.RowsHash(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range cs {
		if h, err := c.Hash(ctx); err != nil || h != want {
			t.Errorf("%s's hash differs from the server's read model (%v)", name, err)
		}
		if st := c.Status(); st.Pending != 0 {
			t.Errorf("%s: %d writes still pending", name, st.Pending)
		}
	}
}

// opener returns a function that opens the client name in dir, on e's
// server, with durability and manual sync, logging to logs[name] if set.
func opener(t *testing.T, e *env, dir string, durability client.Durability, logs ...map[string]*bytes.Buffer) func(name string) *client.Client {
	return func(name string) *client.Client {
		t.Helper()
		var logger *slog.Logger
		if len(logs) > 0 && logs[0][name] != nil {
			logger = slog.New(slog.NewTextHandler(logs[0][name], nil))
		}
		c, err := client.Open(context.Background(), client.Config{Path: filepath.Join(dir, name+".db"), Server: e.url, Token: e.auth.Token,
			ManualSync: true, Durability: durability, BackoffMin: 20 * time.Millisecond, BackoffMax: time.Second, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// logSeqs returns the sequence numbers of each site's entries in e's log
// and how many entries it holds, after checking that every site's go 1,
// 2, ... each once.
func logSeqs(t *testing.T, e *env) (map[crdt.SiteID][]uint64, int) {
	t.Helper()
	entries, err := e.log.Read(context.Background(), "dev", 0, 1000, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[crdt.SiteID][]uint64{}
	for _, ch := range entries {
		seqs[ch.Tx.Site] = append(seqs[ch.Tx.Site], ch.Tx.Seq)
	}
	for site, ss := range seqs {
		for i, s := range ss {
			if s != uint64(i)+1 {
				t.Fatalf("site %s's writes in the log: %v, want 1, 2, ... each once", site, ss)
			}
		}
	}
	return seqs, len(entries)
}

// A replica whose database went back to an earlier copy (a restored
// backup, in any mode; a power cut, under DurabilityRelaxed) and then
// wrote before it reconnected reuses sequence numbers the server holds
// for the writes it lost. Those new writes must survive too: the server's
// runs tell the replica which of its writes the server holds for others
// (their epochs differ), it moves them to a new site (counters keeping
// each increment, set removes and register contexts naming the moved
// writes), bootstraps, and everyone converges with every write once.
func TestRollback_WritesBeforeReconnecting(t *testing.T) {
	for _, d := range []client.Durability{client.DurabilityFull, client.DurabilityRelaxed} {
		for _, inPlace := range []bool{false, true} {
			t.Run(fmt.Sprint("durability=", d, "/in_place=", inPlace), func(t *testing.T) { testRollbackWrites(t, d, inPlace) })
		}
	}
}

func testRollbackWrites(t *testing.T, durability client.Durability, inPlace bool) {
	ctx := context.Background()
	e := startServer(t)
	dir, backup := t.TempDir(), t.TempDir()
	bLog := &bytes.Buffer{} // b's log, written by its sync (ManualSync: in Sync's goroutine)
	open := opener(t, e, dir, durability, map[string]*bytes.Buffer{"b": bLog})
	a, b := open("a"), open("b")
	defer func() { a.Close() }()
	todos := func(c *client.Client) *client.Collection { return c.Collection("todos") }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	put := func(c *client.Client, id, title string) {
		t.Helper()
		must(todos(c).Put(ctx, id, map[string]any{"title": title}))
	}
	vote := func(c *client.Client, n int) {
		t.Helper()
		for range n {
			must(todos(c).Increment(ctx, "shared", "votes", 1))
		}
	}
	syncAll := func() {
		t.Helper()
		syncCtx(t, a)
		syncCtx(t, b)
		syncCtx(t, a)
	}
	for i := range 3 {
		put(a, fmt.Sprint("a", i), "a")
		put(b, fmt.Sprint("b", i), "b")
	}
	vote(a, 1)
	vote(b, 3)
	must(todos(b).Add(ctx, "shared", "tags", "old"))
	notes := func(c *client.Client) *client.Collection { return c.Collection("notes") }
	text := client.Path{"text"}
	must(notes(b).Splice(ctx, "n1", "body", text, 0, 0, "hello"))
	syncAll()

	b.Close()
	copyDB(t, "b.db", dir, backup)
	b = open("b")
	oldSite := b.Site()

	// b's writes after the copy, which the server holds and b will lose.
	put(b, "b3", "lost")
	put(b, "b4", "lost")
	vote(b, 4)
	must(todos(b).Add(ctx, "shared", "tags", "lost"))
	put(a, "a3", "a")
	vote(a, 2)
	syncAll()

	b.Close()
	copyDBInto(t, "b.db", backup, dir, inPlace)
	b = open("b")
	defer func() { b.Close() }()
	if _, err := todos(b).Get(ctx, "b3"); err == nil {
		t.Fatal("the restored replica still has its later writes: the copy is not older")
	}
	// Offline, before reconnecting: these reuse the seqs of the lost
	// writes. b3 again (a register the lost writes also set), a new row,
	// votes, and a set add then remove of a member only these writes see.
	put(b, "b3", "again")
	put(b, "b9", "new")
	vote(b, 1)
	must(todos(b).Add(ctx, "shared", "tags", "fresh"))
	must(todos(b).Add(ctx, "shared", "tags", "gone"))
	must(todos(b).Remove(ctx, "shared", "tags", "gone"))
	must(todos(b).Remove(ctx, "shared", "tags", "old"))
	// A doc edit cannot move: its Automerge change is the old site's.
	must(notes(b).Splice(ctx, "n1", "body", text, 5, 0, " again"))

	syncCtx(t, b)
	if b.Site() == oldSite {
		t.Fatal("b kept its site: its writes after the restore were not moved")
	}
	if !strings.Contains(bLog.String(), "database went back to an earlier state") {
		t.Errorf("b logged no warning of its fork:\n%s", bLog.String())
	}
	syncAll()

	sameAsServer(t, e, map[string]*client.Client{"a": a, "b": b})
	for name, c := range map[string]*client.Client{"a": a, "b": b} {
		shared, err := todos(c).Get(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		if v := string(shared.Fields["votes"]); v != "11" {
			t.Errorf("%s: votes = %s, want 11 (1+3, 4 lost by b, 2, then 1 after the restore: each once)", name, v)
		}
		if v := string(shared.Fields["tags"]); v != `["fresh","lost"]` {
			t.Errorf("%s: tags = %s, want [fresh lost]", name, v)
		}
		for id, title := range map[string]string{"b3": `"again"`, "b4": `"lost"`, "b9": `"new"`, "a3": `"a"`} {
			doc, err := todos(c).Get(ctx, id)
			if err != nil {
				t.Errorf("%s: %s: %v", name, id, err)
				continue
			}
			if v := string(doc.Fields["title"]); v != title {
				t.Errorf("%s: %s.title = %s, want %s", name, id, v, title)
			}
		}
	}
	for name, c := range map[string]*client.Client{"a": a, "b": b} {
		if s, err := notes(c).Text(ctx, "n1", "body", text); err != nil || s != "hello" {
			t.Errorf("%s: n1.body = %q, %v; want hello (the doc edit after the restore is refused)", name, s, err)
		}
	}
	if rej, err := b.Rejections(ctx, 0, 10); err != nil || len(rej) != 1 || rej[0].Code != uint16(usync.CodeForked) || rej[0].Seq != 16 {
		t.Errorf("b's rejections: %+v, %v; want the doc edit's (seq 16), code %d", rej, err, usync.CodeForked)
	}
	// The log holds each write once: b's old site's seqs 1 to 15 (8
	// before the copy, 7 lost), its new site's 1 to 7 (the writes made
	// after the restore, but the doc edit), and a's.
	seqs, _ := logSeqs(t, e)
	if len(seqs) != 3 || len(seqs[oldSite]) != 15 || len(seqs[b.Site()]) != 7 {
		t.Errorf("the log holds %d sites' writes (b's old site %d, new site %d), want 3 (15 and 7)", len(seqs), len(seqs[oldSite]), len(seqs[b.Site()]))
	}
	// A run per opening of a store that pushed, not per push: a's one,
	// b's old site's two (before and after the copy), its new site's one.
	for site, want := range map[crdt.SiteID]int{a.Site(): 1, oldSite: 2, b.Site(): 1} {
		runs, err := e.log.(server.SiteRunner).Runs(ctx, "dev", site, 1, 100, 0)
		if err != nil || len(runs) != want {
			t.Errorf("site %s's runs: %v, %v; want %d", site, runs, err, want)
		}
	}
}

// Three replicas write, sync, take copies of their databases and are
// restored from them at random, writing between every step, in both
// durability modes. Whatever a replica had synced before a restore, or
// wrote after one, must end on every replica exactly once: the counter
// adds each such increment once, each such row and set member is there.
// (What a replica wrote after its copy and never synced, the restore
// loses: the server never had it.) Every replica ends equal to the
// server's read model.
func TestRollback_Random(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, d := range []client.Durability{client.DurabilityFull, client.DurabilityRelaxed} {
		t.Run(fmt.Sprint("durability=", d), func(t *testing.T) { testRollbackRandom(t, d, rng) })
	}
}

// rollbackWrite is one write of TestRollback_Random's model: a vote, a
// row or a set member, and whether the server surely has it.
type rollbackWrite struct {
	kind   byte // 'v' vote, 'r' row, 't' tag
	id     string
	synced bool
}

func testRollbackRandom(t *testing.T, durability client.Durability, rng *rand.Rand) {
	ctx := context.Background()
	e := startServer(t)
	dir, backups := t.TempDir(), t.TempDir()
	open := opener(t, e, dir, durability)
	names := []string{"a", "b", "c"}
	cs := map[string]*client.Client{}
	writes := map[string][]*rollbackWrite{} // each replica's, in order
	backedUp := map[string]int{}            // writes[name][:n] are in its copy (-1: no copy)
	for _, n := range names {
		cs[n], backedUp[n] = open(n), -1
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	forks := 0
	for step := range 150 {
		n := names[rng.IntN(len(names))]
		c := cs[n]
		switch r := rng.IntN(10); {
		case r < 5:
			w := &rollbackWrite{id: fmt.Sprintf("%s-%d", n, step)}
			var err error
			switch rng.IntN(3) {
			case 0:
				w.kind, err = 'v', c.Collection("todos").Increment(ctx, "shared", "votes", 1)
			case 1:
				w.kind, err = 'r', c.Collection("todos").Put(ctx, w.id, map[string]any{"title": w.id})
			default:
				w.kind, err = 't', c.Collection("todos").Add(ctx, "shared", "tags", w.id)
			}
			if err != nil {
				t.Fatal(err)
			}
			writes[n] = append(writes[n], w)
		case r < 7:
			site := c.Site()
			syncCtx(t, c)
			if c.Site() != site {
				forks++
			}
			for _, w := range writes[n] {
				w.synced = true
			}
		case r < 8:
			c.Close()
			copyDB(t, n+".db", dir, filepath.Join(backups))
			backedUp[n] = len(writes[n])
			cs[n] = open(n)
		default:
			if backedUp[n] < 0 {
				continue
			}
			c.Close()
			copyDBInto(t, n+".db", backups, dir, rng.IntN(2) == 0)
			// Restoring the copy loses what came after it and never
			// reached the server.
			kept := writes[n][:backedUp[n]]
			for _, w := range writes[n][backedUp[n]:] {
				if w.synced {
					kept = append(kept, w)
				}
			}
			writes[n] = kept
			cs[n] = open(n)
		}
	}
	for range 2 {
		for _, n := range names {
			syncCtx(t, cs[n])
		}
	}
	t.Logf("%d forks", forks)

	votes, rows, tags := 0, []string{}, []string{}
	for _, n := range names {
		for _, w := range writes[n] {
			switch w.kind {
			case 'v':
				votes++
			case 'r':
				rows = append(rows, w.id)
			case 't':
				tags = append(tags, w.id)
			}
		}
	}
	slices.Sort(tags)
	sameAsServer(t, e, cs)
	for _, n := range names {
		c := cs[n]
		shared, err := c.Collection("todos").Get(ctx, "shared")
		if err != nil && votes+len(tags) > 0 {
			t.Fatalf("%s: shared: %v", n, err)
		}
		var gotVotes int
		var gotTags []string
		if err == nil {
			if v := shared.Fields["votes"]; v != nil {
				if err := json.Unmarshal(v, &gotVotes); err != nil {
					t.Fatal(err)
				}
			}
			if v := shared.Fields["tags"]; v != nil {
				if err := json.Unmarshal(v, &gotTags); err != nil {
					t.Fatal(err)
				}
			}
		}
		if gotVotes != votes {
			t.Errorf("%s: votes = %d, want %d (each kept increment once)", n, gotVotes, votes)
		}
		if !slices.Equal(gotTags, tags) && len(gotTags)+len(tags) > 0 {
			t.Errorf("%s: tags = %v, want %v", n, gotTags, tags)
		}
		for _, id := range rows {
			if _, err := c.Collection("todos").Get(ctx, id); err != nil {
				t.Errorf("%s: row %s: %v", n, id, err)
			}
		}
	}
}
