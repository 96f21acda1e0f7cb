package sync

// ParseChange and UnmarshalChangeReflect expose Change's two decoders, so
// that tests hold them together.
var ParseChange = parseChange

func UnmarshalChangeReflect(b []byte) (Change, error) {
	var c Change
	err := c.unmarshalReflect(b)
	return c, err
}
