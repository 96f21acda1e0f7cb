package sync_test

import (
	"testing"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

func TestDiverged(t *testing.T) {
	r := func(first, epoch uint64) usync.Run { return usync.Run{First: first, Epoch: epoch} }
	tests := []struct {
		name          string
		mine          []usync.Run
		last          uint64
		theirs        []usync.Run
		through, want uint64
	}{
		{"same run", []usync.Run{r(5, 1)}, 9, []usync.Run{r(3, 1)}, 9, 0},
		{"the server's run goes on in another epoch", []usync.Run{r(5, 1)}, 9, []usync.Run{r(3, 1), r(7, 2)}, 9, 7},
		{"past through, not compared", []usync.Run{r(5, 1)}, 9, []usync.Run{r(3, 1), r(7, 2)}, 6, 0},
		{"past the replica's last, not compared", []usync.Run{r(5, 1)}, 6, []usync.Run{r(3, 1), r(7, 2)}, 9, 0},
		{"the replica wrote again from 8", []usync.Run{r(5, 1), r(8, 3)}, 9, []usync.Run{r(3, 1)}, 12, 8},
		{"from the first", []usync.Run{r(5, 3)}, 9, []usync.Run{r(1, 1)}, 12, 5},
		{"unknown to the server (before its runs)", []usync.Run{r(5, 3)}, 9, []usync.Run{r(8, 3)}, 12, 0},
		{"unknown to the server (epoch 0)", []usync.Run{r(5, 3)}, 9, []usync.Run{r(1, 0)}, 12, 0},
		{"written before epochs here, with one there", []usync.Run{r(5, 0)}, 9, []usync.Run{r(1, 4)}, 12, 5},
		{"nothing pending", nil, 9, []usync.Run{r(1, 4)}, 12, 0},
		{"several runs, all held", []usync.Run{r(2, 1), r(4, 2), r(6, 3)}, 7, []usync.Run{r(1, 1), r(4, 2), r(6, 3)}, 7, 0},
	}
	for _, tt := range tests {
		if got := usync.Diverged(tt.mine, tt.last, tt.theirs, tt.through); got != tt.want {
			t.Errorf("%s: Diverged = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// epochClient is a client session past Welcome of version, whose
// replica has runs up to last unacknowledged.
func epochClient(t *testing.T, version uint16, runs []usync.Run, last, highWater uint64) *usync.ClientSession {
	t.Helper()
	s := usync.NewClientSession(usync.ClientConfig{Site: siteA, Token: "tok", Runs: runs, Last: last}, 0)
	s.Start()
	s.Advance(s.Ready())
	if err := s.Step(&usync.Welcome{Version: version, HighWater: highWater, Limits: usync.Limits{MaxPushTxs: 10, MaxInFlight: 2}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// A client whose unacknowledged writes the server's high-water mark
// covers checks the server's runs before it takes the mark as an
// acknowledgement, and pushes nothing meanwhile.
func TestClientSession_Check(t *testing.T) {
	runs := []usync.Run{{First: 5, Epoch: 1}, {First: 8, Epoch: 2}}
	for _, tt := range []struct {
		name   string
		answer *usync.Runs
		fork   uint64
	}{
		{"held", &usync.Runs{Runs: []usync.Run{{First: 1, Epoch: 1}, {First: 8, Epoch: 2}}, Through: 9}, 0},
		{"others held from 8", &usync.Runs{Runs: []usync.Run{{First: 1, Epoch: 1}, {First: 8, Epoch: 7}}, Through: 9}, 8},
		{"no runs kept", &usync.Runs{Through: 9}, 0},
	} {
		s := epochClient(t, 3, runs, 10, 9)
		rd := s.Ready()
		if len(rd.Send) != 1 || rd.Acked != 0 {
			t.Fatalf("%s: after Welcome: Send %v, Acked %d; want one Check and no acknowledgement", tt.name, rd.Send, rd.Acked)
		}
		if c, ok := rd.Send[0].(*usync.Check); !ok || c.From != 5 {
			t.Fatalf("%s: sent %#v, want Check from 5", tt.name, rd.Send[0])
		}
		s.Advance(rd)
		if _, _, ok := s.WantPush(); ok {
			t.Fatalf("%s: WantPush while checking", tt.name)
		}
		if err := s.Step(tt.answer); err != nil {
			t.Fatal(err)
		}
		rd = s.Ready()
		if rd.Fork != tt.fork || rd.Acked != 9 {
			t.Errorf("%s: Fork %d, Acked %d; want %d, 9", tt.name, rd.Fork, rd.Acked, tt.fork)
		}
		s.Advance(rd)
		if after, _, ok := s.WantPush(); !ok || after != 9 {
			t.Errorf("%s: WantPush = %d, %v; want after 9", tt.name, after, ok)
		}
	}

	// No Check: on version 2, or when the server holds none of the
	// unacknowledged writes.
	for _, s := range []*usync.ClientSession{epochClient(t, 2, runs, 10, 9), epochClient(t, 3, runs, 10, 4)} {
		if rd := s.Ready(); len(rd.Send) != 0 || rd.Acked == 0 || rd.Fork != 0 {
			t.Errorf("Ready %+v, want an acknowledgement, no Check, no Fork", rd)
		}
	}
	// Runs unasked closes the session.
	s := epochClient(t, 3, runs, 10, 4)
	s.Advance(s.Ready())
	if err := s.Step(&usync.Runs{}); err == nil || !s.Closed() {
		t.Errorf("Runs with no Check: %v, closed %v", err, s.Closed())
	}
}

// An answer that falls short of the replica's unacknowledged writes and
// of the server's high-water mark (too many runs for one message) leaves
// the rest unchecked: the client asks again from past it, and decides
// only once the answers reach either.
func TestClientSession_CheckPages(t *testing.T) {
	mine := []usync.Run{{First: 5, Epoch: 1}, {First: 8, Epoch: 2}, {First: 12, Epoch: 3}}
	for _, tt := range []struct {
		name   string
		second *usync.Runs
		fork   uint64
	}{
		{"held", &usync.Runs{Runs: []usync.Run{{First: 8, Epoch: 2}, {First: 12, Epoch: 3}}, Through: 14}, 0},
		{"others held from 12", &usync.Runs{Runs: []usync.Run{{First: 8, Epoch: 2}, {First: 12, Epoch: 9}}, Through: 14}, 12},
		{"others held from 10", &usync.Runs{Runs: []usync.Run{{First: 8, Epoch: 2}, {First: 10, Epoch: 9}}, Through: 14}, 10},
	} {
		s := epochClient(t, 3, mine, 14, 14)
		s.Advance(s.Ready())
		if err := s.Step(&usync.Runs{Runs: []usync.Run{{First: 1, Epoch: 1}, {First: 8, Epoch: 2}}, Through: 8}); err != nil {
			t.Fatal(err)
		}
		rd := s.Ready()
		if rd.Acked != 0 || rd.Fork != 0 || len(rd.Send) != 1 {
			t.Fatalf("%s: after the first answer: Acked %d, Fork %d, Send %v; want one more Check", tt.name, rd.Acked, rd.Fork, rd.Send)
		}
		if c, ok := rd.Send[0].(*usync.Check); !ok || c.From != 9 {
			t.Fatalf("%s: sent %#v, want Check from 9", tt.name, rd.Send[0])
		}
		s.Advance(rd)
		if _, _, ok := s.WantPush(); ok {
			t.Fatalf("%s: WantPush while checking", tt.name)
		}
		if err := s.Step(tt.second); err != nil {
			t.Fatal(err)
		}
		if rd = s.Ready(); rd.Fork != tt.fork || rd.Acked != 14 || len(rd.Send) != 0 {
			t.Errorf("%s: Fork %d, Acked %d, Send %v; want %d, 14, nothing", tt.name, rd.Fork, rd.Acked, rd.Send, tt.fork)
		}
	}

	// A divergence in the first answer decides at once.
	s := epochClient(t, 3, mine, 14, 14)
	s.Advance(s.Ready())
	if err := s.Step(&usync.Runs{Runs: []usync.Run{{First: 1, Epoch: 1}, {First: 6, Epoch: 9}}, Through: 8}); err != nil {
		t.Fatal(err)
	}
	if rd := s.Ready(); rd.Fork != 6 || rd.Acked != 14 || len(rd.Send) != 0 {
		t.Errorf("diverged in the first answer: Fork %d, Acked %d, Send %v; want 6, 14, nothing", rd.Fork, rd.Acked, rd.Send)
	}
	// An answer reaching the replica's last write, short of the mark, decides.
	s = epochClient(t, 3, mine, 12, 14)
	s.Advance(s.Ready())
	if err := s.Step(&usync.Runs{Runs: []usync.Run{{First: 1, Epoch: 1}, {First: 8, Epoch: 2}, {First: 12, Epoch: 3}}, Through: 12}); err != nil {
		t.Fatal(err)
	}
	if rd := s.Ready(); rd.Fork != 13 || rd.Acked != 14 || len(rd.Send) != 0 {
		t.Errorf("answered through the last write: Fork %d, Acked %d, Send %v; want 13 (above last), 14, nothing", rd.Fork, rd.Acked, rd.Send)
	}
	// An answer that stops before the Check's From is the server's error.
	s = epochClient(t, 3, mine, 14, 14)
	s.Advance(s.Ready())
	if err := s.Step(&usync.Runs{Through: 4}); err == nil || !s.Closed() {
		t.Errorf("Runs through 4 for a Check from 5: %v, closed %v", err, s.Closed())
	}
}

// A server holding more of the site than the replica had when the
// session started: whatever the replica wrote since holds numbers the
// server holds others under.
func TestClientSession_ForkAboveLast(t *testing.T) {
	s := epochClient(t, 2, nil, 6, 9)
	if rd := s.Ready(); rd.Fork != 7 || rd.Acked != 9 {
		t.Errorf("Fork %d, Acked %d; want 7, 9", rd.Fork, rd.Acked)
	}
	s = epochClient(t, 3, []usync.Run{{First: 5, Epoch: 1}}, 6, 9)
	s.Advance(s.Ready())
	if err := s.Step(&usync.Runs{Runs: []usync.Run{{First: 1, Epoch: 1}}, Through: 9}); err != nil {
		t.Fatal(err)
	}
	if rd := s.Ready(); rd.Fork != 7 {
		t.Errorf("after Runs: Fork %d, want 7", rd.Fork)
	}
	// A driver that gave neither runs nor a last seq keeps no outbox.
	if rd := epochClient(t, 2, nil, 0, 9).Ready(); rd.Fork != 0 {
		t.Errorf("no outbox: Fork %d", rd.Fork)
	}
}

func TestServerSession_Check(t *testing.T) {
	open := func(version uint16) *usync.ServerSession {
		s := usync.NewServerSession(usync.ServerConfig{})
		if err := s.Step(&usync.Hello{Versions: []uint16{version}, Site: siteA}); err != nil {
			t.Fatal(err)
		}
		s.Advance(s.Ready())
		s.Accept(usync.AcceptParams{HighWater: 9, Head: 20})
		s.Advance(s.Ready())
		return s
	}
	s := open(3)
	if err := s.Step(&usync.Check{From: 5}); err != nil {
		t.Fatal(err)
	}
	rd := s.Ready()
	if rd.Check == nil || rd.Check.From != 5 || rd.CheckThrough != 9 {
		t.Fatalf("Ready: Check %+v through %d, want from 5 through 9", rd.Check, rd.CheckThrough)
	}
	s.Checked([]usync.Run{{First: 1, Epoch: 3}}, 9)
	rd = s.Ready()
	if rd.Check != nil || len(rd.Send) != 1 {
		t.Fatalf("after Checked: %+v", rd)
	}
	if r, ok := rd.Send[0].(*usync.Runs); !ok || r.Through != 9 || len(r.Runs) != 1 {
		t.Errorf("sent %#v, want the runs through 9", rd.Send[0])
	}
	s.Advance(rd)
	if err := s.Step(&usync.Check{From: 5}); err == nil {
		t.Error("a second Check from within the first answer was taken")
	}
	for name, s := range map[string]*usync.ServerSession{"version 2": open(2), "from 0": open(3)} {
		if err := s.Step(&usync.Check{}); err == nil || !s.Closed() {
			t.Errorf("%s: Check taken (%v)", name, err)
		}
	}
	// Pages: a further Check from past the last answer, within the
	// high-water mark, one at a time.
	s = open(3)
	if err := s.Step(&usync.Check{From: 2}); err != nil {
		t.Fatal(err)
	}
	s.Advance(s.Ready())
	s.Checked([]usync.Run{{First: 1, Epoch: 3}, {First: 4, Epoch: 5}}, 4)
	s.Advance(s.Ready())
	if err := s.Step(&usync.Check{From: 5}); err != nil {
		t.Fatalf("a Check from past the first answer: %v", err)
	}
	if rd := s.Ready(); rd.Check == nil || rd.Check.From != 5 || rd.CheckThrough != 9 {
		t.Fatalf("Ready: Check %+v through %d, want from 5 through 9", rd.Check, rd.CheckThrough)
	}
	if err := s.Step(&usync.Check{From: 6}); err == nil || !s.Closed() {
		t.Errorf("a Check while another is answered was taken (%v)", err)
	}
	s = open(3)
	if err := s.Step(&usync.Check{From: 10}); err == nil || !s.Closed() {
		t.Errorf("a Check from past the high-water mark was taken (%v)", err)
	}

	// A Push's epoch goes with its append, on version 3 only.
	for version, want := range map[uint16]uint64{3: 42, 2: 0} {
		s := open(version)
		if err := s.Step(&usync.Push{Txs: []crdt.Tx{sessTx(siteA, 10)}, Epoch: 42}); err != nil {
			t.Fatal(err)
		}
		if rd := s.Ready(); len(rd.Append) != 1 || rd.AppendEpoch != want {
			t.Errorf("version %d: Append %d, AppendEpoch %d; want 1, %d", version, len(rd.Append), rd.AppendEpoch, want)
		}
	}
}
