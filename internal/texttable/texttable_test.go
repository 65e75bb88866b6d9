package texttable

import (
	"fmt"
	"strings"
	"testing"
)

func TestWidth(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int
	}{
		{"cats", 4},
		{"猫", 2},
		{"柴犬 dog", 8},
		{"ｄｏｇ", 6},        // fullwidth Latin
		{"café", 4},       // precomposed
		{"cafe\u0301", 4}, // e and a combining accent
		{"", 0},
	} {
		if got := Width(tc.s); got != tc.want {
			t.Errorf("Width(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
}

func TestWrite(t *testing.T) {
	var b strings.Builder
	if err := Write(&b, 2, [][]string{{"class", "images"}, {"猫", "12"}, {"dogs", "7"}}); err != nil {
		t.Fatal(err)
	}
	want := "  class  images\n" +
		"     猫      12\n" +
		"   dogs       7\n"
	if b.String() != want {
		t.Errorf("Write:\n%s\nwant\n%s", b.String(), want)
	}
}

func TestList(t *testing.T) {
	many := make([]string, 120)
	for i := range many {
		many[i] = fmt.Sprintf("c%d", i)
	}
	for _, tc := range []struct {
		items []string
		max   int
		want  string
	}{
		{nil, 10, "[]"},
		{[]string{"cats", "dogs"}, 10, "[cats dogs]"},
		{many[:10], 10, "[c0 c1 c2 c3 c4 c5 c6 c7 c8 c9]"},
		{many, 10, "[c0 c1 c2 c3 c4 c5 c6 c7 ... c118 c119]"},
	} {
		if got := List(tc.items, tc.max); got != tc.want {
			t.Errorf("List(%d items, %d) = %q, want %q", len(tc.items), tc.max, got, tc.want)
		}
	}
}
