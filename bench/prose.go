package bench

// The static text of RESULTS.md: what each workload is and what its
// figures have shown so far. Figures that change from run to run belong
// in the tables, never here.

const introProse = `Written by ` + "`uno bench`" + ` (bench/report.go): every figure here was measured
together with its ceiling in the same run, on the same machine, with the
command shown; results.json beside this file has every round's figures.
Re-run before quoting: disks on shared machines vary by ±10% between runs.
The same workloads run as Go benchmarks: ` + "`go test ./bench -run '^$' -bench NAME -benchtime 1x`" + `.

`

const clientsProse = `What users run: every peer is a real client (` + "`client.Client`" + ` on a SQLite
file of its own, default settings apart from Durability), writing one
update per transaction (one ` + "`Put`" + ` of one field), syncing in the background
through a fresh in-process server (the embedded SQLite log, WAL,
` + "`synchronous=FULL`" + `, group commit) on a loopback socket. Receivers learn of
updates the way an app does, through ` + "`Watch`" + `. Every workload runs in both
durability modes: **full** (the default: a local write is fsync'd before
` + "`Put`" + ` returns) and **relaxed** (` + "`client.DurabilityRelaxed`" + `: commits do not wait
for the disk; an app crash loses nothing, a power cut may lose the last
writes, which the server then sends back).

- **N clients × M updates**: each client sets the field of its own row M
  times, all clients at once; the run ends when every client's ` + "`Watch`" + `
  shows every row at its last value (a client's updates reach the others
  in the order written). updates/s counts writes; deliveries/s counts
  updates delivered to the other N−1 clients (the server never sends a
  client its own updates), so 50 × 40 makes 49 × 50 × 40 = 98,000
  deliveries.
- **paced latency**: one writer ` + "`Put`" + `s a row at a fixed rate, the value
  carrying a sequence number; a latency is the time from the start of the
  ` + "`Put`" + ` call to a receiver's ` + "`Watch`" + ` showing that value, over every
  receiver. ` + "`Watch`" + ` keeps only the newest result, so a value superseded
  before a receiver looked is not counted (results.json has the share seen).
  One untimed write goes first: the first change to a collection creates
  its table on every replica, once in the replica's life.
- The ceilings: the 2-client figures are compared with the **fsync floor**
  (the disk's sequential fsync'd single-row commit rate through the same
  driver), the 50-client ones with a **raw WebSocket broadcast**, the
  latencies with a **durable relay** of the same writes to as many
  receivers (the hops and the server's fsync'd commit, nothing else), the
  same relay between replicas (the **replica relay**: plain SQLite commits
  at the writer and at each receiver as well), a **raw WebSocket echo** and a **paced
  durable commit** (see Ceilings).
  Full durability may add at most two fsync floors to the p99 (the
  writer's fsync and the server's; the writer's now runs beside the
  push).

`

