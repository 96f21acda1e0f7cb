package client_test

import (
	"flag"
	"os"
	"testing"
)

// TestMain stops rapid from writing fail files into testdata (a failing
// property prints its seed instead) unless the run asks for them.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "rapid.nofailfile" {
			explicit = true
		}
	})
	if _, ok := os.LookupEnv("RAPID_NOFAILFILE"); !ok && !explicit {
		if err := flag.Set("rapid.nofailfile", "true"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
