package imagenet

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"testing"
)

func TestEmbeddedIndexIsKeras(t *testing.T) {
	sum := md5.Sum(indexJSON)
	if got := hex.EncodeToString(sum[:]); got != "c2c37ea517e94d9795004a39431a14cb" {
		t.Fatalf("md5 %s, want Keras' c2c37ea517e94d9795004a39431a14cb", got)
	}
	cs, err := Classes()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		i    int
		want Class
	}{{0, Class{"n01440764", "tench"}}, {281, Class{"n02123045", "tabby"}}, {999, Class{"n15075141", "toilet_tissue"}}} {
		if cs[tc.i] != tc.want {
			t.Errorf("class %d: %v, want %v", tc.i, cs[tc.i], tc.want)
		}
	}
}

func TestTop(t *testing.T) {
	p := make([]float32, 1000)
	p[281], p[285], p[0] = 0.5, 0.3, 0.2
	top, err := Top(p, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{281, 285, 0}
	for r, pr := range top {
		if pr.Index != want[r] || pr.Rank != r+1 {
			t.Errorf("rank %d: class %d, want %d", r+1, pr.Index, want[r])
		}
	}
	if _, err := Top(p[:10], 3); err == nil {
		t.Error("10 probabilities accepted")
	}
}

func ExampleTop() {
	p := make([]float32, 1000)
	p[281], p[282] = 0.7, 0.3
	top, _ := Top(p, 2)
	for _, pr := range top {
		fmt.Printf("%d. %s %s %.2f\n", pr.Rank, pr.Class.WNID, pr.Class.Name, pr.Probability)
	}
	// Output:
	// 1. n02123045 tabby 0.70
	// 2. n02123159 tiger_cat 0.30
}
