package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotransfer/configs"
	"gotransfer/dataset"
	"gotransfer/internal/cli"
	"gotransfer/model/pretrained/pretrainedtest"
)

// The test binary doubles as the train command: with this variable set it
// runs main, so the tests can start it, kill it and start it again.
const asTrain = "GOTRANSFER_TEST_RUN_TRAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asTrain) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// smokeConfig writes a tiny configuration for data in dataDir, running in
// runDir with its feature cache in cacheDir.
func smokeConfig(t *testing.T, dir, dataDir, runDir, cacheDir string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data:
  dir: %s
  image_size: [64, 64]
  validation_split: 0.25
  seed: 3
  workers: 2
backbone:
  random_width: 8
  batch: 4
head:
  layers: [32, 16]
train:
  epochs: 3
  batch: 4
run:
  dir: %s
  checkpoint_every: 3
  keep: 2
cache:
  dir: %s
  shard_size: 8
`, dataDir, runDir, cacheDir)
	path := filepath.Join(dir, "smoke.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// smokeRun synthesizes perClass images a class (seed) in a temporary
// folder and writes a smoke configuration for them, running in <dir>/run
// with its cache in <dir>/cache; edit rewrites the configuration (old, new
// pairs). It returns the folder, the data folder and the configuration.
func smokeRun(t *testing.T, perClass int, seed int64, edit ...string) (dir, data, cfg string) {
	t.Helper()
	dir = t.TempDir()
	data = filepath.Join(dir, "data")
	if err := dataset.Synthesize(data, perClass, seed); err != nil {
		t.Fatal(err)
	}
	cfg = smokeConfig(t, dir, data, filepath.Join(dir, "run"), filepath.Join(dir, "cache"))
	editConfig(t, cfg, edit...)
	return dir, data, cfg
}

// editConfig replaces, in the configuration file cfg, each old string of
// the (old, new) pairs by its new one; an old string not found is a test
// bug.
func editConfig(t *testing.T, cfg string, edit ...string) {
	t.Helper()
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(edit); i += 2 {
		if !bytes.Contains(raw, []byte(edit[i])) {
			t.Fatalf("%s has no %q to replace", cfg, edit[i])
		}
		raw = bytes.Replace(raw, []byte(edit[i]), []byte(edit[i+1]), 1)
	}
	if err := os.WriteFile(cfg, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func trainCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asTrain+"=1")
	return cmd
}

func train(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e strings.Builder
	code = cli.Run("train", args, &o, &e, run)
	return code, o.String(), e.String()
}

// headFiles reads the tensors of the run's last checkpoint.
func headFiles(t *testing.T, runDir string) map[string][]byte {
	t.Helper()
	last := filepath.Join(runDir, "checkpoints", "last")
	files := map[string][]byte{}
	err := filepath.Walk(last+"/", func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(path, ".npy") {
			return err
		}
		raw, err := os.ReadFile(path)
		rel, _ := filepath.Rel(last, path)
		files[rel] = raw
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no tensors in %s", last)
	}
	return files
}

// TestKillAndResume kills training with SIGKILL at random moments (during
// feature extraction, training and checkpointing alike), resumes until it
// finishes, and requires the final head and optimizer state to be
// byte-identical to an uninterrupted run's, with dropout and weight decay
// on.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts many processes")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := dataset.Synthesize(data, 24, 7); err != nil {
		t.Fatal(err)
	}
	regularize := []string{"layers: [32, 16]\n", "layers: [32, 16]\n  dropout: 0.25\n", "train:\n", "train:\n  adam: {weight_decay: 0.01}\n"}
	refCfg := smokeConfig(t, filepath.Join(dir), data, filepath.Join(dir, "ref"), filepath.Join(dir, "ref-cache"))
	editConfig(t, refCfg, regularize...)
	start := time.Now()
	if out, err := trainCmd("--config", refCfg).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	full := time.Since(start)

	killDir := filepath.Join(dir, "killed")
	os.MkdirAll(killDir, 0o755)
	cfg := smokeConfig(t, killDir, data, filepath.Join(dir, "run"), filepath.Join(dir, "cache"))
	editConfig(t, cfg, regularize...)
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for attempt := 0; ; attempt++ {
		if attempt > 40 {
			t.Fatalf("not finished after %d attempts", attempt)
		}
		args := []string{"--config", cfg}
		if attempt > 0 {
			args = append(args, "--resume")
		}
		cmd := trainCmd(args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Kill the first runs at random moments within the first half of
		// a full run's duration (each resumed run gets further), then let
		// one finish.
		var timer <-chan time.Time
		if kills < 8 {
			timer = time.After(time.Duration((0.1 + 0.4*rng.Float64()) * float64(full)))
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("attempt %d: %v\n%s", attempt, err, out.String())
			}
			t.Logf("finished after %d kills (uninterrupted run: %s)", kills, full.Round(time.Millisecond))
			goto compare
		case <-timer:
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			kills++
		}
	}
compare:
	want, got := headFiles(t, filepath.Join(dir, "ref")), headFiles(t, filepath.Join(dir, "run"))
	if len(got) != len(want) {
		t.Fatalf("%d tensors after kills, %d uninterrupted", len(got), len(want))
	}
	for name, w := range want {
		if !bytes.Equal(got[name], w) {
			t.Errorf("%s differs from the uninterrupted run's", name)
		}
	}
	if kills == 0 {
		t.Error("the run was never killed")
	}
}

// TestInterruptAndResume stops training with SIGINT, as Ctrl-C does (and
// SIGHUP, as a closed terminal or ssh session does), and continues it with
// --resume to the end. Started with SIGHUP ignored (nohup), training goes
// on through a hangup.
func TestInterruptAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, tc := range []struct {
		name  string
		sig   os.Signal
		nohup bool // started with SIGHUP ignored
		twice bool // as a closed terminal sends it: the shell, then the kernel
	}{
		{"SIGINT", os.Interrupt, false, false},
		{"SIGHUP", syscall.SIGHUP, false, false},
		{"SIGHUP twice", syscall.SIGHUP, false, true},
		{"SIGHUP under nohup", syscall.SIGHUP, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, cfg := smokeRun(t, 8, 3, "epochs: 3", "epochs: 60")
			cmd := trainCmd("--config", cfg)
			if tc.nohup {
				// The shell's trap '' leaves the signal ignored across exec, as nohup does.
				cmd.Args = append([]string{"sh", "-c", `trap '' HUP; exec "$0" "$@"`}, cmd.Args...)
				cmd.Path = "/bin/sh"
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Signal once training is under way; under nohup, interrupt
			// once it has gone on through the hangup.
			sc := bufio.NewScanner(stdout)
			wentOn := false
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "epoch 2/60") {
					cmd.Process.Signal(tc.sig)
					if tc.twice {
						time.Sleep(5 * time.Millisecond)
						cmd.Process.Signal(tc.sig)
					}
					if !tc.nohup {
						break
					}
				}
				if strings.HasPrefix(sc.Text(), "epoch 4/60") {
					wentOn = true
					cmd.Process.Signal(os.Interrupt)
					break
				}
			}
			io.Copy(io.Discard, stdout)
			if tc.nohup && !wentOn {
				t.Errorf("started with SIGHUP ignored, training stopped at the hangup:\n%s", &stderr)
			}
			err = cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stderr.String(), "--resume") {
				t.Fatalf("interrupted run: %v\n%s", err, stderr.String())
			}
			code, out, errs := train(t, "--config", cfg, "--resume")
			if code != 0 || !strings.Contains(out, "epoch 60/60") || strings.Contains(out, "epoch 1/60") {
				t.Fatalf("resumed run: exit %d\n%s\n%s", code, out, errs)
			}
		})
	}
}

// TestBalancedClassWeights trains on imbalanced data with class_weight:
// balanced and checks the weights it reports against the class counts.
func TestBalancedClassWeights(t *testing.T) {
	_, data, cfg := smokeRun(t, 12, 4, "  epochs: 3\n", "  epochs: 1\n  class_weight: balanced\n")
	dogs, _ := filepath.Glob(filepath.Join(data, "dogs", "*"))
	for _, f := range dogs[4:] {
		os.Remove(f)
	}
	code, out, stderr := train(t, "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	var wc, wd float64
	var nc, nd int
	i := strings.Index(out, "class weights (balanced): ")
	if i < 0 {
		t.Fatalf("no class weights line:\n%s", out)
	}
	line, _, _ := strings.Cut(out[i:], "\n")
	if _, err := fmt.Sscanf(line, "class weights (balanced): cats %g (%d examples), dogs %g (%d examples)", &wc, &nc, &wd, &nd); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if nc <= nd || nd == 0 {
		t.Fatalf("%q: want more cats than dogs", line)
	}
	for _, c := range []struct {
		got float64
		n   int
	}{{wc, nc}, {wd, nd}} {
		if want := float64(nc+nd) / (2 * float64(c.n)); math.Abs(c.got-want) > 1e-3*want {
			t.Errorf("%q: weight %v for %d examples, want %v", line, c.got, c.n, want)
		}
	}
}

// TestFlipAugmentationRun trains with flip_augmentation: the mirrored
// images' features get a cache folder of their own beside the plain ones.
func TestFlipAugmentationRun(t *testing.T) {
	dir, _, cfg := smokeRun(t, 8, 5, "  workers: 2\n", "  workers: 2\n  flip_augmentation: true\n")
	cache := filepath.Join(dir, "cache")
	code, out, stderr := train(t, "--config", cfg)
	if code != 0 || !strings.Contains(out, "mirrored features ready") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 2 {
		t.Errorf("the feature cache holds %d folders, want 2 (plain and mirrored)", len(entries))
	}
}

// TestCropAugmentationRun trains with crop_augmentation (2 copies) and
// flip_augmentation: the plain, mirrored and each crop's features get a
// cache folder of their own, and another number of copies is refused on
// resume, as data settings are.
func TestCropAugmentationRun(t *testing.T) {
	dir, _, cfg := smokeRun(t, 8, 7, "  workers: 2\n", "  workers: 2\n  flip_augmentation: true\n  crop_augmentation: {copies: 2}\n")
	code, out, stderr := train(t, "--config", cfg)
	for _, want := range []string{"mirrored features ready", "crop 1/2 features ready", "crop 2/2 features ready", "epoch 3/3"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("no %q: exit %d\n%s\n%s", want, code, out, stderr)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "cache"))
	crops := 0
	for _, e := range entries {
		key, err := os.ReadFile(filepath.Join(dir, "cache", e.Name(), "key.json"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(key), `"random_resized_crop": "seed=3 copy=`) {
			crops++
		}
	}
	if len(entries) != 4 || crops != 2 {
		t.Errorf("the feature cache holds %d folders, %d of crops; want 4 (plain, mirrored, 2 crops)", len(entries), crops)
	}
	editConfig(t, cfg, "copies: 2", "copies: 3")
	if code, _, stderr := train(t, "--config", cfg, "--resume"); code != 1 || !strings.Contains(stderr, "data.crop_augmentation.copies changed from 2 to 3") {
		t.Fatalf("resume with another number of crops: exit %d: %s", code, stderr)
	}
}

