// Package pretrainedtest keeps tests of code that names published weights
// off the network and out of the user's caches.
package pretrainedtest

import (
	"path/filepath"
	"testing"

	"gotransfer/model/pretrained"
)

// Isolate points the weights' cache folders (the project's, Keras',
// torch's) into a fresh folder and the mirror at url, for the rest of the
// test: nothing is fetched from the publishers, nor found from earlier
// runs. It returns the fresh home folder. Not for parallel tests (it sets
// environment variables).
func Isolate(t testing.TB, url string) (home string) {
	t.Helper()
	home = t.TempDir()
	for k, v := range map[string]string{"HOME": home, "XDG_CACHE_HOME": filepath.Join(home, ".cache"), "KERAS_HOME": "", "TORCH_HOME": "",
		pretrained.MirrorEnv: url} {
		t.Setenv(k, v)
	}
	return home
}
