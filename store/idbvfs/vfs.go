//go:build js

package idbvfs

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall/js"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/util/vfsutil"
	"github.com/ncruces/go-sqlite3/vfs"
)

// ChunkSize is the size of the IndexedDB record that holds each piece of
// a file: 4 pages of SQLite's default size, well under the 32 KiB above
// which browsers store values as slow blob files. A file records the chunk
// size it was written with; a file with another one does not open.
const ChunkSize = 16 << 10

// Errors of the VFS, in the chain of the errors its methods return.
// SQLite sees the error code of the failed operation (IOERR_FSYNC for
// Sync, CANTOPEN for Open, ...), with the error's text.
var (
	// ErrNoIndexedDB reports a JavaScript environment without indexedDB.
	ErrNoIndexedDB = errors.New("idbvfs: no IndexedDB")
	// ErrAborted reports an IndexedDB transaction that aborted instead of
	// completing: nothing of it was written.
	ErrAborted = errors.New("idbvfs: IndexedDB transaction aborted")
	// ErrUnsupported reports a file the VFS does not keep: a rollback
	// journal, a super-journal or a WAL file.
	ErrUnsupported = errors.New("idbvfs: unsupported file")
	// ErrOpen reports a file that cannot be opened as it is: open by
	// another connection of the VFS for deletion, or written with another
	// chunk size.
	ErrOpen = errors.New("idbvfs: cannot open")
)

// VFS keeps SQLite files in one IndexedDB database. Register it with
// [vfs.Register] and name it in the connection's URI (vfs=NAME). Its
// methods are safe for concurrent use and block on IndexedDB: see the
// package doc.
type VFS struct {
	idb js.Value // the IDBDatabase

	mu    sync.Mutex
	files map[string]*data // open files by name, shared by their connections

	// beforeCommit, if set, is called by Sync with the transaction after
	// queuing its writes (tests abort it there).
	beforeCommit func(tx js.Value)
	// commits counts completed Sync transactions.
	commits int
}

var _ vfs.VFS = (*VFS)(nil)

// New opens (creating if needed) the IndexedDB database named idbName and
// returns a VFS over it. Call it off the event loop.
func New(idbName string) (*VFS, error) {
	db, err := openIDB(idbName)
	if err != nil {
		return nil, err
	}
	return &VFS{idb: db, files: map[string]*data{}}, nil
}

// Close closes the VFS's IndexedDB connection. Files still open fail on
// their next Sync.
func (v *VFS) Close() error {
	_, err := call(v.idb, "close")
	return err
}

