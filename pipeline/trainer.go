package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"gotransfer/checkpoints"
	"gotransfer/dataset"
	"gotransfer/internal/splitmix"
	"gotransfer/model/head"
)

// Split is a set of examples as cached features: X is (N, F), Y the labels.
type Split struct {
	X *tensor.Dense
	Y []int
	// Samples are the image files of the rows, where known.
	Samples []dataset.Sample
}

// Len is the number of examples.
func (s Split) Len() int { return len(s.Y) }

// without returns the samples and labels of s but those of the paths in
// drop (no features: for imagesDigest).
func (s Split) without(drop map[string]bool) Split {
	var out Split
	for i, smp := range s.Samples {
		if !drop[smp.Path] {
			out.Samples, out.Y = append(out.Samples, smp), append(out.Y, s.Y[i])
		}
	}
	return out
}

// Trainer trains a head on cached features, epoch by epoch, saving
// checkpoints from which a killed run resumes exactly: the order of every
// epoch is a pure function of (Seed, epoch), and a checkpoint holds the
// head, the optimizer's state (Adam's moments, SGD's momentum) and step, and the running sums of the epoch in
// progress, so a resumed run makes the same updates in the same order and
// ends with the same bytes.
type Trainer struct {
	Head       *head.Head
	Opt        head.Optimizer
	Train, Val Split
	// TrainVariants hold the features of augmented views of the training
	// images (the mirrored images, then random crops), each row for row
	// with Train: each epoch trains every example on the original or one
	// of the views, picked uniformly by (Seed, epoch, row).
	TrainVariants []Split
	Classes       []string
	Epochs        int
	Batch         int
	Seed          int64
	Every         int // checkpoint every this many steps; 0: at epoch ends only
	Patience      int // early stopping: epochs without improvement; 0: off
	MinDelta      float64
	// The learning rate is multiplied by LRFactor, down to MinLR, when the
	// validation loss has not improved by more than LRMinDelta for
	// LRPatience epochs (Keras' ReduceLROnPlateau); LRPatience 0: off.
	LRPatience                  int
	LRFactor, LRMinDelta, MinLR float64
	// LRSchedule, if set, gives the learning rate of each epoch (0-based);
	// it is set as the epoch starts, a resumed one included.
	LRSchedule  func(epoch int) float64
	Checkpoints *checkpoints.Manager
	ConfigHash  string
	// Run is the resolved configuration, stored in every checkpoint so that
	// `predict --checkpoint` can rebuild the backbone and preprocessing.
	Run      []byte
	RunDir   string
	Progress *Progress

	// state
	epoch, stepInEpoch int
	step               int64
	saved              int64 // the step of the last checkpoint saved or resumed from
	history            []EpochMetrics
	best               float64
	wait               int
	lrBest             float64 // the learning-rate schedule's best val_loss
	lrWait             int
	// onStep, if set, is called after every step with the rows of Train it
	// used (tests stop runs with it and check which examples were seen).
	onStep func(rows []int)
	// running sums of the epoch in progress
	lossSum       float64
	correct, seen int
	board         *board // TensorBoard logs, opened at the first epoch's end
}

// Metric names kept in checkpoint manifests.
const (
	metricValLoss   = "val_loss"
	metricBest      = "best_val_loss"
	metricWait      = "epochs_without_improvement"
	metricLR        = "lr"
	metricLRBest    = "lr_schedule_best_val_loss"
	metricLRWait    = "lr_schedule_epochs_without_improvement"
	metricLossSum   = "epoch_loss_sum"
	metricCorrect   = "epoch_correct"
	metricSeen      = "epoch_seen"
	metricHistoryOf = "history/" // history/<epoch>/<field>
)

