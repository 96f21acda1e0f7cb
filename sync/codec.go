package sync

import (
	"errors"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"
	"github.com/klauspost/compress/zstd"
)

// A frame is one WebSocket binary message: a flags byte, then the payload,
// a CBOR array [type, body]. With flagZstd the payload is zstd-compressed.
const (
	flagZstd   byte = 1 << 0
	flagsKnown      = flagZstd
)

// CodecConfig sets the codec's limits. Zero fields take the defaults.
type CodecConfig struct {
	// MaxFrameBytes caps a frame as it travels, compressed or not.
	// Default 4 MiB.
	MaxFrameBytes int
	// MaxMessageBytes caps a message after decompression. Default 16 MiB.
	MaxMessageBytes int
	// CompressAbove compresses payloads larger than this many bytes.
	// Default 4 KiB; negative never compresses.
	CompressAbove int
	// MaxArrayElements caps every CBOR array (transactions in a Push, ops
	// in a transaction, rows in a Snapshot). Default 65,536.
	MaxArrayElements int
}

func (c *CodecConfig) withDefaults() CodecConfig {
	o := *c
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = 4 << 20
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 16 << 20
	}
	if o.CompressAbove == 0 {
		o.CompressAbove = 4 << 10
	}
	if o.MaxArrayElements <= 0 {
		o.MaxArrayElements = 1 << 16
	}
	return o
}

// Codec encodes and decodes frames within fixed limits. Decoding hostile
// input never panics and never allocates much beyond MaxMessageBytes: a
// compressed payload is refused as soon as it would decompress past the
// limit. A Codec is safe for concurrent use.
type Codec struct {
	cfg  CodecConfig
	enc  cbor.EncMode
	dec  cbor.DecMode
	zenc *zstd.Encoder
	zdec *zstd.Decoder
}

// NewCodec returns a codec with cfg's limits. MaxMessageBytes must be at
// least 1 KiB and MaxArrayElements at least 16.
func NewCodec(cfg CodecConfig) (*Codec, error) {
	o := cfg.withDefaults()
	if o.MaxMessageBytes < 1024 {
		return nil, fmt.Errorf("sync: codec: MaxMessageBytes %d: want at least 1024", o.MaxMessageBytes)
	}
	if o.MaxArrayElements < 16 {
		return nil, fmt.Errorf("sync: codec: MaxArrayElements %d: want at least 16", o.MaxArrayElements)
	}
	enc, err := cbor.EncOptions{}.EncMode()
	if err != nil {
		return nil, err
	}
	dec, err := cbor.DecOptions{
		MaxArrayElements: o.MaxArrayElements,
		MaxMapPairs:      1024,
		MaxNestedLevels:  16,
		IndefLength:      cbor.IndefLengthForbidden,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	}.DecMode()
	if err != nil {
		return nil, err
	}
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	zdec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(uint64(o.MaxMessageBytes)),
		zstd.WithDecoderMaxWindow(uint64(min(o.MaxMessageBytes, 8<<20))),
		zstd.WithDecodeAllCapLimit(true),
	)
	if err != nil {
		zenc.Close()
		return nil, err
	}
	return &Codec{cfg: o, enc: enc, dec: dec, zenc: zenc, zdec: zdec}, nil
}

// Close releases the codec's compressor and decompressor.
func (c *Codec) Close() {
	c.zenc.Close()
	c.zdec.Close()
}

// Compressed reports whether a frame's payload is compressed (and may
// decompress to up to MaxMessageBytes).
func Compressed(frame []byte) bool { return len(frame) > 0 && frame[0]&flagZstd != 0 }

// Limits returns the codec's limits with defaults filled in.
func (c *Codec) Limits() CodecConfig { return c.cfg }

type envelope struct {
	_    struct{} `cbor:",toarray"`
	Type Type
	Body cbor.RawMessage
}

// Encode returns m as a frame. A message over the limits is refused with
// an error matching ErrTooLarge, so a peer never sends one.
func (c *Codec) Encode(m Message) ([]byte, error) {
	body, err := c.enc.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.Type(), err)
	}
	payload, err := c.enc.Marshal(envelope{Type: m.Type(), Body: body})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.Type(), err)
	}
	return c.frame(m.Type(), payload)
}

// frame wraps an encoded payload: the flags byte, compression, limits.
func (c *Codec) frame(t Type, payload []byte) ([]byte, error) {
	return c.seal(t, append([]byte{0}, payload...))
}

// seal finishes a frame whose payload follows a zero flags byte (p[0]):
// compression and limits. Uncompressed, the frame is p.
func (c *Codec) seal(t Type, p []byte) ([]byte, error) {
	payload := p[1:]
	if len(payload) > c.cfg.MaxMessageBytes {
		return nil, Errorf(CodeTooLarge, "%s of %d bytes exceeds %d", t, len(payload), c.cfg.MaxMessageBytes)
	}
	frame := p
	if c.cfg.CompressAbove >= 0 && len(payload) > c.cfg.CompressAbove {
		frame = c.zenc.EncodeAll(payload, []byte{flagZstd})
	}
	if len(frame) > c.cfg.MaxFrameBytes {
		return nil, Errorf(CodeTooLarge, "%s frame of %d bytes exceeds %d", t, len(frame), c.cfg.MaxFrameBytes)
	}
	return frame, nil
}

