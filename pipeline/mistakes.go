package pipeline

import (
	"bytes"
	"cmp"
	"fmt"
	"image"
	"image/color"
	"path"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"gotransfer/dataset"
	"gotransfer/internal/atomicfile"
)

// MistakesFile is the picture of the most confident mistakes that
// training (of its validation images) and predict --evaluate --plots draw.
const MistakesFile = "mistakes.png"

// The grid of mistakes.png: up to mistakeCols x mistakeRows pictures,
// each fitted into a square of mistakeSide pixels above its caption.
const (
	mistakeCols    = 4
	mistakeRows    = 4
	mistakeSide    = 224
	mistakeCaption = 48 // three lines of text
	mistakeTitle   = 30
	mistakePad     = 8
)

// sortMistakes orders mistakes the most confident first (the probability
// given to the wrong class), as Evaluation.Mistakes lists them.
func sortMistakes(ms []Mistake) {
	slices.SortStableFunc(ms, func(a, b Mistake) int { return cmp.Compare(b.Probability, a.Probability) })
}

// writeMistakes draws the first of ms (sorted by sortMistakes), images
// under data.Root, into dir/mistakes.png: each picture as a person sees it
// (EXIF rotation applied, nothing cropped), with its file name, true class
// and the class predicted with its probability, as fastai's
// plot_top_losses shows them: mislabelled files and what the classifier
// confuses show at a glance. With no mistakes it writes nothing (and
// touches no file of that name). An image that can no longer be read is
// a grey square. It reports whether it wrote the file.
func writeMistakes(dir string, data dataset.Config, classes []string, ms []Mistake, what string) (bool, error) {
	if len(ms) == 0 {
		return false, nil
	}
	out := filepath.Join(dir, MistakesFile)
	shown := ms[:min(len(ms), mistakeCols*mistakeRows)]
	cols := min(len(shown), mistakeCols)
	rows := (len(shown) + cols - 1) / cols
	cellW, cellH := mistakeSide+2*mistakePad, mistakeSide+mistakeCaption+2*mistakePad
	width, height := cols*cellW, mistakeTitle+rows*cellH
	// 72 dots an inch: one point is one pixel.
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(width), vg.Length(height)), vgimg.UseDPI(72), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(c)
	style := func(size vg.Length, col color.Color) text.Style {
		return text.Style{Color: col, Font: font.From(plot.DefaultFont, size), XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	}
	title := fmt.Sprintf("%s: the %d most confident of %d mistakes", what, len(shown), len(ms))
	if len(shown) == len(ms) {
		title = fmt.Sprintf("%s: %d mistakes, the most confident first", what, len(ms))
	}
	dc.FillText(style(13, color.Black), vg.Point{X: vg.Length(width) / 2, Y: vg.Length(height - 8)}, title)
	for i, m := range shown {
		x0 := (i%cols)*cellW + mistakePad
		top := height - mistakeTitle - (i/cols)*cellH - mistakePad // in vg's coordinates, y up
		box := image.Rect(x0, top-mistakeSide, x0+mistakeSide, top)
		if v, err := dataset.LoadView(data, filepath.Join(data.Root, filepath.FromSlash(m.Path))); err != nil {
			drawBox(c, box, color.Gray{Y: 200})
			dc.FillText(style(9, color.Black), vg.Point{X: vg.Length(x0 + mistakeSide/2), Y: vg.Length(top - mistakeSide/2)}, "unreadable")
		} else {
			pic := thumbnail(v.Image, mistakeSide)
			b := pic.Bounds()
			at := image.Rect(0, 0, b.Dx(), b.Dy()).Add(image.Pt(x0+(mistakeSide-b.Dx())/2, top-mistakeSide+(mistakeSide-b.Dy())/2))
			c.DrawImage(vg.Rectangle{Min: vg.Point{X: vg.Length(at.Min.X), Y: vg.Length(at.Min.Y)}, Max: vg.Point{X: vg.Length(at.Max.X), Y: vg.Length(at.Max.Y)}}, pic)
		}
		mid := vg.Length(x0 + mistakeSide/2)
		y := vg.Length(top - mistakeSide - 3)
		dc.FillText(style(9, color.Gray{Y: 90}), vg.Point{X: mid, Y: y}, clip(path.Base(m.Path), 40))
		dc.FillText(style(11, color.Black), vg.Point{X: mid, Y: y - 14}, clip("true: "+classes[m.True], 32))
		dc.FillText(style(11, color.RGBA{R: 200, A: 255}), vg.Point{X: mid, Y: y - 29}, clip(fmt.Sprintf("predicted: %s %.1f%%", classes[m.Pred], 100*m.Probability), 32))
	}
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&b); err != nil {
		return false, fmt.Errorf("%s: %w", out, err)
	}
	return true, atomicfile.WriteFile(out, b.Bytes())
}

// drawBox fills r (pixels, y up) with col.
func drawBox(c *vgimg.Canvas, r image.Rectangle, col color.Color) {
	var p vg.Path
	p.Move(vg.Point{X: vg.Length(r.Min.X), Y: vg.Length(r.Min.Y)})
	p.Line(vg.Point{X: vg.Length(r.Max.X), Y: vg.Length(r.Min.Y)})
	p.Line(vg.Point{X: vg.Length(r.Max.X), Y: vg.Length(r.Max.Y)})
	p.Line(vg.Point{X: vg.Length(r.Min.X), Y: vg.Length(r.Max.Y)})
	p.Close()
	c.SetColor(col)
	c.Fill(p)
}

// clip shortens s to at most n characters, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// thumbnail scales src to fit a side x side square, each output pixel
// the mean of the pixels it covers: a 12-megapixel photo shrinks without
// aliasing (a smaller image grows, each pixel repeated).
func thumbnail(src *image.RGBA, side int) *image.RGBA {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	scale := float64(side) / float64(max(sw, sh))
	tw, th := max(1, int(float64(sw)*scale+0.5)), max(1, int(float64(sh)*scale+0.5))
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	for y := range th {
		y0, y1 := y*sh/th, max((y+1)*sh/th, y*sh/th+1)
		for x := range tw {
			x0, x1 := x*sw/tw, max((x+1)*sw/tw, x*sw/tw+1)
			var sum [3]int
			for sy := y0; sy < y1; sy++ {
				o := src.PixOffset(src.Rect.Min.X+x0, src.Rect.Min.Y+sy)
				row := src.Pix[o : o+(x1-x0)*4]
				for i := 0; i < len(row); i += 4 {
					sum[0] += int(row[i])
					sum[1] += int(row[i+1])
					sum[2] += int(row[i+2])
				}
			}
			n := (y1 - y0) * (x1 - x0)
			o := dst.PixOffset(x, y)
			dst.Pix[o], dst.Pix[o+1], dst.Pix[o+2], dst.Pix[o+3] = uint8((sum[0]+n/2)/n), uint8((sum[1]+n/2)/n), uint8((sum[2]+n/2)/n), 255
		}
	}
	return dst
}
