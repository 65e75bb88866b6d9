// Package imagenet names the 1000 ImageNet classes that a pretrained
// ResNet50's predictions layer scores, and decodes its probabilities into
// ranked predictions as Keras' decode_predictions does.
//
// The class index is embedded: it is byte-identical to the
// imagenet_class_index.json that Keras downloads (md5
// c2c37ea517e94d9795004a39431a14cb), so no file is fetched at run time.
package imagenet

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
)

//go:embed imagenet_class_index.json
var indexJSON []byte

// Class is one ImageNet class: its WordNet id and its short name.
type Class struct {
	WNID string
	Name string
}

var (
	classesOnce sync.Once
	classes     []Class
	classesErr  error
)

// Classes returns the 1000 classes in the order of the predictions layer.
func Classes() ([]Class, error) {
	classesOnce.Do(func() {
		var raw map[string][2]string
		if err := json.Unmarshal(indexJSON, &raw); err != nil {
			classesErr = fmt.Errorf("imagenet: embedded class index: %w", err)
			return
		}
		classes = make([]Class, len(raw))
		for k, v := range raw {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(raw) {
				classesErr = fmt.Errorf("imagenet: embedded class index: bad key %q", k)
				return
			}
			classes[i] = Class{WNID: v[0], Name: v[1]}
		}
	})
	return classes, classesErr
}

// Prediction is one ranked class of one image.
type Prediction struct {
	Rank        int // 1 is the most probable
	Class       Class
	Index       int
	Probability float32
}

// Top returns the k most probable classes of one image's probabilities
// (ties keep the lower class index first).
func Top(probs []float32, k int) ([]Prediction, error) {
	cs, err := Classes()
	if err != nil {
		return nil, err
	}
	if len(probs) != len(cs) {
		return nil, fmt.Errorf("imagenet: %d probabilities, want %d (one per ImageNet class)", len(probs), len(cs))
	}
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	k = max(0, min(k, len(idx)))
	out := make([]Prediction, k)
	for r := range out {
		i := idx[r]
		out[r] = Prediction{Rank: r + 1, Class: cs[i], Index: i, Probability: probs[i]}
	}
	return out, nil
}