// TestCallbacksWithoutValidation warns that the callbacks watching
// val_loss cannot run without a validation split, and trains anyway.
func TestCallbacksWithoutValidation(t *testing.T) {
	_, _, cfg := smokeRun(t, 8, 6, "validation_split: 0.25", "validation_split: 0",
		"  epochs: 3\n", "  epochs: 1\n  early_stopping: {patience: 2}\n  reduce_lr_on_plateau: {patience: 1}\n")
	code, out, stderr := train(t, "--config", cfg)
	if code != 0 || !strings.Contains(stderr, "train.early_stopping needs validation images") ||
		!strings.Contains(stderr, "train.reduce_lr_on_plateau needs validation images") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
}

func TestResumeRefusesChangedConfig(t *testing.T) {
	dir, data, cfg := smokeRun(t, 8, 1)
	// A broken file is skipped and reported, not fatal.
	os.WriteFile(filepath.Join(data, "cats", "broken.jpg"), []byte("not a jpeg"), 0o644)
	code, out, stderr := train(t, "--config", cfg)
	if code != 0 || !strings.Contains(out, "skipped 1 unusable files") || !strings.Contains(out, "best checkpoint: epoch ") ||
		!strings.Contains(out, "next: predict --checkpoint "+filepath.Join(dir, "run")+" IMAGE") {
		t.Fatalf("exit %d:\n%s\n%s", code, out, stderr)
	}
	if report, _ := os.ReadFile(filepath.Join(dir, "run", "skipped.jsonl")); !strings.Contains(string(report), "cats/broken.jpg") {
		t.Fatalf("skipped.jsonl does not list the broken file: %q", report)
	}
	for _, f := range []string{"metrics.jsonl", "metrics.png", "confusion.txt", "config.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, "run", f)); err != nil {
			t.Errorf("run folder lacks %s: %v", f, err)
		}
	}
	// The closing summary lists what the run folder holds.
	if i := strings.Index(out, "run folder "+filepath.Join(dir, "run")+": "); i < 0 {
		t.Errorf("no run folder line:\n%s", out)
	} else if line, _, _ := strings.Cut(out[i:], "\n"); !strings.Contains(line, "confusion.txt") || !strings.Contains(line, "metrics.csv") {
		t.Errorf("the run folder line leaves files out: %s", line)
	}
	// A fresh start over existing checkpoints is refused.
	if code, _, stderr := train(t, "--config", cfg); code != 1 || !strings.Contains(stderr, "--resume") {
		t.Fatalf("restart over a run: exit %d: %s", code, stderr)
	}
	// More epochs may be resumed.
	editConfig(t, cfg, "epochs: 3", "epochs: 4")
	code, out, stderr = train(t, "--config", cfg, "--resume")
	if code != 0 || !strings.Contains(out, "epoch 4/4") || strings.Contains(out, "epoch 1/4") ||
		!strings.Contains(out, "resuming with changed settings: train.epochs changed from 3 to 4") {
		t.Fatalf("resume with more epochs: exit %d\n%s\n%s", code, out, stderr)
	}
	// So may another learning rate, which then replaces the checkpoint's,
	// and weight decay.
	editConfig(t, cfg, "epochs: 4", "epochs: 5", "train:\n", "train:\n  adam: {lr: 0.0005, weight_decay: 0.01}\n")
	code, out, stderr = train(t, "--config", cfg, "--resume")
	if code != 0 || !strings.Contains(out, "train.adam.lr changed from 0.001 to 0.0005; train.adam.weight_decay changed from 0 to 0.01") {
		t.Fatalf("resume with another learning rate and weight decay: exit %d\n%s\n%s", code, out, stderr)
	}
	metrics, _ := os.ReadFile(filepath.Join(dir, "run", "metrics.jsonl"))
	lines := strings.Split(strings.TrimSpace(string(metrics)), "\n")
	if len(lines) != 5 || !strings.Contains(lines[3], `"lr":0.001,`) || !strings.Contains(lines[4], `"lr":0.0005,`) {
		t.Fatalf("metrics.jsonl after the new learning rate:\n%s", metrics)
	}
	// Another head may not.
	editConfig(t, cfg, "layers: [32, 16]", "layers: [32, 8]")
	code, _, stderr = train(t, "--config", cfg, "--resume")
	if code != 1 || !strings.Contains(stderr, "head.layers changed from [32 16] to [32 8]") {
		t.Fatalf("resume with another head: exit %d: %s", code, stderr)
	}
	// Nor dropout, a head setting.
	editConfig(t, cfg, "layers: [32, 8]", "layers: [32, 16]\n  dropout: 0.5")
	code, _, stderr = train(t, "--config", cfg, "--resume")
	if code != 1 || !strings.Contains(stderr, "head.dropout changed from 0 to 0.5") {
		t.Fatalf("resume with dropout: exit %d: %s", code, stderr)
	}
	// Nor label smoothing, a train: setting that changes what val_loss is.
	editConfig(t, cfg, "layers: [32, 16]\n  dropout: 0.5", "layers: [32, 16]")
	code, _, stderr = train(t, "--config", cfg, "--resume", "--set", "train.label_smoothing=0.1")
	if code != 1 || !strings.Contains(stderr, "train.label_smoothing changed from 0 to 0.1") {
		t.Fatalf("resume with label smoothing: exit %d: %s", code, stderr)
	}
}

