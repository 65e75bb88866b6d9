package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gotransfer/pipeline"
)

// post sends body to url with the content type and decodes the JSON answer.
func post(t *testing.T, url, contentType string, body []byte) (status int, p Prediction, errMsg string) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json: %s", ct, raw)
	}
	var answer struct {
		Prediction
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatalf("status %d, answer %s: %v", resp.StatusCode, raw, err)
	}
	return resp.StatusCode, answer.Prediction, answer.Error
}

// form returns a multipart form holding the given files (name -> content)
// and a plain field, and its content type.
func form(t *testing.T, files map[string][]byte) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("note", "a plain field, ignored")
	for name, data := range files {
		fw, err := mw.CreateFormFile("image", name)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(data)
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// same reports whether a prediction is probs (within tol) by class name.
func same(p Prediction, classes []string, probs []float32, tol float64) bool {
	if len(p.Probabilities) != len(classes) {
		return false
	}
	best := 0
	for i, cp := range p.Probabilities {
		if cp.Class != classes[i] || math.Abs(float64(cp.Probability-probs[i])) > tol {
			return false
		}
		if probs[i] > probs[best] {
			best = i
		}
	}
	return p.Predicted == classes[best]
}

// tinyServer trains a tiny run and serves it on a test HTTP server; it
// returns the server, the test server, the classifier, the run's data
// folder, and classify, which starts the classifying goroutine (tests that
// queue requests first start it later). All is closed when the test ends.
func tinyServer(t *testing.T, maxBatch int, maxBytes int64) (s *server, ts *httptest.Server, c *pipeline.Classifier, data string, classify func()) {
	t.Helper()
	dir := t.TempDir()
	data = trainTinyRun(t, dir)
	c, err := pipeline.LoadClassifier(filepath.Join(dir, "run"), pipeline.ClassifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s = newServer(c, maxBatch, maxBytes)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // after the test server's Close, which waits for the requests
	ts = httptest.NewServer(s.handler())
	t.Cleanup(ts.Close)
	var once sync.Once
	classify = func() { once.Do(func() { go s.run(ctx) }) }
	// First of all (cleanups run last first): a test that failed before
	// starting the classifier must not leave requests waiting forever.
	t.Cleanup(classify)
	return s, ts, c, data, classify
}

// TestServer answers single requests as Predict does, and bad requests
// with a clear error and the right status.
func TestServer(t *testing.T) {
	_, ts, c, data, classify := tinyServer(t, 4, 1<<20)
	classify()

	for _, path := range []string{filepath.Join(data, "cats", "cat_00000.png"), filepath.Join(data, "dogs", "dog_00003.jpg")} {
		img, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.Predict(path)
		if err != nil {
			t.Fatal(err)
		}
		// A lone request is a batch of one: exactly Predict's numbers.
		if status, p, msg := post(t, ts.URL+"/predict", "image/png", img); status != 200 || !same(p, c.Classes, want, 0) {
			t.Errorf("%s as the body: status %d, %+v (%s), want %v", path, status, p, msg, want)
		}
		body, ct := form(t, map[string][]byte{filepath.Base(path): img})
		if status, p, msg := post(t, ts.URL+"/predict", ct, body); status != 200 || !same(p, c.Classes, want, 0) {
			t.Errorf("%s in a form: status %d, %+v (%s), want %v", path, status, p, msg, want)
		}
		// ?top=1: the most probable class alone.
		best := 0
		if want[1] > want[0] {
			best = 1
		}
		status, p, msg := post(t, ts.URL+"/predict?top=1", "image/png", img)
		if status != 200 || len(p.Probabilities) != 1 || p.Probabilities[0].Class != c.Classes[best] || p.Probabilities[0].Probability != want[best] || p.Predicted != c.Classes[best] {
			t.Errorf("%s ?top=1: status %d, %+v (%s), want %s %v", path, status, p, msg, c.Classes[best], want[best])
		}
	}
	if status, _, msg := post(t, ts.URL+"/predict?top=0", "image/png", nil); status != 400 || !strings.Contains(msg, "top=0") {
		t.Errorf("?top=0: status %d, %q", status, msg)
	}

	img, _ := os.ReadFile(filepath.Join(data, "cats", "cat_00001.png"))
	twoFiles, twoCT := form(t, map[string][]byte{"a.png": img, "b.png": img})
	noFile, noCT := form(t, nil)
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		status            int
		msg               string
	}{
		{"not an image", "image/jpeg", []byte("not a jpeg at all"), 400, "not a supported image format"},
		{"empty", "image/jpeg", nil, 400, "no image"},
		{"two files", twoCT, twoFiles, 400, "more than one file"},
		{"no file", noCT, noFile, 400, "holds no file"},
		{"too large", "image/png", make([]byte, 1<<20+1), 413, "larger than 1048576 bytes"},
	} {
		if status, _, msg := post(t, ts.URL+"/predict", tc.contentType, tc.body); status != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: status %d, error %q, want %d and %q", tc.name, status, msg, tc.status, tc.msg)
		}
	}

	// Wrong methods and paths answer JSON errors too, as a client parsing
	// {"error": ...} expects of every failure.
	for _, tc := range []struct {
		method, path string
		status       int
		allow, msg   string
	}{
		{"GET", "/predict", 405, "POST", "GET /predict: use POST"},
		{"DELETE", "/info", 405, "GET, HEAD", "DELETE /info: use GET"},
		{"GET", "/nothing", 404, "", "no /nothing here: POST an image to /predict or /explain"},
	} {
		req, _ := http.NewRequest(tc.method, ts.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		derr := json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow || derr != nil || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s %s: %d (Allow %q), error %q (%v); want %d (Allow %q) and %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), e.Error, derr, tc.status, tc.allow, tc.msg)
		}
	}
	resp, err := http.Get(ts.URL + "/info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Classes   []string `json:"classes"`
		ImageSize []int    `json:"image_size"`
		TTA       *bool    `json:"tta"`
	}
	err = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if err != nil || strings.Join(info.Classes, ",") != "cats,dogs" || len(info.ImageSize) != 2 || info.ImageSize[0] != 64 || info.TTA == nil || *info.TTA {
		t.Errorf("GET /info: %+v, %v", info, err)
	}
}

