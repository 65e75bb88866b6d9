// Package texttable prints text tables whose columns line up on a
// terminal: each cell right-aligned in its column, East Asian wide
// characters counting two columns and combining marks none
// (text/tabwriter counts runes, which misaligns class names in Chinese or
// Japanese).
package texttable

import (
	"io"
	"strings"
	"unicode"

	"golang.org/x/text/width"
)

// Write writes rows to w, a line each, every cell right-aligned in its
// column and preceded by pad spaces.
func Write(w io.Writer, pad int, rows [][]string) error {
	var widths []int
	for _, row := range rows {
		for j, cell := range row {
			if j == len(widths) {
				widths = append(widths, 0)
			}
			widths[j] = max(widths[j], Width(cell))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for j, cell := range row {
			b.WriteString(strings.Repeat(" ", pad+widths[j]-Width(cell)))
			b.WriteString(cell)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Width is how many terminal columns s takes.
func Width(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) || r == '\u200b':
		case width.LookupRune(r).Kind() == width.EastAsianWide || width.LookupRune(r).Kind() == width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

// List formats items as fmt formats a []string, "[a b c]", or, with more
// than max of them, the first max-2, an ellipsis and the last 2, so that a
// line naming 120 classes stays a line.
func List(items []string, max int) string {
	if len(items) <= max || max < 3 {
		return "[" + strings.Join(items, " ") + "]"
	}
	return "[" + strings.Join(items[:max-2], " ") + " ... " + strings.Join(items[len(items)-2:], " ") + "]"
}
