// Package durable is the one way Gwen writes files and folders that must survive a crash or a
// full disk: write a temporary beside the target, fsync it, rename it over, fsync the folder.
package durable

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// Temporaries are named "." + base + ".tmp-" + digits (the file or folder being written) and
// "." + base + ".tmp-old-" + digits (the previous folder that WriteDir moves aside), in the
// target's own folder, so that a listing can skip them (a leading dot) and CleanTemps can find
// them. The two patterns cannot be confused: a backup ends in "tmp-old-" + digits.
var (
	tempName   = regexp.MustCompile(`^\.(.+)\.tmp-[0-9]+$`)
	backupName = regexp.MustCompile(`^\.(.+)\.tmp-old-[0-9]+$`)
)

// IsTemp reports whether name (a base name) is a temporary of this package: a file or folder
// being written, or a previous folder moved aside. Listings of checkpoint folders skip these.
func IsTemp(name string) bool { return tempName.MatchString(name) || backupName.MatchString(name) }

// tempFile is what Write needs of its temporary file (a seam for tests of failing disks).
type tempFile interface {
	io.Writer
	Name() string
	Chmod(fs.FileMode) error
	Sync() error
	Close() error
}

var createTemp = func(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }

// WriteFile writes data to path as Write does: a crash or an error leaves path as it was.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, perm, false, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write writes path through fill, safely: fill streams into a temporary file in path's folder
// (buffered), which is given mode perm (exactly, not masked by the umask), fsynced, closed and
// renamed over path; then the folder is fsynced. On any error (from fill, a write, sync or
// close) the temporary file is removed and path keeps its previous content, or stays absent.
// Errors name path and wrap the cause (errors.Is(err, syscall.ENOSPC) holds for a full disk).
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	return write(path, perm, true, fill)
}

func write(path string, perm os.FileMode, buffered bool, fill func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := createTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var w io.Writer = tmp
	var bw *bufio.Writer
	if buffered {
		bw = bufio.NewWriterSize(tmp, 1<<20)
		w = bw
	}
	if err := fill(w); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if bw != nil {
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: close: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	done = true
	if err := Sync(dir); err != nil {
		return fmt.Errorf("writing %s: sync folder: %w", path, err)
	}
	return nil
}

// Sync fsyncs the file or folder at path (for a folder: the names in it).
func Sync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// WriteDir writes the folder dir through fill, safely. It makes a temporary sibling folder
// ("." + base + ".tmp-" + digits, mode 0755) and calls fill with its path; fill writes the
// folder's files (plain writes suffice: nothing in it is visible under dir yet). Then every file
// and folder in it is fsynced, it is renamed to dir and the parent is fsynced.
//
// When dir already exists it is replaced: the old dir is first renamed aside to
// "." + base + ".tmp-old-" + digits, the new one renamed into place, the parent fsynced, and
// only then the old one removed. A crash between the two renames leaves dir absent and its
// previous content complete under the ".tmp-old-" name, which CleanTemps renames back; a crash
// after them leaves only debris that CleanTemps removes. Either way dir is, after CleanTemps,
// the old folder or the new one, never a mixture.
//
// On any error (from fill, a sync or a rename) the temporary folder is removed and an existing
// dir is left as it was.
func WriteDir(dir string, fill func(tmp string) error) (err error) {
	dir = filepath.Clean(dir)
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	if err := fill(tmp); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	if err := syncTree(tmp); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}

	var backup string
	if _, err := os.Lstat(dir); err == nil {
		backup = filepath.Join(parent, "."+base+".tmp-old-"+strconv.FormatUint(uint64(rand.Uint32()), 10))
		if err := os.Rename(dir, backup); err != nil {
			return fmt.Errorf("writing %s: moving the previous folder aside: %w", dir, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if backup != "" {
			if rerr := os.Rename(backup, dir); rerr != nil {
				return fmt.Errorf("writing %s: %w (and restoring the previous folder from %s: %v)", dir, err, backup, rerr)
			}
		}
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	done = true
	if err := Sync(parent); err != nil {
		return fmt.Errorf("writing %s: sync folder: %w", dir, err)
	}
	if backup != "" {
		if err := os.RemoveAll(backup); err != nil {
			return fmt.Errorf("writing %s: removing the previous folder %s: %w", dir, backup, err)
		}
	}
	return nil
}

// syncTree fsyncs every regular file and folder under root, root last.
func syncTree(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, path)
		case d.Type().IsRegular():
			return Sync(path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := Sync(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// CleanTemps removes from the folder parent the temporaries that writers of this package left
// when they crashed: files and folders named "." + base + ".tmp-" + digits. A previous folder
// moved aside by WriteDir ("." + base + ".tmp-old-" + digits) is renamed back to base when
// base is missing (the crash came between WriteDir's two renames) and removed otherwise. Call
// it only when no writer is working in parent (at start-up or resume): it cannot tell a
// crashed writer's temporary from a live one's. A missing parent is not an error.
func CleanTemps(parent string) error {
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cleaning %s: %w", parent, err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(parent, name)
		if m := backupName.FindStringSubmatch(name); m != nil {
			target := filepath.Join(parent, m[1])
			if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
				if err := os.Rename(path, target); err != nil {
					errs = append(errs, fmt.Errorf("cleaning %s: restoring %s: %w", parent, name, err))
				}
				continue
			}
		} else if !tempName.MatchString(name) {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, fmt.Errorf("cleaning %s: %w", parent, err))
		}
	}
	if len(errs) == 0 {
		if err := Sync(parent); err != nil {
			errs = append(errs, fmt.Errorf("cleaning %s: %w", parent, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveDir removes the folder dir so that a crash midway never leaves a partial folder under
// its name: dir is first renamed to a temporary name (which CleanTemps removes after a crash),
// the rename made durable, then the temporary removed. A missing dir is not an error.
func RemoveDir(dir string) error {
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	trash := filepath.Join(parent, "."+base+".tmp-"+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := os.Rename(dir, trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	if err := Sync(parent); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}