// TestSet trains with settings overridden on the command line, then
// resumes from the run's own config.yaml, which records them.
func TestSet(t *testing.T) {
	dir, _, cfg := smokeRun(t, 6, 4)
	t.Chdir(dir)
	code, out, stderr := train(t, "--config", cfg, "--set", "run.dir=sweep/lr3", "--set", "train.epochs=1", "--set", "train.adam.lr=3e-4")
	if code != 0 || !strings.Contains(out, "epoch 1/1") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	saved := filepath.Join(dir, "sweep", "lr3", "config.yaml")
	raw, err := os.ReadFile(saved)
	if err != nil || !strings.Contains(string(raw), "epochs: 1\n") || !strings.Contains(string(raw), "lr: 0.0003\n") {
		t.Fatalf("the run's config.yaml does not record the sets (%v):\n%s", err, raw)
	}
	code, out, stderr = train(t, "--config", saved, "--resume", "--set", "train.epochs=2")
	if code != 0 || !strings.Contains(out, "epoch 2/2") || !strings.Contains(out, "train.epochs changed from 1 to 2") {
		t.Fatalf("resume from the run's config.yaml: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, _, stderr := train(t, "--config", cfg, "--set", "train.epochs=none"); code != 1 || !strings.Contains(stderr, `--set train.epochs=none: train.epochs: want a whole number`) {
		t.Fatalf("bad --set: exit %d: %s", code, stderr)
	}
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("data:\n  dir: x\n  colour: red\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "--config is required"},
		{[]string{"--config", filepath.Join(dir, "none.yaml")}, 1, "none.yaml"},
		{[]string{"--config", bad}, 1, "bad.yaml:3:3"},
	} {
		code, _, stderr := train(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "goroutine") {
			t.Errorf("train %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

func TestSummaryOfKerasOriginal(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("data:\n  dir: x\n  classes: [cats, dogs]\nbackbone:\n  random_width: 64\n"), 0o644)
	code, out, stderr := train(t, "--config", cfg, "--summary")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Layers: 181", "Trainable params: 4,723,202", "dense_4 (Dense)"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out[max(0, len(out)-600):])
		}
	}
	// With dropout, Keras lists a Dropout layer after each hidden Dense.
	os.WriteFile(cfg, []byte("data:\n  dir: x\n  classes: [cats, dogs]\nbackbone:\n  random_width: 64\nhead:\n  dropout: 0.5\n"), 0o644)
	code, out, stderr = train(t, "--config", cfg, "--summary")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Layers: 185", "Trainable params: 4,723,202", "dropout_3 (Dropout)"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary with dropout lacks %q:\n%s", want, out[max(0, len(out)-900):])
		}
	}
}