const clientsAfterProse = `What bounds these figures on this machine:

- **2 clients, full durability.** Every update is fsync'd by its writer's
  store, and the server's log fsyncs once per group commit (strace of the
  Go benchmark: 5,072 syncs for 4,000 updates, 0.27 per update on the
  server), and here all three files share one disk: the fsync floor is
  one writer alone on it. Under that contention an fdatasync takes ~0.35
  ms at the median where the floor's takes ~0.2 ms, and each writer waits
  for its own before its next update. CPU is not the bound: the same
  workload relaxed runs 4–6× faster on the same two cores. The floor
  itself moves between rounds by more than the gap (its range is in the
  Ceilings). The **shared floors** measure the contention in the same
  run: the floor's writer twice at once, each into a file of its own,
  and three times (the third standing for the server's log, which
  fsyncs less often than that). A client's ` + "`Put`" + ` spends nearly all its
  time in its commit's system calls (two WAL frames and one fsync per
  update; in a syscall profile of the Go benchmark, ` + "`go test ./bench -run '^$' -bench 'TwoClients/full' -benchtime 3x -trace t.out`" + `
  then ` + "`go tool trace -pprof=syscall t.out`" + `, 0.55 ms of each ~0.6 ms
  ` + "`Put`" + `). With the server on its own machine the clients' commits are
  the only fsyncs on their disks.
- **Paced latency.** The chain per write is the writer's commit, its push,
  the server's append (fsync'd: an Ack means durable, and a delivery
  follows its append), the fan-out, the receiver's apply and its Watch
  update (a watch of a whole collection takes the applied row from the
  commit, reading nothing). The **durable relay** ceiling is that chain without the
  clients' stores and the protocol: the writer's frame, one fsync'd
  commit on the server, the frame to each receiver. A paced fsync costs
  several times a back-to-back one (the **paced durable commit**
  ceiling: 0.6–0.8 ms at the median and 1.5–6 ms at p99 from one run
  to the next, where the fsync floor is ~0.25 ms), and every write waits for one on the server, and at full
  durability for a second on the writer. And paced work runs from cold
  CPU caches: a relaxed ` + "`Put`" + ` alone takes ~0.2 ms at 50 Hz where back to
  back it takes ~0.025 ms, and each of its steps takes several times its
  back-to-back time (the commit 4×, begin, build and write 10–40×). It
  is not the idle CPU waking: a writer that spins through the 20 ms
  instead of sleeping sees the same. On this shared host a working set left alone for 20 ms is
  out of the caches (a 4 MB memory sweep takes 3.5× its back-to-back
  time, a tight loop with no memory the same). So every step of the
  chain costs several times its busy CPU time, the more so the more code
  and data it touches. The **replica relay** pays that for the least a
  replica does (a plain commit at each end and a read back); uno's gap
  over it is its own code: the CRDT merge, the protocol, the log's read
  models, the ` + "`Watch`" + `.
  Traced stage by stage (the next section, from a traced run in the same
  invocation), client to server and server to client take 0.2–0.3 ms
  each at the median, where the raw echo's busy round trip takes 0.02 ms. The
  relay's own p99 moves between ~1.5 and ~5 ms from one run to the next
  on this machine: the tail is the disk's and the scheduler's. With 49
  receivers in one process each delivery costs about 0.14 ms of CPU there
  (server, writer and receivers together: ` + "`cpu-µs/delivery`" + ` in
  results.json; 0.17–0.2 ms while each receiver's ` + "`Watch`" + ` queried its
  collection again), about 7 ms per write on two cores, so the last
  receiver sees a write ~5 ms after the first (an execution trace of
  the run shows both cores busy for about half of a write's fan-out,
  one for the rest): that work, not the relay's hops, is most of the
  gap to the 49-receiver relay. The Go garbage collector runs
  a cycle every ~1 s there (a heap of 3–4 MB live; its stop-the-world
  pauses take 0.1–0.3 ms, though ` + "`GODEBUG=gctrace=1`" + ` shows up to 4 ms for
  the first, which counts the thread being descheduled after the world
  restarts, as the execution trace shows).
- **Paced latency at full durability.** The only difference from relaxed
  is the writer's fsync, and it is off the write's path: the store
  commits the write without one, the sync loop pushes it at once, and
  ` + "`Put`" + ` returns after the fsync, which runs while the push crosses to the
  server (store.SQLite.OnCommit). A power cut between the push and the
  fsync is a lost commit the server holds, which the client recovers as
  after any rollback. What full durability adds to the chain is the
  writer's fsync competing with the server's for the one disk. The
  relaxed and full rows are separate runs; their p99s move by more than
  a floor from round to round (see their ranges).
`