// optimizerCanResume says why the optimizer named name (with SGD momentum
// buffers or not) cannot go on from the checkpoint in dir, whose manifest
// is m: another optimizer's state (Adam's moments, SGD's momentum) means
// nothing to it, and starting its own afresh would not go on as the run
// would have.
func optimizerCanResume(dir string, m checkpoints.Manifest, name string, momentum bool) error {
	if was := cmp.Or(m.Optimizer, "adam"); was != name {
		return fmt.Errorf("resume from %s: the run trained with train.optimizer %s, the configuration says %s: the optimizer cannot change within a run (start a new run folder)", dir, was, name)
	}
	if momentum && !slices.ContainsFunc(m.Files, func(f checkpoints.File) bool { return strings.HasPrefix(f.Tensor, head.MomentumPrefix) }) {
		return fmt.Errorf("resume from %s: the checkpoint has no SGD momentum buffers (it trained without momentum): train.sgd.momentum cannot become non-zero within a run (start a new run folder)", dir)
	}
	return nil
}

// Resume restores the trainer from a checkpoint.
func (t *Trainer) Resume(ck *checkpoints.Checkpoint) error {
	man := ck.Manifest
	var params, state []head.Param
	for _, p := range t.Head.Params() {
		v, ok := ck.Tensor(p.Name)
		if !ok {
			return fmt.Errorf("resume from %s: tensor %q missing", ck.Dir, p.Name)
		}
		params = append(params, head.Param{Name: p.Name, Value: v})
	}
	if err := t.Head.SetParams(params); err != nil {
		return fmt.Errorf("resume from %s: %w", ck.Dir, err)
	}
	momentum := slices.ContainsFunc(t.Opt.State(), func(p head.Param) bool { return strings.HasPrefix(p.Name, head.MomentumPrefix) })
	if err := optimizerCanResume(ck.Dir, man, t.Opt.Name(), momentum); err != nil {
		return err
	}
	for _, p := range t.Opt.State() {
		v, ok := ck.Tensor(p.Name)
		if !ok {
			return fmt.Errorf("resume from %s: tensor %q missing", ck.Dir, p.Name)
		}
		state = append(state, head.Param{Name: p.Name, Value: v})
	}
	if err := t.Opt.SetState(man.OptimizerStep, state); err != nil {
		return fmt.Errorf("resume from %s: %w", ck.Dir, err)
	}
	t.epoch, t.stepInEpoch, t.step, t.saved = man.Epoch, man.StepInEpoch, man.Step, man.Step
	t.best, t.wait = math.Inf(1), 0
	if v, ok := man.Metrics[metricBest]; ok {
		t.best = v
	}
	t.wait = int(man.Metrics[metricWait])
	t.lrBest, t.lrWait = math.Inf(1), int(man.Metrics[metricLRWait])
	if v, ok := man.Metrics[metricLRBest]; ok {
		t.lrBest = v
	}
	if lr, ok := man.Metrics[metricLR]; ok { // the schedule's, where it changed it
		if err := t.Opt.SetLR(lr); err != nil {
			return fmt.Errorf("resume from %s: %w", ck.Dir, err)
		}
	}
	t.lossSum = man.Metrics[metricLossSum]
	t.correct = int(man.Metrics[metricCorrect])
	t.seen = int(man.Metrics[metricSeen])
	t.history = historyFromMetrics(man.Metrics, man.Epoch)
	return nil
}

// lowestValLoss reports whether loss is below every val_loss of history:
// a new best checkpoint (ties go to the earlier epoch, as Manager.Best;
// NaN never is, as Best passes it over).
func lowestValLoss(history []EpochMetrics, loss float64) bool {
	return !math.IsNaN(loss) && !slices.ContainsFunc(history, func(h EpochMetrics) bool { return h.HasVal && h.ValLoss <= loss })
}

