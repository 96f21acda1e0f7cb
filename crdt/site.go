package crdt

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
)

// SiteID identifies one replica database: 16 random bytes chosen when the
// database is created. Together with a per-site sequence number it names
// every transaction uniquely.
type SiteID [16]byte

// NewSiteID reads 16 random bytes from r (crypto/rand.Reader in production).
func NewSiteID(r io.Reader) (SiteID, error) {
	var s SiteID
	if _, err := io.ReadFull(r, s[:]); err != nil {
		return SiteID{}, fmt.Errorf("read site id: %w", err)
	}
	return s, nil
}

// ParseSiteID parses the 32-hex-digit form produced by [SiteID.String].
func ParseSiteID(s string) (SiteID, error) {
	var id SiteID
	if len(s) != 2*len(id) {
		return SiteID{}, fmt.Errorf("crdt: site id %q: want %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return SiteID{}, fmt.Errorf("crdt: site id %q: %w", s, err)
	}
	return id, nil
}

// String returns the site ID as 32 lowercase hex digits.
func (s SiteID) String() string { return hex.EncodeToString(s[:]) }

// IsZero reports whether s is the zero SiteID, which no replica uses.
func (s SiteID) IsZero() bool { return s == SiteID{} }

// Compare orders site IDs bytewise; it breaks timestamp ties in LWW.
func (s SiteID) Compare(o SiteID) int { return bytes.Compare(s[:], o[:]) }

// MarshalCBOR encodes the site ID as a 16-byte CBOR byte string.
func (s SiteID) MarshalCBOR() ([]byte, error) {
	return append([]byte{0x50}, s[:]...), nil // major type 2, length 16
}

// UnmarshalCBOR decodes a 16-byte CBOR byte string; any other length is
// an error (a fixed-size array would otherwise be silently truncated or
// padded).
func (s *SiteID) UnmarshalCBOR(b []byte) error {
	if len(b) != 17 || b[0] != 0x50 {
		return fmt.Errorf("%w: site id: want a 16-byte string", ErrDecode)
	}
	copy(s[:], b[1:])
	return nil
}
