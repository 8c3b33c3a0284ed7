//! The SQLite side of the power-loss model: a VFS that wraps the platform's default VFS.
//!
//! The vault opens its database with plain `rusqlite`, so the only way to see its writes and syncs
//! without a hook in the product is below SQLite: this VFS is registered as the process default
//! and forwards every call to the VFS that was the default before (`unix` on Linux), telling the
//! model ([`super`]) about each write, truncate, sync, create and delete of a file under the
//! tracked folder first. Once the armed cut has happened it refuses them (`SQLITE_IOERR_*`), as a
//! device without power would. Reads, locks and the WAL index go straight through.
//!
//! It implements SQLite's C interfaces (`sqlite3_vfs`, `sqlite3_io_methods`) through
//! `rusqlite::ffi`, so it is `unsafe` throughout. Each wrapped file is laid out as our header,
//! padded to 16 bytes, followed by the platform VFS's own file object, in the one allocation SQLite
//! makes for it (`szOsFile` is the sum). The methods this VFS does not wrap are the platform's,
//! called with this VFS's object; that is fine for `unix`, whose methods other than xOpen do not
//! use it. The power-loss suite runs under AddressSanitizer in `scripts/asan.sh`.

#![allow(unsafe_code, reason = "implements SQLite's VFS C interface")]

use rusqlite::ffi;
use std::ffi::{c_char, c_int, c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The name this VFS is registered under.
pub const NAME: &CStr = c"jobseal-powerloss";

/// Our part of a file object; the platform VFS's file object follows it in memory.
#[repr(C)]
struct ShimFile {
    /// Must come first: SQLite sees this as a `sqlite3_file`.
    base: ffi::sqlite3_file,
    /// The platform VFS's file object, right after this header.
    real: *mut ffi::sqlite3_file,
    /// The file's full path if it has one (temporary files have none), owned (`Box`).
    path: *mut PathBuf,
    /// Whether a sync also makes the file's name durable: the platform VFS syncs the folder at
    /// the first sync of a WAL or journal it created, never for the main database.
    syncs_name: bool,
}

/// Where the platform's file object starts: after our header, aligned for anything it holds.
const HEADER: usize = std::mem::size_of::<ShimFile>().next_multiple_of(16);

/// The platform VFS we forward to.
struct Base(*mut ffi::sqlite3_vfs);
// SAFETY: the pointer is to SQLite's static, immutable VFS object, valid for the whole process.
unsafe impl Send for Base {}
// SAFETY: as above; SQLite's VFS methods are thread-safe.
unsafe impl Sync for Base {}

static BASE: OnceLock<Base> = OnceLock::new();

fn base() -> *mut ffi::sqlite3_vfs {
    BASE.get().map(|b| b.0).unwrap_or(std::ptr::null_mut())
}

/// Registers this VFS as the default (once per process).
pub(super) fn register() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find(NULL) returns the default VFS, a static object of SQLite's.
        let real = unsafe {
            ffi::sqlite3_initialize();
            ffi::sqlite3_vfs_find(std::ptr::null())
        };
        assert!(!real.is_null(), "SQLite has no default VFS");
        let _ = BASE.set(Base(real));
        // SAFETY: `real` is valid (checked above); we copy its fields and override ours. The copy
        // is leaked: SQLite keeps a pointer to a registered VFS for the life of the process.
        unsafe {
            let mut vfs: ffi::sqlite3_vfs = std::ptr::read(real);
            vfs.szOsFile = c_int::try_from(HEADER).unwrap_or(c_int::MAX) + (*real).szOsFile;
            vfs.pNext = std::ptr::null_mut();
            vfs.zName = NAME.as_ptr();
            vfs.xOpen = Some(x_open);
            vfs.xDelete = Some(x_delete);
            let vfs = Box::leak(Box::new(vfs));
            let rc = ffi::sqlite3_vfs_register(vfs, 1);
            assert_eq!(rc, ffi::SQLITE_OK, "registering the power-loss VFS");
        }
    });
}

/// The platform's file object inside one of ours.
unsafe fn real_of(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY (caller): `file` is a file object this VFS opened, so it starts with a ShimFile.
    unsafe { (*file.cast::<ShimFile>()).real }
}

unsafe fn path_of<'a>(file: *mut ffi::sqlite3_file) -> Option<&'a Path> {
    // SAFETY (caller): as for `real_of`; `path` is null or a live Box, freed only by xClose.
    unsafe {
        let p = (*file.cast::<ShimFile>()).path;
        if p.is_null() {
            None
        } else {
            Some((*p).as_path())
        }
    }
}

unsafe fn methods(real: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY (caller): `real` was opened successfully by the platform VFS, which set pMethods to
    // its static method table.
    unsafe { &*(*real).pMethods }
}

