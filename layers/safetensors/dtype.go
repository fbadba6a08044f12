package safetensors

// DType is a safetensors element type name as it appears in the header ("F32", "BF16", ...).
type DType string

// The element types of the safetensors format.
const (
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	F8E8M0 DType = "F8_E8M0"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	C64    DType = "C64"
	F64    DType = "F64"
	I64    DType = "I64"
	U64    DType = "U64"
	F4     DType = "F4"
	F6E2M3 DType = "F6_E2M3"
	F6E3M2 DType = "F6_E3M2"
)

// dtypeBits is the size of one element in bits; the order rank is the position of the dtype in
// the reference implementation's Dtype enum ("increasing alignment order"), which the writer
// sorts by, descending, to lay out the data as Hugging Face does.
var dtypeTable = map[DType]struct{ bits, rank int }{
	BOOL:   {8, 0},
	F4:     {4, 1},
	F6E2M3: {6, 2},
	F6E3M2: {6, 3},
	U8:     {8, 4},
	I8:     {8, 5},
	F8E5M2: {8, 6},
	F8E4M3: {8, 7},
	F8E8M0: {8, 8},
	I16:    {16, 9},
	U16:    {16, 10},
	F16:    {16, 11},
	BF16:   {16, 12},
	I32:    {32, 13},
	U32:    {32, 14},
	F32:    {32, 15},
	C64:    {64, 16},
	F64:    {64, 17},
	I64:    {64, 18},
	U64:    {64, 19},
}

// Bits returns the size of one element in bits, or 0 for an unknown dtype.
func (d DType) Bits() int { return dtypeTable[d].bits }

// Known reports whether d is a dtype of the safetensors format.
func (d DType) Known() bool { _, ok := dtypeTable[d]; return ok }
