package kernels

import "fmt"

// Embedding lookup (gather) and its gradient (scatter-add).

// EmbeddingForward writes out[i] = table[ids[i]] for n rows of width d. An id outside the
// table panics, naming the id and its position.
func EmbeddingForward(out, table []float32, ids []int32, n, d int) {
	checkEmbedding("EmbeddingForward", len(out), len(table), ids, n, d)
	Parallel(n, rowGrain(d), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			id := int(ids[i])
			copy(out[i*d:i*d+d], table[id*d:id*d+d])
		}
	})
}

// EmbeddingBackward accumulates dtable[ids[i]] += dout[i]. Workers own disjoint column ranges
// and visit rows in order, so repeated ids never race and the sums are bit-reproducible.
func EmbeddingBackward(dtable, dout []float32, ids []int32, n, d int) {
	checkEmbedding("EmbeddingBackward", len(dout), len(dtable), ids, n, d)
	// Column blocks of at least 16 floats (one cache line) per worker.
	Parallel(d, max(16, (1<<16)/max(n, 1)), func(c0, c1 int) {
		for i := 0; i < n; i++ {
			id := int(ids[i])
			dst, src := dtable[id*d+c0:id*d+c1], dout[i*d+c0:i*d+c1]
			for j, v := range src {
				dst[j] += v
			}
		}
	})
}

// EmbeddingForwardRef is the naive reference of EmbeddingForward.
func EmbeddingForwardRef[F float32 | float64](out, table []F, ids []int32, n, d int) {
	checkEmbedding("EmbeddingForwardRef", len(out), len(table), ids, n, d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			out[i*d+j] = table[int(ids[i])*d+j]
		}
	}
}

// EmbeddingBackwardRef is the naive reference of EmbeddingBackward (accumulates).
func EmbeddingBackwardRef[F float32 | float64](dtable, dout []F, ids []int32, n, d int) {
	checkEmbedding("EmbeddingBackwardRef", len(dout), len(dtable), ids, n, d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			dtable[int(ids[i])*d+j] += dout[i*d+j]
		}
	}
}

func checkEmbedding(name string, lout, ltable int, ids []int32, n, d int) {
	if n < 0 || d <= 0 || lout != n*d || len(ids) != n || ltable%d != 0 {
		panic(fmt.Sprintf("kernels: %s: n=%d d=%d need len(out)=%d len(ids)=%d len(table)=rows·d; got len(out)=%d len(ids)=%d len(table)=%d",
			name, n, d, n*d, n, lout, len(ids), ltable))
	}
	rows := ltable / d
	for i, id := range ids {
		if id < 0 || int(id) >= rows {
			panic(fmt.Sprintf("kernels: %s: id %d at position %d is outside the table's %d rows", name, id, i, rows))
		}
	}
}
