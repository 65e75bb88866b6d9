package pretrained

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotransfer/internal/filelock"
)

// server publishes content at /w.h5 and counts requests; a nil handle
// serves it properly (http.ServeContent: ranges honoured).
type server struct {
	*httptest.Server
	content  []byte
	requests atomic.Int32
	ranges   []string
	mu       sync.Mutex
	handle   func(w http.ResponseWriter, r *http.Request, content []byte)
}

func newServer(t *testing.T, content []byte) *server {
	s := &server{content: content}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		h := s.handle
		s.mu.Unlock()
		if r.URL.Path != "/w.h5" {
			http.NotFound(w, r)
			return
		}
		if h != nil {
			h(w, r, s.content)
			return
		}
		http.ServeContent(w, r, "w.h5", time.Time{}, bytes.NewReader(s.content))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) setHandler(h func(w http.ResponseWriter, r *http.Request, content []byte)) {
	s.mu.Lock()
	s.handle = h
	s.mu.Unlock()
}

func testContent(n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func md5Hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func testFetcher(t *testing.T, s *server) (*Fetcher, File) {
	f := &Fetcher{Dir: filepath.Join(t.TempDir(), "cache"), Client: s.Client(), Log: slog.New(slog.DiscardHandler)}
	return f, File{Tag: "imagenet", Variant: "keras", Name: "w.h5", URL: s.URL + "/w.h5", MD5: md5Hex(s.content)}
}

func checkFetched(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, not the published %d", path, len(got), len(want))
	}
	if _, err := os.Stat(path + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.part left behind (%v)", path, err)
	}
}

