package crash

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
)

const (
	childEnv  = "UNO_CRASH_CHILD" // database path: run as the writing child
	cyclesEnv = "UNO_CRASH_CYCLES"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		if err := child(path); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child writes transactions forever. Transaction i writes rows a<i> and
// b<i> and increments the counter that counts transactions, so a torn
// transaction shows as a mismatch. After each commit it prints "ok <i>".
func child(path string) error {
	ctx := context.Background()
	c, err := client.Open(ctx, client.Config{Path: path})
	if err != nil {
		return err
	}
	next, err := committed(ctx, c)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	for i := next; ; i++ {
		err := c.Tx(ctx, func(tx *client.Tx) error {
			if err := tx.Put("items", fmt.Sprintf("a%d", i), map[string]any{"n": i, "pad": strings.Repeat("x", 100+i%300)}); err != nil {
				return err
			}
			if err := tx.Put("items", fmt.Sprintf("b%d", i), map[string]any{"n": i}); err != nil {
				return err
			}
			return tx.Increment("meta", "count", "txs", 1)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "ok %d\n", i)
		if err := out.Flush(); err != nil {
			return err
		}
	}
}

// committed returns the number of committed transactions (the counter).
func committed(ctx context.Context, c *client.Client) (int, error) {
	d, err := c.Collection("meta").Get(ctx, "count")
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return 0, nil
		}
		return 0, err
	}
	var n int
	if err := json.Unmarshal(d.Fields["txs"], &n); err != nil {
		return 0, err
	}
	return n, nil
}

func TestCrash(t *testing.T) {
	cycles := 100
	if s := os.Getenv(cyclesEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number", cyclesEnv, s)
		}
		cycles = n
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	reported := -1 // highest transaction index the child reported
	killedMidWrite := 0
	for cycle := range cycles {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan int, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var i int
				if _, err := fmt.Sscanf(sc.Text(), "ok %d", &i); err == nil {
					lines <- i
				}
			}
		}()
		// Kill at a random moment: sometimes while opening, mostly while
		// committing.
		deadline := time.After(time.Duration(rng.IntN(120)) * time.Millisecond)
		wait := true
		for wait {
			select {
			case i, ok := <-lines:
				if !ok {
					wait = false
					break
				}
				reported = max(reported, i)
			case <-deadline:
				wait = false
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("cycle %d: kill: %v", cycle, err)
		}
		for i := range lines { // reports that raced the kill still count
			reported = max(reported, i)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("cycle %d: child exited on its own (%v): %s", cycle, err, stderr.String())
		}
		n := verify(t, cycle, path, reported)
		if n > reported+1 {
			killedMidWrite++ // committed but killed before reporting
		}
	}
	t.Logf("%d cycles, %d transactions reported, %d cycles killed between commit and report", cycles, reported+1, killedMidWrite)
	if reported < cycles {
		t.Fatalf("only %d transactions in %d cycles: the child hardly ran", reported+1, cycles)
	}
}

// verify opens the database after a kill and checks it. It returns the
// number of committed transactions.
func verify(t *testing.T, cycle int, path string, reported int) int {
	t.Helper()
	ctx := context.Background()
	c, err := client.Open(ctx, client.Config{Path: path})
	if err != nil {
		t.Fatalf("cycle %d: reopen: %v", cycle, err)
	}
	defer c.Close()
	var check string
	if err := c.DB().QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("cycle %d: integrity_check = %q, %v", cycle, check, err)
	}
	n, err := committed(ctx, c)
	if err != nil {
		t.Fatalf("cycle %d: %v", cycle, err)
	}
	if n < reported+1 {
		t.Fatalf("cycle %d: %d transactions committed, but the child reported %d: a reported commit was lost", cycle, n, reported+1)
	}
	// No torn transaction: rows a<i> and b<i> exist, with n=i, exactly for i < n.
	var tables int
	if err := c.DB().QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'items'`).Scan(&tables); err != nil {
		t.Fatalf("cycle %d: %v", cycle, err)
	}
	if tables == 0 { // killed before the first commit created the table
		if n != 0 {
			t.Fatalf("cycle %d: %d transactions counted but no items table", cycle, n)
		}
		return 0
	}
	var rows, minN, maxN, sum int64
	if err := c.DB().QueryRowContext(ctx, `SELECT count(*), coalesce(min(n), -1), coalesce(max(n), -1), coalesce(sum(n), 0) FROM items`).Scan(&rows, &minN, &maxN, &sum); err != nil {
		t.Fatalf("cycle %d: %v", cycle, err)
	}
	N := int64(n)
	if rows != 2*N || (N > 0 && (minN != 0 || maxN != N-1)) || sum != N*(N-1) {
		t.Fatalf("cycle %d: %d transactions counted but items has %d rows (n %d..%d, sum %d): torn transaction", cycle, n, rows, minN, maxN, sum)
	}
	var mismatched int
	if err := c.DB().QueryRowContext(ctx, `SELECT count(*) FROM items AS a JOIN items AS b
		ON a.id = 'a' || a.n AND b.id = 'b' || a.n AND b.n = a.n`).Scan(&mismatched); err != nil || mismatched != n {
		t.Fatalf("cycle %d: %d matching a/b pairs for %d transactions (%v): torn transaction", cycle, mismatched, n, err)
	}
	// The outbox holds every transaction, in order, each whole.
	pending, err := c.Pending(ctx)
	if err != nil || pending != n {
		t.Fatalf("cycle %d: outbox holds %d transactions, want %d (%v)", cycle, pending, n, err)
	}
	txs, err := c.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatalf("cycle %d: read outbox: %v", cycle, err)
	}
	for i, tx := range txs {
		if tx.Seq != uint64(i+1) || !wellFormed(tx, i) {
			t.Fatalf("cycle %d: outbox entry %d is seq %d with ops %+v", cycle, i, tx.Seq, tx.Ops)
		}
	}
	return n
}

// wellFormed checks that outbox transaction i writes a<i> (n and pad),
// b<i> (n) and the counter, and nothing else.
func wellFormed(tx *crdt.Tx, i int) bool {
	fields := map[string]bool{}
	for _, op := range tx.Ops {
		if !op.IsRowOp() {
			fields[op.Collection+"/"+op.Row+"."+op.Field] = true
		}
	}
	if len(fields) != 4 || !fields[fmt.Sprintf("items/a%d.pad", i)] || !fields[fmt.Sprintf("items/b%d.n", i)] || !fields["meta/count.txs"] {
		return false
	}
	want := map[string]bool{fmt.Sprintf("items/a%d", i): false, fmt.Sprintf("items/b%d", i): false, "meta/count": false}
	for _, op := range tx.Ops {
		k := op.Collection + "/" + op.Row
		if _, ok := want[k]; !ok {
			return false
		}
		want[k] = true
	}
	for _, seen := range want {
		if !seen {
			return false
		}
	}
	return true
}