// Open implements [vfs.VFS]. Main databases are loaded from IndexedDB (or
// created empty with OPEN_CREATE); temporary files live in memory only;
// journals and WAL files are refused with ErrUnsupported.
func (v *VFS) Open(name string, flags vfs.OpenFlag) (vfs.File, vfs.OpenFlag, error) {
	const temporary = vfs.OPEN_TEMP_DB | vfs.OPEN_TRANSIENT_DB | vfs.OPEN_TEMP_JOURNAL | vfs.OPEN_SUBJOURNAL
	switch {
	case flags&vfs.OPEN_MAIN_DB != 0:
	case flags&temporary != 0:
		return &tempFile{}, flags | vfs.OPEN_MEMORY, nil
	default:
		return nil, flags, fmt.Errorf("%w: %q (use journal_mode=MEMORY)", ErrUnsupported, name)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	d := v.files[name]
	if d == nil {
		var err error
		d, err = v.load(name)
		if err != nil {
			return nil, flags, fmt.Errorf("idbvfs: open %s: %w", name, err)
		}
		if d == nil {
			if flags&vfs.OPEN_CREATE == 0 {
				return nil, flags, sqlite3.CANTOPEN
			}
			d = &data{name: name, dirty: map[int64]bool{}}
		}
		v.files[name] = d
	}
	d.refs++
	return &file{vfs: v, data: d, readOnly: flags&vfs.OPEN_READONLY != 0}, flags, nil
}

// load reads file name from IndexedDB; nil if it is not there.
func (v *VFS) load(name string) (*data, error) {
	tx, err := transaction(v.idb, false)
	if err != nil {
		return nil, err
	}
	rng, err := chunkRange(name)
	if err != nil {
		return nil, err
	}
	files, chunks := tx.Call("objectStore", filesStore), tx.Call("objectStore", chunksStore)
	meta := files.Call("get", name)
	keys := chunks.Call("getAllKeys", rng)
	values := chunks.Call("getAll", rng)
	if err := await(tx, "complete", "abort"); err != nil {
		return nil, err
	}
	m := meta.Get("result")
	if m.IsUndefined() {
		return nil, nil
	}
	if c := m.Get("chunk").Int(); c != ChunkSize {
		return nil, fmt.Errorf("%w: chunk size %d, want %d", ErrOpen, c, ChunkSize)
	}
	d := &data{name: name, size: int64(m.Get("size").Float()), dirty: map[int64]bool{}}
	d.stored, d.known = d.size, true
	d.chunks = make([][]byte, chunkCount(d.size))
	ks, vs := keys.Get("result"), values.Get("result")
	for i := range ks.Length() {
		idx := int64(ks.Index(i).Index(1).Float())
		if idx >= int64(len(d.chunks)) {
			d.dirty[idx] = true // beyond the end: deleted at the next Sync
			continue
		}
		c := make([]byte, ChunkSize)
		js.CopyBytesToGo(c, vs.Index(i))
		d.chunks[idx] = c
	}
	return d, nil
}

// Delete implements [vfs.VFS]: it removes the file from IndexedDB in one
// transaction. A file open in this VFS is not deleted.
func (v *VFS) Delete(name string, syncDir bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.files[name] != nil {
		return fmt.Errorf("%w: delete %s: open", ErrOpen, name)
	}
	tx, err := transaction(v.idb, true)
	if err != nil {
		return fmt.Errorf("idbvfs: delete %s: %w", name, err)
	}
	rng, err := chunkRange(name)
	if err != nil {
		return err
	}
	files := tx.Call("objectStore", filesStore)
	meta := files.Call("count", name)
	files.Call("delete", name)
	tx.Call("objectStore", chunksStore).Call("delete", rng)
	if err := await(tx, "complete", "abort"); err != nil {
		return fmt.Errorf("idbvfs: delete %s: %w", name, err)
	}
	if meta.Get("result").Int() == 0 {
		return sqlite3.IOERR_DELETE_NOENT
	}
	return nil
}

// Access implements [vfs.VFS]: a file exists if it is open in this VFS or
// stored in IndexedDB.
func (v *VFS) Access(name string, flags vfs.AccessFlag) (bool, error) {
	v.mu.Lock()
	open := v.files[name] != nil
	v.mu.Unlock()
	if open {
		return true, nil
	}
	tx, err := transaction(v.idb, false)
	if err != nil {
		return false, fmt.Errorf("idbvfs: access %s: %w", name, err)
	}
	n := tx.Call("objectStore", filesStore).Call("count", name)
	if err := await(tx, "complete", "abort"); err != nil {
		return false, fmt.Errorf("idbvfs: access %s: %w", name, err)
	}
	return n.Get("result").Int() > 0, nil
}

// FullPathname implements [vfs.VFS]: names are keys, used as given.
func (v *VFS) FullPathname(name string) (string, error) { return name, nil }

// release drops a connection's reference to d, forgetting d (and any
// change not synced) with the last one.
func (v *VFS) release(d *data) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if d.refs--; d.refs == 0 && v.files[d.name] == d {
		delete(v.files, d.name)
	}
}

// data is an open file's contents, shared by the connections that opened it.
type data struct {
	name string
	refs int // guarded by VFS.mu

	mu     sync.Mutex
	chunks [][]byte       // ChunkSize bytes each; nil reads as zeros
	size   int64          // bytes past size are zero in chunks
	dirty  map[int64]bool // chunks changed since the last Sync
	stored int64          // the size IndexedDB holds
	known  bool           // IndexedDB has a record of the file

	lockMu   sync.Mutex
	shared   int // connections holding at least a SHARED lock
	reserved bool
	pending  bool
}

func chunkCount(size int64) int64 { return (size + ChunkSize - 1) / ChunkSize }

// file is one connection's handle on a main database.
type file struct {
	vfs      *VFS
	data     *data
	lock     vfs.LockLevel
	reserved bool // this handle holds the RESERVED lock
	readOnly bool
}

var (
	_ vfs.FileLockState = (*file)(nil)
	_ vfs.FilePragma    = (*file)(nil)
)

