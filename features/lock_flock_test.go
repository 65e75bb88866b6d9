//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package features

import (
	"context"
	"errors"
	"testing"
)

// TestLockIsTheFolders: two Caches of one folder (as two processes have)
// take one lock, which Lock and TryLock honour; the lock's own behaviour
// is internal/filelock's, tested there.
func TestLockIsTheFolders(t *testing.T) {
	root := t.TempDir()
	c1, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := c1.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c2.TryLock(); ok || err != nil {
		t.Fatalf("TryLock on another Cache of the folder while the lock is held: ok %v, err %v", ok, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c2.Lock(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock with a cancelled context: %v", err)
	}
	unlock()
	u, ok, err := c2.TryLock()
	if !ok || err != nil {
		t.Fatalf("TryLock after the unlock: ok %v, err %v", ok, err)
	}
	u()
}
