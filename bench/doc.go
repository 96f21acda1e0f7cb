// Package bench holds uno's reproducible workloads as Go benchmarks, each
// measured beside its ceiling (plain SQLite through the same driver doing
// the same writes) in the same run, and a runner that prints them as a
// table with ratios and targets: go run ./cmd/uno bench. Results, the
// machine and the commands are kept in bench/RESULTS.md.
//
// # Running
//
// The workloads are functions of a [B], the part of *testing.B they use.
// go test ./bench -run '^$' -bench . runs them all as benchmarks, with a
// *testing.B; [Run] (uno bench) runs them with its own B, which follows
// testing's rules for timers, iteration counts and cleanups, so that the
// uno binary links neither package testing nor test helpers. The
// benchmarks of the Postgres log (ingest, its COPY ceiling, bootstrap
// from Postgres, the query API over Postgres) need a throwaway Postgres
// from internal/pgtest, so they live in the _test.go files and run only
// under go test; uno bench --sync measures the query API over Postgres
// when UNO_PG_DSN names a server.
package bench
