// Package bench holds uno's reproducible workloads as Go benchmarks, each
// measured beside its ceiling in the same run, and the runner behind
// go run ./cmd/uno bench, which runs them all and writes a report:
// RESULTS.md (the machine, the command, every table with ratios and
// targets met or not, SVG charts) and results.json (every round's
// figures).
//
// # Workloads
//
// The headline workloads drive the public API the way an app does: real
// clients (client.Client on SQLite files, default settings apart from
// Durability, one update per transaction) syncing through a fresh
// in-process server, receivers watching with Watch ([ClientUpdates],
// [PacedWatch]), in both durability modes. Their ceilings run in the same
// invocation: the disk's fsync'd single-row commit rate through the same
// SQLite driver ([PlainSingle]) and its latency when paced
// ([PacedFsync]), a durable relay of the paced writes (raw WebSocket
// frames through a server that fsyncs each, [WSRelay]; and between plain
// SQLite replicas, [WSRelayReplicas]), a raw WebSocket
// echo and broadcast on loopback ([WSEcho], [WSBroadcast]). The local
// engine's workloads run
// beside plain SQLite doing the same writes; the server's (room, latency,
// bootstrap) are driven by load-generating peers against `uno serve` as
// its own process; the Postgres log's ingest beside COPY ([PGIngest],
// [PGCopy]), the query API, the browser ([Browser]: the benchmarks of
// internal/browser, run under go test) and the doc field trace complete
// the set. [Options.Workloads] lists them with their groups.
//
// # Running
//
// The workloads are functions of a [B], the part of *testing.B they use.
// go test ./bench -run '^$' -bench . runs them as benchmarks, with a
// *testing.B; [Run] (uno bench) runs them with its own B, which follows
// testing's rules for timers, iteration counts and cleanups, so that the
// uno binary links neither package testing nor test helpers. [Run]
// alternates the workloads round by round (5 rounds by default) so that a
// workload and its ceiling see the same machine, and [Report.Write]
// writes the report; --quick runs everything once at tiny sizes, which
// is what the package's test does. Under go test the Postgres workloads
// take a throwaway database from internal/pgtest; uno bench runs them
// when UNO_PG_DSN names a server, on a database of their own.
package bench
