// Package crash holds uno's crash-safety test: a child process writes
// transactions through the client and reports each commit, the parent kills
// it with SIGKILL at random moments and then checks the database. It has no
// non-test code.
//
// Run more cycles with UNO_CRASH_CYCLES=1000 go test ./internal/crash.
package crash