// EncodeChanges returns a Changes frame built from transactions already
// encoded (crdt.EncodeTx bytes): the CBOR around them is written by hand,
// so a server fanning one entry out to many connections neither encodes
// nor re-validates it per connection. Peers decode it as *Changes.
func (c *Codec) EncodeChanges(from, to uint64, seqs []uint64, txs [][]byte) ([]byte, error) {
	return c.EncodeChangesTraced(from, to, seqs, nil, txs)
}

// EncodeChangesTraced is EncodeChanges with each entry's Change.Trace
// (traces nil, or one per transaction; "" leaves the element out).
func (c *Codec) EncodeChangesTraced(from, to uint64, seqs []uint64, traces []string, txs [][]byte) ([]byte, error) {
	return c.AppendChangesTraced(nil, from, to, seqs, traces, txs)
}

// AppendChangesTraced is EncodeChangesTraced writing the frame into buf's
// memory when it has room (buf's contents do not matter): a server that
// reuses the buffer once the frame is written allocates nothing per
// delivery for it. A compressed frame is a new slice.
func (c *Codec) AppendChangesTraced(buf []byte, from, to uint64, seqs []uint64, traces []string, txs [][]byte) ([]byte, error) {
	if len(seqs) != len(txs) {
		return nil, fmt.Errorf("encode Changes: %d seqs for %d transactions", len(seqs), len(txs))
	}
	if traces != nil && len(traces) != len(txs) {
		return nil, fmt.Errorf("encode Changes: %d traces for %d transactions", len(traces), len(txs))
	}
	// The frame's exact size: buf is used whenever it has room for it.
	size := 1 + 1 + cborHeadLen(uint64(TypeChanges)) + 1 + cborHeadLen(from) + cborHeadLen(to) + cborHeadLen(uint64(len(txs))) + 1
	for i, t := range txs {
		size += 1 + cborHeadLen(seqs[i]) + len(t)
		if traces != nil && traces[i] != "" {
			size += cborHeadLen(uint64(len(traces[i]))) + len(traces[i])
		}
	}
	p := buf[:0]
	if cap(p) < size {
		p = make([]byte, 0, size)
	}
	p = append(p, 0)      // the flags byte: none unless seal compresses
	p = cborHead(p, 4, 2) // envelope: [type, body]
	p = cborHead(p, 0, uint64(TypeChanges))
	p = cborHead(p, 4, 4) // body: [from, to, changes, rows]
	p = cborHead(p, 0, from)
	p = cborHead(p, 0, to)
	p = cborHead(p, 4, uint64(len(txs)))
	for i, t := range txs {
		if traces == nil || traces[i] == "" {
			p = cborHead(p, 4, 2) // change: [seq, tx]
			p = cborHead(p, 0, seqs[i])
			p = append(p, t...)
			continue
		}
		p = cborHead(p, 4, 3) // change: [seq, tx, trace]
		p = cborHead(p, 0, seqs[i])
		p = append(p, t...)
		p = cborHead(p, 3, uint64(len(traces[i])))
		p = append(p, traces[i]...)
	}
	p = cborHead(p, 4, 0) // no rows
	return c.seal(TypeChanges, p)
}

// cborHead appends a CBOR head: major type and argument.
// cborHeadLen is the length of cborHead's bytes for v.
func cborHeadLen(v uint64) int {
	switch {
	case v < 24:
		return 1
	case v <= 0xff:
		return 2
	case v <= 0xffff:
		return 3
	case v <= 0xffffffff:
		return 5
	}
	return 9
}

