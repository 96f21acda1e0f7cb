package sync_test

import (
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// The message shapes of protocol version 1, before trace context: what a
// peer that does not know Push.Trace and Change.Trace encodes and decodes.
type (
	v1Envelope struct {
		_    struct{} `cbor:",toarray"`
		Type usync.Type
		Body cbor.RawMessage
	}
	v1Push struct {
		_   struct{} `cbor:",toarray"`
		Txs []crdt.Tx
	}
	v1Change struct {
		_   struct{} `cbor:",toarray"`
		Seq uint64
		Tx  crdt.Tx
	}
	v1Changes struct {
		_       struct{} `cbor:",toarray"`
		From    uint64
		To      uint64
		Changes []v1Change
		Rows    []usync.SnapshotRow
	}
)

const testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// v1Frame encodes body as a version 1 peer frames it (uncompressed).
func v1Frame(t *testing.T, typ usync.Type, body any) []byte {
	t.Helper()
	b, err := cbor.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cbor.Marshal(v1Envelope{Type: typ, Body: b})
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{0}, p...)
}

// v1Decode decodes frame as a version 1 peer does, into body.
func v1Decode(frame []byte, body any) error {
	var env v1Envelope
	if err := cbor.Unmarshal(frame[1:], &env); err != nil {
		return err
	}
	return cbor.Unmarshal(env.Body, body)
}

func TestTrace_OldPeerMessagesDecode(t *testing.T) {
	c := newCodec(t, usync.CodecConfig{CompressAbove: -1})
	tx := validTx()

	m, err := c.Decode(v1Frame(t, usync.TypePush, v1Push{Txs: []crdt.Tx{tx}}))
	if err != nil {
		t.Fatalf("decode a version 1 Push: %v", err)
	}
	if diff := cmp.Diff(&usync.Push{Txs: []crdt.Tx{tx}}, m, msgOpts); diff != "" {
		t.Errorf("version 1 Push (-want +got):\n%s", diff)
	}

	m, err = c.Decode(v1Frame(t, usync.TypeChanges, v1Changes{From: 3, To: 5, Changes: []v1Change{{Seq: 4, Tx: tx}}}))
	if err != nil {
		t.Fatalf("decode a version 1 Changes: %v", err)
	}
	want := &usync.Changes{From: 3, To: 5, Changes: []usync.Change{{Seq: 4, Tx: tx}}}
	if diff := cmp.Diff(want, m, msgOpts); diff != "" {
		t.Errorf("version 1 Changes (-want +got):\n%s", diff)
	}
}

func TestTrace_UntracedMessagesDecodeOnOldPeers(t *testing.T) {
	c := newCodec(t, usync.CodecConfig{CompressAbove: -1})
	tx := validTx()

	var p v1Push
	if err := v1Decode(mustEncode(t, c, &usync.Push{Txs: []crdt.Tx{tx}}), &p); err != nil {
		t.Fatalf("a version 1 peer decodes an untraced Push: %v", err)
	}
	if len(p.Txs) != 1 || p.Txs[0].Seq != tx.Seq {
		t.Errorf("version 1 peer got %+v", p)
	}

	ch := &usync.Changes{From: 3, To: 5, Changes: []usync.Change{{Seq: 4, Tx: tx}}}
	var got v1Changes
	if err := v1Decode(mustEncode(t, c, ch), &got); err != nil {
		t.Fatalf("a version 1 peer decodes an untraced Changes: %v", err)
	}
	if len(got.Changes) != 1 || got.Changes[0].Seq != 4 {
		t.Errorf("version 1 peer got %+v", got)
	}
	// The hand-written encoding too.
	enc := crdt.EncodeTx(&tx)
	frame, err := c.EncodeChangesTraced(3, 5, []uint64{4}, []string{""}, [][]byte{enc})
	if err != nil {
		t.Fatal(err)
	}
	got = v1Changes{}
	if err := v1Decode(frame, &got); err != nil {
		t.Fatalf("a version 1 peer decodes an untraced EncodeChangesTraced: %v", err)
	}
}

func TestTrace_RoundTrip(t *testing.T) {
	c := newCodec(t, usync.CodecConfig{CompressAbove: -1})
	tx := validTx()
	for _, m := range []usync.Message{
		&usync.Push{Txs: []crdt.Tx{tx}, Trace: testTraceparent},
		&usync.Changes{From: 3, To: 6, Changes: []usync.Change{{Seq: 4, Tx: tx, Trace: testTraceparent}, {Seq: 5, Tx: tx}}},
	} {
		got, err := c.Decode(mustEncode(t, c, m))
		if err != nil {
			t.Fatalf("decode %T: %v", m, err)
		}
		if diff := cmp.Diff(m, got, msgOpts); diff != "" {
			t.Errorf("%T round trip (-want +got):\n%s", m, diff)
		}
	}

	enc := crdt.EncodeTx(&tx)
	frame, err := c.EncodeChangesTraced(3, 6, []uint64{4, 5}, []string{testTraceparent, ""}, [][]byte{enc, enc})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decode(frame)
	if err != nil {
		t.Fatalf("decode EncodeChangesTraced: %v", err)
	}
	want := &usync.Changes{From: 3, To: 6, Changes: []usync.Change{{Seq: 4, Tx: tx, Trace: testTraceparent}, {Seq: 5, Tx: tx}}}
	if diff := cmp.Diff(want, got, msgOpts); diff != "" {
		t.Errorf("EncodeChangesTraced (-want +got):\n%s", diff)
	}
}

// A traced message does not decode on a version 1 peer: that is why the
// sessions send trace context only on a session of version VersionTrace.
func TestTrace_TracedPushOnlyOnVersion2(t *testing.T) {
	c := newCodec(t, usync.CodecConfig{CompressAbove: -1})
	var p v1Push
	if err := v1Decode(mustEncode(t, c, &usync.Push{Txs: []crdt.Tx{validTx()}, Trace: testTraceparent}), &p); err == nil {
		t.Fatal("a version 1 peer decoded a traced Push: the version gate is not needed, or the test decodes wrongly")
	}

	for _, tt := range []struct {
		version uint16
		want    string
		epoch   uint64
	}{{1, "", 0}, {2, testTraceparent, 0}, {3, testTraceparent, 7}} {
		s := usync.NewClientSession(usync.ClientConfig{Site: siteA, Token: "tok"}, 0)
		s.Start()
		s.Advance(s.Ready())
		if err := s.Step(&usync.Welcome{Version: tt.version, Limits: usync.Limits{MaxMessageBytes: 1 << 20, MaxPushTxs: 10, MaxInFlight: 2}}); err != nil {
			t.Fatal(err)
		}
		s.Advance(s.Ready())
		if err := s.PushTraced([]crdt.Tx{sessTx(siteA, 1)}, testTraceparent, 7); err != nil {
			t.Fatal(err)
		}
		var got *usync.Push
		for _, m := range s.Ready().Send {
			if p, ok := m.(*usync.Push); ok {
				got = p
			}
		}
		if got == nil || got.Trace != tt.want || got.Epoch != tt.epoch {
			t.Errorf("version %d: Push %+v, want Trace %q and Epoch %d", tt.version, got, tt.want, tt.epoch)
		}
	}
}
