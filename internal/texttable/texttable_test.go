package texttable

import (
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
