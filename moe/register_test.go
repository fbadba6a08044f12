package moe_test

import (
	"os"
	"sync"
	"testing"

	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/moe"
)

func TestMain(m *testing.M) {
	moe.Register() // every test here builds MoE models through layers
	os.Exit(m.Run())
}

// Register is idempotent and safe for concurrent calls (layers.RegisterSparse itself panics on
// a second registration, so this fails if Register registers more than once).
func TestRegisterIdempotent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(moe.Register)
	}
	wg.Wait()
	m, err := layers.New(moeConfig(2, 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range m.Blocks {
		if _, ok := b.Sparse.(*moe.Sparse); !ok {
			t.Errorf("block %d: sparse MLP %T, want *moe.Sparse", i, b.Sparse)
		}
	}
}