// TestSummaryOfShippedConfig: the shipped configuration names published
// weights (imagenet); its summary is the Keras original's without fetching
// them.
func TestSummaryOfShippedConfig(t *testing.T) {
	pretrainedtest.Isolate(t, "http://127.0.0.1:1/unreachable")
	code, out, stderr := train(t, "--config", filepath.Join("..", "..", "configs", "cats_dogs.yaml"), "--summary")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Layers: 181", "Trainable params: 4,723,202", "Non-trainable params: 23,587,712"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out[max(0, len(out)-600):])
		}
	}
}

// TestPublishedWeightsUnreachable: weights: imagenet where they cannot be
// fetched fails before extraction, naming the address asked and where the
// file may be put by hand.
func TestPublishedWeightsUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	pretrainedtest.Isolate(t, srv.URL+"/weights")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	if err := dataset.Synthesize(filepath.Join(dir, "data"), 2, 1); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cfg, []byte("data: {dir: data}\nbackbone: {weights: imagenet}\n"), 0o644)
	code, _, stderr := train(t, "--config", cfg)
	want := srv.URL + "/weights/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5: 404 Not Found (or download it yourself into " +
		filepath.Join(os.Getenv("XDG_CACHE_HOME"), "gotransfer", "weights", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5") +
		", or set GOTRANSFER_WEIGHTS_MIRROR to a server that has it)"
	if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "connecting to download pretrained weights") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and %q", code, stderr, want)
	}
}