// TestServerBatches classifies requests waiting together in one backbone
// pass, each answer going to its own request.
func TestServerBatches(t *testing.T) {
	const n = 6
	s, ts, c, data, classify := tinyServer(t, 8, maxUpload)

	paths, _ := filepath.Glob(filepath.Join(data, "*", "*.png"))
	paths = paths[len(paths)/2-n/2 : len(paths)/2+n/2] // cats and dogs
	want := make([][]float32, n)
	for i, p := range paths {
		var err error
		if want[i], err = c.Predict(p); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	got := make([]Prediction, n)
	for i, p := range paths {
		img, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			status, pred, msg := post(t, ts.URL+"/predict", "image/png", img)
			if status != 200 {
				t.Errorf("%s: status %d: %s", p, status, msg)
			}
			got[i] = pred
		})
	}
	// Every request decoded and waiting before the classifier starts (which
	// it does before any failure is reported: the requests must end).
	for deadline := time.Now().Add(10 * time.Second); len(s.queue) < n && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	queued := len(s.queue)
	classify()
	wg.Wait()
	if queued != n {
		t.Fatalf("%d of %d requests queued", queued, n)
	}
	if b := s.batches.Load(); b != 1 {
		t.Errorf("%d backbone passes for %d waiting requests, want 1", b, n)
	}
	for i := range paths {
		// Another batch size may change the last bits of the features.
		if !same(got[i], c.Classes, want[i], 1e-5) {
			t.Errorf("%s: %+v, want %v", paths[i], got[i], want[i])
		}
	}
}

