package history

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Archive is cold storage for compacted block files: an object store can
// implement it. Names are plain file names ("000042.blk").
type Archive interface {
	Put(ctx context.Context, name string, data []byte) error
	Get(ctx context.Context, name string) ([]byte, error)
	List(ctx context.Context) ([]string, error)
	Delete(ctx context.Context, name string) error
}

// DirArchive is an Archive on a local or mounted file system directory.
type DirArchive struct{ dir string }

// NewDirArchive returns an archive in dir, creating it if needed.
func NewDirArchive(dir string) (*DirArchive, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty archive directory", ErrInvalidOption)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("history: archive: %w", err)
	}
	return &DirArchive{dir: dir}, nil
}

func (a *DirArchive) path(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", fmt.Errorf("history: archive: bad object name %q", name)
	}
	return filepath.Join(a.dir, name), nil
}

// Put stores data under name atomically (temporary file, fsync, rename).
func (a *DirArchive) Put(ctx context.Context, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := a.path(name)
	if err != nil {
		return err
	}
	return writeFileAtomic(p, data)
}

// Get returns the object's bytes.
func (a *DirArchive) Get(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := a.path(name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// List returns the stored names, sorted.
func (a *DirArchive) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(a.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), ".tmp") {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

// Delete removes the object; a missing object is not an error.
func (a *DirArchive) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := a.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// writeFileAtomic writes data to p via p.tmp, fsyncs it, renames it and
// fsyncs the directory.
func writeFileAtomic(p string, data []byte) error {
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(p))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
