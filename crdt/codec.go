package crdt

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Limits on decoded input. Encoded rows and transactions come from disk and,
// later, from the network: decoding never allocates beyond these.
const (
	maxDecodeArray  = 1 << 20
	maxDecodeNested = 16
	maxDecodeBytes  = 64 << 20
)

var (
	encMode = must(func() cbor.EncOptions {
		o := cbor.CoreDetEncOptions()
		o.NilContainers = cbor.NilContainerAsEmpty
		return o
	}().EncMode())
	decMode = must(cbor.DecOptions{
		MaxArrayElements:  maxDecodeArray,
		MaxMapPairs:       1024,
		MaxNestedLevels:   maxDecodeNested,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode())
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// EncodeTx returns the canonical encoding of a transaction.
func EncodeTx(tx *Tx) []byte {
	b, err := encMode.Marshal(tx)
	if err != nil {
		panic("crdt: encode tx: " + err.Error())
	}
	return b
}

// DecodeTx decodes a transaction written by [EncodeTx] and checks that each
// op is well formed.
func DecodeTx(b []byte) (*Tx, error) {
	if len(b) > maxDecodeBytes {
		return nil, fmt.Errorf("%w: tx of %d bytes exceeds %d", ErrDecode, len(b), maxDecodeBytes)
	}
	var tx Tx
	if err := decMode.Unmarshal(b, &tx); err != nil {
		return nil, fmt.Errorf("%w: tx: %w", ErrDecode, err)
	}
	if err := tx.Validate(); err != nil {
		return nil, err
	}
	return &tx, nil
}
