package pretrained

import (
	"cmp"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gotransfer/internal/filelock"
)

// File is a published ResNet50 weights file.
type File struct {
	// Tag is the name it goes by: "imagenet", "IMAGENET1K_V1", ...
	Tag string
	// Variant is the layout, as resnet.Variant and backbone.variant name
	// it: "keras" or "torchvision".
	Variant string
	// Top says the file holds the ImageNet classifier too.
	Top bool
	// Name is the file's published name, which it keeps in the cache.
	Name string
	URL  string
	// MD5 is the hex md5 of the file (Keras' check), or SHA256Prefix the
	// start of its hex sha256 (torch.hub's check, from the file name).
	MD5, SHA256Prefix string
}

const (
	kerasBase       = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
	torchvisionBase = "https://download.pytorch.org/models/"
)

// Files are the published weights a name can stand for.
var Files = []File{
	{Tag: "imagenet", Variant: "keras", Top: true, Name: "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
		URL: kerasBase + "resnet50_weights_tf_dim_ordering_tf_kernels.h5", MD5: "2cb95161c43110f7111970584f804107"},
	{Tag: "imagenet", Variant: "keras", Name: "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
		URL: kerasBase + "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", MD5: "4d473c1dd8becc155b73f8504c6f6626"},
	{Tag: "IMAGENET1K_V1", Variant: "torchvision", Top: true, Name: "resnet50-0676ba61.pth",
		URL: torchvisionBase + "resnet50-0676ba61.pth", SHA256Prefix: "0676ba61"},
	{Tag: "IMAGENET1K_V2", Variant: "torchvision", Top: true, Name: "resnet50-11ad3fa6.pth",
		URL: torchvisionBase + "resnet50-11ad3fa6.pth", SHA256Prefix: "11ad3fa6"},
}

// IsName reports whether s names published weights ("imagenet",
// "IMAGENET1K_V1", "IMAGENET1K_V2") rather than a file.
func IsName(s string) bool {
	for _, f := range Files {
		if s == f.Tag {
			return true
		}
	}
	return false
}

// Lookup returns the file name stands for with a variant ("" for the
// name's own: keras for "imagenet"): with top, one holding the ImageNet
// classifier; without, the smallest that will do.
func Lookup(name, variant string, top bool) (File, error) {
	if variant == "" {
		for _, f := range Files {
			if f.Tag == name {
				variant = f.Variant
				break
			}
		}
	}
	if variant == "torchvision" && name == "imagenet" {
		name = "IMAGENET1K_V2" // torchvision's DEFAULT
	}
	var found *File
	for i, f := range Files {
		if f.Tag != name || f.Variant != variant || top && !f.Top {
			continue
		}
		if found == nil || found.Top && !f.Top {
			found = &Files[i]
		}
	}
	if found == nil {
		names := []string{"imagenet"}
		for _, f := range Files {
			if f.Variant == variant && !slices.Contains(names, f.Tag) {
				names = append(names, f.Tag)
			}
		}
		return File{}, fmt.Errorf("pretrained weights %q: none for the %s variant (it has %s)", name, variant, strings.Join(names, ", "))
	}
	return *found, nil
}

// Fetcher finds published weights on this machine or downloads them.
type Fetcher struct {
	// Dir is where downloads go, and the first place looked in.
	Dir string
	// Search lists other folders that may hold a file under its published
	// name (Keras' and torch's caches).
	Search []string
	// Mirror, if set, replaces the publisher's address: the file is fetched
	// from Mirror/<published name>.
	Mirror string
	Client *http.Client
	// Stall ends a download that receives nothing for this long (so it can
	// be resumed); 0 means a minute.
	Stall time.Duration
	// Log receives progress; nil means slog.Default().
	Log *slog.Logger
}

// errStalled ends a download that receives nothing for Fetcher.Stall.
var errStalled = errors.New("no data received for too long")

// MirrorEnv is the environment variable that sets DefaultFetcher's Mirror.
const MirrorEnv = "GOTRANSFER_WEIGHTS_MIRROR"

