//go:build !amd64

package kernels

func rmsScaleVec(y, x, w []float32, r float32) int                        { return 0 }
func rmsBackwardDotVec(acc, dy, x, w []float32, r float32) (float32, int) { return 0, 0 }
func rmsBackwardDxVec(dx, dy, x, w []float32, r, c float32) int           { return 0 }
