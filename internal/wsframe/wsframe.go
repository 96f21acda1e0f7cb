package wsframe

import (
	"context"
	"io"
	"slices"
	"sync"

	"github.com/coder/websocket"
)

// bufs holds the memory of frames done with, for the next ones.
var bufs = sync.Pool{New: func() any { return new([]byte) }}

// MaxKept is the largest frame whose memory goes back to the pool: a
// rare huge frame is left to the garbage collector.
const MaxKept = 256 << 10

// Get returns memory for a frame from the pool, empty. Give it back with
// Put.
func Get() *[]byte {
	buf := bufs.Get().(*[]byte)
	*buf = (*buf)[:0]
	return buf
}

// Put gives a frame's memory back once it is done with: *buf, or the
// frame *b made from it when that is bigger (it grew, or was built
// apart). Nothing may use either afterwards.
func Put(buf *[]byte, b *[]byte) {
	if cap(*b) >= cap(*buf) {
		*buf = (*b)[:0]
	}
	if cap(*buf) > MaxKept {
		*buf = nil
	}
	bufs.Put(buf)
}

// Read reads the next message from ws into memory from the pool, as
// ws.Read would (bounded by the connection's read limit). The caller
// gives the memory back with Put(buf, buf) once it is done with the
// message.
func Read(ctx context.Context, ws *websocket.Conn) (typ websocket.MessageType, buf *[]byte, err error) {
	typ, r, err := ws.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	buf = Get()
	b := *buf
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, 512) // as io.ReadAll, which starts at 512
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			*buf = b
			return typ, buf, nil
		}
		if err != nil {
			Put(buf, &b)
			return 0, nil, err
		}
	}
}