func (f *file) Close() error {
	if f.data == nil {
		return nil
	}
	f.Unlock(vfs.LOCK_NONE)
	f.vfs.release(f.data)
	f.data = nil
	return nil
}

func (f *file) ReadAt(b []byte, off int64) (int, error) {
	d := f.data
	d.mu.Lock()
	defer d.mu.Unlock()
	if off < 0 {
		return 0, sqlite3.IOERR_READ
	}
	n := 0
	for n < len(b) && off+int64(n) < d.size {
		p := off + int64(n)
		end := min(int64(len(b)-n), d.size-p, ChunkSize-p%ChunkSize)
		dst := b[n : n+int(end)]
		if c := d.chunks[p/ChunkSize]; c != nil {
			copy(dst, c[p%ChunkSize:])
		} else {
			clear(dst)
		}
		n += int(end)
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (f *file) WriteAt(b []byte, off int64) (int, error) {
	if f.readOnly {
		return 0, sqlite3.IOERR_WRITE
	}
	d := f.data
	d.mu.Lock()
	defer d.mu.Unlock()
	if off < 0 {
		return 0, sqlite3.IOERR_WRITE
	}
	d.grow(off + int64(len(b)))
	for n := 0; n < len(b); {
		p := off + int64(n)
		i := p / ChunkSize
		if d.chunks[i] == nil {
			d.chunks[i] = make([]byte, ChunkSize)
		}
		n += copy(d.chunks[i][p%ChunkSize:], b[n:])
		d.dirty[i] = true
	}
	return len(b), nil
}

// grow makes room for size bytes; the new bytes read as zeros.
func (d *data) grow(size int64) {
	if size <= d.size {
		return
	}
	for n := chunkCount(size); int64(len(d.chunks)) < n; {
		d.chunks = append(d.chunks, nil)
	}
	// Chunks that were in the file before a truncation may still be in
	// IndexedDB: they are dirty (to be deleted or rewritten).
	for i := chunkCount(d.size); i < chunkCount(size); i++ {
		if d.chunks[i] == nil {
			d.dirty[i] = true
		}
	}
	d.size = size
}

func (f *file) Truncate(size int64) error {
	if f.readOnly {
		return sqlite3.IOERR_TRUNCATE
	}
	d := f.data
	d.mu.Lock()
	defer d.mu.Unlock()
	if size < 0 {
		return sqlite3.IOERR_TRUNCATE
	}
	if size >= d.size {
		d.grow(size)
		return nil
	}
	n := chunkCount(size)
	for i := n; i < int64(len(d.chunks)); i++ {
		d.dirty[i] = true // deleted from IndexedDB at the next Sync
	}
	clear(d.chunks[n:])
	d.chunks = d.chunks[:n]
	if r := size % ChunkSize; r != 0 && d.chunks[n-1] != nil {
		clear(d.chunks[n-1][r:])
		d.dirty[n-1] = true
	}
	d.size = size
	return nil
}

// Sync writes the dirty chunks and the size in one strict IndexedDB
// transaction and waits for it to complete. On failure the chunks stay
// dirty and the error (ErrAborted if the transaction aborted) is an
// IOERR_FSYNC for SQLite.
func (f *file) Sync(flags vfs.SyncFlag) error {
	d := f.data
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.dirty) == 0 && d.known && d.stored == d.size {
		return nil
	}
	if err := f.vfs.commit(d); err != nil {
		return fmt.Errorf("idbvfs: sync %s: %w", d.name, err)
	}
	clear(d.dirty)
	d.stored, d.known = d.size, true
	return nil
}

// commit writes d's dirty chunks and size in one transaction. d.mu is held.
func (v *VFS) commit(d *data) (err error) {
	tx, err := transaction(v.idb, true)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && !errors.Is(err, ErrAborted) {
			call(tx, "abort") // a request failed to queue: write none of them
		}
	}()
	chunks := tx.Call("objectStore", chunksStore)
	uint8Array := js.Global().Get("Uint8Array")
	n := chunkCount(d.size)
	for i := range d.dirty {
		if i >= n || d.chunks[i] == nil {
			if _, err := call(chunks, "delete", chunkKey(d.name, i)); err != nil {
				return err
			}
			continue
		}
		b := d.chunks[i][:min(ChunkSize, d.size-i*ChunkSize)]
		a := uint8Array.New(len(b))
		js.CopyBytesToJS(a, b)
		if _, err := call(chunks, "put", a, chunkKey(d.name, i)); err != nil {
			return err
		}
	}
	meta := map[string]any{"size": d.size, "chunk": ChunkSize}
	if _, err := call(tx.Call("objectStore", filesStore), "put", meta, d.name); err != nil {
		return err
	}
	if v.beforeCommit != nil {
		v.beforeCommit(tx)
	}
	if err := await(tx, "complete", "abort"); err != nil {
		return err
	}
	v.mu.Lock()
	v.commits++
	v.mu.Unlock()
	return nil
}