// TestServerBoundsRequests reads and decodes no more requests at a time
// than its slots: the others wait, unread, until the first are answered.
func TestServerBoundsRequests(t *testing.T) {
	s, ts, _, data, classify := tinyServer(t, 1, maxUpload)
	img, err := os.ReadFile(filepath.Join(data, "cats", "cat_00000.png"))
	if err != nil {
		t.Fatal(err)
	}
	slots := cap(s.active)
	n := slots + 3
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if status, _, msg := post(t, ts.URL+"/predict", "image/png", img); status != 200 {
				t.Errorf("status %d: %s", status, msg)
			}
		})
	}
	// The classifier is not running: the requests holding the slots wait.
	// (It is started before any failure is reported, or the waiting
	// requests would never end.)
	for deadline := time.Now().Add(10 * time.Second); (len(s.active) < slots || s.decoded.Load() < int64(slots)) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	taken, early := len(s.active), s.decoded.Load()
	classify()
	wg.Wait()
	if taken != slots || early != int64(slots) {
		t.Fatalf("%d of %d slots taken, %d images decoded before any was answered, want %d", taken, slots, early, slots)
	}
	if d := s.decoded.Load(); d != int64(n) {
		t.Errorf("%d images decoded, want %d", d, n)
	}
}

// TestServerSlowClients: clients that declare a body and stall hold up no
// one else, and are answered 408 once their time is up.
func TestServerSlowClients(t *testing.T) {
	s, ts, _, data, classify := tinyServer(t, 1, maxUpload)
	s.bodyTimeout = 5 * time.Second // a request stuck behind the stalled ones would wait that long
	classify()

	// More stalled uploads than slots, and more declared bytes than the
	// budget: the largest allowed, undeclared (chunked), and 1 MB ones.
	var heads []string
	for range 5 {
		heads = append(heads, fmt.Sprintf("Content-Length: %d\r\n\r\nabc", maxUpload))
		heads = append(heads, "Transfer-Encoding: chunked\r\n\r\n10\r\nabc")
	}
	for range cap(s.active) + 4 {
		heads = append(heads, "Content-Length: 1000000\r\n\r\nabc")
	}
	stalled := len(heads)
	conns := make([]net.Conn, stalled)
	for i := range conns {
		conn, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n%s", heads[i])
		conns[i] = conn
	}
	time.Sleep(100 * time.Millisecond) // the stalled requests are in
	img, _ := os.ReadFile(filepath.Join(data, "cats", "cat_00000.png"))
	start := time.Now()
	if status, _, msg := post(t, ts.URL+"/predict", "image/png", img); status != 200 || time.Since(start) > 2500*time.Millisecond {
		t.Fatalf("a request among %d stalled ones: status %d after %v: %s", stalled, status, time.Since(start), msg)
	}
	conns[0].SetReadDeadline(time.Now().Add(20 * time.Second))
	answer, err := bufio.NewReader(conns[0]).ReadString('\n')
	if err != nil || !strings.Contains(answer, "408") {
		t.Errorf("a stalled request: %q (%v), want 408", answer, err)
	}
}

// TestServerStalledUnreadBodies: a request whose body the handler does
// not read (GET /healthz, a 404, /predict?top=0 refused before its upload)
// is answered, and its connection let go, within the body deadline when
// the client declares a body and stalls: the server reads what is left of
// a body before answering, and without a deadline held the connection
// forever, unanswered.
func TestServerStalledUnreadBodies(t *testing.T) {
	s, ts, _, _, classify := tinyServer(t, 1, maxUpload)
	s.bodyTimeout = time.Second
	classify()
	for _, tc := range []struct{ request, status string }{
		{"GET /healthz", "200"},
		{"GET /info", "200"},
		{"GET /nowhere", "404"},
		{"GET /predict", "405"},
		{"POST /predict?top=0", "400"},
		{"POST /explain?class=nobody", "400"},
	} {
		t.Run(tc.request, func(t *testing.T) {
			conn, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "%s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc", tc.request)
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			answer, err := io.ReadAll(conn) // to the connection's end
			if err != nil || !strings.HasPrefix(string(answer), "HTTP/1.1 "+tc.status) {
				t.Fatalf("answer %q (%v), want status %s and the connection closed", answer, err, tc.status)
			}
		})
	}
}

