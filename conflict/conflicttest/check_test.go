package conflicttest_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/conflict/conflicttest"
)

// maxNumber keeps the larger JSON number; on a tie, the value with the
// greater dot. It is commutative, associative and idempotent.
func maxNumber(a, b conflict.Value) conflict.Value {
	var x, y float64
	_ = json.Unmarshal(a.Data, &x)
	_ = json.Unmarshal(b.Data, &y)
	switch {
	case x > y:
		return a
	case y > x:
		return b
	case a.Dot.Compare(b.Dot) >= 0:
		return a
	}
	return b
}

func TestCheckResolver_AcceptsLawfulResolver(t *testing.T) {
	conflicttest.CheckResolver(t, maxNumber, nil)
}

// A resolver that breaks a law must make CheckResolver fail. Each case runs
// in a child process (a failing CheckResolver fails its test).
func TestCheckResolver_RejectsUnlawfulResolvers(t *testing.T) {
	if name := os.Getenv("UNO_BAD_RESOLVER"); name != "" {
		conflicttest.CheckResolver(t, badResolvers[name], nil)
		return
	}
	for name := range badResolvers {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCheckResolver_RejectsUnlawfulResolvers$", "-rapid.checks=200", "-rapid.nofailfile")
			cmd.Env = append(os.Environ(), "UNO_BAD_RESOLVER="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("CheckResolver accepted a resolver that is not %s:\n%s", name, out)
			}
			if !strings.Contains(string(out), "resolver is not") {
				t.Fatalf("CheckResolver failed without naming the law:\n%s", out)
			}
		})
	}
}

var badResolvers = map[string]conflict.Resolver{
	// Always the first argument: not commutative.
	"commutative": func(a, b conflict.Value) conflict.Value { return a },
	// Concatenation: not idempotent (and not commutative).
	"idempotent": func(a, b conflict.Value) conflict.Value {
		return conflict.Value{Data: append(append([]byte{}, a.Data...), b.Data...), Dot: a.Dot}
	},
}
