package model

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Layer is one row of a model summary, in Keras' terms.
type Layer struct {
	Name  string // e.g. "conv1_conv"
	Type  string // e.g. "Conv2D"
	Shape []int  // output shape without the batch axis
	// Params and NonTrainable count the layer's parameters; NonTrainable is
	// the part of Params that training does not change (BatchNorm's moving
	// statistics, or everything in a frozen network).
	Params, NonTrainable int
}

// WriteSummary prints layers as a Keras-style table followed by the total,
// trainable and non-trainable parameter counts.
func WriteSummary(w io.Writer, title string, layers []Layer) error {
	rows := make([][3]string, len(layers))
	width := [3]int{len("Layer (type)"), len("Output Shape"), len("Param #")}
	var total, non int
	for i, l := range layers {
		dims := make([]string, 0, len(l.Shape)+1)
		dims = append(dims, "None")
		for _, d := range l.Shape {
			dims = append(dims, strconv.Itoa(d))
		}
		rows[i] = [3]string{
			fmt.Sprintf("%s (%s)", l.Name, l.Type),
			"(" + strings.Join(dims, ", ") + ")",
			Thousands(l.Params),
		}
		for j := range width {
			width[j] = max(width[j], len(rows[i][j]))
		}
		total += l.Params
		non += l.NonTrainable
	}
	line := strings.Repeat("─", width[0]+width[1]+width[2]+6)
	var b strings.Builder
	fmt.Fprintf(&b, "Model: %q\n%s\n", title, line)
	fmt.Fprintf(&b, "%-*s   %-*s   %*s\n%s\n", width[0], "Layer (type)", width[1], "Output Shape", width[2], "Param #", line)
	for _, r := range rows {
		fmt.Fprintf(&b, "%-*s   %-*s   %*s\n", width[0], r[0], width[1], r[1], width[2], r[2])
	}
	fmt.Fprintf(&b, "%s\n Total params: %s\n Trainable params: %s\n Non-trainable params: %s\n Layers: %d\n",
		line, Thousands(total), Thousands(total-non), Thousands(non), len(layers))
	_, err := io.WriteString(w, b.String())
	return err
}

// Thousands formats n with comma separators, as Keras prints counts.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