// Fit runs the remaining epochs. It returns the metrics of every epoch,
// those before a resume included.
func (t *Trainer) Fit(ctx context.Context) ([]EpochMetrics, error) {
	if t.history == nil && t.step == 0 {
		t.best, t.lrBest = math.Inf(1), math.Inf(1)
	}
	if t.Batch < 1 || t.Train.Len() == 0 {
		return nil, fmt.Errorf("train: %d training examples, batch %d", t.Train.Len(), t.Batch)
	}
	if t.Patience > 0 && t.wait >= t.Patience {
		t.Progress.Line("early stopping already triggered at epoch %d: val_loss has not improved for %d epochs; to train on, raise train.early_stopping.patience (e.g. --set train.early_stopping.patience=%d)", t.epoch, t.wait, t.wait+t.Patience)
		return t.history, nil
	}
	dim := t.Train.X.Shape()[1]
	for k, v := range t.TrainVariants {
		var shape tensor.Shape
		if v.X != nil {
			shape = v.X.Shape()
		}
		if !slices.Equal(shape, t.Train.X.Shape()) || v.Len() != t.Train.Len() {
			return nil, fmt.Errorf("train: augmented variant %d: features %v for %d labels, want %v, row for row with the training split", k+1, shape, v.Len(), t.Train.X.Shape())
		}
	}
	rows := make([]int, t.Train.Len())
	for i := range rows {
		rows[i] = i
	}
	start, startEpoch := time.Now(), t.epoch
	defer func() { t.board.close(); t.board = nil }()
	if len(t.history) > 0 {
		// A resumed run's reports may lack epochs its checkpoints have
		// (killed between the two): bring them up to date first.
		if err := t.report(); err != nil {
			return t.history, err
		}
	}
	for t.epoch < t.Epochs {
		epochStart := time.Now()
		if t.LRSchedule != nil {
			if err := t.Opt.SetLR(t.LRSchedule(t.epoch)); err != nil {
				return t.history, fmt.Errorf("epoch %d: learning-rate schedule: %w", t.epoch+1, err)
			}
		}
		order := dataset.Shuffle(rows, t.Seed, t.epoch)
		seenAtStart := t.seen
		// The epoch goes on from the examples already seen, not from a step
		// number, so that a run resumed mid-epoch with another train.batch
		// still sees each example once.
		steps := t.stepInEpoch + (len(order)-t.seen+t.Batch-1)/t.Batch
		for t.seen < len(order) {
			if err := ctx.Err(); err != nil {
				// Interrupted between two steps: keep the steps since the
				// last checkpoint, which --resume continues exactly.
				if t.step > t.saved {
					if serr := t.save(nil); serr != nil {
						return t.history, fmt.Errorf("%w (and saving the steps since the last checkpoint failed: %v)", err, serr)
					}
					t.Progress.Line("interrupted at epoch %d, step %d of %d: saved a checkpoint", t.epoch+1, t.stepInEpoch, steps)
				}
				return t.history, err
			}
			idx := order[t.seen:min(t.seen+t.Batch, len(order))]
			x, y := t.gatherTrain(idx, dim)
			loss, correct, err := t.Head.TrainStep(x, y, t.Opt)
			if err != nil {
				return t.history, fmt.Errorf("epoch %d step %d: %w", t.epoch+1, t.stepInEpoch+1, err)
			}
			if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
				return t.history, fmt.Errorf("epoch %d step %d: loss is %v: training diverged (lower the learning rate?)", t.epoch+1, t.stepInEpoch+1, loss)
			}
			t.lossSum += float64(loss) * float64(len(idx))
			t.correct += correct
			t.seen += len(idx)
			t.step++
			t.stepInEpoch++
			rate := float64(t.seen-seenAtStart) / time.Since(epochStart).Seconds()
			t.Progress.Bar(fmt.Sprintf("epoch %d/%d", t.epoch+1, t.Epochs), t.stepInEpoch, steps,
				fmt.Sprintf("loss %.4f acc %.3f  %.0f samples/s", t.lossSum/float64(t.seen), float64(t.correct)/float64(t.seen), rate))
			if t.onStep != nil {
				t.onStep(idx)
			}
			if t.Every > 0 && t.step%int64(t.Every) == 0 && t.seen < len(order) {
				if err := t.save(nil); err != nil {
					return t.history, err
				}
			}
		}
		m := EpochMetrics{
			Epoch: t.epoch + 1, Step: t.step,
			TrainLoss: t.lossSum / float64(t.seen), TrainAcc: float64(t.correct) / float64(t.seen),
			SamplesPerSec: float64(t.seen-seenAtStart) / time.Since(epochStart).Seconds(),
			Seconds:       time.Since(epochStart).Seconds(),
			LR:            t.Opt.LR(),
		}
		newBest := false // the lowest val_loss so far: the new best checkpoint
		if t.Val.Len() > 0 {
			sc, err := t.evaluate(t.Val)
			if err != nil {
				return t.history, err
			}
			loss := sc.Loss
			m.ValLoss, m.ValAcc, m.HasVal = loss, sc.Accuracy, true
			if sc.HasAUC {
				m.ValAUC = &sc.AUC
			}
			if sc.HasTop5 {
				m.ValTop5 = &sc.Top5
			}
			// The best checkpoint is the lowest val_loss (Keras'
			// ModelCheckpoint(save_best_only)), min_delta or not; only
			// early stopping's count needs an improvement by more than it.
			newBest = lowestValLoss(t.history, loss)
			if loss < t.best-t.MinDelta {
				t.best, t.wait = loss, 0
			} else {
				t.wait++
			}
			if err := t.reduceLR(loss); err != nil {
				return t.history, err
			}
		}
		t.history = append(t.history, m)
		t.epoch++
		t.stepInEpoch, t.lossSum, t.correct, t.seen = 0, 0, 0, 0
		var val map[string]float64
		if m.HasVal {
			val = map[string]float64{metricValLoss: m.ValLoss}
		}
		if err := t.save(val); err != nil {
			return t.history, err
		}
		elapsed := time.Since(start)
		eta := time.Duration(float64(elapsed) / float64(t.epoch-startEpoch) * float64(t.Epochs-t.epoch))
		line := fmt.Sprintf("epoch %d/%d  loss %.4f  accuracy %.4f", m.Epoch, t.Epochs, m.TrainLoss, m.TrainAcc)
		if m.HasVal {
			line += fmt.Sprintf("  val_loss %.4f", m.ValLoss)
			if newBest {
				line += " *"
			}
			line += fmt.Sprintf("  val_accuracy %.4f", m.ValAcc)
			if m.ValTop5 != nil {
				line += fmt.Sprintf("  val_top5 %.4f", *m.ValTop5)
			}
			if m.ValAUC != nil {
				line += fmt.Sprintf("  val_auc %.4f", *m.ValAUC)
			}
		}
		if t.LRSchedule != nil || t.LRPatience > 0 {
			line += fmt.Sprintf("  lr %.3g", m.LR)
		}
		line += fmt.Sprintf("  %.0f samples/s  elapsed %s  ETA %s", m.SamplesPerSec, elapsed.Round(time.Second), eta.Round(time.Second))
		t.Progress.Line("%s", line)
		if err := t.report(); err != nil {
			return t.history, err
		}
		if t.Patience > 0 && t.wait >= t.Patience {
			// t.best is what the later epochs had to beat by more than
			// MinDelta; the best checkpoint's (marked *) may be lower.
			since := ""
			if i := slices.IndexFunc(t.history, func(h EpochMetrics) bool { return h.HasVal && h.ValLoss == t.best }); i >= 0 {
				since = fmt.Sprintf(", since epoch %d's %.4f", t.history[i].Epoch, t.best)
			}
			t.Progress.Line("early stopping: val_loss has not improved%s for %d epochs%s", byMoreThan(t.MinDelta), t.Patience, since)
			break
		}
	}
	return t.history, nil
}

