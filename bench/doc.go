// Package bench holds uno's reproducible workloads as Go benchmarks, each
// measured beside its ceiling (plain SQLite through the same driver doing
// the same writes) in the same run, and a runner that prints them as a
// table with ratios and targets: go run ./cmd/uno bench. Results, the
// machine and the commands are kept in bench/RESULTS.md.
package bench
