package kernels

import "testing"

// The kernels built on vexp.go again with the AVX-512 kernels switched off: the portable path
// that CPUs without AVX-512F take must pass the same cross-checks against the references.
func TestVexpPortablePathOnAMD64(t *testing.T) {
	defer func(v bool) { useVexpAVX512 = v }(useVexpAVX512)
	useVexpAVX512 = false
	TestCrossEntropyHand(t)
	TestCrossEntropyFastMatchesRef(t)
	TestSwiGLUHandValues(t)
	TestSwiGLUFastMatchesRef(t)
	TestSwiGLUWritesOnlyN(t)
	TestSliceMax(t)
	TestSumExpSubLong(t)
	TestVexpSpecialValues(t)
}
