package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"gotransfer/dataset"
	"gotransfer/internal/texttable"
	"gotransfer/pipeline"
)

// demoPage is GET /'s answer: a page to try the classifier in a browser
// (an image dropped on it is sent to /predict and /explain).
//
//go:embed demo.html
var demoPage []byte

// maxUpload bounds a request's body: a 12-megapixel JPEG is 3-5 MB.
const maxUpload = 64 << 20

// bodyTimeout bounds the reading of a request's body, once admitted.
const bodyTimeout = time.Minute

// server classifies uploaded images with a trained run. Requests are
// decoded concurrently and then classified by one goroutine (run) that
// takes every request waiting, up to maxBatch, into one backbone pass: a
// burst costs little more than its largest batches, a lone request waits
// for nothing.
//
// Memory stays bounded however many clients send at once, and slow or
// stalled clients hold up no one else: the uploads being read share a
// budget of 4*maxBytes, charged as their bytes arrive (a stalled client
// holds what it sent), and must arrive within bodyTimeout; then at most
// 2*maxBatch + CPUs requests hold decoded images at a time, one per CPU
// decoding.
type server struct {
	c           *pipeline.Classifier
	maxBatch    int
	maxBytes    int64
	bodyTimeout time.Duration
	queue       chan *request
	bodies      *budget       // bytes of the uploads received
	active      chan struct{} // a slot per request past reading
	decoding    chan struct{} // a slot per image being decoded
	explaining  chan struct{} // a slot per /explain holding its picture
	batches     atomic.Int64  // backbone passes run
	decoded     atomic.Int64  // images decoded
}

type request struct {
	pix  []float32
	done chan reply // buffered: run never waits for a client that left
}

type reply struct {
	probs []float32
	err   error
}

func newServer(c *pipeline.Classifier, maxBatch int, maxBytes int64) *server {
	cpus := runtime.NumCPU()
	return &server{c: c, maxBatch: maxBatch, maxBytes: maxBytes, bodyTimeout: bodyTimeout, queue: make(chan *request, maxBatch),
		bodies: &budget{size: 4 * maxBytes}, active: make(chan struct{}, 2*maxBatch+cpus), decoding: make(chan struct{}, cpus),
		explaining: make(chan struct{}, max(1, cpus/4))}
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /predict", s.predict)
	mux.HandleFunc("POST /explain", s.explain)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /info", s.info)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(demoPage)
	})
	// Every request's body, read or not (what a handler leaves unread the
	// server reads before answering), must arrive within bodyTimeout: a
	// client that declares a body and stalls holds its connection no
	// longer than an upload's (receive sets the uploads' own deadline).
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.bodyTimeout))
		if _, pattern := mux.Handler(r); pattern == "" {
			noRoute(w, r, mux)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// noRoute answers a request no route takes as the others fail, in JSON:
// 405 with the methods the path takes (and Allow), or 404. (The mux's own
// answers are plain text.)
func noRoute(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no %s here: POST an image to /predict or /explain", r.URL.Path)})
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))})
}

// run classifies queued requests until ctx is done.
func (s *server) run(ctx context.Context) {
	for {
		var batch []*request
		select {
		case <-ctx.Done():
			return
		case r := <-s.queue:
			batch = append(batch, r)
		}
	drain:
		for len(batch) < s.maxBatch {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		pix := make([][]float32, len(batch))
		for i, r := range batch {
			pix[i] = r.pix
		}
		probs, err := s.c.PredictPixels(pix)
		s.batches.Add(1)
		for i, r := range batch {
			if err != nil {
				r.done <- reply{err: err}
			} else {
				r.done <- reply{probs: probs[i]}
			}
		}
	}
}

func (s *server) predict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status, err := s.answer(w, r)
	if err != nil {
		writeJSON(w, status, map[string]string{"error": err.Error()})
	}
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelWarn
	}
	slog.Log(r.Context(), level, "POST /predict", "status", status, "remote", r.RemoteAddr, "seconds", time.Since(start).Seconds(), "err", err)
}