const stagesProse = `The relaxed 1-receiver paced run again, with every part traced (the
spans of server/doc.go, kept in memory: ` + "`go test ./bench -run '^$' -bench PacedStages -benchtime 1x`" + `).
Each row is one span of a write's trace, in the order they start; the
last is the receiver's ` + "`Watch`" + ` handing the app the new result, and when
it starts is the latency. Tracing costs a little at every stage, so the
latency here runs a little above the untraced row's.

How to read it:

- **The server's append is the one stage that waits for the disk.** It
  holds the log's fsync'd commit (an Ack means durable, and a delivery
  follows its append). Timed inside, its SQL takes ~0.15 ms at p50 and
  its commit ~0.6 ms: the paced durable commit (the ceiling beside it,
  the fsync floor's transaction at the same pace). At p99 the append is
  the disk's tail: a paced fsync on this machine's virtual disk takes
  0.4–0.6 ms at the median and 0.5–4.7 ms at p99 from a bare
  ` + "`write`+`fdatasync`" + ` loop in Go at 50 Hz, where back to back it takes
  0.13 ms. The guest CPU does not cause it: a busy loop on a core
  beside the writer changed nothing.
- **Everything else is hops between idle threads and small commits,**
  each from cold caches (see the paced latency notes above). Timed with throwaway timestamps at each hand-off (medians): from the
  push to the server's handling, 0.2 ms (encoding 0.02, the socket write
  0.06, the server's read 0.05, the hand-off to the connection's loop
  0.02, decoding and checks 0.03); from the append's commit to the
  receiver's connection, 0.1 ms (the committing goroutine acks its own
  writer before the receiver's runs); to the receiver's apply, 0.1 ms;
  the apply 0.07–0.12 ms; the ` + "`Watch`" + `'s update from the applied row
  (a re-query of the collection, before the watch took the row from the
  commit, took 0.06–0.18 ms).
- **So the 1-receiver p99 is the disk's tail plus ~1 ms of chain.** A
  p99 of 4 ms or less needs the append's p99 under ~3 ms: some runs
  have it, others do not (the relaxed row's range). When the durable
  relay's own p99 is past 4 ms, no durable server can meet the target
  in that run, and the Targets table marks it out of reach.
`

const localProse = `What the workloads are:

- **uno** writes through ` + "`client.Collection.Put`" + ` / ` + "`client.Tx`" + `: per row it
  reads the row's merge state, builds the ops, writes the values and the
  merge state to the collection's table and, per transaction, one outbox
  entry; all in one SQL transaction, WAL, ` + "`synchronous=FULL`" + `.
- **The ceiling** is plain SQL through the same driver and settings, prepared
  statements, a table of the same shape and indexes: the same rows inserted,
  plus one log row per row written (standing in for an outbox).
- A "field op" is one field written; a 1,000-op transaction writes 250 new
  rows of 4 fields. Single-op transactions write one field of a new row.
- Read by key and query read a store of 10,000 rows (` + "`synchronous=NORMAL`" + `
  while seeding). The query filters on an indexed field, orders and returns
  100 rows, decoding each row's merge state.
- Watch latency is one ` + "`Patch`" + ` of a row in the live query's result (at
  ` + "`synchronous=NORMAL`" + `) until the new result arrives on ` + "`Watch.C`" + `: the
  write, the re-query of 100 rows and the delivery.
- Apply is what a receiver does with each update that arrives: remote
  one-field transactions (built by another store) applied through
  ` + "`store.SQLite.ApplyAt`" + `, the call the client's sync loop makes, one per
  commit or 100 per commit, at ` + "`synchronous=NORMAL`" + ` as every apply commits.
  The figure is this process's CPU time (user + system, garbage
  collection included) per transaction. Its ceiling is a plain SQL
  transaction of two statements (upsert the row, move a cursor) through
  ` + "`database/sql`" + `'s ` + "`Begin`" + `/` + "`Commit`" + `. The plain transaction alone costs
  most of the 60 µs target through this driver; uno adds the row's
  merge state (read from the file, or from memory when the store wrote
  the row lately: the benchmark cycles through 100 rows) and the sending
  site's high-water mark beside the cursor. Applied together, the commit
  is shared and the cost per transaction falls to a fraction.

What moved these numbers: prepared statements reused across transactions
(statement preparation was a third of the CPU profile); each row's merge
state kept in a ` + "`_uno`" + ` column of the collection's table, and the replica row
not rewritten on every commit, so that a commit touches as many pages as
the plain one; a compact binary row-state encoding (a site table instead
of 16-byte site IDs in every dot). Then, for the apply path (94 → 58 µs
of CPU per transaction): write transactions run on connections the
store holds, with ` + "`BEGIN IMMEDIATE`" + ` and ` + "`COMMIT`" + ` prepared on them, and
their statements do not watch the caller's context (each watched
statement cost the driver a goroutine); the sites' high-water marks are
read once and kept in memory; the sync cursor and the clock are stored
beside the marks, so a remote batch writes one page less (a third page
per commit costs ~8 µs through this driver); a row's state written by a
committed transaction is kept in memory (the last 1,024 rows, 1 MiB at
most), so the next transaction on it decodes it rather than read it
back (36.7–41.2 → 32.1–35.3 µs, alternated). And every native store
opens with its write-ahead log preallocated (` + "`internal/walfill`" + `): a commit
overwrites blocks the file already has, so an fsync has no growth of
the file to journal (on this disk a paced append+fsync takes 283 µs at
the median, an overwrite+fsync 146 µs) and, at NORMAL, the kernel
allocates nothing per commit (the editing trace at NORMAL went from
124k to ~198k edits/s). The ceilings open their files the same way.

`

