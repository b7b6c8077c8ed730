package cipher

import (
	"fmt"
	"testing"
)

var benchSizes = []int{1 << 10, 64 << 10}

func BenchmarkLegacySeal(b *testing.B) {
	l := NewLegacy(testKey)
	for _, n := range benchSizes {
		pt := make([]byte, n)
		b.Run(fmt.Sprintf("%dKiB", n>>10), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, err := l.Seal(pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLegacyOpen(b *testing.B) {
	l := NewLegacy(testKey)
	for _, n := range benchSizes {
		msg, _ := l.Seal(make([]byte, n))
		b.Run(fmt.Sprintf("%dKiB", n>>10), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, err := l.Open(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAEADSeal(b *testing.B) {
	a := NewAEAD(testKey)
	for _, n := range benchSizes {
		pt := make([]byte, n)
		b.Run(fmt.Sprintf("%dKiB", n>>10), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, err := a.Seal(pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAEADOpen opens the same message with a fresh opener each time
// (an opener refuses a message it has seen), so the figure includes one
// replay-guard insertion and the opener's small allocation.
func BenchmarkAEADOpen(b *testing.B) {
	for _, n := range benchSizes {
		msg, _ := NewAEAD(testKey).Seal(make([]byte, n))
		b.Run(fmt.Sprintf("%dKiB", n>>10), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, err := NewAEAD(testKey).Open(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
