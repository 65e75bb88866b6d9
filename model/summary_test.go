package model

import (
	"os"
	"strings"
	"testing"
)

func TestThousands(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {25636712, "25,636,712"}, {-4723202, "-4,723,202"}} {
		if got := Thousands(tc.n); got != tc.want {
			t.Errorf("Thousands(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestWriteSummary(t *testing.T) {
	var b strings.Builder
	err := WriteSummary(&b, "tiny", []Layer{
		{Name: "input_layer", Type: "InputLayer", Shape: []int{8, 8, 3}},
		{Name: "bn", Type: "BatchNormalization", Shape: []int{8, 8, 3}, Params: 12, NonTrainable: 6},
		{Name: "dense", Type: "Dense", Shape: []int{2}, Params: 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`Model: "tiny"`,
		"bn (BatchNormalization)",
		"(None, 8, 8, 3)",
		"(None, 2)",
		"Total params: 1,012",
		"Trainable params: 1,006",
		"Non-trainable params: 6",
		"Layers: 3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func ExampleWriteSummary() {
	_ = WriteSummary(os.Stdout, "head", []Layer{
		{Name: "features", Type: "InputLayer", Shape: []int{2048}},
		{Name: "dense_0", Type: "Dense", Shape: []int{2}, Params: 4098},
	})
	// Output:
	// Model: "head"
	// ──────────────────────────────────────────────
	// Layer (type)            Output Shape   Param #
	// ──────────────────────────────────────────────
	// features (InputLayer)   (None, 2048)         0
	// dense_0 (Dense)         (None, 2)        4,098
	// ──────────────────────────────────────────────
	//  Total params: 4,098
	//  Trainable params: 4,098
	//  Non-trainable params: 0
	//  Layers: 2
}
