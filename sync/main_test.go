package sync_test

import (
	"flag"
	"os"
	"testing"
)

// minChecks is the number of cases every rapid property runs in a plain
// `go test ./sync`. rapid's own default is 100.
const minChecks = "1000"

// TestMain raises rapid's default number of checks to minChecks unless the
// run chose its own (with -rapid.checks or RAPID_CHECKS), and stops rapid
// from writing fail files into testdata (a failing property prints its seed
// instead) unless the run asks for them (with -rapid.nofailfile or
// RAPID_NOFAILFILE).
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	set := func(name, env, value string) {
		if _, ok := os.LookupEnv(env); ok || explicit[name] {
			return
		}
		if err := flag.Set(name, value); err != nil {
			panic(err)
		}
	}
	set("rapid.checks", "RAPID_CHECKS", minChecks)
	set("rapid.nofailfile", "RAPID_NOFAILFILE", "true")
	os.Exit(m.Run())
}
