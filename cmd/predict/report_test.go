package main

import (
	"strings"
	"testing"

	"gotransfer/internal/texttable"
)

// TestTextReportAligns: the probabilities line up in one terminal column
// whatever the class names' scripts (a Chinese character takes two).
func TestTextReportAligns(t *testing.T) {
	var b strings.Builder
	r := &textReport{w: &b, classes: []string{"猫", "dog", "Ünïcödé", "a class name longer than twenty"}, top: 5}
	if err := r.image("x.jpg", []float32{0.5, 0.25, 0.125, 0.125}, 0, ""); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")[1:]
	col := -1
	for _, l := range lines {
		i := strings.LastIndex(l, " 0.")
		if i < 0 {
			t.Fatalf("no probability in %q", l)
		}
		if c := texttable.Width(l[:i]); col < 0 {
			col = c
		} else if c != col && !strings.Contains(l, "longer than twenty") {
			t.Errorf("%q: probability at column %d, want %d\n%s", l, c, col, &b)
		}
	}
}
