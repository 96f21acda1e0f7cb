package conflicttest

import (
	"strconv"
	"testing"

	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/crdt"
	"pgregory.net/rapid"
)

// CheckResolver checks with property-based tests that r is deterministic,
// commutative, associative and idempotent over values drawn from data (nil
// means small JSON scalars) written by a few sites at random times. Call it
// from a test of your app:
//
//	func TestMaxResolver(t *testing.T) {
//		conflicttest.CheckResolver(t, maxResolver, nil)
//	}
//
// It fails t with a minimal counterexample when a property does not hold.
func CheckResolver(t *testing.T, r conflict.Resolver, data *rapid.Generator[[]byte]) {
	t.Helper()
	if data == nil {
		data = JSONScalar()
	}
	value := rapid.Custom(func(t *rapid.T) conflict.Value {
		site := crdt.SiteID{byte(rapid.IntRange(1, 4).Draw(t, "site"))}
		ts := crdt.MakeTimestamp(rapid.Int64Range(0, 1_000).Draw(t, "ms"), uint16(rapid.IntRange(0, 3).Draw(t, "logical")))
		return conflict.Value{Data: data.Draw(t, "data"), Dot: crdt.Dot{Site: site, Time: ts}}
	})
	// One dot names one write: two values with the same dot are the same
	// value. (Drawn independently they could differ, which no replica
	// ever sees.)
	same := func(vs ...*conflict.Value) {
		for i := range vs {
			for j := range i {
				if vs[i].Dot == vs[j].Dot {
					*vs[i] = *vs[j]
				}
			}
		}
	}
	check := func(t *rapid.T, what string, got, want conflict.Value) {
		if !got.Equal(want) {
			t.Fatalf("resolver is not %s: got %s, want %s", what, got, want)
		}
	}
	t.Run("deterministic", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			a, b := value.Draw(t, "a"), value.Draw(t, "b")
			same(&a, &b)
			check(t, "deterministic", r(a, b), r(a, b))
		})
	})
	t.Run("commutative", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			a, b := value.Draw(t, "a"), value.Draw(t, "b")
			same(&a, &b)
			check(t, "commutative", r(a, b), r(b, a))
		})
	})
	t.Run("associative", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			a, b, c := value.Draw(t, "a"), value.Draw(t, "b"), value.Draw(t, "c")
			same(&a, &b, &c)
			check(t, "associative", r(r(a, b), c), r(a, r(b, c)))
		})
	})
	t.Run("idempotent", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			a := value.Draw(t, "a")
			check(t, "idempotent", r(a, a), a)
		})
	})
}

// JSONScalar generates small JSON scalars: null, booleans, integers and
// short strings, encoded as JSON.
func JSONScalar() *rapid.Generator[[]byte] {
	return rapid.OneOf(
		rapid.Just([]byte("null")),
		rapid.SampledFrom([][]byte{[]byte("true"), []byte("false")}),
		rapid.Map(rapid.IntRange(-1000, 1000), func(i int) []byte { return []byte(strconv.Itoa(i)) }),
		rapid.Map(rapid.StringMatching(`[a-z]{0,6}`), func(s string) []byte { return []byte(`"` + s + `"`) }),
	)
}