// answer classifies the request's image and writes the prediction, or
// returns the status and error to answer with.
func (s *server) answer(w http.ResponseWriter, r *http.Request) (int, error) {
	top := 0 // all classes, in label order
	if v := r.URL.Query().Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return http.StatusBadRequest, fmt.Errorf("top=%s: want a whole number of at least 1", v)
		}
		top = n
	}
	pix, status, err := s.decode(w, r)
	if err != nil {
		return status, err
	}
	defer func() { <-s.active }()
	req := &request{pix: pix, done: make(chan reply, 1)}
	var rep reply
	select {
	case s.queue <- req:
	case <-r.Context().Done():
		return http.StatusServiceUnavailable, r.Context().Err()
	}
	select {
	case rep = <-req.done:
	case <-r.Context().Done():
		return http.StatusServiceUnavailable, r.Context().Err()
	}
	if rep.err != nil {
		return http.StatusInternalServerError, rep.err
	}
	writeJSON(w, http.StatusOK, newPrediction(s.c.Classes, rep.probs, top))
	return http.StatusOK, nil
}

// decode reads the request's image and decodes it, and on success holds
// one of the active slots, for the caller to release.
func (s *server) decode(w http.ResponseWriter, r *http.Request) ([]float32, int, error) {
	data, release, status, err := s.receive(w, r)
	if err != nil {
		return nil, status, err
	}
	defer release()
	if err := acquire(r.Context(), s.active); err != nil {
		return nil, http.StatusServiceUnavailable, err
	}
	if err := acquire(r.Context(), s.decoding); err != nil {
		<-s.active
		return nil, http.StatusServiceUnavailable, err
	}
	pix, err := s.c.Decode(data)
	<-s.decoding
	s.decoded.Add(1)
	if err != nil {
		<-s.active
		return nil, http.StatusBadRequest, err
	}
	return pix, http.StatusOK, nil
}

// receive reads the request's image file within the body deadline; its
// bytes count against the upload budget until release is called.
func (s *server) receive(w http.ResponseWriter, r *http.Request) (data []byte, release func(), status int, err error) {
	if r.ContentLength > s.maxBytes {
		return nil, nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the request is larger than %d bytes", s.maxBytes)
	}
	deadline := time.Now().Add(s.bodyTimeout)
	http.NewResponseController(w).SetReadDeadline(deadline)
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	body := &budgetReader{r: http.MaxBytesReader(w, r.Body, s.maxBytes), ctx: ctx, budget: s.bodies}
	data, status, err = s.readImage(body, r)
	if err != nil {
		body.release()
		return nil, nil, status, err
	}
	return data, body.release, http.StatusOK, nil
}

// explain answers POST /explain: the image's Grad-CAM picture as a JPEG
// (model/gradcam: where the network found the evidence for the class, the
// most probable or ?class=NAME), its prediction in the X-Prediction header
// (the JSON of /predict, non-ASCII escaped, at most 10 classes: the most
// probable) and the class drawn, URL-escaped, in X-Explained-Class.
func (s *server) explain(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status, err := s.answerExplain(w, r)
	if err != nil && status != http.StatusOK { // an error after 200 was in the sending
		writeJSON(w, status, map[string]string{"error": err.Error()})
	}
	level := slog.LevelDebug
	if status >= 500 || err != nil && status == http.StatusOK {
		level = slog.LevelWarn
	}
	slog.Log(r.Context(), level, "POST /explain", "status", status, "remote", r.RemoteAddr, "seconds", time.Since(start).Seconds(), "err", err)
}

