package optim

import "math"

// Schedule gives the learning rate at a step (0-based).
type Schedule interface {
	LR(step int) float32
}

// Constant is a fixed learning rate after an optional linear warm-up.
type Constant struct {
	Peak   float32
	Warmup int
}

func (s Constant) LR(step int) float32 {
	if step < s.Warmup {
		return s.Peak * float32(step+1) / float32(s.Warmup)
	}
	return s.Peak
}

// Cosine warms up linearly to Peak over Warmup steps, then decays along a half cosine to
// Min at step Total (and stays there), as transformers' cosine schedule with a floor.
type Cosine struct {
	Peak, Min     float32
	Warmup, Total int
}

func (s Cosine) LR(step int) float32 {
	if step < s.Warmup {
		return s.Peak * float32(step+1) / float32(s.Warmup)
	}
	if step >= s.Total || s.Total <= s.Warmup {
		return s.Min
	}
	p := float64(step-s.Warmup) / float64(s.Total-s.Warmup)
	return s.Min + (s.Peak-s.Min)*float32(0.5*(1+math.Cos(math.Pi*p)))
}

// Linear warms up linearly to Peak over Warmup steps, then decays linearly to Min at step
// Total (and stays there), as transformers' linear schedule with a floor.
type Linear struct {
	Peak, Min     float32
	Warmup, Total int
}

func (s Linear) LR(step int) float32 {
	return WSD{Peak: s.Peak, Min: s.Min, Warmup: s.Warmup, Decay: s.Total - s.Warmup, Total: s.Total}.LR(step)
}

// WSD is warmup-stable-decay: a linear warm-up to Peak over Warmup steps, Peak until the last
// Decay steps before Total, then a linear decay to Min at Total (MiniCPM's schedule, which lets
// a run be extended or branched before its decay).
type WSD struct {
	Peak, Min            float32
	Warmup, Decay, Total int
}

func (s WSD) LR(step int) float32 {
	if step < s.Warmup {
		return s.Peak * float32(step+1) / float32(s.Warmup)
	}
	start := s.Total - s.Decay
	if step < start {
		return s.Peak
	}
	if step >= s.Total || s.Decay <= 0 {
		return s.Min
	}
	p := float64(step-start) / float64(s.Decay)
	return s.Min + (s.Peak-s.Min)*float32(1-p)
}
