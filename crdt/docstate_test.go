package crdt_test

import (
	"slices"
	"testing"

	"github.com/unosync/uno/crdt"
	"pgregory.net/rapid"
)

var docKey = crdt.RowKey{Collection: "notes", Row: "n1"}

// docSim is a tenant's log and the replicas that read it, as uno runs
// them: a replica applies its own transactions at once and pushes them in
// order to the end of the log; it receives the others' in log order. So
// every replica sees a site's changes in order, and every change after
// the changes it depends on. make builds a replica's next change from its
// state.
type docSim struct {
	sites    []crdt.SiteID
	states   []*crdt.State
	seqs     []uint64     // transactions made per replica
	pushed   []int        // own transactions pushed per replica
	own      [][]*crdt.Tx // each replica's transactions
	log      []*crdt.Tx   // the server's log
	cursor   []int        // log entries each replica has read
	mk       func(t *rapid.T, i int, state *crdt.DocState, seq uint64) []byte
	clockMax crdt.Timestamp
}

func newDocSim(n int, mk func(t *rapid.T, i int, state *crdt.DocState, seq uint64) []byte) *docSim {
	s := &docSim{mk: mk}
	for i := range n {
		s.sites = append(s.sites, crdt.SiteID{0: byte(i + 1), 15: 7})
		s.states = append(s.states, &crdt.State{})
	}
	s.seqs, s.pushed, s.own, s.cursor = make([]uint64, n), make([]int, n), make([][]*crdt.Tx, n), make([]int, n)
	return s
}

func (s *docSim) docState(i int) *crdt.DocState {
	r := s.states[i].Row(docKey)
	if r == nil {
		return &crdt.DocState{}
	}
	f, ok := r.Field("body")
	if !ok {
		return &crdt.DocState{}
	}
	return &f.Doc
}

func (s *docSim) step(t *rapid.T) {
	i := rapid.IntRange(0, len(s.sites)-1).Draw(t, "replica")
	switch rapid.IntRange(0, 2).Draw(t, "action") {
	case 0: // write
		s.seqs[i]++
		s.clockMax++
		v := s.mk(t, i, s.docState(i), s.seqs[i])
		if v == nil {
			s.seqs[i]--
			return
		}
		tx := &crdt.Tx{Site: s.sites[i], Seq: s.seqs[i], Time: s.clockMax, Ops: []crdt.Op{{
			Type: crdt.OpChange, Kind: crdt.KindDoc, Collection: docKey.Collection, Row: docKey.Row, Field: "body", CL: 1, Value: v,
		}}}
		if err := crdt.ValidateTx(tx, nil, crdt.Limits{}); err != nil {
			t.Fatalf("replica %d made an invalid tx: %v", i, err)
		}
		if _, err := s.states[i].Apply(tx); err != nil {
			t.Fatalf("apply own: %v", err)
		}
		s.own[i] = append(s.own[i], tx)
	case 1: // push the next own transactions
		n := rapid.IntRange(0, len(s.own[i])-s.pushed[i]).Draw(t, "push")
		s.log = append(s.log, s.own[i][s.pushed[i]:s.pushed[i]+n]...)
		s.pushed[i] += n
	case 2: // receive some of the log, twice sometimes
		n := rapid.IntRange(0, len(s.log)-s.cursor[i]).Draw(t, "receive")
		from := s.cursor[i]
		if rapid.Bool().Draw(t, "again") {
			from = rapid.IntRange(0, from).Draw(t, "from")
		}
		s.receive(t, i, from, s.cursor[i]+n)
	}
}

func (s *docSim) receive(t *rapid.T, i, from, to int) {
	for _, tx := range s.log[from:to] {
		if tx.Site == s.sites[i] {
			continue
		}
		if err := crdt.ValidateTx(tx, nil, crdt.Limits{}); err != nil {
			t.Fatalf("replica %d: received an invalid tx: %v", i, err)
		}
		if err := s.docState(i).CheckNext(tx.Site, tx.Ops[0].Value); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		if _, err := s.states[i].Apply(tx); err != nil {
			t.Fatalf("replica %d: apply: %v", i, err)
		}
	}
	s.cursor[i] = max(s.cursor[i], to)
}

// finish pushes and delivers everything and checks the replicas agree.
func (s *docSim) finish(t *rapid.T) {
	for i := range s.sites {
		s.log = append(s.log, s.own[i][s.pushed[i]:]...)
		s.pushed[i] = len(s.own[i])
	}
	for i := range s.sites {
		s.receive(t, i, s.cursor[i], len(s.log))
	}
	want := s.states[0].Hash()
	for i := range s.sites {
		if got := s.states[i].Hash(); got != want {
			t.Fatalf("replica %d: hash %x, want %x (clock %v heads %v vs %v %v)", i, got[:6], want[:6],
				s.docState(i).Clock, s.docState(i).Heads, s.docState(0).Clock, s.docState(0).Heads)
		}
	}
	// Joining states, as a snapshot merge does, gives the same state.
	for i := range s.sites {
		var j crdt.State
		j.Join(s.states[i])
		j.Join(s.states[(i+1)%len(s.sites)])
		if j.Hash() != want {
			t.Fatalf("join of replicas %d and %d differs", i, (i+1)%len(s.sites))
		}
	}
}

// Doc fields merge like every other kind, in every build: replicas that
// received the same changes, in any order uno delivers them and with
// duplicates, hold equal clocks and heads, hence equal hashes. The changes
// are empty Automerge changes, made byte for byte without the library.
func TestDocState_Converges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := newDocSim(rapid.IntRange(2, 4).Draw(t, "replicas"), func(t *rapid.T, i int, st *crdt.DocState, seq uint64) []byte {
			deps := make([]crdt.ChangeHash, len(st.Heads))
			for k, h := range st.Heads {
				deps[k] = h.Hash
			}
			slices.SortFunc(deps, crdt.ChangeHash.Compare)
			c, _ := emptyChange(crdt.SiteID{0: byte(i + 1), 15: 7}, seq, deps...)
			return c
		})
		for range rapid.IntRange(1, 60).Draw(t, "steps") {
			s.step(t)
		}
		s.finish(t)
	})
}

// A change that skips one of its site's is refused by CheckNext.
func TestDocState_CheckNext(t *testing.T) {
	c1, h1 := emptyChange(siteA, 1)
	c2, h2 := emptyChange(siteA, 2, h1)
	c3, _ := emptyChange(siteA, 3, h2)
	var st crdt.DocState
	if err := st.CheckNext(siteA, c2); err == nil {
		t.Error("CheckNext(change 2 of an empty doc) = nil")
	}
	if err := st.CheckNext(siteA, append(append([]byte{}, c1...), c2...)); err != nil {
		t.Errorf("CheckNext(changes 1 and 2) = %v", err)
	}
	if err := st.CheckNext(siteA, append(append([]byte{}, c1...), c3...)); err == nil {
		t.Error("CheckNext(changes 1 and 3) = nil")
	}
}