func (s *server) answerExplain(w http.ResponseWriter, r *http.Request) (int, error) {
	class := -1
	if name := r.URL.Query().Get("class"); name != "" {
		if class = slices.Index(s.c.Classes, name); class < 0 {
			return http.StatusBadRequest, fmt.Errorf("class=%s: the classes are %s", name, strings.Join(s.c.Classes, ", "))
		}
	}
	picture, e, status, err := s.explainUpload(w, r, class)
	if err != nil {
		return status, err
	}
	// The picture goes out holding no slot (a client that does not read
	// cannot keep others waiting), its bytes charged to the upload budget
	// until sent (clients that do not read cannot pile pictures up).
	if int64(len(picture)) > s.bodies.size {
		return http.StatusInternalServerError, fmt.Errorf("the picture (%d bytes) is larger than the server's whole upload budget (%d)", len(picture), s.bodies.size)
	}
	if !s.bodies.take(int64(len(picture))) {
		return http.StatusServiceUnavailable, errBusy
	}
	defer s.bodies.give(int64(len(picture)))
	top := 0
	if len(s.c.Classes) > maxHeaderClasses {
		top = maxHeaderClasses
	}
	prediction, err := json.Marshal(newPrediction(s.c.Classes, e.Probabilities, top))
	if err != nil {
		return http.StatusInternalServerError, err
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(picture)))
	w.Header().Set("X-Prediction", asciiJSON(prediction))
	w.Header().Set("X-Explained-Class", url.PathEscape(s.c.Classes[e.Class]))
	// In chunks, each with its own deadline: a slow client that reads gets
	// it all, one that stalls for bodyTimeout is cut off.
	rc := http.NewResponseController(w)
	for len(picture) > 0 {
		rc.SetWriteDeadline(time.Now().Add(s.bodyTimeout))
		n := min(len(picture), 64<<10)
		if _, err := w.Write(picture[:n]); err != nil {
			return http.StatusOK, fmt.Errorf("sending the picture: %w", err) // the status is out already
		}
		picture = picture[n:]
	}
	return http.StatusOK, nil
}

// maxHeaderClasses bounds the classes listed in /explain's X-Prediction
// header (proxies refuse headers of more than a few kilobytes): runs with
// more list their most probable ones.
const maxHeaderClasses = 10

// explainUpload reads the request's image and draws its explanation as a
// JPEG, one request at a time per explaining slot, which it releases with
// the upload's budget before returning.
func (s *server) explainUpload(w http.ResponseWriter, r *http.Request, class int) ([]byte, *pipeline.Explanation, int, error) {
	data, release, status, err := s.receive(w, r)
	if err != nil {
		return nil, nil, status, err
	}
	defer release()
	// An explanation holds the whole picture, at full size: explaining
	// slots bound how many do at once, apart from /predict's slots.
	if err := acquire(r.Context(), s.explaining); err != nil {
		return nil, nil, http.StatusServiceUnavailable, err
	}
	defer func() { <-s.explaining }()
	e, err := s.c.ExplainData(data, class)
	switch {
	case errors.Is(err, dataset.ErrBadImage):
		return nil, nil, http.StatusBadRequest, err
	case err != nil:
		return nil, nil, http.StatusInternalServerError, err
	}
	m, err := e.Overlay()
	if err != nil {
		return nil, nil, http.StatusInternalServerError, err
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, pipeline.FitJPEG(m), &jpeg.Options{Quality: 90}); err != nil {
		return nil, nil, http.StatusInternalServerError, err
	}
	e.View = nil // the picture is encoded: let it go
	return b.Bytes(), e, http.StatusOK, nil
}

// asciiJSON escapes the non-ASCII characters of JSON as \uXXXX, so that it
// can travel in an HTTP header unchanged.
func asciiJSON(b []byte) string {
	var out strings.Builder
	for _, r := range string(b) {
		switch {
		case r < 0x80:
			out.WriteRune(r)
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&out, "\\u%04x\\u%04x", r1, r2)
		default:
			fmt.Fprintf(&out, "\\u%04x", r)
		}
	}
	return out.String()
}

// budget counts bytes against a limit.
type budget struct {
	size int64
	used atomic.Int64
}

// take charges n bytes if they fit.
func (b *budget) take(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.size {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *budget) give(n int64) { b.used.Add(-n) }

// budgetReader charges the bytes read through it to a budget as they
// arrive (a client holds what it sent, not what it declared); release
// gives them back. Only an upload that holds nothing yet waits for room
// (polling until ctx is done, so that it never stands in the way of the
// others); one that holds some and finds none fails at once, or uploads
// half received, each waiting for another to finish, would all wait.
type budgetReader struct {
	r      io.Reader
	ctx    context.Context
	budget *budget
	held   int64
}

// budgetStep is the most one Read reads (and then charges).
const budgetStep = 64 << 10

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p[:min(len(p), budgetStep)])
	if n == 0 {
		return n, err
	}
	for !b.budget.take(int64(n)) {
		if b.held > 0 {
			return 0, errBusy
		}
		select {
		case <-b.ctx.Done():
			return 0, errBusy
		case <-time.After(10 * time.Millisecond):
		}
	}
	b.held += int64(n)
	return n, err
}

