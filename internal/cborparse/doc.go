// Package cborparse reads the plain CBOR the sync protocol's hot paths
// carry (definite lengths, no tags, valid UTF-8 text) without
// reflection. Its readers take only those encodings: for anything else
// they report false, and the caller decodes with the reflecting decoder
// (github.com/fxamacker/cbor), which gives the same value or the error.
// It never allocates for a length the bytes left cannot hold.
package cborparse