// TestFindLR: --find-lr reports a range test and its files, and writes no
// checkpoint; it runs alone.
func TestFindLR(t *testing.T) {
	dir, _, cfg := smokeRun(t, 6, 4)
	t.Chdir(dir)
	code, out, stderr := train(t, "--config", cfg, "--set", "run.dir=finder", "--find-lr")
	if code != 0 || !strings.Contains(out, "learning-rate finder: ") || !strings.Contains(out, "lr_find.png") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	for _, f := range []string{"lr_find.png", "lr_find.csv"} {
		if _, err := os.Stat(filepath.Join(dir, "finder", f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "finder", "checkpoints")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the finder made checkpoints/ (%v)", err)
	}
	for _, args := range [][]string{{"--check-data", "--summary", "--check-data runs alone"}, {"--check-data", "--resume", "--check-data runs alone"},
		{"--summary", "--resume", "--summary runs alone"}} {
		if code, _, stderr := train(t, "--config", cfg, args[0], args[1]); code != 2 || !strings.Contains(stderr, args[2]) {
			t.Errorf("%s %s: exit %d: %s", args[0], args[1], code, stderr)
		}
	}
	if code, _, stderr := train(t, "--config", cfg, "--find-lr", "--resume"); code != 2 || !strings.Contains(stderr, "--find-lr runs alone") {
		t.Errorf("--find-lr --resume: exit %d: %s", code, stderr)
	}
}

// TestCheckDataInterrupted: --check-data stopped by Ctrl-C says it was
// interrupted, and prints no report: a report of the images decoded so
// far would read as the whole data's (a class with too few images, no validation
// images).
func TestCheckDataInterrupted(t *testing.T) {
	_, _, path := smokeRun(t, 6, 4)
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr strings.Builder
	err = checkDataset(ctx, cfg, &stdout, &stderr)
	if err == nil || !strings.HasPrefix(err.Error(), "interrupted") || stdout.Len() > 0 {
		t.Errorf("--check-data interrupted: %v, printed:\n%s", err, stdout.String())
	}
}