func cborHead(b []byte, major byte, v uint64) []byte {
	m := major << 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= 0xff:
		return append(b, m|24, byte(v))
	case v <= 0xffff:
		return append(b, m|25, byte(v>>8), byte(v))
	case v <= 0xffffffff:
		return append(b, m|26, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, m|27, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// Decode parses a frame. Every failure is an *Error: ErrTooLarge,
// ErrBadCompression, ErrUnknownType, ErrBadMessage or, for a transaction
// that no correct client makes, ErrMalformedTx.
func (c *Codec) Decode(frame []byte) (Message, error) {
	switch {
	case len(frame) == 0:
		return nil, Errorf(CodeBadMessage, "empty frame")
	case len(frame) > c.cfg.MaxFrameBytes:
		return nil, Errorf(CodeTooLarge, "frame of %d bytes exceeds %d", len(frame), c.cfg.MaxFrameBytes)
	case frame[0]&^flagsKnown != 0:
		return nil, Errorf(CodeBadMessage, "unknown frame flags %#x", frame[0])
	}
	payload := frame[1:]
	if frame[0]&flagZstd != 0 {
		var h zstd.Header
		if err := h.Decode(payload); err != nil {
			return nil, Errorf(CodeBadCompression, "zstd header: %v", err)
		}
		if h.HasFCS && h.FrameContentSize > uint64(c.cfg.MaxMessageBytes) {
			return nil, Errorf(CodeTooLarge, "payload decompresses to %d bytes, more than %d", h.FrameContentSize, c.cfg.MaxMessageBytes)
		}
		buf := zbufs.Get().(*[]byte)
		defer putZbuf(buf)
		out, err := c.decompress(payload, h, buf)
		if err != nil {
			return nil, err
		}
		if len(out) > c.cfg.MaxMessageBytes {
			return nil, Errorf(CodeTooLarge, "payload decompresses to %d bytes, more than %d", len(out), c.cfg.MaxMessageBytes)
		}
		payload = out
	} else if len(payload) > c.cfg.MaxMessageBytes {
		return nil, Errorf(CodeTooLarge, "message of %d bytes exceeds %d", len(payload), c.cfg.MaxMessageBytes)
	}
	var env envelope
	if err := c.dec.Unmarshal(payload, &env); err != nil {
		return nil, Errorf(CodeBadMessage, "envelope: %v", err)
	}
	m := newMessage(env.Type)
	if m == nil {
		return nil, Errorf(CodeUnknownType, "message type %d", env.Type)
	}
	if err := c.dec.Unmarshal(env.Body, m); err != nil {
		return nil, Errorf(CodeBadMessage, "%s: %v", env.Type, err)
	}
	if err := validate(m); err != nil {
		return nil, err
	}
	return m, nil
}

// validate checks what the CBOR shape cannot: transactions well formed.
func validate(m Message) error {
	switch m := m.(type) {
	case *Push:
		for i := range m.Txs {
			if err := m.Txs[i].Validate(); err != nil {
				return Errorf(CodeMalformedTx, "push: %v", err)
			}
		}
	case *Changes:
		if m.To < m.From {
			return Errorf(CodeBadMessage, "changes from %d to %d", m.From, m.To)
		}
		prev := m.From
		for i := range m.Changes {
			ch := &m.Changes[i]
			if ch.Seq <= prev || ch.Seq > m.To {
				return Errorf(CodeBadMessage, "change seq %d outside (%d, %d] or out of order", ch.Seq, prev, m.To)
			}
			prev = ch.Seq
			if err := ch.Tx.Validate(); err != nil {
				return Errorf(CodeMalformedTx, "changes: %v", err)
			}
		}
		for _, r := range m.Rows {
			if r.Collection == "" || r.Row == "" || len(r.State) == 0 {
				return Errorf(CodeBadMessage, "changes: row %q/%q without a key or state", r.Collection, r.Row)
			}
		}
	}
	return nil
}

// zstdBlockRoom is room for one more zstd block (128 KiB) and the
// decoder's over-allocation, so that the block that crosses a limit is
// written without reallocating the output before the decoder refuses it.
const zstdBlockRoom = 128<<10 + 32

// zbufs keeps decompressed payloads' memory: a payload is garbage once
// its message is decoded (the decoders copy what a message keeps), so the
// next one is decompressed into it rather than into a new buffer, zeroed,
// of its size and zstdBlockRoom more.
var zbufs = sync.Pool{New: func() any { return new([]byte) }}

// zbufMaxKept is the largest buffer zbufs keeps.
const zbufMaxKept = 256<<10 + zstdBlockRoom

func putZbuf(b *[]byte) {
	if cap(*b) > zbufMaxKept {
		*b = nil
	}
	*b = (*b)[:0]
	zbufs.Put(b)
}

// zstdFirstGuess is the first output buffer for a payload whose header
// does not say how large it is (zstd leaves the size out under 256 bytes).
const zstdFirstGuess = 64 << 10

// decompress decodes payload into a buffer it never grows: the decoder
// (WithDecodeAllCapLimit) stops past the buffer's capacity instead of
// reallocating, so a bomb costs at most one buffer of MaxMessageBytes.
func (c *Codec) decompress(payload []byte, h zstd.Header, buf *[]byte) ([]byte, error) {
	size := c.cfg.MaxMessageBytes
	if h.HasFCS {
		size = int(h.FrameContentSize)
	} else {
		size = min(size, zstdFirstGuess)
	}
	for {
		need := size + zstdBlockRoom
		if cap(*buf) < need {
			*buf = make([]byte, 0, need)
		}
		// Exactly that capacity, however large the buffer: the decoder
		// stops at it.
		out, err := c.zdec.DecodeAll(payload, (*buf)[:0:need])
		if err != nil && !h.HasFCS && size < c.cfg.MaxMessageBytes {
			// The guess was too small (the decoder's error then depends on
			// the block that overflowed): once more with the limit.
			size = c.cfg.MaxMessageBytes
			continue
		}
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, Errorf(CodeTooLarge, "payload decompresses to more than %d bytes", min(size, c.cfg.MaxMessageBytes))
		}
		if err != nil {
			return nil, Errorf(CodeBadCompression, "zstd: %v", err)
		}
		return out, nil
	}
}