// report brings the run folder's metrics files, plot and TensorBoard logs
// up to date with the history. A process's first TensorBoard files log the
// whole history, so that what older files hold never matters.
func (t *Trainer) report() error {
	if err := writeMetrics(t.RunDir, t.history); err != nil {
		return err
	}
	if err := plotMetrics(filepath.Join(t.RunDir, "metrics.png"), t.history); err != nil {
		slog.Warn("could not draw the metrics plot", "err", err)
	}
	news := t.history[len(t.history)-1:]
	if t.board == nil {
		t.board, news = openBoard(filepath.Join(t.RunDir, "tensorboard")), t.history
	}
	for _, m := range news {
		t.board.log(m)
	}
	return nil
}

// reduceLR is Keras' ReduceLROnPlateau at an epoch's end, without cooldown.
func (t *Trainer) reduceLR(valLoss float64) error {
	if t.LRPatience <= 0 {
		return nil
	}
	if valLoss < t.lrBest-t.LRMinDelta {
		t.lrBest, t.lrWait = valLoss, 0
		return nil
	}
	if t.lrWait++; t.lrWait < t.LRPatience {
		return nil
	}
	old := t.Opt.LR()
	if old <= t.MinLR {
		return nil
	}
	lr := max(old*t.LRFactor, t.MinLR)
	if err := t.Opt.SetLR(lr); err != nil {
		return err
	}
	t.lrWait = 0
	t.Progress.Line("val_loss has not improved%s for %d epochs: learning rate %g -> %g", byMoreThan(t.LRMinDelta), t.LRPatience, old, lr)
	return nil
}