// TestServerBudgetCannotDeadlock: uploads that fill the memory budget
// half received, each needing room another holds, are not left waiting
// for each other until their deadline: some finish, the others are told
// at once that the server is busy.
func TestServerBudgetCannotDeadlock(t *testing.T) {
	s, ts, _, _, classify := tinyServer(t, 1, 1<<20) // a budget of 4 MiB
	s.bodyTimeout = 20 * time.Second
	classify()
	// upload sends n uploads of size bytes at once, each pausing after
	// first bytes, and returns their status lines and how long they took.
	upload := func(n, size, first int) ([]string, time.Duration) {
		statuses := make([]string, n)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			wg.Go(func() {
				conn, err := net.Dial("tcp", ts.Listener.Addr().String())
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				fmt.Fprintf(conn, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", size)
				conn.Write(make([]byte, first))
				time.Sleep(500 * time.Millisecond)
				conn.Write(make([]byte, size-first))
				conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				statuses[i], _ = bufio.NewReader(conn).ReadString('\n')
			})
		}
		wg.Wait()
		return statuses, time.Since(start)
	}
	count := func(statuses []string) (read, busy int) {
		for _, st := range statuses {
			switch {
			case strings.Contains(st, " 400 "): // read whole: not an image
				read++
			case strings.Contains(st, " 503 "):
				busy++
			default:
				t.Errorf("status line %q, want 400 or 503", st)
			}
		}
		return read, busy
	}

	// More than the budget, half received, then the rest.
	statuses, took := upload(8, 1000000, 600000)
	if read, _ := count(statuses); read == 0 || took > 5*time.Second {
		t.Errorf("%d of 8 uploads read in %v; statuses %q", read, took, statuses)
	}
	// Exactly the budget: every one fits.
	statuses, took = upload(4, 1<<20, 1<<20-1000)
	if read, busy := count(statuses); read != 4 || took > 5*time.Second {
		t.Errorf("4 uploads that fill the budget exactly: %d read, %d refused, in %v", read, busy, took)
	}
}

// startServe runs predict --serve with args on addr until cancel, and
// returns the URL its first line prints and the channel serve's result
// comes on.
func startServe(t *testing.T, args []string, addr string) (url string, done <-chan error, cancel context.CancelFunc) {
	t.Helper()
	o, err := parse(append(args, "--serve", addr), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	result := make(chan error, 1)
	go func() { result <- serve(ctx, o, w) }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	// The line: serving RUN (classes [...]) on http://ADDR: POST ...
	from, to := strings.Index(line, "http://"), strings.Index(line, ": POST")
	if from < 0 || to < from {
		cancel()
		t.Fatalf("--serve %s: unexpected first line %q", addr, line)
	}
	return line[from:to], result, cancel
}

// stopped returns serve's result once done says it ended.
func stopped(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
		return nil
	}
}

// TestServeShutdownCutsOff: a server stopped while an upload still
// arrives waits shutdownTimeout for it, then says that it cut it off.
func TestServeShutdownCutsOff(t *testing.T) {
	dir := t.TempDir()
	trainTinyRun(t, dir)
	defer func(d time.Duration) { shutdownTimeout = d }(shutdownTimeout)
	shutdownTimeout = 300 * time.Millisecond
	url, done, cancel := startServe(t, []string{"--checkpoint", filepath.Join(dir, "run")}, "127.0.0.1:0")
	defer cancel()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\npartial")
	time.Sleep(200 * time.Millisecond) // the request is in flight
	cancel()
	if err := stopped(t, done); err == nil || !strings.Contains(err.Error(), "requests still in flight") {
		t.Fatalf("serve stopped with %v, want one saying requests were cut off", err)
	}
	// Cut off indeed: the connection is closed, not left to the process's end.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the stalled upload's connection is still open after the shutdown (%v)", err)
	}
}

