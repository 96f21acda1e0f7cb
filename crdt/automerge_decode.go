//go:build cgo && (linux || darwin) && (amd64 || arm64)

package crdt

// automerge-go decodes changes only into a document, which needs their
// dependencies; a change in a transaction is checked on its own. The
// Automerge C API decodes one change from its bytes: these declarations
// match automerge.h of the automerge-go version go.mod pins, whose
// package links the library.

/*
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
struct AMresult;
struct AMresult *AMchangeFromBytes(const uint8_t *src, size_t count);
uint8_t AMresultStatus(const struct AMresult *result);
void AMresultFree(struct AMresult *result);
*/
import "C"

import "fmt"

// decodeChange reports whether raw, one change chunk, decodes in full.
func decodeChange(raw []byte) error {
	if len(raw) == 0 {
		return fmt.Errorf("empty change")
	}
	p := C.CBytes(raw)
	defer C.free(p)
	r := C.AMchangeFromBytes((*C.uint8_t)(p), C.size_t(len(raw)))
	defer C.AMresultFree(r)
	if C.AMresultStatus(r) != 0 {
		return fmt.Errorf("an Automerge change does not decode")
	}
	return nil
}
