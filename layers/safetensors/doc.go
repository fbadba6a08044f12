// Package safetensors reads and writes Hugging Face safetensors files and model folders
// (one model.safetensors, or shards listed by model.safetensors.index.json).
//
// The format (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of UTF-8 JSON mapping each tensor name to its dtype, shape and
// [begin, end) byte range in the data buffer that follows, plus an optional "__metadata__"
// object of string values; the data is little-endian, row-major.
//
// Files may come from anywhere, so Open treats them as hostile: the header is bounded
// (MaxHeaderBytes and the file size), parsed with a token walk that rejects duplicate names,
// and every tensor's range is checked against its dtype and shape, the data size and the other
// tensors (they must tile the data exactly, without holes or overlaps) before any data is
// touched. Every error names the file and, where there is one, the tensor. Write is atomic
// (temporary file, fsync, rename, fsync of the folder) and lays data out as the reference
// implementation does, so a file it writes is byte-identical to Hugging Face's for the same
// tensors.
package safetensors