// TestServe runs predict --serve, classifies through the URL it prints
// (localhost for an address without a host, the address itself where a
// host was given) and stops it as SIGTERM would: the command ends without
// an error.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	data := trainTinyRun(t, dir)
	img, _ := os.ReadFile(filepath.Join(data, "dogs", "dog_00000.png"))
	for _, tc := range []struct{ addr, url string }{
		{"127.0.0.1:0", "http://127.0.0.1:"},
		{":0", "http://localhost:"},
	} {
		url, done, cancel := startServe(t, []string{"--checkpoint", filepath.Join(dir, "run")}, tc.addr)
		if port := strings.TrimPrefix(url, tc.url); port == url || strings.ContainsAny(port, ":/[]") {
			t.Errorf("--serve %s: serving on %s, want %sPORT", tc.addr, url, tc.url)
		}
		if status, p, msg := post(t, url+"/predict", "image/png", img); status != 200 || p.Predicted == "" {
			t.Fatalf("--serve %s: status %d, %+v, %s", tc.addr, status, p, msg)
		}
		cancel()
		if err := stopped(t, done); err != nil {
			t.Fatalf("serve stopped with %v, want nil", err)
		}
	}
	for _, args := range [][]string{
		{"--serve", ":0"},
		{"--checkpoint", "run", "--serve", ":0", "x.jpg"},
		{"--checkpoint", "run", "--serve", ":0", "--evaluate", "data"},
	} {
		if _, err := parse(args, io.Discard); err == nil {
			t.Errorf("parse(%q) accepted", args)
		}
	}
}