// TestFetchDownloadsOnce: the first Fetch downloads into Dir under the
// published name, the next ones use that copy.
func TestFetchDownloadsOnce(t *testing.T) {
	s := newServer(t, testContent(300_000))
	f, file := testFetcher(t, s)
	for range 2 {
		p, err := f.Fetch(context.Background(), file)
		if err != nil {
			t.Fatal(err)
		}
		if p != filepath.Join(f.Dir, "w.h5") {
			t.Errorf("path %s, want %s", p, filepath.Join(f.Dir, "w.h5"))
		}
		checkFetched(t, p, s.content)
	}
	if n := s.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestFetchResumes: a download cut off half-way keeps what arrived, and
// the next Fetch asks for the rest only; a server that ignores the range
// sends everything again, which is fine too.
func TestFetchResumes(t *testing.T) {
	for _, ignoresRanges := range []bool{false, true} {
		s := newServer(t, testContent(400_000))
		f, file := testFetcher(t, s)
		s.setHandler(func(w http.ResponseWriter, _ *http.Request, content []byte) {
			w.Header().Set("Content-Length", "400000")
			w.Write(content[:150_000]) // then the handler returns: the connection is cut
		})
		_, err := f.Fetch(context.Background(), file)
		if err == nil || !strings.Contains(err.Error(), "run again to resume") {
			t.Fatalf("a cut download: %v, want an error saying to run again", err)
		}
		part := filepath.Join(f.Dir, "w.h5.part")
		if st, err := os.Stat(part); err != nil || st.Size() != 150_000 {
			t.Fatalf("the partial download: %v, %v; want 150000 bytes kept", st, err)
		}
		s.setHandler(nil)
		if ignoresRanges {
			s.setHandler(func(w http.ResponseWriter, _ *http.Request, content []byte) { w.Write(content) })
		}
		p, err := f.Fetch(context.Background(), file)
		if err != nil {
			t.Fatal(err)
		}
		checkFetched(t, p, s.content)
		if got := s.ranges[len(s.ranges)-1]; got != "bytes=150000-" {
			t.Errorf("ignores ranges %v: the second request asked for %q, want the rest", ignoresRanges, got)
		}
	}
}

// TestFetchRefusesWrongContent: a download whose digest is not the
// published one is removed, and the error says so.
func TestFetchRefusesWrongContent(t *testing.T) {
	s := newServer(t, testContent(10_000))
	f, file := testFetcher(t, s)
	file.MD5 = md5Hex([]byte("something else"))
	_, err := f.Fetch(context.Background(), file)
	if err == nil || !strings.Contains(err.Error(), "not the published "+file.MD5) || !strings.Contains(err.Error(), s.URL) {
		t.Fatalf("wrong content: %v", err)
	}
	left, _ := os.ReadDir(f.Dir)
	for _, e := range left {
		if e.Name() != "w.h5.lock" {
			t.Errorf("%s left in the cache", e.Name())
		}
	}
	// A torch.hub-style check: the sha256's prefix.
	sum := sha256.Sum256(s.content)
	file.MD5, file.SHA256Prefix = "", hex.EncodeToString(sum[:])[:8]
	if p, err := f.Fetch(context.Background(), file); err != nil {
		t.Fatal(err)
	} else {
		checkFetched(t, p, s.content)
	}
	// A partial download that is not a prefix of the file: the range
	// request is answered 416, the download starts again.
	os.Remove(filepath.Join(f.Dir, "w.h5"))
	os.WriteFile(filepath.Join(f.Dir, "w.h5.part"), make([]byte, 20_000), 0o644)
	if p, err := f.Fetch(context.Background(), file); err != nil {
		t.Fatal(err)
	} else {
		checkFetched(t, p, s.content)
	}
}

// TestFetchFindsKerasCopy: a file Keras (or torch) downloaded is used
// where it is; one with another digest is passed over.
func TestFetchFindsKerasCopy(t *testing.T) {
	s := newServer(t, testContent(5_000))
	f, file := testFetcher(t, s)
	keras := t.TempDir()
	f.Search = []string{filepath.Join(t.TempDir(), "missing"), keras}
	os.WriteFile(filepath.Join(keras, "w.h5"), s.content, 0o644)
	p, err := f.Fetch(context.Background(), file)
	if err != nil || p != filepath.Join(keras, "w.h5") || s.requests.Load() != 0 {
		t.Fatalf("Fetch with Keras' copy: %s, %v, %d requests; want Keras' copy and no request", p, err, s.requests.Load())
	}
	os.WriteFile(filepath.Join(keras, "w.h5"), []byte("truncated"), 0o644)
	p, err = f.Fetch(context.Background(), file)
	if err != nil || p != filepath.Join(f.Dir, "w.h5") || s.requests.Load() != 1 {
		t.Fatalf("Fetch with a bad Keras copy: %s, %v, %d requests; want a download", p, err, s.requests.Load())
	}
}

// TestFetchErrors: a missing file names the address and where to put the
// file by hand; a mirror is asked instead of the publisher; a cancelled
// context and a stalled server end the download.
func TestFetchErrors(t *testing.T) {
	s := newServer(t, testContent(5_000))
	f, file := testFetcher(t, s)
	file.URL = s.URL + "/gone.h5"
	_, err := f.Fetch(context.Background(), file)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "gone.h5") || !strings.Contains(err.Error(), filepath.Join(f.Dir, "w.h5")) {
		t.Errorf("missing file: %v", err)
	}
	f.Mirror = s.URL + "/"
	if p, err := f.Fetch(context.Background(), file); err != nil {
		t.Errorf("from the mirror: %v", err)
	} else {
		checkFetched(t, p, s.content)
	}

	f2, file2 := testFetcher(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f2.Fetch(ctx, file2); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	release := make(chan struct{})
	defer close(release)
	s.setHandler(func(w http.ResponseWriter, r *http.Request, content []byte) {
		w.Header().Set("Content-Length", "5000")
		w.Write(content[:100])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	f2.Stall = 200 * time.Millisecond
	start := time.Now()
	_, err = f2.Fetch(context.Background(), file2)
	if err == nil || !strings.Contains(err.Error(), "no data received for too long") || time.Since(start) > 5*time.Second {
		t.Errorf("stalled server: %v after %v", err, time.Since(start))
	}
}

// TestFetchConcurrent: fetches of one file at once download it once.
func TestFetchConcurrent(t *testing.T) {
	s := newServer(t, testContent(2_000_000))
	f, file := testFetcher(t, s)
	var wg sync.WaitGroup
	paths := make([]string, 4)
	errs := make([]error, 4)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := *f // another Fetcher, as another process has
			paths[i], errs[i] = g.Fetch(context.Background(), file)
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		checkFetched(t, paths[i], s.content)
	}
	if n := s.requests.Load(); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		name    string
		variant string
		top     bool
		want    string // file name, or an error's text
	}{
		{"imagenet", "keras", false, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"},
		{"imagenet", "keras", true, "resnet50_weights_tf_dim_ordering_tf_kernels.h5"},
		{"imagenet", "torchvision", false, "resnet50-11ad3fa6.pth"},
		{"IMAGENET1K_V1", "torchvision", true, "resnet50-0676ba61.pth"},
		{"IMAGENET1K_V2", "torchvision", false, "resnet50-11ad3fa6.pth"},
		{"imagenet", "", true, "resnet50_weights_tf_dim_ordering_tf_kernels.h5"},
		{"IMAGENET1K_V1", "", false, "resnet50-0676ba61.pth"},
		{"IMAGENET1K_V1", "keras", false, `"IMAGENET1K_V1": none for the keras variant (it has imagenet)`},
		{"imagenet21k", "torchvision", false, "(it has imagenet, IMAGENET1K_V1, IMAGENET1K_V2)"},
	} {
		got, err := Lookup(tc.name, tc.variant, tc.top)
		if err != nil {
			got.Name = err.Error()
		}
		if !strings.Contains(got.Name, tc.want) {
			t.Errorf("Lookup(%s, %s, top %v) = %s, want %s", tc.name, tc.variant, tc.top, got.Name, tc.want)
		}
		if err == nil && (!strings.HasSuffix(got.URL, "/"+got.Name) || got.MD5 == "" && got.SHA256Prefix == "") {
			t.Errorf("%s: URL %s, digests %q %q", got.Name, got.URL, got.MD5, got.SHA256Prefix)
		}
	}
	for s, want := range map[string]bool{"imagenet": true, "IMAGENET1K_V2": true, "imagenet.h5": false, "": false, "../weights/x.h5": false} {
		if IsName(s) != want {
			t.Errorf("IsName(%q) = %v", s, !want)
		}
	}
}

// TestDefaultFetcherFolders: the cache folder and Keras' and torch's
// download folders follow their environment variables.
func TestDefaultFetcherFolders(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	t.Setenv("KERAS_HOME", "/k")
	t.Setenv("TORCH_HOME", "")
	t.Setenv(MirrorEnv, "https://mirror.example/w")
	f := DefaultFetcher()
	if f.Dir != "/x/cache/gotransfer/weights" || strings.Join(f.Search, " ") != "/k/models /x/cache/torch/hub/checkpoints" || f.Mirror != "https://mirror.example/w" {
		t.Errorf("DefaultFetcher: dir %s, search %q, mirror %s", f.Dir, f.Search, f.Mirror)
	}
	t.Setenv("TORCH_HOME", "/t")
	if f := DefaultFetcher(); f.Search[1] != "/t/hub/checkpoints" {
		t.Errorf("with TORCH_HOME: search %q", f.Search)
	}
}

// TestFetchRecovers: a web page sent instead of the file (a proxy's login
// page) is refused and keeps the partial download; a partial download that
// is whole already (killed before its rename) is installed without a
// request; one whose start is not the file's is downloaded again in the
// same call.
func TestFetchRecovers(t *testing.T) {
	s := newServer(t, testContent(300_000))
	f, file := testFetcher(t, s)
	part := filepath.Join(f.Dir, "w.h5.part")
	os.MkdirAll(f.Dir, 0o755)
	os.WriteFile(part, s.content[:100_000], 0o644)
	s.setHandler(func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<html>please log in</html>"))
	})
	if _, err := f.Fetch(context.Background(), file); err == nil || !strings.Contains(err.Error(), "sent a web page") {
		t.Errorf("a web page: %v", err)
	}
	if st, err := os.Stat(part); err != nil || st.Size() != 100_000 {
		t.Errorf("the partial download after a web page: %v, %v; want it kept", st, err)
	}
	s.setHandler(nil)

	os.WriteFile(part, s.content, 0o644)
	n := s.requests.Load()
	if p, err := f.Fetch(context.Background(), file); err != nil || s.requests.Load() != n {
		t.Errorf("a whole partial download: %v, %d requests", err, s.requests.Load()-n)
	} else {
		checkFetched(t, p, s.content)
	}

	os.Remove(filepath.Join(f.Dir, "w.h5"))
	bad := append([]byte(nil), s.content[:50_000]...)
	bad[10] ^= 1
	os.WriteFile(part, bad, 0o644)
	if p, err := f.Fetch(context.Background(), file); err != nil {
		t.Errorf("a partial download with a wrong start: %v", err)
	} else {
		checkFetched(t, p, s.content)
	}
}

// TestFetchInterrupted: a cancelled download says it was interrupted
// (ErrInterrupted, and the context's error) and keeps what arrived.
func TestFetchInterrupted(t *testing.T) {
	s := newServer(t, testContent(200_000))
	f, file := testFetcher(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	s.setHandler(func(w http.ResponseWriter, r *http.Request, content []byte) {
		w.Header().Set("Content-Length", "200000")
		w.Write(content[:70_000])
		w.(http.Flusher).Flush()
		time.Sleep(200 * time.Millisecond) // the client writes what arrived
		cancel()
		<-r.Context().Done()
	})
	_, err := f.Fetch(ctx, file)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled download: %v", err)
	}
	if st, err := os.Stat(filepath.Join(f.Dir, "w.h5.part")); err != nil || st.Size() != 70_000 {
		t.Errorf("the partial download: %v, %v; want 70000 bytes kept", st, err)
	}
}

// TestFetchSaysItWaits: a Fetch that waits for another's download says so.
func TestFetchSaysItWaits(t *testing.T) {
	s := newServer(t, testContent(1000))
	f, file := testFetcher(t, s)
	var logged bytes.Buffer
	f.Log = slog.New(slog.NewTextHandler(&logged, nil))
	os.MkdirAll(f.Dir, 0o755)
	unlock, err := filelock.Lock(context.Background(), filepath.Join(f.Dir, "w.h5.lock"))
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(300*time.Millisecond, unlock)
	if _, err := f.Fetch(context.Background(), file); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "waiting for another process") {
		t.Errorf("log:\n%s", logged.String())
	}
}
