package crdt

import (
	"fmt"
	"slices"
)

// DocState is the merge state of a doc field: an Automerge document, kept
// as the Automerge chunks whose union it is, with what uno needs to merge
// it without the Automerge library — the highest change sequence number
// of each author and the document's heads.
//
// Every change in a doc field is authored by the site of the transaction
// that carries it: the Automerge actor ID is the 16-byte site ID. A site
// writes its changes in order, and a replica receives a site's
// transactions in order, so the clock says exactly which changes a state
// holds. Applying a change is a join (a change already covered by the
// clock changes nothing), so doc fields merge like every other kind.
//
// The chunks are a representation: a build with the Automerge library
// replaces a long run of changes by one saved document ([DocCompactor]),
// another build may keep the changes. The canonical encoding, and so the
// state hash, covers the clock and the heads, never the chunks.
type DocState struct {
	_ struct{} `cbor:",toarray"`
	// Chunks are Automerge chunks: change chunks in the order applied, and
	// saved documents a compaction left. Loading them all, in order, gives
	// the document.
	Chunks [][]byte
	Clock  []DocClock // sorted by site
	Heads  []DocHead  // sorted by hash
}

// DocClock is the highest change sequence number of one author.
type DocClock struct {
	_    struct{} `cbor:",toarray"`
	Site SiteID
	Seq  uint64
}

// DocHead is a change no other change of the document depends on.
type DocHead struct {
	_    struct{} `cbor:",toarray"`
	Hash ChangeHash
	Site SiteID
	Seq  uint64
}

// DocCompactor, when set, replaces a doc state's chunks by one saved
// Automerge document holding the same changes, and returns false when it
// cannot (the build has no Automerge library, or the heads disagree). The
// platform file with the Automerge library sets it; compaction never
// changes what a state means, only how many bytes it takes.
var DocCompactor func(chunks [][]byte, heads []DocHead) ([]byte, bool)

// seq returns the highest sequence number of site's changes held.
func (s *DocState) seq(site SiteID) uint64 {
	i, ok := slices.BinarySearchFunc(s.Clock, site, func(c DocClock, s SiteID) int { return c.Site.Compare(s) })
	if !ok {
		return 0
	}
	return s.Clock[i].Seq
}

func (s *DocState) setSeq(site SiteID, seq uint64) {
	i, ok := slices.BinarySearchFunc(s.Clock, site, func(c DocClock, s SiteID) int { return c.Site.Compare(s) })
	if ok {
		s.Clock[i].Seq = max(s.Clock[i].Seq, seq)
		return
	}
	s.Clock = slices.Insert(s.Clock, i, DocClock{Site: site, Seq: seq})
}

// HeadsAre reports whether hs, in any order, are the state's heads: what
// Automerge shows for a document that applied every change of the state
// (a change whose dependencies are missing is held back, and the heads
// differ).
func (s *DocState) HeadsAre(hs []ChangeHash) bool {
	if len(hs) != len(s.Heads) {
		return false
	}
	for _, h := range hs {
		if !slices.ContainsFunc(s.Heads, func(x DocHead) bool { return x.Hash == h }) {
			return false
		}
	}
	return true
}

// Contains reports whether the state holds the change (site, seq).
func (s *DocState) Contains(site SiteID, seq uint64) bool { return seq <= s.seq(site) }

// Len returns the number of bytes of the state's chunks.
func (s *DocState) Len() int {
	n := 0
	for _, c := range s.Chunks {
		n += len(c)
	}
	return n
}

// docChanges parses an OpChange value written by site: every change must
// be authored by it.
func docChanges(value []byte, site SiteID) ([]amChangeHeader, error) {
	chs, err := splitChanges(value, maxDecodeBytes)
	if err != nil {
		return nil, err
	}
	for _, ch := range chs {
		if len(ch.Actor) != len(site) || SiteID(ch.Actor) != site {
			return nil, fmt.Errorf("%w: Automerge change by actor %x in a transaction of site %s (the actor must be the site)", ErrInvalidValue, ch.Actor, site)
		}
	}
	return chs, nil
}

// apply adds changes, parsed by docChanges, and reports whether any was new.
func (s *DocState) apply(chs []amChangeHeader) bool {
	changed := false
	for _, ch := range chs {
		site := SiteID(ch.Actor)
		if s.Contains(site, ch.Seq) {
			continue
		}
		changed = true
		s.Chunks = append(s.Chunks, ch.Raw)
		s.setSeq(site, ch.Seq)
		s.Heads = slices.DeleteFunc(s.Heads, func(h DocHead) bool {
			return slices.Contains(ch.Deps, h.Hash)
		})
		h := DocHead{Hash: ch.Hash, Site: site, Seq: ch.Seq}
		i, _ := slices.BinarySearchFunc(s.Heads, h.Hash, func(h DocHead, x ChangeHash) int { return h.Hash.Compare(x) })
		s.Heads = slices.Insert(s.Heads, i, h)
	}
	if changed {
		s.maybeCompact()
	}
	return changed
}

