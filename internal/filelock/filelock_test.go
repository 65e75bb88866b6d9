//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package filelock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestLockExcludes: a held lock makes TryLock fail and Lock wait until it
// is released; unlocking twice does nothing.
func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock1, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := TryLock(path); ok || err != nil {
		t.Fatalf("TryLock while the lock is held: ok %v, err %v; want false, nil", ok, err)
	}
	got := make(chan error, 1)
	var unlock2 func()
	go func() {
		var err error
		unlock2, err = Lock(context.Background(), path)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Lock returned (%v) while another holds the lock", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, ok, _ := TryLock(path); ok {
		t.Fatal("TryLock succeeded while the lock is held and another waits")
	}
	unlock1()
	unlock1() // a second call does nothing
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Lock still waits 5s after the lock was released")
	}
	unlock2()
	u, ok, err := TryLock(path)
	if !ok || err != nil {
		t.Fatalf("TryLock after every unlock: ok %v, err %v", ok, err)
	}
	u()
}

// TestLockCancel: Lock waiting for a held lock returns ctx.Err() once ctx
// is done.
func TestLockCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Lock(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with a deadline: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Lock returned %v after its deadline", d)
	}
	// Already done: no lock, even a free one.
	unlock()
	if u, err := Lock(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		if u != nil {
			u()
		}
		t.Errorf("Lock with a done context: %v", err)
	}
	if _, _, err := TryLock(filepath.Join(t.TempDir(), "missing", "x.lock")); err == nil {
		t.Error("TryLock in a missing folder: no error")
	}
}
