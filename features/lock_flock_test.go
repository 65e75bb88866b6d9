//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package features

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLockExcludes: a held lock makes TryLock fail and Lock wait, for
// another Cache of the folder (another open of the lock file, as another
// process has) and for the holder's own Cache alike, until it is released.
func TestLockExcludes(t *testing.T) {
	c1, c2 := twoOpens(t)
	unlock1, err := c1.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Cache{"another Cache": c2, "the holder's Cache": c1} {
		if _, ok, err := c.TryLock(); ok || err != nil {
			t.Fatalf("TryLock on %s while the lock is held: ok %v, err %v; want false, nil", name, ok, err)
		}
	}
	got := make(chan error, 1)
	var unlock2 func()
	go func() {
		var err error
		unlock2, err = c2.Lock(context.Background())
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Lock returned (%v) while another holds the lock", err)
	case <-time.After(300 * time.Millisecond):
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
	if _, ok, _ := c1.TryLock(); ok {
		t.Fatal("TryLock succeeded while the waiter holds the lock")
	}
	unlock2()
	u, ok, err := c1.TryLock()
	if !ok || err != nil {
		t.Fatalf("TryLock after every unlock: ok %v, err %v", ok, err)
	}
	u()
}

// TestLockCancel: Lock waiting for a held lock returns ctx.Err() promptly
// once ctx is done.
func TestLockCancel(t *testing.T) {
	c1, c2 := twoOpens(t)
	unlock, err := c1.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if u, err := c2.Lock(ctx); !errors.Is(err, context.Canceled) {
		if u != nil {
			u()
		}
		t.Fatalf("Lock with a cancelled context: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Lock returned %v after the cancel, want promptly", d-100*time.Millisecond)
	}
	// Already done: no lock, even a free one.
	unlock()
	if u, err := c1.Lock(ctx); !errors.Is(err, context.Canceled) {
		if u != nil {
			u()
		}
		t.Errorf("Lock with a done context: %v, want context.Canceled", err)
	}
}

// twoOpens opens one cache folder twice, as two processes would.
func twoOpens(t *testing.T) (*Cache, *Cache) {
	t.Helper()
	root := t.TempDir()
	c1, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	return c1, c2
}