func (f *file) Size() (int64, error) {
	d := f.data
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.size, nil
}

// Lock implements SQLite's locks among the connections of this VFS,
// answering BUSY (SQLite's busy handler retries) rather than waiting.
func (f *file) Lock(lock vfs.LockLevel) error {
	if f.lock >= lock {
		return nil
	}
	if f.readOnly && lock >= vfs.LOCK_RESERVED {
		return sqlite3.IOERR_LOCK
	}
	d := f.data
	d.lockMu.Lock()
	defer d.lockMu.Unlock()
	switch lock {
	case vfs.LOCK_SHARED:
		if d.pending {
			return sqlite3.BUSY // a writer waits for readers to leave
		}
		d.shared++
	case vfs.LOCK_RESERVED:
		if d.reserved {
			return sqlite3.BUSY
		}
		d.reserved, f.reserved = true, true
	case vfs.LOCK_EXCLUSIVE:
		if f.lock < vfs.LOCK_PENDING {
			if d.pending {
				return sqlite3.BUSY
			}
			d.pending, f.lock = true, vfs.LOCK_PENDING
		}
		if d.shared > 1 {
			return sqlite3.BUSY // other readers: stay PENDING, retry later
		}
	default:
		panic(fmt.Sprintf("idbvfs: lock %d", lock))
	}
	f.lock = lock
	return nil
}

func (f *file) Unlock(lock vfs.LockLevel) error {
	if f.lock <= lock {
		return nil
	}
	d := f.data
	d.lockMu.Lock()
	defer d.lockMu.Unlock()
	if f.reserved && lock < vfs.LOCK_RESERVED {
		d.reserved, f.reserved = false, false
	}
	if f.lock >= vfs.LOCK_PENDING {
		d.pending = false
	}
	if lock < vfs.LOCK_SHARED {
		d.shared--
	}
	f.lock = lock
	return nil
}

func (f *file) CheckReservedLock() (bool, error) {
	if f.reserved {
		return true, nil
	}
	d := f.data
	d.lockMu.Lock()
	defer d.lockMu.Unlock()
	return d.reserved, nil
}

func (f *file) LockState() vfs.LockLevel { return f.lock }

// Pragma refuses journal_mode=WAL, which SQLite would otherwise accept
// in EXCLUSIVE locking mode and then fail to open the WAL file; other
// pragmas are SQLite's.
func (f *file) Pragma(name, value string) (string, error) {
	if name == "journal_mode" && strings.EqualFold(value, "wal") {
		return "", fmt.Errorf("%w: journal_mode=WAL (use MEMORY)", ErrUnsupported)
	}
	return "", sqlite3.NOTFOUND
}

func (f *file) SectorSize() int { return 4096 }

// DeviceCharacteristics: nothing reaches IndexedDB between two Syncs, so
// writes are never torn and are seen in order.
func (f *file) DeviceCharacteristics() vfs.DeviceCharacteristic {
	return vfs.IOCAP_SAFE_APPEND | vfs.IOCAP_SEQUENTIAL | vfs.IOCAP_POWERSAFE_OVERWRITE | vfs.IOCAP_SUBPAGE_READ
}

// tempFile is a temporary file, in memory only and private to its
// connection.
type tempFile struct{ vfsutil.SliceFile }

func (*tempFile) Lock(vfs.LockLevel) error         { return nil }
func (*tempFile) Unlock(vfs.LockLevel) error       { return nil }
func (*tempFile) CheckReservedLock() (bool, error) { return false, nil }
func (*tempFile) SectorSize() int                  { return 4096 }
