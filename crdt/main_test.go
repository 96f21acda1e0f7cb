package crdt_test

import (
	"flag"
	"os"
	"testing"
)

// minChecks is the number of cases every rapid property runs in a plain
// `go test ./crdt`. rapid's own default is 100.
const minChecks = "1000"

// TestMain raises rapid's default number of checks to minChecks unless the
// run chose its own (with -rapid.checks or RAPID_CHECKS), so a quick local
// run can still ask for fewer and a soak run for more.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "rapid.checks" {
			explicit = true
		}
	})
	if _, ok := os.LookupEnv("RAPID_CHECKS"); !ok && !explicit {
		if err := flag.Set("rapid.checks", minChecks); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