const ceilingsProse = `What the machine itself does, measured in the same invocation:

- **the fsync floor**: plain SQL through modernc.org/sqlite, WAL
  (preallocated as the store's), ` + "`synchronous=FULL`" + `, one row and one log
  row per transaction, one after the other: the disk's sequential
  fsync'd commit rate. No durable single-update write can be faster.
- **the fsync floor shared**: that writer two and three times at once,
  each into a file of its own on the same disk, the rate of each and of
  all. Concurrent fsyncs overlap in part, so two writers together commit
  more than one alone, each less. Two at once bound the 2-client
  workload at full durability, whose two clients are such writers.
- **a paced durable commit**: the fsync floor's transaction at the paced
  writer's rate, its latency. An idle disk answers an fsync more slowly
  than one kept busy, so this is what each durable commit on a paced
  write's path costs: the server's append in both modes (an Ack means
  durable, and a delivery follows its append). At full durability the
  writer's fsync runs beside the push, off the path.
- **a durable relay** (1 and 49 receivers): the paced writes as raw
  WebSocket frames of an update's size to a server that commits each
  (the fsync floor's transaction) and then writes it to every receiver's
  connection (a goroutine and a queue each); the latency from the send
  to a receiver's read. The hops and the durable commit any durable
  sync server has on a paced write's path, with no client store, no
  protocol and no log schema. When its p99 is past a target, no durable
  sync server meets that target on the run's machine, and the Targets
  table says so ("out of reach here").
- **a durable relay between replicas**, the **replica relay** (1 and 49
  receivers): that relay with a store at each end, as plain as SQLite
  allows. The writer
  commits each write to a SQLite file of its own (a row and a log row,
  ` + "`synchronous=NORMAL`" + ` as relaxed durability commits) before sending it;
  each receiver commits what it reads to a file of its own (the row and
  its cursor, as **plain SQLite apply**) and reads the row back, as a
  live query would; the latency runs from the start of the writer's
  commit to that read. No checkpoint runs in a commit's path. This is
  the least a paced write costs any sync engine whose peers are SQLite
  replicas and whose server is durable: the relaxed paced rows without
  uno's code. Its p99, like every paced figure here, moves from run to
  run, and can land past uno's.
- **raw WebSocket echo**: github.com/coder/websocket (the library the
  client and server use) on loopback, one connection, a binary message the
  size of one update frame (an encoded Push of one field), sent and echoed
  back one at a time.
- **raw WebSocket broadcast**: one sender, a server that writes every
  message to each receiver's connection (a goroutine and a queue per
  connection, as a sync server has), the same message size; no log, no
  protocol.

`

const syncProse = `The server alone: ` + "`uno serve`" + ` as its own process (so its CPU time can be
read from /proc), driven by load-generating peers that speak the protocol
directly and keep no store, so these figures measure the server, not the
clients' SQLite files. The first row is the older throughput workload: two
real clients (SQLite files, background sync, 100 updates per transaction)
and an in-process server. The Postgres rows run when UNO_PG_DSN names a
server (an admin DSN: each run creates a database and a role of its own,
and drops them after): the log's ingest appends through ` + "`pglog`" + ` as
` + "`uno serve --postgres`" + ` does, as a role that is neither owner nor
superuser (row-level security applies), each append a durable commit with
the rows read model written in it; its ceiling is COPY of the same
transactions' bytes into a plain table. The bootstrap from Postgres reads
the snapshot from its rows read model.

`

