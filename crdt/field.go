package crdt

import (
	"bytes"
	"slices"
)

// Entry is one value of a register together with the write that made it.
type Entry struct {
	_     struct{} `cbor:",toarray"`
	Dot   Dot
	Value []byte
}

// Register is a multi-value register with a causal context. Entries holds
// the values no known write has overwritten, sorted by dot; when writes are
// concurrent there are several (siblings). The last-writer-wins value is
// the entry with the greatest dot, see [Register.Winner]. A write made
// after observing another always has a greater timestamp (hybrid logical
// clocks), so it both overwrites and outranks what it observed.
type Register struct {
	_       struct{} `cbor:",toarray"`
	Entries []Entry
	Context Context
}

// Winner returns the last-writer-wins entry; ok is false for an empty register.
func (r *Register) Winner() (e Entry, ok bool) {
	if len(r.Entries) == 0 {
		return Entry{}, false
	}
	return r.Entries[len(r.Entries)-1], true
}

// Join returns the least upper bound of r and o: an entry survives if every
// side either holds it or has not seen it.
func (r Register) Join(o Register) Register {
	var out []Entry
	i, j := 0, 0
	for i < len(r.Entries) || j < len(o.Entries) {
		var cmp int
		switch {
		case i == len(r.Entries):
			cmp = 1
		case j == len(o.Entries):
			cmp = -1
		default:
			cmp = r.Entries[i].Dot.Compare(o.Entries[j].Dot)
		}
		switch {
		case cmp < 0:
			if !o.Context.Covers(r.Entries[i].Dot) {
				out = append(out, r.Entries[i])
			}
			i++
		case cmp > 0:
			if !r.Context.Covers(o.Entries[j].Dot) {
				out = append(out, o.Entries[j])
			}
			j++
		default:
			out = append(out, r.Entries[i])
			i++
			j++
		}
	}
	return Register{Entries: out, Context: r.Context.Join(o.Context)}
}

// write applies a write of value stamped d by a writer that had seen ctx.
// It returns the entries that were concurrent with the write (neither saw
// the other); they are empty when the write is a duplicate or was already
// overwritten here.
func (r *Register) write(d Dot, value []byte, ctx Context) (concurrent []Entry) {
	if !r.Context.Covers(d) {
		for _, e := range r.Entries {
			if !ctx.Covers(e.Dot) {
				concurrent = append(concurrent, e)
			}
		}
	}
	*r = r.Join(Register{Entries: []Entry{{Dot: d, Value: value}}, Context: ctx.Add(d)})
	return concurrent
}

// CounterPart is one site's share of a counter: the sums of its positive and
// negative increments.
type CounterPart struct {
	_    struct{} `cbor:",toarray"`
	Site SiteID
	P, N uint64
}

// Counter is a PN-counter: one part per site, each only ever growing, joined
// by per-site maximum. Its value is the sum of P minus the sum of N.
type Counter struct {
	_     struct{}      `cbor:",toarray"`
	Parts []CounterPart // sorted by site
}

// Value returns the counter's value.
func (c *Counter) Value() int64 {
	var v int64
	for _, p := range c.Parts {
		v += int64(p.P) - int64(p.N)
	}
	return v
}

// Part returns site's cumulative parts.
func (c *Counter) Part(site SiteID) (p, n uint64) {
	i, ok := c.find(site)
	if !ok {
		return 0, 0
	}
	return c.Parts[i].P, c.Parts[i].N
}

func (c *Counter) find(site SiteID) (int, bool) {
	return slices.BinarySearchFunc(c.Parts, site, func(p CounterPart, s SiteID) int { return p.Site.Compare(s) })
}

// Join returns the per-site maximum of c and o.
func (c Counter) Join(o Counter) Counter {
	out := Counter{Parts: slices.Clone(c.Parts)}
	for _, p := range o.Parts {
		out.merge(p)
	}
	return out
}

func (c *Counter) merge(p CounterPart) {
	i, ok := c.find(p.Site)
	if !ok {
		c.Parts = slices.Insert(c.Parts, i, p)
		return
	}
	c.Parts[i].P = max(c.Parts[i].P, p.P)
	c.Parts[i].N = max(c.Parts[i].N, p.N)
}

// Member is one value of a set with the tags of its adds and of the adds
// that were removed. It is present while some add is not removed.
type Member struct {
	_       struct{} `cbor:",toarray"`
	Value   []byte
	Adds    []Dot // sorted
	Removes []Dot // sorted, each also in Adds once both are known
}

// Present reports whether some add of the member has not been removed.
func (m *Member) Present() bool { return len(m.live()) > 0 }

func (m *Member) live() []Dot {
	var live []Dot
	for _, a := range m.Adds {
		if _, removed := slices.BinarySearchFunc(m.Removes, a, Dot.Compare); !removed {
			live = append(live, a)
		}
	}
	return live
}

// Set is an add-wins observed-remove set: a remove only cancels the adds
// its writer had seen, so an add concurrent with a remove survives.
type Set struct {
	_       struct{} `cbor:",toarray"`
	Members []Member // sorted by value bytes
}

// Values returns the present members in byte order.
func (s *Set) Values() [][]byte {
	var out [][]byte
	for i := range s.Members {
		if s.Members[i].Present() {
			out = append(out, s.Members[i].Value)
		}
	}
	return out
}

// Has reports whether v is present.
func (s *Set) Has(v []byte) bool {
	i, ok := s.find(v)
	return ok && s.Members[i].Present()
}

// Observed returns the live add tags of v: what a remove of v must carry.
func (s *Set) Observed(v []byte) []Dot {
	i, ok := s.find(v)
	if !ok {
		return nil
	}
	return s.Members[i].live()
}

func (s *Set) find(v []byte) (int, bool) {
	return slices.BinarySearchFunc(s.Members, v, func(m Member, v []byte) int { return bytes.Compare(m.Value, v) })
}

// knows reports whether every dot of ds is already among v's adds (or
// removes): applying them again would change nothing. A member with no
// dots to apply is known only if it exists.
func (s *Set) knows(v []byte, ds []Dot, removes bool) bool {
	i, ok := s.find(v)
	if !ok {
		return false
	}
	have := s.Members[i].Adds
	if removes {
		have = s.Members[i].Removes
	}
	for _, d := range ds {
		if _, found := slices.BinarySearchFunc(have, d, Dot.Compare); !found {
			return false
		}
	}
	return true
}

// Join returns the member-wise union of the add and remove tags.
func (s Set) Join(o Set) Set {
	out := Set{Members: make([]Member, len(s.Members))}
	for i, m := range s.Members {
		out.Members[i] = Member{Value: m.Value, Adds: slices.Clone(m.Adds), Removes: slices.Clone(m.Removes)}
	}
	for _, m := range o.Members {
		out.merge(m.Value, m.Adds, m.Removes)
	}
	return out
}

func (s *Set) merge(v []byte, adds, removes []Dot) {
	i, ok := s.find(v)
	if !ok {
		s.Members = slices.Insert(s.Members, i, Member{Value: v})
	}
	m := &s.Members[i]
	m.Adds = unionDots(m.Adds, adds)
	m.Removes = unionDots(m.Removes, removes)
}

func unionDots(a, b []Dot) []Dot {
	for _, d := range b {
		i, ok := slices.BinarySearchFunc(a, d, Dot.Compare)
		if !ok {
			a = slices.Insert(a, i, d)
		}
	}
	return a
}
