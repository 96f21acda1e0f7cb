package server

import "testing"

// A frame's memory goes back to frameBufs for the next one, the bigger
// of the buffer and the frame made from it, but never over maxFrameBuf.
func TestPutFrameBuf(t *testing.T) {
	buf, frame := make([]byte, 0, 100), make([]byte, 10, 300)
	putFrameBuf(&buf, &frame)
	if cap(buf) != 300 || len(buf) != 0 {
		t.Errorf("after a frame that grew: len %d cap %d; want the frame's memory, empty", len(buf), cap(buf))
	}
	small := make([]byte, 5, 50)
	putFrameBuf(&buf, &small)
	if cap(buf) != 300 {
		t.Errorf("after a smaller frame: cap %d; want the buffer's 300 kept", cap(buf))
	}
	huge := make([]byte, 0, maxFrameBuf+1)
	putFrameBuf(&huge, &huge)
	if huge != nil {
		t.Errorf("a %d-byte buffer was kept; want it left to the collector", maxFrameBuf+1)
	}
}
