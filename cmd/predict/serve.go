package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"gotransfer/pipeline"
)

// maxUpload bounds a request's body: a 12-megapixel JPEG is 3-5 MB.
const maxUpload = 64 << 20

// server classifies uploaded images with a trained run. Requests are
// decoded concurrently and then classified by one goroutine (run) that
// takes every request waiting, up to maxBatch, into one backbone pass: a
// burst costs little more than its largest batches, a lone request waits
// for nothing. Memory stays bounded however many clients send at once: at
// most 2*maxBatch + CPUs requests are handled at a time (the others wait
// before their bodies are read), of which at most 4 per CPU hold an
// uploaded file (up to maxBytes) and one per CPU decodes it.
type server struct {
	c        *pipeline.Classifier
	maxBatch int
	maxBytes int64
	queue    chan *request
	active   chan struct{} // a slot per request handled
	bodies   chan struct{} // a slot per uploaded file in memory
	decoding chan struct{} // a slot per image being decoded
	batches  atomic.Int64  // backbone passes run
	decoded  atomic.Int64  // images decoded
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
	return &server{c: c, maxBatch: maxBatch, maxBytes: maxBytes, queue: make(chan *request, maxBatch),
		active: make(chan struct{}, 2*maxBatch+cpus), bodies: make(chan struct{}, 4*cpus), decoding: make(chan struct{}, cpus)}
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /predict", s.predict)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /info", s.info)
	return mux
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

// ClassProbability is one class's probability in a prediction.
type ClassProbability struct {
	Class       string  `json:"class"`
	Probability float32 `json:"probability"`
}

// Prediction is the answer to POST /predict.
type Prediction struct {
	Predicted     string             `json:"predicted"`
	Probabilities []ClassProbability `json:"probabilities"` // in label order
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
	if err := acquire(r.Context(), s.active); err != nil {
		return http.StatusServiceUnavailable, err
	}
	defer func() { <-s.active }()
	pix, status, err := s.decode(w, r)
	if err != nil {
		return status, err
	}
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
	p := Prediction{Probabilities: make([]ClassProbability, len(rep.probs))}
	best := 0
	for i, v := range rep.probs {
		p.Probabilities[i] = ClassProbability{Class: s.c.Classes[i], Probability: v}
		if v > rep.probs[best] {
			best = i
		}
	}
	p.Predicted = s.c.Classes[best]
	writeJSON(w, http.StatusOK, p)
	return http.StatusOK, nil
}

// decode reads the request's image and decodes it.
func (s *server) decode(w http.ResponseWriter, r *http.Request) ([]float32, int, error) {
	if err := acquire(r.Context(), s.bodies); err != nil {
		return nil, http.StatusServiceUnavailable, err
	}
	defer func() { <-s.bodies }()
	data, status, err := s.readImage(w, r)
	if err != nil {
		return nil, status, err
	}
	if err := acquire(r.Context(), s.decoding); err != nil {
		return nil, http.StatusServiceUnavailable, err
	}
	pix, err := s.c.Decode(data)
	<-s.decoding
	s.decoded.Add(1)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	return pix, http.StatusOK, nil
}

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
func (s *server) readImage(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	body := http.MaxBytesReader(w, r.Body, s.maxBytes)
	tooBig := func(err error) (int, error) {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("the request is larger than %d bytes", s.maxBytes)
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
	writeJSON(w, http.StatusOK, map[string]any{"checkpoint": s.c.Checkpoint, "classes": s.c.Classes, "image_size": []int{h, wd}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
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
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute}
	classify, stopClassifying := context.WithCancel(context.Background())
	defer stopClassifying()
	go s.run(classify)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "serving %s (classes %v) on http://%s: POST an image to /predict\n", c.Checkpoint, c.Classes, ln.Addr())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down: finishing the requests in flight")
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