// byMoreThan words a callback's min_delta: nothing for 0 (any improvement
// counts).
func byMoreThan(minDelta float64) string {
	if minDelta == 0 {
		return ""
	}
	return fmt.Sprintf(" by more than %g", minDelta)
}

// save writes a checkpoint of the current state.
func (t *Trainer) save(extra map[string]float64) error {
	metrics := map[string]float64{
		metricWait: float64(t.wait), metricLossSum: t.lossSum,
		metricCorrect: float64(t.correct), metricSeen: float64(t.seen),
		metricLR: t.Opt.LR(), metricLRWait: float64(t.lrWait),
	}
	if !math.IsInf(t.best, 0) {
		metrics[metricBest] = t.best
	}
	if !math.IsInf(t.lrBest, 0) {
		metrics[metricLRBest] = t.lrBest
	}
	for k, v := range extra {
		metrics[k] = v
	}
	historyToMetrics(t.history, metrics)
	man := checkpoints.Manifest{
		Epoch: t.epoch, Step: t.step, StepInEpoch: t.stepInEpoch, OptimizerStep: t.Opt.Step(), Optimizer: t.Opt.Name(),
		Seed: uint64(t.Seed), Classes: t.Classes, ConfigHash: t.ConfigHash, Metrics: metrics, Run: t.Run,
	}
	var tensors []checkpoints.Tensor
	for _, p := range t.Head.Params() {
		tensors = append(tensors, checkpoints.Tensor{Name: p.Name, Value: p.Value})
	}
	for _, p := range t.Opt.State() {
		tensors = append(tensors, checkpoints.Tensor{Name: p.Name, Value: p.Value})
	}
	if _, err := t.Checkpoints.Save(man, tensors); err != nil {
		return fmt.Errorf("save checkpoint at step %d: %w", t.step, err)
	}
	t.saved = t.step
	return nil
}

// evaluate scores the head on a split.
func (t *Trainer) evaluate(s Split) (splitScores, error) {
	return evaluateSplit(t.Head, s, t.Classes, 256, nil)
}

// splitScores is how the head did on a split.
type splitScores struct {
	Loss, Accuracy float64 // the mean loss, the fraction right
	Confusion      *Confusion
	// AUC is the exact area under the ROC curve of class 1's probability
	// (rocAUC), for two classes both present (HasAUC): scikit-learn's
	// roc_auc_score, not Keras' AUC metric, which interpolates over 200
	// thresholds and, on one-hot labels, pools both classes' columns.
	AUC    float64
	HasAUC bool
	// Top5 is the top-5 accuracy (topKAccuracy: ties count for the image,
	// as TensorFlow's in_top_k), for more than 5 classes (HasTop5).
	Top5    float64
	HasTop5 bool
}