unsafe fn c_path(name: *const c_char) -> Option<PathBuf> {
    if name.is_null() {
        return None;
    }
    // SAFETY (caller): SQLite passes NUL-terminated names.
    let s = unsafe { CStr::from_ptr(name) };
    Some(PathBuf::from(OsStr::from_bytes(s.to_bytes())))
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite allocated `file` with our szOsFile bytes: a ShimFile, then the real object.
    unsafe {
        let sh = file.cast::<ShimFile>();
        let real = file.cast::<u8>().add(HEADER).cast::<ffi::sqlite3_file>();
        (*sh).base.pMethods = std::ptr::null();
        (*sh).real = real;
        (*sh).path = std::ptr::null_mut();
        let journal = ffi::SQLITE_OPEN_WAL | ffi::SQLITE_OPEN_MAIN_JOURNAL | ffi::SQLITE_OPEN_SUPER_JOURNAL;
        (*sh).syncs_name = flags & journal != 0;
        let path = c_path(name);
        let creating = flags & ffi::SQLITE_OPEN_CREATE != 0 && path.as_ref().is_some_and(|p| !p.exists());
        if creating {
            if let Some(p) = &path {
                if super::before_create(p).is_err() {
                    return ffi::SQLITE_CANTOPEN;
                }
            }
        }
        let b = base();
        let Some(open) = (*b).xOpen else { return ffi::SQLITE_CANTOPEN };
        let rc = open(b, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            // The platform may have set its methods on failure; if so it expects xClose.
            if !(*real).pMethods.is_null() {
                if let Some(close) = methods(real).xClose {
                    close(real);
                }
            }
            return rc;
        }
        if let Some(p) = path {
            if creating {
                super::record_created(&p);
            } else {
                super::record_opened(&p);
            }
            (*sh).path = Box::into_raw(Box::new(p));
        }
        (*sh).base.pMethods = &IO_METHODS;
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_delete(_vfs: *mut ffi::sqlite3_vfs, name: *const c_char, sync_dir: c_int) -> c_int {
    // SAFETY: forwarding SQLite's own arguments to the platform VFS.
    unsafe {
        let path = c_path(name);
        if let Some(p) = &path {
            if super::before_remove(p).is_err() {
                return ffi::SQLITE_IOERR_DELETE;
            }
        }
        let b = base();
        let Some(delete) = (*b).xDelete else { return ffi::SQLITE_IOERR_DELETE };
        let rc = delete(b, name, sync_dir);
        if rc == ffi::SQLITE_OK {
            if let Some(p) = &path {
                super::record_removed(p, sync_dir != 0);
            }
        }
        rc
    }
}

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    // Version 2: no memory-mapped reads, so every read comes through xRead.
    xFetch: None,
    xUnfetch: None,
};

/// Calls the platform method `$m` on the real file object with the remaining arguments.
macro_rules! forward {
    ($file:expr, $m:ident $(, $arg:expr)*) => {{
        let real = real_of($file);
        match methods(real).$m {
            Some(f) => f(real $(, $arg)*),
            None => ffi::SQLITE_IOERR,
        }
    }};
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each file it opened exactly once; the path Box is freed here only.
    unsafe {
        let rc = forward!(file, xClose);
        let sh = file.cast::<ShimFile>();
        if !(*sh).path.is_null() {
            drop(Box::from_raw((*sh).path));
            (*sh).path = std::ptr::null_mut();
        }
        rc
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: forwarding SQLite's arguments unchanged.
    unsafe { forward!(file, xRead, buf, amt, off) }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: `buf` holds `amt` bytes (SQLite's contract for xWrite); a null or empty buffer is
    // never made into a slice.
    unsafe {
        let len = usize::try_from(amt).unwrap_or(0);
        if let (Some(p), false) = (path_of(file), buf.is_null() || len == 0) {
            let data = std::slice::from_raw_parts(buf.cast::<u8>(), len);
            if super::record_write(p, u64::try_from(off).unwrap_or(0), data).is_err() {
                return ffi::SQLITE_IOERR_WRITE;
            }
        }
        forward!(file, xWrite, buf, amt, off)
    }
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: forwarding SQLite's arguments unchanged.
    unsafe {
        if let Some(p) = path_of(file) {
            if super::record_truncate(p, u64::try_from(size).unwrap_or(0)).is_err() {
                return ffi::SQLITE_IOERR_TRUNCATE;
            }
        }
        forward!(file, xTruncate, size)
    }
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: forwarding SQLite's arguments unchanged.
    unsafe {
        if let Some(p) = path_of(file) {
            if super::record_sync(p, (*file.cast::<ShimFile>()).syncs_name).is_err() {
                return ffi::SQLITE_IOERR_FSYNC;
            }
        }
        forward!(file, xSync, flags)
    }
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut ffi::sqlite3_int64) -> c_int {
    // SAFETY: forwarding SQLite's arguments unchanged.
    unsafe { forward!(file, xFileSize, size) }
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, lock: c_int) -> c_int {
    // SAFETY: forwarding SQLite's arguments unchanged.
    unsafe { forward!(file, xLock, lock) }
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, lock: c_int) -> c_int {
    // SAFETY: forwarding SQLite's arguments unchanged.
    unsafe { forward!(file, xUnlock, lock) }
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: forwarding SQLite's arguments unchanged.
    unsafe { forward!(file, xCheckReservedLock, out) }
}

unsafe extern "C" fn x_file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    // SAFETY: forwarding SQLite's arguments unchanged. (File controls that would grow the file
    // behind xWrite's back, such as a size hint, are at most unsynced zeros: the model's crash
    // image simply may not have them, as a real cut may not.)
    unsafe { forward!(file, xFileControl, op, arg) }
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwarding to the real file object.
    unsafe {
        let real = real_of(file);
        methods(real).xSectorSize.map_or(4096, |f| f(real))
    }
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwarding to the real file object.
    unsafe {
        let real = real_of(file);
        methods(real).xDeviceCharacteristics.map_or(0, |f| f(real))
    }
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: forwarding SQLite's arguments unchanged.
    unsafe { forward!(file, xShmMap, page, size, extend, out) }
}

unsafe extern "C" fn x_shm_lock(file: *mut ffi::sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    // SAFETY: forwarding SQLite's arguments unchanged.
    unsafe { forward!(file, xShmLock, offset, n, flags) }
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: forwarding to the real file object.
    unsafe {
        let real = real_of(file);
        if let Some(f) = methods(real).xShmBarrier {
            f(real);
        }
    }
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: forwarding SQLite's arguments unchanged.
    unsafe { forward!(file, xShmUnmap, delete) }
}