// Compaction thresholds. Loading and saving a document costs time in its
// operations, so changes are folded into a saved document once they hold
// as many operations as it (and docCompactOps): the saved document at
// least doubles between compactions, and their cost is amortised over the
// changes. A change's operations are counted by its start op, the
// author's operation counter. A long run of changes is folded too
// (docCompactChunks), and changes that make the state large
// (docCompactBytes), whatever their operations, since a row's state has a
// size limit.
const (
	docCompactOps    = 16 << 10
	docCompactChunks = 4096
	docCompactBytes  = 512 << 10
)

func (s *DocState) maybeCompact() {
	if DocCompactor == nil || len(s.Chunks) < 2 {
		return
	}
	if len(s.Chunks) > docCompactChunks || s.Len()-len(s.Chunks[0]) >= docCompactBytes {
		s.Compact()
		return
	}
	// The operations before the first change left are in saved documents.
	// (Compressed changes, which only large changes are, count by bytes.)
	saved, last := uint64(0), uint64(0)
	first := true
	for _, c := range s.Chunks {
		start, ok := changeStartOp(c)
		if !ok { // a saved document, or a compressed change
			continue
		}
		if first {
			saved, first = start-1, false
		}
		saved, last = min(saved, start-1), max(last, start)
	}
	if ops := last - saved; !first && ops >= docCompactOps && ops >= saved {
		s.Compact()
	}
}

// Compact replaces the chunks by one saved document when the build can
// (see [DocCompactor]), and reports whether it did.
func (s *DocState) Compact() bool {
	if DocCompactor == nil || len(s.Chunks) < 2 {
		return false
	}
	saved, ok := DocCompactor(s.Chunks, s.Heads)
	if ok {
		s.Chunks = [][]byte{saved}
	}
	return ok
}

// Join returns the least upper bound of s and o. It shares only what is
// never modified in place with them: chunks, and lists of chunks clipped
// so that appending to one copies it.
func (s DocState) Join(o DocState) DocState {
	out := DocState{}
	switch {
	case o.coveredBy(&s):
		out.Chunks = slices.Clip(s.Chunks)
	case s.coveredBy(&o):
		out.Chunks = slices.Clip(o.Chunks)
	default:
		// Both hold changes the other lacks: keep both representations;
		// Automerge skips what it already has when loading them.
		out.Chunks = append(slices.Clone(s.Chunks), o.Chunks...)
	}
	out.Clock = slices.Clone(s.Clock)
	for _, c := range o.Clock {
		out.setSeq(c.Site, c.Seq)
	}
	// A head of one side stays a head unless the other side holds it
	// without it being one of its heads: then something there depends on it.
	keep := func(h DocHead, other *DocState) bool {
		return !other.Contains(h.Site, h.Seq) || slices.ContainsFunc(other.Heads, func(x DocHead) bool { return x.Hash == h.Hash })
	}
	for _, h := range s.Heads {
		if keep(h, &o) {
			out.Heads = append(out.Heads, h)
		}
	}
	for _, h := range o.Heads {
		if keep(h, &s) && !slices.ContainsFunc(out.Heads, func(x DocHead) bool { return x.Hash == h.Hash }) {
			out.Heads = append(out.Heads, h)
		}
	}
	slices.SortFunc(out.Heads, func(a, b DocHead) int { return a.Hash.Compare(b.Hash) })
	out.maybeCompact()
	return out
}

// coveredBy reports whether every change s holds is held by o.
func (s *DocState) coveredBy(o *DocState) bool {
	for _, c := range s.Clock {
		if !o.Contains(c.Site, c.Seq) {
			return false
		}
	}
	return true
}

// clone copies s. The chunks are immutable, and the list of them is only
// ever appended to or replaced: a clipped one is shared (appending to
// either copies it), which spares a copy of a long list per row clone.
func (s *DocState) clone() DocState {
	return DocState{Chunks: slices.Clip(s.Chunks), Clock: slices.Clone(s.Clock), Heads: slices.Clone(s.Heads)}
}

// Bytes returns the chunks concatenated: what Automerge loads.
func (s *DocState) Bytes() []byte {
	out := make([]byte, 0, s.Len())
	for _, c := range s.Chunks {
		out = append(out, c...)
	}
	return out
}

// CheckNext checks that the doc changes in value, written by site, follow
// on from what the state holds: each change is the site's next one, or
// one the state already has. A replica receives a site's transactions in
// order, so a change that skips one was made by a buggy or hostile writer;
// the server refuses it (the error wraps ErrInvalidValue) rather than
// letting a document hold a change Automerge cannot apply.
func (s *DocState) CheckNext(site SiteID, value []byte) error {
	chs, err := docChanges(value, site)
	if err != nil {
		return err
	}
	next := s.seq(site) + 1
	for _, ch := range chs {
		switch {
		case ch.Seq < next:
		case ch.Seq == next:
			next++
		default:
			return fmt.Errorf("%w: Automerge change %d of site %s follows its change %d (the changes in between are missing)", ErrInvalidValue, ch.Seq, site, next-1)
		}
	}
	return nil
}
