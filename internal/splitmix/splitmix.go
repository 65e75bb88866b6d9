// Package splitmix holds SplitMix64's finalizer, the one mixing function of
// the project's pure-function randomness (epoch shuffles, the flip and crop
// views an epoch picks, dropout masks): written once and fixed here, so
// that none of them changes with the Go release, and a resumed run draws
// what an uninterrupted one did.
package splitmix

// Mix is SplitMix64's finalizer: a bijection of the 64-bit values that
// spreads nearby inputs (consecutive steps, rows, epochs) over unrelated
// outputs.
func Mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
