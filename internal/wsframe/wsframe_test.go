package wsframe

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// A frame's memory goes back to the pool for the next one, the bigger
// of the buffer and the frame made from it, and nothing over MaxKept.
func TestPut(t *testing.T) {
	buf, frame := make([]byte, 0, 100), make([]byte, 10, 300)
	Put(&buf, &frame)
	if cap(buf) != 300 || len(buf) != 0 {
		t.Errorf("after a frame that grew: len %d cap %d; want the frame's memory, empty", len(buf), cap(buf))
	}
	small := make([]byte, 5, 50)
	Put(&buf, &small)
	if cap(buf) != 300 {
		t.Errorf("after a smaller frame: cap %d; want the buffer's 300 kept", cap(buf))
	}
	huge := make([]byte, 0, MaxKept+1)
	Put(&huge, &huge)
	if huge != nil {
		t.Errorf("a %d-byte buffer was kept; want it left to the collector", MaxKept+1)
	}
}

// Read reads whole messages, of any size, into memory from the pool, as
// Conn.Read does; past the read limit it fails as Conn.Read does.
func TestRead(t *testing.T) {
	sizes := []int{0, 1, 511, 512, 513, 5000, 70_000}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for _, n := range sizes {
			if err := ws.Write(r.Context(), websocket.MessageBinary, bytes.Repeat([]byte{byte(n)}, n)); err != nil {
				return
			}
		}
		ws.Write(r.Context(), websocket.MessageText, []byte("text"))
		ws.Write(r.Context(), websocket.MessageBinary, make([]byte, 2000)) // over the client's limit
		ws.Read(r.Context())
	}))
	defer srv.Close()
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(100_000)
	for _, n := range sizes {
		typ, buf, err := Read(ctx, ws)
		if err != nil {
			t.Fatalf("message of %d bytes: %v", n, err)
		}
		if typ != websocket.MessageBinary || !bytes.Equal(*buf, bytes.Repeat([]byte{byte(n)}, n)) {
			t.Fatalf("message of %d bytes: read %v, %d bytes", n, typ, len(*buf))
		}
		Put(buf, buf)
	}
	typ, buf, err := Read(ctx, ws)
	if err != nil || typ != websocket.MessageText || string(*buf) != "text" {
		t.Fatalf("text message: %v %q %v", typ, *buf, err)
	}
	Put(buf, buf)
	ws.SetReadLimit(1000)
	if _, _, err := Read(ctx, ws); err == nil || !strings.Contains(err.Error(), "read limited at 1001 bytes") {
		t.Fatalf("a message over the read limit: %v", err)
	}
}