const roomProse = `What moved server CPU per delivery (the room workload): the newest entries
and head kept in memory (22.8 → 9.6 µs); group commit, every waiting append
in one SQLite transaction with one fsync (→ 5.6 µs); each entry encoded
once and the Changes frame written around it by hand (→ 4.8–5.4 µs);
clients granting credits 4 at a time with a window of 8 (→ 4.4–4.9 µs).
Since then the server no longer sends an author its own entries, so a room
write makes 49 deliveries where it made 50 (the echo was a delivery too,
and the cheapest). Then the log lost its unique index by site (an
append checks its sites' marks itself, and the index cost a page per
site in every group commit), a group commit reads and saves each
tenant's head once, the memory of frames read and written is reused,
connections share the log's in-memory tail rather than copy it, and a
connection's wait for log growth ends by a call rather than a context
of its own: alternated with the code before them, 6.3–6.6 → 4.8–5.7 µs.
A CPU profile of the server process over the room (pprof) then splits
it: the group commit 34% (the appends' SQL 15%, the commit's WAL writes
and fsync 15%), writing frames 34% (the WebSocket write, one per Changes
frame of about 12 entries, 24%; encoding and compressing 5%), reading
the clients' frames 8%, allocation and the collector 7%, the scheduler
5%; system calls are 38% of it all. A frame carries what a connection
finds when it gets to run: holding back the wake-ups of every other
group commit changed neither the frames nor the CPU. The CPU figure moves by ±1 µs from day to day on this machine:
compare old and new builds alternated in one session before calling a
change a regression.
The room's target (≥ 150,000/s, ≤ 5 µs) is the figure the code of
` + "`29c4f0d`" + ` measured on its day (180,167/s, 4.9 µs, echoes included). That
code, built and run alternately on one later day with the code of that
day (echoes gone, before the changes above; ` + "`go test -c ./bench`" + ` in a
worktree of each, then ` + "`-test.bench '^BenchmarkRoom$' -test.benchtime 1x`" + `
from its bench directory), gave 114k/7.5 µs, 115k/8.2 µs and 146k/6.4 µs
where the later code gave 115k/7.4 µs, 134k/6.5 µs and 125k/7.0 µs: per
write, 368 µs of server CPU for the old (50 deliveries each) and 343 µs
for the later (49). The code had not regressed; the machine gave both
less than it gave then.

`

const queryProse = "`GET /v1/collections/tasks?limit=100&after=<cursor>`" + ` with a bearer token,
over real loopback HTTP (one kept-alive connection), to an in-process
server. The tenant holds one collection of 10,000 rows of four register
fields, appended as one transaction per row; the page is the 100 rows
after the cursor the API returns after 5,000 rows. The SQLite log always;
Postgres too when UNO_PG_DSN names a server (an admin DSN: each run creates
a database and a role of its own and drops them after). Each figure is one
request's round trip, body read.

- **cached**: the same request repeated with no write in between; every
  timed request is a cache hit. Each still authenticates and reads the
  tenant's head.
- **uncached**: before each request (untimed), one transaction updating a
  row outside the page is appended, so the head moves and the request
  rebuilds the page from the rows read model.

The tails are mostly the Go garbage collector of the one process that runs
the seeding, the server and the client (with ` + "`GOGC=off`" + ` the p99s halve).

`

const docsProse = `The automerge-paper editing trace (259,778 single-character edits of a
LaTeX paper; josephg/editing-traces, CC BY 4.0, originally automerge-perf
by Martin Kleppmann), read from ` + "`../shared/data`" + ` (or ` + "`$UNO_BENCH_DATA`" + `; never
downloaded: without it, or without the Automerge library in the build,
these rows say why they were not measured). Edits go 100 to a transaction —
an editor saving a burst of typing — and the final text is checked against
the trace's. The ceiling is automerge-go (automerge-rs through cgo) doing
the same edits with one commit per 100 edits, in memory.

`

