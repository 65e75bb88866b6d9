package configs

import (
	"os"
	"testing"
)

// FuzzParse parses arbitrary YAML, with an arbitrary --set: the result is
// a configuration or an error, never a panic; a configuration hashes and
// marshals.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"cats_dogs.yaml", "smoke.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "")
		f.Add(b, "train.adam.lr=3e-4")
	}
	f.Add([]byte("data:\n  dir: d\n  image_size: [64, 64]\ntrain:\n  epochs: 3\nhead:\n"), "run={dir: myrun, keep: 2}")
	f.Add([]byte("data: &a {dir: d, classes: [a, b]}\nbackbone: *a\ntrain: {class_weight: [1, 2]}\n"), "data.classes=[x, y]")
	f.Add([]byte("--- a\n--- b\n"), "head.layers=[8]")
	f.Fuzz(func(t *testing.T, data []byte, set string) {
		var sets []string
		if set != "" {
			sets = []string{set}
		}
		c, err := Parse(data, "fuzz.yaml", sets...)
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", c, err)
		}
		if err != nil {
			return
		}
		c.Hash()
		if _, err := c.Marshal("."); err != nil {
			t.Fatal(err)
		}
	})
}