// TestServerExplains: POST /explain answers the image's Grad-CAM picture
// (a JPEG of its size), with the prediction /predict gives and the class
// drawn in headers; ?class= picks another class; bad requests get errors.
func TestServerExplains(t *testing.T) {
	_, ts, c, data, _ := tinyServer(t, 4, 1<<20)
	path := filepath.Join(data, "cats", "cat_00000.png")
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := c.Predict(path)
	if err != nil {
		t.Fatal(err)
	}
	src, _, err := image.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	var pictures [][]byte
	for _, class := range []string{"", "cats", "dogs"} {
		url := ts.URL + "/explain"
		if class != "" {
			url += "?class=" + class
		}
		resp, err := http.Post(url, "image/png", bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("class %q: status %d, %s: %s", class, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		m, format, err := image.DecodeConfig(bytes.NewReader(body))
		if err != nil || format != "jpeg" || m.Width != src.Width || m.Height != src.Height {
			t.Errorf("class %q: %s %dx%d (%v), want a JPEG of %dx%d", class, format, m.Width, m.Height, err, src.Width, src.Height)
		}
		var p Prediction
		if err := json.Unmarshal([]byte(resp.Header.Get("X-Prediction")), &p); err != nil || !same(p, c.Classes, want, 0) {
			t.Errorf("class %q: X-Prediction %q (%v), want %v", class, resp.Header.Get("X-Prediction"), err, want)
		}
		if drawn := resp.Header.Get("X-Explained-Class"); class != "" && drawn != class || class == "" && drawn != p.Predicted {
			t.Errorf("class %q: X-Explained-Class %q (predicted %s)", class, drawn, p.Predicted)
		}
		pictures = append(pictures, body)
	}
	if bytes.Equal(pictures[1], pictures[2]) {
		t.Error("the two classes' pictures are the same")
	}
	for _, tc := range []struct {
		url    string
		body   []byte
		status int
		want   string
	}{
		{"/explain?class=birds", img, 400, "the classes are cats, dogs"},
		{"/explain", []byte("not an image"), 400, "not a supported image format"},
	} {
		status, _, msg := post(t, ts.URL+tc.url, "application/octet-stream", tc.body)
		if status != tc.status || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: status %d, %q; want %d and %q", tc.url, status, msg, tc.status, tc.want)
		}
	}
}

// TestASCIIJSON: non-ASCII characters travel in a header as JSON escapes,
// and decode back to themselves.
func TestASCIIJSON(t *testing.T) {
	for _, s := range []string{"cats", "café", "猫", "🐈", "dog\r\nSet-Cookie: x"} {
		raw, _ := json.Marshal(s)
		h := asciiJSON(raw)
		for _, c := range []byte(h) {
			if c >= 0x80 || c == '\r' || c == '\n' {
				t.Fatalf("%q: header value %q has byte %#x", s, h, c)
			}
		}
		var back string
		if err := json.Unmarshal([]byte(h), &back); err != nil || back != s {
			t.Errorf("%q: %q decodes to %q (%v)", s, h, back, err)
		}
	}
}

// TestServerExplainSlowReaders: clients that send to /explain and never
// read the answer hold nothing that /predict needs.
func TestServerExplainSlowReaders(t *testing.T) {
	s, ts, _, data, classify := tinyServer(t, 4, 16<<20)
	classify()
	img, err := os.ReadFile(filepath.Join(data, "cats", "cat_00000.png"))
	if err != nil {
		t.Fatal(err)
	}
	// A picture far larger than the sockets' buffers: a write of it
	// blocks until the client reads.
	noise := image.NewRGBA(image.Rect(0, 0, 3200, 2400))
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range noise.Pix {
		noise.Pix[i] = byte(rng.Uint32())
	}
	var big bytes.Buffer
	jpeg.Encode(&big, noise, &jpeg.Options{Quality: 90})
	addr := strings.TrimPrefix(ts.URL, "http://")
	for range cap(s.explaining) + cap(s.decoding) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /explain HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", big.Len())
		conn.Write(big.Bytes()) // and never read
	}
	time.Sleep(4 * time.Second) // the explanations are drawn
	// Their pictures, waiting to be read, count against the upload budget
	// (clients that do not read cannot pile them up).
	if used := s.bodies.used.Load(); used < int64(big.Len()) {
		t.Errorf("unread pictures hold %d bytes of the budget, want at least one picture's", used)
	}
	done := make(chan int, 1)
	go func() {
		status, _, _ := post(t, ts.URL+"/predict", "image/png", img)
		done <- status
	}()
	select {
	case status := <-done:
		if status != 200 {
			t.Errorf("/predict beside unread explanations: status %d", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("/predict waits behind unread explanations (explaining slots held %d, decoding %d)", len(s.explaining), len(s.decoding))
	}
}

// TestServerDemoPage: GET / is a page that calls the service's API.
func TestServerDemoPage(t *testing.T) {
	_, ts, _, _, _ := tinyServer(t, 4, 1<<20)
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`fetch("info")`, `fetch("predict?top=5"`, `fetch("explain"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the page does not call %s", want)
		}
	}
	if resp, err := http.Get(ts.URL + "/nothing"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /nothing: %v %v", resp.StatusCode, err)
	}
}

// TestExplainPanorama: the Grad-CAM picture of an image wider or taller
// than a JPEG can be (65535 pixels), such as a long panorama well within
// the pixel limit, is scaled down to fit, by --explain and by POST
// /explain; it failed to encode, ending --explain's run (no later image
// explained) and answering /explain with 500.
func TestExplainPanorama(t *testing.T) {
	_, ts, c, _, classify := tinyServer(t, 1, maxUpload)
	classify()
	dir := t.TempDir()
	for _, tc := range []struct {
		name         string
		w, h         int
		wantW, wantH int
	}{
		{"wide", 70000, 3, 65535, 3},
		{"tall", 2, 131072, 1, 65535},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, tc.w, tc.h))); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tc.name+".png")
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			isPicture := func(what string, data []byte) {
				m, format, err := image.DecodeConfig(bytes.NewReader(data))
				if err != nil || format != "jpeg" || m.Width != tc.wantW || m.Height != tc.wantH {
					t.Errorf("%s: %s %dx%d (%v), want a JPEG of %dx%d", what, format, m.Width, m.Height, err, tc.wantW, tc.wantH)
				}
			}
			resp, err := http.Post(ts.URL+"/explain", "image/png", bytes.NewReader(b.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("/explain: status %d: %s", resp.StatusCode, body)
			} else {
				isPicture("/explain", body)
			}
			out := filepath.Join(dir, "explained")
			if code, _, stderr := predict(t, "--checkpoint", c.Checkpoint, "--explain", out, path); code != 0 {
				t.Fatalf("--explain: exit %d: %s", code, stderr)
			}
			data, err := os.ReadFile(filepath.Join(out, tc.name+heatmapSuffix))
			if err != nil {
				t.Fatal(err)
			}
			isPicture("--explain", data)
		})
	}
}