func (b *budgetReader) release() {
	b.budget.give(b.held)
	b.held = 0
}

// errBusy: no room for an upload in time.
var errBusy = errors.New("the server is busy receiving other uploads: try again")

// acquire takes a slot of sem, or gives up when ctx is done.
func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readImage returns the image file a request carries: its body, or the one
// file of a multipart form (curl -F image=@cat.jpg).
func (s *server) readImage(body io.Reader, r *http.Request) ([]byte, int, error) {
	tooBig := func(err error) (int, error) {
		if errors.Is(err, errBusy) {
			return http.StatusServiceUnavailable, err
		}
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("the request is larger than %d bytes", s.maxBytes)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return http.StatusRequestTimeout, fmt.Errorf("the request's body did not arrive within %v", s.bodyTimeout)
		}
		return http.StatusBadRequest, fmt.Errorf("read the request: %w", err)
	}
	var data []byte
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "multipart/form-data" {
		mr := multipart.NewReader(body, params["boundary"])
		files := 0
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				status, err := tooBig(err)
				return nil, status, err
			}
			if part.FileName() == "" {
				continue // a plain form field
			}
			if files++; files > 1 {
				return nil, http.StatusBadRequest, errors.New("the form holds more than one file: send one image per request")
			}
			if data, err = io.ReadAll(part); err != nil {
				status, err := tooBig(err)
				return nil, status, err
			}
		}
		if files == 0 {
			return nil, http.StatusBadRequest, errors.New("the form holds no file: send the image as a form file (curl -F image=@cat.jpg) or as the body (curl --data-binary @cat.jpg)")
		}
	} else {
		var err error
		if data, err = io.ReadAll(body); err != nil {
			status, err := tooBig(err)
			return nil, status, err
		}
	}
	if len(data) == 0 {
		return nil, http.StatusBadRequest, errors.New("no image: send the image file as the body (curl --data-binary @cat.jpg) or as a form file (curl -F image=@cat.jpg)")
	}
	return data, http.StatusOK, nil
}

// info describes the run served: GET /info.
func (s *server) info(w http.ResponseWriter, _ *http.Request) {
	h, wd := s.c.ImageSize()
	writeJSON(w, http.StatusOK, map[string]any{"checkpoint": s.c.Checkpoint, "classes": s.c.Classes, "image_size": []int{h, wd}, "tta": s.c.TTA()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// serverURL is the URL of a server listening at addr: on localhost where
// it listens on every address (--serve :8080), a URL one can open.
func serverURL(addr net.Addr) string {
	if a, ok := addr.(*net.TCPAddr); ok && (a.IP == nil || a.IP.IsUnspecified()) {
		return "http://" + net.JoinHostPort("localhost", strconv.Itoa(a.Port))
	}
	return "http://" + addr.String()
}

// serve answers HTTP requests with --checkpoint's run on --serve's
// address until ctx is done, then lets the requests in flight finish.
func serve(ctx context.Context, o *options, stdout io.Writer) error {
	c, err := loadClassifier(o)
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", o.serve)
	if err != nil {
		return err
	}
	s := newServer(c, o.batch, maxUpload)
	// No ReadTimeout: it would run while a request waits its turn; each
	// body has bodyTimeout once admitted.
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	classify, stopClassifying := context.WithCancel(context.Background())
	defer stopClassifying()
	go s.run(classify)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "serving %s (classes %s) on %s: POST an image to /predict or /explain, or open it in a browser\n", c.Checkpoint, texttable.List(c.Classes, pipeline.MaxClassesNamed), serverURL(ln.Addr()))
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down: finishing the requests in flight")
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdown); errors.Is(err, context.DeadlineExceeded) {
		srv.Close() // Shutdown leaves them open when its time is up
		return fmt.Errorf("shut down with requests still in flight after %v (an upload still arriving, or a long queue): they were cut off", shutdownTimeout)
	} else if err != nil {
		return err
	}
	return nil
}

// shutdownTimeout bounds how long a stopped server waits for the requests
// in flight: Kubernetes' default grace period, after which it kills.
var shutdownTimeout = 30 * time.Second
