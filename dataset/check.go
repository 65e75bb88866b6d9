package dataset

import (
	"context"
	"errors"
	"fmt"
	"gotransfer/internal/texttable"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Summary is what Check found: the classes, the usable images of each class
// in each split, and the files skipped.
type Summary struct {
	Root    string
	Classes []string
	// Train[i] and Validation[i] count the usable images of class i.
	Train, Validation []int
	// Skipped lists the unusable files with their reasons.
	Skipped []Skip
	// Ignored counts the files not read for their extension (Index.Ignored).
	Ignored map[string]int
	// Duplicates lists the usable files whose bytes equal an earlier one's
	// (training images first, then validation, each in path order).
	Duplicates []Duplicate
}

// Duplicate is a file with the same bytes as another.
type Duplicate struct {
	Path, Of string // relative to Root
	// CrossSplit: one is a training image and the other a validation
	// image, which makes the validation scores optimistic.
	CrossSplit bool
	// Relabelled: the two are in different classes.
	Relabelled bool
}

// Check scans cfg.Root and decodes every image once, as a dry run of
// training (what `train --check-data` prints). Unusable files go to skips,
// which may be nil; progress, if not nil, is called with the images done
// and their total as batches of them are decoded. It returns the summary,
// even when it also returns an error: one wrapping ErrNoUsableImages if a
// class has no usable image, or none for training (its only usable images
// are validation images, which training refuses), or Scan's error (then the summary is nil), or
// ctx's.
func Check(ctx context.Context, cfg Config, skips *SkipLog, progress func(done, total int)) (*Summary, error) {
	cfg = cfg.WithDefaults()
	idx, err := Scan(cfg)
	if err != nil {
		return nil, err
	}
	if skips == nil {
		skips = &SkipLog{}
	}
	cfg.Classes = idx.Classes
	s := &Summary{Root: cfg.Root, Classes: idx.Classes, Train: make([]int, len(idx.Classes)), Validation: make([]int, len(idx.Classes)), Ignored: idx.Ignored}
	var decodedSamples []Sample // both splits, training first, with their digests
	var digests [][32]byte
	done, total := 0, len(idx.Train)+len(idx.Validation)
	count := func(samples []Sample, into []int) error {
		before, decoded := skips.Len(), 0
		for b, err := range Stream(ctx, cfg, samples, 16, skips) {
			if err != nil {
				if errors.Is(err, ErrNoUsableImages) {
					break // judged below, over both splits
				}
				return err
			}
			decoded += b.Len()
			if progress != nil {
				progress(done+decoded+skips.Len()-before, total)
			}
			for i, l := range b.Labels {
				into[l]++
				decodedSamples = append(decodedSamples, Sample{Path: b.Paths[i], Label: l})
			}
			digests = append(digests, b.Digests...)
			b.Release()
		}
		done += len(samples)
		if progress != nil {
			progress(done, total) // the files skipped after the last batch
		}
		return nil
	}
	if err := count(idx.Train, s.Train); err != nil {
		return s, err
	}
	trained := len(decodedSamples)
	if err := count(idx.Validation, s.Validation); err != nil {
		return s, err
	}
	s.Duplicates = FindDuplicates(decodedSamples, digests, func(i int) bool { return i >= trained })
	s.Skipped = skips.Entries()
	var dead, untrained []string
	for i, c := range s.Classes {
		switch {
		case s.Train[i]+s.Validation[i] == 0:
			dead = append(dead, fmt.Sprintf("%q", c))
		case s.Train[i] == 0:
			untrained = append(untrained, fmt.Sprintf("%q", c))
		}
	}
	if len(dead) > 0 {
		return s, fmt.Errorf("dataset: %s: class %s: %w", cfg.Root, strings.Join(dead, ", "), ErrNoUsableImages)
	}
	if len(untrained) > 0 {
		// Training refuses them: its head could never learn the class.
		return s, fmt.Errorf("dataset: %s: class %s: %w for training, only validation images (add images, or change the seed or validation_split)", cfg.Root, strings.Join(untrained, ", "), ErrNoUsableImages)
	}
	return s, nil
}

// FindDuplicates lists the samples whose file has the bytes of an earlier
// one's (digests, row for row), each with the first of them; validation
// says which samples are validation images.
func FindDuplicates(samples []Sample, digests [][32]byte, validation func(i int) bool) []Duplicate {
	first := make(map[[32]byte]int, len(samples))
	var ds []Duplicate
	for i, s := range samples {
		f, ok := first[digests[i]]
		if !ok {
			first[digests[i]] = i
			continue
		}
		ds = append(ds, Duplicate{Path: s.Path, Of: samples[f].Path, CrossSplit: validation(f) != validation(i), Relabelled: samples[f].Label != s.Label})
	}
	return ds
}

// CountDuplicates counts the duplicates across the split and those in
// another class than their first copy.
func CountDuplicates(ds []Duplicate) (crossSplit, relabelled int) {
	for _, d := range ds {
		if d.CrossSplit {
			crossSplit++
		}
		if d.Relabelled {
			relabelled++
		}
	}
	return crossSplit, relabelled
}

// Limits of the duplicates' listing: a folder of thousands of copies
// stays readable.
const (
	maxDuplicateGroups = 50 // files with copies, those in another class first
	maxCopiesNamed     = 5  // copies named per file
)

// writeDuplicates lists duplicates a line per file copied: the copies in
// another class first (mislabelled data), then those across the split,
// then the others, each line naming a few copies.
func writeDuplicates(w io.Writer, ds []Duplicate) {
	var order []string
	groups := map[string][]Duplicate{}
	for _, d := range ds {
		if _, ok := groups[d.Of]; !ok {
			order = append(order, d.Of)
		}
		groups[d.Of] = append(groups[d.Of], d)
	}
	harm := func(of string) int {
		h := 0
		for _, d := range groups[of] {
			if d.Relabelled {
				h = max(h, 2)
			} else if d.CrossSplit {
				h = max(h, 1)
			}
		}
		return h
	}
	slices.SortStableFunc(order, func(a, b string) int { return harm(b) - harm(a) })
	for i, of := range order {
		if i == maxDuplicateGroups {
			fmt.Fprintf(w, "  ... and %d more files with copies\n", len(order)-i)
			break
		}
		var named []string
		for j, d := range groups[of] {
			if j == maxCopiesNamed {
				named = append(named, fmt.Sprintf("and %d more", len(groups[of])-j))
				break
			}
			var notes []string
			if d.Relabelled {
				notes = append(notes, "another class")
			}
			if d.CrossSplit {
				notes = append(notes, "across the split")
			}
			if len(notes) > 0 {
				named = append(named, d.Path+" ("+strings.Join(notes, ", ")+")")
			} else {
				named = append(named, d.Path)
			}
		}
		fmt.Fprintf(w, "  %s = %s\n", of, strings.Join(named, ", "))
	}
}

// WriteTo prints the summary as a table followed by the skipped files.
func (s *Summary) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	rows := [][]string{{"label", "class", "train", "validation"}}
	var tt, tv int
	for i, c := range s.Classes {
		rows = append(rows, []string{strconv.Itoa(i), c, strconv.Itoa(s.Train[i]), strconv.Itoa(s.Validation[i])})
		tt, tv = tt+s.Train[i], tv+s.Validation[i]
	}
	rows = append(rows, []string{"", "total", strconv.Itoa(tt), strconv.Itoa(tv)})
	if err := texttable.Write(cw, 2, rows); err != nil {
		return cw.n, err
	}
	fmt.Fprintf(cw, "%d file(s) skipped\n", len(s.Skipped))
	for _, k := range s.Skipped {
		fmt.Fprintf(cw, "  %s: %s\n", k.Path, k.Reason)
	}
	if len(s.Ignored) > 0 {
		fmt.Fprintf(cw, "not read, as not images by their extension: %s (the images read are %s)\n", ignoredString(s.Ignored), strings.Join(Extensions(), " "))
	}
	if len(s.Duplicates) > 0 {
		cross, relabelled := CountDuplicates(s.Duplicates)
		why := ""
		if cross > 0 {
			why = " (they make the validation scores optimistic)"
		}
		fmt.Fprintf(cw, "%d duplicate file(s) (the same bytes as another): %d across training and validation%s, %d in another class\n",
			len(s.Duplicates), cross, why, relabelled)
		writeDuplicates(cw, s.Duplicates)
	}
	return cw.n, nil
}

// String returns what WriteTo prints.
func (s *Summary) String() string {
	var b strings.Builder
	s.WriteTo(&b)
	return b.String()
}
