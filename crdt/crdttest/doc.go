// Package crdttest helps tests of packages built on crdt: it makes
// Automerge changes byte for byte without the Automerge library, so doc
// fields can be tested in every build (EmptyChange), and real ones through
// the library (Editor). Apps never link it.
package crdttest