// evaluateSplit runs h over the rows of s, batch rows at a time, and scores
// it; each, if not nil, is called for every row with the predicted class
// and the probabilities of all classes.
func evaluateSplit(h *head.Head, s Split, classes []string, batch int, each func(row, pred int, probs []float32)) (splitScores, error) {
	dim := s.X.Shape()[1]
	sc := splitScores{Confusion: NewConfusion(classes)}
	binary, topK := len(classes) == 2, len(classes) > 5
	var p1 []float32 // class 1's probability of each row, for the AUC
	var top []Scored // each row's label and probabilities, for the top-5 accuracy
	var loss float64
	correct := 0
	idx := make([]int, 0, batch)
	for lo := 0; lo < s.Len(); lo += batch {
		idx = idx[:0]
		for i := lo; i < min(lo+batch, s.Len()); i++ {
			idx = append(idx, i)
		}
		x, y := gather(s, idx, dim)
		var (
			l     float32
			c     int
			preds []int
			probs *tensor.Dense
			err   error
		)
		if each != nil || binary || topK {
			l, c, preds, probs, err = h.EvaluateWithProbs(x, y)
		} else {
			l, c, preds, err = h.Evaluate(x, y)
		}
		if err != nil {
			return sc, fmt.Errorf("evaluate: %w", err)
		}
		loss += float64(l) * float64(len(idx))
		correct += c
		for i, p := range preds {
			sc.Confusion.Add(y[i], p)
			if each != nil {
				each(lo+i, p, probs.Float32s()[i*len(classes):(i+1)*len(classes):(i+1)*len(classes)])
			}
			if binary {
				p1 = append(p1, probs.Float32s()[2*i+1])
			}
			if topK {
				top = append(top, Scored{True: y[i], Probabilities: probs.Float32s()[i*len(classes) : (i+1)*len(classes) : (i+1)*len(classes)]})
			}
		}
	}
	sc.Loss, sc.Accuracy = loss/float64(s.Len()), float64(correct)/float64(s.Len())
	if binary {
		sc.AUC, sc.HasAUC = rocAUC(p1, s.Y)
	}
	if topK {
		sc.Top5, sc.HasTop5 = topKAccuracy(top, 5), true
	}
	return sc, nil
}

// rocAUC is the area under the ROC curve of scores for the examples whose
// label is 1 against those whose label is 0: the probability that a random
// positive scores above a random negative, ties counting half (the
// Mann-Whitney statistic, from average ranks). ok is false without both.
func rocAUC(scores []float32, labels []int) (auc float64, ok bool) {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(scores[a], scores[b]) })
	var rankSum float64 // of the positives, ranks from 1, ties averaged
	pos := 0
	for lo := 0; lo < len(order); {
		hi := lo
		// cmp.Compare, not ==: a NaN equals itself there, so the loop moves.
		for hi < len(order) && cmp.Compare(scores[order[hi]], scores[order[lo]]) == 0 {
			hi++
		}
		avg := float64(lo+1+hi) / 2
		for _, i := range order[lo:hi] {
			if labels[i] == 1 {
				rankSum += avg
				pos++
			}
		}
		lo = hi
	}
	neg := len(scores) - pos
	if pos == 0 || neg == 0 {
		return 0, false
	}
	return (rankSum - float64(pos)*float64(pos+1)/2) / (float64(pos) * float64(neg)), true
}

// Confusion evaluates the head on the validation split.
func (t *Trainer) Confusion() (*Confusion, error) {
	conf, _, err := t.ValidationPredictions()
	return conf, err
}

// ValidationPredictions evaluates the head on the validation split: the
// confusion matrix, and each example's probabilities (in label order), row
// for row with t.Val.
func (t *Trainer) ValidationPredictions() (*Confusion, [][]float32, error) {
	if t.Val.Len() == 0 {
		return nil, nil, errors.New("no validation split")
	}
	probs := make([][]float32, t.Val.Len())
	sc, err := evaluateSplit(t.Head, t.Val, t.Classes, 256, func(row, _ int, p []float32) { probs[row] = p })
	return sc.Confusion, probs, err
}

