package dpo

// SetTapelessLogits sets how many logits a tape-less forward may make at once (tests: chunks
// of one row) and returns the function that restores it.
func SetTapelessLogits(n int) (restore func()) {
	old := tapelessLogits
	tapelessLogits = n
	return func() { tapelessLogits = old }
}