const docsAfterProse = `Where the local figure's time goes (CPU profile): Automerge's own splices
and commits (what the ceiling does); one SQL transaction per 100 edits,
with its fsync at sync=FULL (2,598 of them, ~0.2 ms each on this disk);
SQLite itself; the builder, validation and hashing of the change. Two
things keep uno near the ceiling. Adjacent splices in a transaction
(characters typed one after another, runs of backspaces or deletes) go to
Automerge as one splice: the same operations, byte for byte the same
change (` + "`TestDocument_TypingMakesTheSameChangeAsOneSplice`" + `), in one
call instead of one per keystroke; the ceiling calls automerge-go once
per edit, as an app using it directly would. And the doc's JSON column
(rendered while the document is under ` + "`store.DocColumnMaxBytes`" + `, 64 KiB)
reads a text from a copy its splices keep up to date, where Automerge
would rebuild it from every operation the text has seen; the copy is
kept as bytes while the text is all ASCII, so reading it is one memory
copy (as code points, turning them back into a string was three
quarters of the render, and the render a tenth of the whole). A doc's changes
are appended to a table of their own (` + "`_uno_chunks`" + `), not rewritten with
the row, and one open Automerge document serves editing, rendering and
compaction. What remains between sync=NORMAL and sync=FULL is the
per-transaction fsync: the durability the default promises. The 2,598
fsyncs alone cost 2,598 × the fsync floor's transaction (at 4,000 tx/s,
0.65 s, over 0.4× the ceiling's whole time), so the least any durable
store could take is automerge-go's time and one fsync floor per
transaction. The sync=FULL row's ceiling says what that came to in the
same run: when it is past 1.5× itself, the target is out of reach on the
run's disk. Timed inside the store (throwaway timers, 3 runs), a
transaction at sync=FULL spends 0.41–0.44 ms committing (Automerge's
splices included) and 0.14–0.16 ms in its fsync. So sync=FULL stays
within 1.5× only while uno's own work adds little to Automerge's (the
sync=NORMAL row), and the ratio moves with the disk and with the
ceiling, which itself varies by a fifth from run to run. Into the
preallocated write-ahead log each fsync has no growth of the file to
journal.

`

const browserProse = `The same client compiled to WebAssembly, in headless Chromium: the example
app's page (` + "`uno serve --web`" + ` serving ` + "`examples/web`" + ` and the client built by
` + "`wasm/build.sh`" + `), the client in uno.js's dedicated Web Worker (the page's
thread stays free), SQLite persisted in IndexedDB. uno bench runs the
benchmarks of ` + "`internal/browser`" + ` under ` + "`go test`" + ` (they need its harness:
Chromium driven through playwright-core) and reads their figures, each
measured by the page itself (` + "`performance.now`" + `), not by the driver's round
trips. A fresh browser compiles uno.wasm's hot code with V8's optimising
tier during its first writes, so the first 10,000 rows run several times
slower than later ones; Chromium caches that code, so a returning visit
starts faster. The target counts every row the page wrote, the cold ones
included, as the 4,068 rows/s measured before the worker was counted.
The native client's figure is the same workload on a SQLite file.

`

const notMeasuredProse = `## Running it

` + "`uno bench`" + ` runs from uno's source tree (the bootstrap starts ` + "`uno serve`" + `
processes, the browser benchmarks build the WebAssembly client). Rows
that cannot run on a machine say why instead of a figure:

- the Postgres rows (the query API over Postgres, the log's ingest, the
  bootstrap from Postgres) need ` + "`UNO_PG_DSN`" + `, an admin DSN of a Postgres
  server, where each run creates a database and roles of its own and
  drops them after;
- the browser rows need Chromium (` + "`UNO_CHROMIUM`" + `, or /usr/bin/chromium)
  and playwright-core (` + "`npm ci --prefix wasm`" + `), which the README's test
  command installs.

` + "`--only`" + ` takes groups (local, clients, ceilings, sync, postgres, query,
browser, docs) or workload names, and runs the ceilings of what it
selects too. The bootstrap is 1,000,000 rows, the size its target is set
at; ` + "`UNO_BOOTSTRAP_ROWS`" + ` changes it (a run of another size has no target).
`