// gatherTrain is gather on the training split, the rows that pick assigns
// to a variant taken from it instead.
func (t *Trainer) gatherTrain(idx []int, dim int) (*tensor.Dense, []int) {
	x, y := gather(t.Train, idx, dim)
	if n := len(t.TrainVariants); n > 0 {
		data := x.Float32s()
		for i, r := range idx {
			if k := pick(t.Seed, t.epoch, r, n+1); k > 0 {
				src := t.TrainVariants[k-1].X.Float32s()
				copy(data[i*dim:(i+1)*dim], src[r*dim:(r+1)*dim])
			}
		}
	}
	return x, y
}

// pick says what row trains on in epoch: 0 the original, k > 0
// TrainVariants[k-1], uniformly among n choices, a pure function of (seed, epoch, row) so that
// a resumed run picks the same. For n = 2 (flip augmentation alone) it is
// the coin that runs begun before crop augmentation existed tossed (z%2 is
// z&1), so that they resume exactly.
func pick(seed int64, epoch, row, n int) int {
	z := uint64(seed) ^ uint64(epoch)<<32 ^ uint64(row)*0x9e3779b97f4a7c15
	return int(splitmix.Mix(z) % uint64(n))
}

// gather copies the rows idx of a split into a new batch.
func gather(s Split, idx []int, dim int) (*tensor.Dense, []int) {
	src := s.X.Data().([]float32)
	data := make([]float32, len(idx)*dim)
	y := make([]int, len(idx))
	for i, r := range idx {
		copy(data[i*dim:(i+1)*dim], src[r*dim:(r+1)*dim])
		y[i] = s.Y[r]
	}
	return tensor.New(tensor.WithShape(len(idx), dim), tensor.WithBacking(data)), y
}

// historyToMetrics stores the per-epoch history in a manifest's metrics, so
// a resumed run rewrites metrics.jsonl exactly.
func historyToMetrics(h []EpochMetrics, m map[string]float64) {
	for _, e := range h {
		p := fmt.Sprintf("%s%d/", metricHistoryOf, e.Epoch)
		m[p+"step"] = float64(e.Step)
		m[p+"train_loss"] = e.TrainLoss
		m[p+"train_accuracy"] = e.TrainAcc
		m[p+"samples_per_s"] = e.SamplesPerSec
		m[p+"seconds"] = e.Seconds
		m[p+"lr"] = e.LR
		if e.HasVal {
			m[p+"val_loss"] = e.ValLoss
			m[p+"val_accuracy"] = e.ValAcc
		}
		if e.ValAUC != nil {
			m[p+"val_auc"] = *e.ValAUC
		}
		if e.ValTop5 != nil {
			m[p+"val_top5_accuracy"] = *e.ValTop5
		}
	}
}

func historyFromMetrics(m map[string]float64, epochs int) []EpochMetrics {
	var h []EpochMetrics
	for e := 1; e <= epochs; e++ {
		p := fmt.Sprintf("%s%d/", metricHistoryOf, e)
		if _, ok := m[p+"step"]; !ok {
			continue
		}
		em := EpochMetrics{Epoch: e, Step: int64(m[p+"step"]), TrainLoss: m[p+"train_loss"], TrainAcc: m[p+"train_accuracy"],
			SamplesPerSec: m[p+"samples_per_s"], Seconds: m[p+"seconds"], LR: m[p+"lr"]}
		if v, ok := m[p+"val_loss"]; ok {
			em.ValLoss, em.ValAcc, em.HasVal = v, m[p+"val_accuracy"], true
		}
		if v, ok := m[p+"val_auc"]; ok {
			em.ValAUC = &v
		}
		if v, ok := m[p+"val_top5_accuracy"]; ok {
			em.ValTop5 = &v
		}
		h = append(h, em)
	}
	return h
}

// denseRows wraps n rows of dim values as an (n, dim) tensor.
func denseRows(data []float32, dim int) *tensor.Dense {
	return tensor.New(tensor.WithShape(len(data)/dim, dim), tensor.WithBacking(data))
}