// DefaultFetcher downloads into the user's cache folder
// (os.UserCacheDir()/gotransfer/weights) and looks in Keras' and torch's
// download folders too; see the package documentation.
func DefaultFetcher() *Fetcher {
	f := &Fetcher{Mirror: os.Getenv(MirrorEnv), Client: &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: time.Minute, TLSHandshakeTimeout: 30 * time.Second}}}
	if dir, err := os.UserCacheDir(); err == nil {
		f.Dir = filepath.Join(dir, "gotransfer", "weights")
	}
	home, _ := os.UserHomeDir()
	if k := os.Getenv("KERAS_HOME"); k != "" {
		f.Search = append(f.Search, filepath.Join(k, "models"))
	} else if home != "" {
		f.Search = append(f.Search, filepath.Join(home, ".keras", "models"))
	}
	switch t, x := os.Getenv("TORCH_HOME"), os.Getenv("XDG_CACHE_HOME"); {
	case t != "":
		f.Search = append(f.Search, filepath.Join(t, "hub", "checkpoints"))
	case x != "":
		f.Search = append(f.Search, filepath.Join(x, "torch", "hub", "checkpoints"))
	case home != "":
		f.Search = append(f.Search, filepath.Join(home, ".cache", "torch", "hub", "checkpoints"))
	}
	return f
}

// Path returns the local path of the weights name stands for with a variant
// (see Lookup), downloading them with DefaultFetcher if this machine does
// not have them.
func Path(ctx context.Context, name, variant string, top bool) (string, error) {
	file, err := Lookup(name, variant, top)
	if err != nil {
		return "", err
	}
	return DefaultFetcher().Fetch(ctx, file)
}

func (f *Fetcher) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.Default()
}

// Fetch returns the path of file on this machine: a copy of it found in
// f.Dir or f.Search, else one downloaded into f.Dir. Either is checked
// against the published digest.
func (f *Fetcher) Fetch(ctx context.Context, file File) (string, error) {
	for _, dir := range append([]string{f.Dir}, f.Search...) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, file.Name)
		switch err := verify(p, file); {
		case err == nil:
			return p, nil
		case !errors.Is(err, os.ErrNotExist):
			f.log().Warn("passing over a copy of the weights", "path", p, "reason", err)
		}
	}
	if f.Dir == "" {
		return "", fmt.Errorf("pretrained weights %s: no cache folder to download into (no home folder?): download %s and give its path", file.Tag, file.URL)
	}
	if err := os.MkdirAll(f.Dir, 0o777); err != nil {
		return "", fmt.Errorf("pretrained weights %s: %w", file.Tag, err)
	}
	final := filepath.Join(f.Dir, file.Name)
	unlock, ok, err := filelock.TryLock(final + ".lock")
	if err == nil && !ok {
		f.log().Info("waiting for another process downloading the same weights", "file", final)
		unlock, err = filelock.Lock(ctx, final+".lock")
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("pretrained weights %s: %w: %w", file.Tag, ErrInterrupted, err)
		}
		return "", fmt.Errorf("pretrained weights %s: %w", file.Tag, err)
	}
	defer unlock()
	if verify(final, file) == nil { // another process fetched it meanwhile
		return final, nil
	}
	if err := f.download(ctx, file, final, true); err != nil {
		return "", err
	}
	return final, nil
}

// ErrInterrupted is wrapped by Fetch's error when its context ended the
// download: what arrived is kept, and the next Fetch resumes from there.
var ErrInterrupted = errors.New("download interrupted (the next run resumes it)")

