package crdt

// SameHeadsForTest compares an Automerge document's heads with a state's.
func SameHeadsForTest(got []ChangeHash, want []DocHead) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i].Hash {
			return false
		}
	}
	return true
}
