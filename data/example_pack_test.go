package data_test

import (
	"fmt"

	"github.com/gwen-ml/gwen/data"
)

// Three documents (the last token of each is its EOS) packed into rows of 4: the second is
// split, and its tail starts row 1 as a new document.
func ExamplePacker() {
	docs := [][]int32{{11, 12, 0}, {21, 22, 23, 0}, {31, 0}}
	p, _ := data.NewPacker(data.LayoutStream, 2, 4, 99)
	k := 0
	b, _ := p.Next(func() (data.Sequence, error) {
		k++
		return data.Sequence{IDs: docs[k-1], Labels: docs[k-1]}, nil
	})
	for r := 0; r < b.B; r++ {
		row := func(v []int32) []int32 { return v[r*b.T : (r+1)*b.T] }
		fmt.Println("ids", row(b.IDs), "labels", row(b.Labels), "pos", row(b.Pos), "doc", row(b.DocStart))
	}
	// Output:
	// ids [11 12 0 21] labels [-100 12 0 -100] pos [0 1 2 0] doc [0 0 0 3]
	// ids [22 23 0 31] labels [-100 23 0 -100] pos [0 1 2 0] doc [0 0 0 3]
}