// download fetches file into final via final.part, resuming what an
// earlier attempt left there (with resume), and renames it into place once
// its digest is the published one.
func (f *Fetcher) download(ctx context.Context, file File, final string, resume bool) error {
	url := file.URL
	if f.Mirror != "" {
		url = strings.TrimSuffix(f.Mirror, "/") + "/" + file.Name
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("pretrained weights %s: download %s: %s (or download it yourself into %s, or set %s to a server that has it)", file.Tag, url, fmt.Sprintf(format, args...), final, MirrorEnv)
	}
	part := final + ".part"
	have := int64(0)
	if st, err := os.Stat(part); err == nil && resume {
		have = st.Size()
	}
	if have > 0 && verify(part, file) == nil {
		// Whole already: killed between the download and the rename.
		return f.install(part, final, have)
	}
	stall := f.Stall
	if stall <= 0 {
		stall = time.Minute
	}
	dl, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()
	interrupted := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("pretrained weights %s: %w: %w", file.Tag, ErrInterrupted, ctx.Err())
		}
		return err
	}
	req, err := http.NewRequestWithContext(dl, http.MethodGet, url, nil)
	if err != nil {
		return fail("%v", err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	// Said before the request: a server that never answers is waited on
	// for a minute.
	f.log().Info("connecting to download pretrained weights", "url", url)
	resp, err := client.Do(req)
	if err != nil {
		return interrupted(fail("%v", cmp.Or(context.Cause(dl), err)))
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") {
		// A login page, a proxy's error page: not the file, whatever the
		// status says; what was downloaded is kept.
		return fail("the server sent a web page (%s, %s), not the file", resp.Status, ct)
	}
	flags := os.O_WRONLY | os.O_CREATE
	total := resp.ContentLength
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0 && strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", have)):
		flags |= os.O_APPEND
		if total >= 0 {
			total += have
		}
		f.log().Info("resuming the download", "url", url, "have_MB", fmt.Sprintf("%.1f", mb(have)))
	case have > 0 && (resp.StatusCode == http.StatusRequestedRangeNotSatisfiable || resp.StatusCode == http.StatusPartialContent):
		// What was kept is not a prefix the server will continue: start
		// again.
		resp.Body.Close()
		return f.download(ctx, file, final, false)
	case resp.StatusCode == http.StatusOK:
		flags |= os.O_TRUNC
		have = 0
	default:
		return fail("%s", resp.Status)
	}
	out, err := os.OpenFile(part, flags, 0o666)
	if err != nil {
		return fail("%v", err)
	}
	if have == 0 {
		f.log().Info("downloading pretrained weights", "url", url, "MB", fmt.Sprintf("%.1f", mb(total)), "into", final)
	}
	n, err := io.Copy(out, &progress{r: resp.Body, done: have, total: total, log: f.log(), name: file.Name, last: time.Now(),
		alive: func() { watchdog.Reset(stall) }})
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return interrupted(fail("%v after %.1f MB (run again to resume)", cmp.Or(context.Cause(dl), err), mb(have+n)))
	}
	if total >= 0 && have+n != total {
		return fail("%.1f of %.1f MB arrived (run again to resume)", mb(have+n), mb(total))
	}
	if err := verify(part, file); err != nil {
		if have > 0 {
			// The part kept from before was not the file's start: once
			// more from the beginning.
			f.log().Warn("the resumed download is not the published file: downloading it again", "reason", err)
			return f.download(ctx, file, final, false)
		}
		os.Remove(part)
		return fail("%v: removed it; run again to download it anew", err)
	}
	return f.install(part, final, have+n)
}

// install renames a verified download into place.
func (f *Fetcher) install(part, final string, size int64) error {
	if err := os.Rename(part, final); err != nil {
		return fmt.Errorf("pretrained weights: %w", err)
	}
	f.log().Info("downloaded pretrained weights", "path", final, "MB", fmt.Sprintf("%.1f", mb(size)))
	return nil
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// verify checks the file at path against file's published digest; a
// missing file gives an error wrapping os.ErrNotExist.
func verify(path string, file File) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	var h hash.Hash
	want := file.MD5
	if want != "" {
		h = md5.New()
	} else {
		h, want = sha256.New(), file.SHA256Prefix
	}
	if _, err := io.Copy(h, in); err != nil {
		return err
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want == "" || !strings.HasPrefix(got, want) {
		if file.MD5 != "" {
			return fmt.Errorf("md5 %s, not the published %s", got, want)
		}
		return fmt.Errorf("sha256 %s (first 16 digits), not the published %s (a prefix)", got[:16], want)
	}
	return nil
}

// progress logs a download's progress every few seconds.
type progress struct {
	r           io.Reader
	done, total int64
	log         *slog.Logger
	name        string
	last        time.Time
	alive       func() // called for every read that brings data
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if n > 0 {
		p.alive()
	}
	if time.Since(p.last) >= 3*time.Second {
		p.last = time.Now()
		args := []any{"file", p.name, "MB", fmt.Sprintf("%.1f", mb(p.done))}
		if p.total > 0 {
			args = append(args, "of", fmt.Sprintf("%.1f", mb(p.total)))
		}
		p.log.Info("downloading", args...)
	}
	return n, err
}
