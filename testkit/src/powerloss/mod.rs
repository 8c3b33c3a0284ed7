//! Power-loss simulation: what a phone's storage keeps when the battery dies (G3, G6).
//!
//! Killing a process loses nothing the OS already accepted; losing power also loses what the OS
//! had not yet synced to flash, and can lose it in any order. This module models that, the way
//! SQLite's own crash tests do: every write to a file under a tracked folder is recorded until the
//! file is synced; at a simulated power cut each 512-byte sector written since the last sync is
//! kept, lost, or torn into garbage, independently of the others (so writes are effectively
//! reordered), a changed length is kept or lost, and a created or removed name that its folder
//! was not synced for may come back or vanish. Bytes that were synced are always kept, and garbage
//! stays within the bytes written (the "powersafe overwrite" SQLite assumes of storage).
//!
//! Two seams feed the model: [`vfs`], a SQLite VFS that wraps the platform's default one and is
//! installed as the process default (so the vault's own `rusqlite` connections go through it
//! unchanged), and [`SimKeyFiles`], the software keystore's file calls
//! ([`jobseal::KeyFiles`]). A run arms a cut at the n-th sync point or the n-th write of any kind;
//! from that moment every further write under the tracked folder fails, as if the device were
//! off, and [`power_cut`] rewrites the folder to one of the states the storage could have been
//! left in. Files outside the tracked folder (the dispatch server's database in the same process)
//! pass straight through.
//!
//! Modelling notes: the first sync of a WAL or journal that SQLite created makes every name in its
//! folder durable (the platform VFS syncs the folder then); nothing else SQLite does syncs a
//! folder, so the main database's name is durable only through that or an earlier state. A name
//! removed by SQLite without its folder synced may come back with its last synced bytes. Folders
//! themselves are not modelled (the vault's own folder and the keystore's are created once, at
//! the vault's creation). The WAL index (`-shm`) is shared memory, not storage: a cut removes it.

pub mod vfs;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The torn-write granularity: the smallest unit a device writes atomically.
pub const SECTOR: usize = 512;

/// When the power goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Not in this run: every write and sync succeeds (a calibration run counts them).
    Never,
    /// Just before the n-th sync (1-based) under the tracked folder takes effect.
    AtSync(u64),
    /// Just before the n-th write of any kind (write, truncate, sync, create, remove).
    AtOp(u64),
}

/// What a power cut keeps of the changes that were not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Everything (the storage happened to flush it all), names included.
    All,
    /// Nothing: every file as of its last sync, every unsynced name change undone.
    Nothing,
    /// A mixture drawn from the seed: per file all, nothing, or sector by sector kept, lost or
    /// torn into garbage; per unsynced name change, kept or undone.
    Mixed(u64),
}

/// What the tracked folder has seen since [`track`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Writes of any kind, syncs included.
    pub ops: u64,
    /// Syncs (file and folder).
    pub syncs: u64,
}

/// A file's content change not yet synced.
#[derive(Clone, Debug)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    Truncate(u64),
}

/// What a name held before its latest unsynced create or remove.
#[derive(Clone, Debug)]
enum Old {
    /// Nothing: the name did not exist durably.
    Absent,
    /// The file that is live now (same inode): its synced bytes plus some unsynced ones.
    Live,
    /// Another file, since removed or replaced, with these durable bytes.
    Content(Vec<u8>),
}

/// One tracked name.
#[derive(Clone, Debug)]
struct Track {
    /// The live file's bytes as of its last sync (empty for a fresh, never-synced file).
    synced: Vec<u8>,
    /// Changes since then, in order.
    pending: Vec<Pending>,
    /// The name exists now.
    live: bool,
    /// Whether the name's existence (or absence) is durable.
    name_durable: bool,
    /// What a cut that loses the unsynced name change leaves.
    old: Old,
}

impl Track {
    fn existing(content: Vec<u8>) -> Track {
        Track { synced: content, pending: Vec::new(), live: true, name_durable: true, old: Old::Live }
    }

    fn absent() -> Track {
        Track { synced: Vec::new(), pending: Vec::new(), live: false, name_durable: true, old: Old::Absent }
    }

    /// The live content with every pending change applied.
    fn current(&self) -> Vec<u8> {
        let mut out = self.synced.clone();
        for p in &self.pending {
            apply(&mut out, p);
        }
        out
    }

    fn sync_data(&mut self) {
        self.synced = self.current();
        self.pending.clear();
    }

    fn sync_name(&mut self) {
        self.name_durable = true;
        self.old = if self.live { Old::Live } else { Old::Absent };
    }

    fn remove(&mut self) {
        if matches!(self.old, Old::Live) || self.name_durable {
            // The removed file's synced bytes are what could come back.
            self.old = Old::Content(self.synced.clone());
        }
        self.live = false;
        self.name_durable = false;
        self.synced.clear();
        self.pending.clear();
    }

    fn recreate(&mut self) {
        if self.name_durable {
            self.old = Old::Absent;
        }
        self.live = true;
        self.name_durable = false;
        self.synced.clear();
        self.pending.clear();
    }
}

fn apply(buf: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::Write { offset, data } => {
            let start = usize::try_from(*offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(data.len());
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[start..end].copy_from_slice(data);
        }
        Pending::Truncate(len) => buf.resize(usize::try_from(*len).unwrap_or(usize::MAX), 0),
    }
}

/// The simulation's state: one per process, since the VFS it feeds is process-wide.
#[derive(Debug)]
struct Sim {
    root: Option<PathBuf>,
    files: BTreeMap<PathBuf, Track>,
    counts: Counts,
    cut: Cut,
    dead: bool,
}

static SIM: Mutex<Sim> = Mutex::new(Sim {
    root: None,
    files: BTreeMap::new(),
    counts: Counts { ops: 0, syncs: 0 },
    cut: Cut::Never,
    dead: false,
});

fn sim() -> MutexGuard<'static, Sim> {
    SIM.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a write was refused: the power is off.
fn powered_off() -> io::Error {
    io::Error::other("simulated power cut")
}

/// `path` with its folder canonicalized, so that it compares with the canonical tracked root
/// however the caller spelled it (SQLite passes full paths; the keystore joins onto its folder).
fn normalize(path: &Path) -> PathBuf {
    match (path.parent().and_then(|p| p.canonicalize().ok()), path.file_name()) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

impl Sim {
    fn tracks(&self, path: &Path) -> bool {
        self.root.as_ref().is_some_and(|r| path.starts_with(r))
    }

    /// Counts one write (`sync` says whether it is a sync) and decides whether the power is still
    /// on for it.
    fn step(&mut self, sync: bool) -> io::Result<()> {
        if self.dead {
            return Err(powered_off());
        }
        self.counts.ops += 1;
        if sync {
            self.counts.syncs += 1;
        }
        let cut = match self.cut {
            Cut::Never => false,
            Cut::AtSync(n) => sync && self.counts.syncs == n,
            Cut::AtOp(n) => self.counts.ops == n,
        };
        if cut {
            self.dead = true;
            return Err(powered_off());
        }
        Ok(())
    }

    /// The track of a name first seen now: whatever is on disk counts as durable.
    fn track_of(&mut self, path: &Path) -> &mut Track {
        self.files.entry(path.to_path_buf()).or_insert_with(|| match std::fs::read(path) {
            Ok(content) => Track::existing(content),
            Err(_) => Track::absent(),
        })
    }
}

/// Installs the power-loss VFS as the process's default SQLite VFS (once; later calls do
/// nothing). Every connection opened afterwards goes through it.
pub fn install() {
    vfs::register();
}

/// Starts tracking every file under `root` (canonicalized): what is on disk now is durable; the
/// counts start from zero and `cut` is armed.
pub fn track(root: &Path, cut: Cut) {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut s = sim();
    s.root = Some(root);
    s.files.clear();
    s.counts = Counts::default();
    s.cut = cut;
    s.dead = false;
}

/// The writes and syncs seen since [`track`].
pub fn counts() -> Counts {
    sim().counts
}

/// Whether the armed cut has happened.
pub fn is_cut() -> bool {
    sim().dead
}

/// Stops tracking without touching the disk: everything written stays.
pub fn untrack() {
    let mut s = sim();
    s.root = None;
    s.files.clear();
    s.dead = false;
    s.cut = Cut::Never;
}

/// What a power cut did to the tracked folder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Tracked files rewritten (or removed) to their state after the cut.
    pub files: usize,
    /// Sectors kept as written.
    pub sectors_kept: usize,
    /// Sectors that kept their synced bytes.
    pub sectors_lost: usize,
    /// Sectors left as garbage.
    pub sectors_torn: usize,
    /// Names whose unsynced create or remove was undone.
    pub names_undone: usize,
}

/// Cuts the power: rewrites every tracked file to one of the states the storage could have been
/// left in (as `keep` says), removes the WAL index, and stops tracking. Call it once the vault
/// that was running is dropped.
pub fn power_cut(keep: Keep) -> io::Result<CutReport> {
    let mut rng = fastrand::Rng::with_seed(match keep {
        Keep::Mixed(seed) => seed,
        _ => 0,
    });
    let (root, files) = {
        let mut s = sim();
        s.dead = true;
        (s.root.take(), std::mem::take(&mut s.files))
    };
    let mut report = CutReport::default();
    for (path, track) in files {
        report.files += 1;
        let new_state = track.name_durable
            || match keep {
                Keep::All => true,
                Keep::Nothing => false,
                Keep::Mixed(_) => rng.bool(),
            };
        if !new_state {
            report.names_undone += 1;
        }
        let image = match (new_state, &track.old) {
            (true, _) | (false, Old::Live) => {
                if track.live {
                    Some(crash_image(&track, keep, &mut rng, &mut report))
                } else {
                    None
                }
            }
            (false, Old::Absent) => None,
            (false, Old::Content(c)) => Some(c.clone()),
        };
        match image {
            // A file that has to be recreated is recreated owner-only, as the vault made it.
            Some(bytes) => {
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                std::io::Write::write_all(&mut options.open(&path)?, &bytes)?;
            }
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            },
        }
    }
    if let Some(root) = root {
        for f in crate::files::files_under(&root) {
            if f.to_string_lossy().ends_with("-shm") {
                std::fs::remove_file(&f)?;
            }
        }
    }
    untrack();
    Ok(report)
}

/// The live file after a cut: synced bytes, and of each sector written since, the new bytes, the
/// old ones or garbage. Under [`Keep::Mixed`] a file's policy is drawn first (all kept, all lost,
/// or sector by sector), so that the clean extremes are as likely as any mixture.
fn crash_image(track: &Track, keep: Keep, rng: &mut fastrand::Rng, report: &mut CutReport) -> Vec<u8> {
    let old = &track.synced;
    let new = track.current();
    let mut dirty: BTreeSet<usize> = BTreeSet::new();
    // The byte ranges written: garbage stays inside them (see `fill_garbage`).
    let mut written: Vec<(usize, usize)> = Vec::new();
    for p in &track.pending {
        match p {
            Pending::Write { offset, data } if !data.is_empty() => {
                let start = usize::try_from(*offset).unwrap_or(usize::MAX);
                let end = start.saturating_add(data.len());
                dirty.extend(start / SECTOR..end.div_ceil(SECTOR));
                written.push((start, end));
            }
            Pending::Write { .. } => {}
            Pending::Truncate(len) => {
                // Shrinking or growing makes the sectors past the shorter length uncertain.
                let len = usize::try_from(*len).unwrap_or(usize::MAX);
                let from = len.min(old.len()) / SECTOR;
                let to = len.max(old.len()).div_ceil(SECTOR);
                dirty.extend(from..to);
            }
        }
    }
    let policy = match keep {
        Keep::All => 0,
        Keep::Nothing => 1,
        Keep::Mixed(_) => rng.u8(0..3),
    };
    let len = if old.len() == new.len() || policy == 0 {
        new.len()
    } else if policy == 1 {
        old.len()
    } else if rng.bool() {
        new.len()
    } else {
        old.len()
    };
    let mut out = old.clone();
    out.resize(len, 0);
    for s in dirty {
        let start = s * SECTOR;
        if start >= len {
            break;
        }
        let end = (start + SECTOR).min(len);
        // 0-4: the new bytes, 5-8: the synced ones, 9: garbage.
        let choice = match policy {
            0 => 0,
            1 => 5,
            _ => rng.u8(0..10),
        };
        match choice {
            0..=4 => {
                for (i, b) in out[start..end].iter_mut().enumerate() {
                    *b = new.get(start + i).copied().unwrap_or(0);
                }
                report.sectors_kept += 1;
            }
            5..=8 => report.sectors_lost += 1,
            _ => {
                fill_garbage(&mut out, start, end, &written, rng);
                report.sectors_torn += 1;
            }
        }
    }
    out
}

/// Fills the bytes of `out[start..end]` that a pending write covered with garbage. A torn sector
/// never changes bytes outside what was written: SQLite assumes that of the storage
/// (`SQLITE_IOCAP_POWERSAFE_OVERWRITE`, its default on unix) and would lose committed data
/// without it, whatever the application did.
fn fill_garbage(out: &mut [u8], start: usize, end: usize, written: &[(usize, usize)], rng: &mut fastrand::Rng) {
    for &(ws, we) in written {
        let (a, b) = (ws.max(start), we.min(end));
        if a < b {
            rng.fill(&mut out[a..b]);
        }
    }
}

/// Counts one write (or sync) of `path` if it is tracked, refuses it once the power is cut, and
/// applies `change` to its track; the caller performs the write only on `Ok`.
fn record(path: &Path, sync: bool, change: impl FnOnce(&mut Track)) -> io::Result<()> {
    let path = &normalize(path);
    let mut s = sim();
    if !s.tracks(path) {
        return Ok(());
    }
    s.step(sync)?;
    change(s.track_of(path));
    Ok(())
}

fn record_write(path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
    record(path, false, |t| t.pending.push(Pending::Write { offset, data: data.to_vec() }))
}

fn record_truncate(path: &Path, len: u64) -> io::Result<()> {
    record(path, false, |t| t.pending.push(Pending::Truncate(len)))
}

/// A file sync: its bytes become durable. With `syncs_folder` (the first sync of a WAL or journal
/// SQLite created, when its platform VFS also syncs the folder) every name in the file's folder
/// becomes durable too.
fn record_sync(path: &Path, syncs_folder: bool) -> io::Result<()> {
    let path = &normalize(path);
    let mut s = sim();
    if !s.tracks(path) {
        return Ok(());
    }
    s.step(true)?;
    let t = s.track_of(path);
    t.sync_data();
    if syncs_folder && !t.name_durable {
        let dir = path.parent().map(Path::to_path_buf);
        for (p, t) in s.files.iter_mut() {
            if p.parent().map(Path::to_path_buf) == dir {
                t.sync_name();
            }
        }
    }
    Ok(())
}

/// Checks the power before a file is created; [`record_created`] records it once it is.
fn before_create(path: &Path) -> io::Result<()> {
    record(path, false, |_| {})
}

fn record_created(path: &Path) {
    let path = &normalize(path);
    let mut s = sim();
    if !s.tracks(path) {
        return;
    }
    s.track_of(path).recreate();
}

/// Records that `path` was opened (existing): its current bytes are durable if first seen.
fn record_opened(path: &Path) {
    let path = &normalize(path);
    let mut s = sim();
    if s.tracks(path) {
        s.track_of(path);
    }
}

fn before_remove(path: &Path) -> io::Result<()> {
    record(path, false, |_| {})
}

fn record_removed(path: &Path, durable: bool) {
    let path = &normalize(path);
    let mut s = sim();
    if let Some(t) = s.files.get_mut(path) {
        t.remove();
        if durable {
            t.sync_name();
        }
    }
}

fn record_dir_sync(dir: &Path) -> io::Result<()> {
    let dir = &normalize(dir);
    let mut s = sim();
    if !s.tracks(dir) {
        return Ok(());
    }
    s.step(true)?;
    for (p, t) in s.files.iter_mut() {
        if p.parent() == Some(dir) {
            t.sync_name();
        }
    }
    Ok(())
}

/// The software keystore's file calls under the model: [`jobseal::KeyFiles`] on the real disk,
/// with every change under the tracked folder recorded and refused once the power is cut.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimKeyFiles;

impl jobseal::KeyFiles for SimKeyFiles {
    fn create_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        before_create(path)?;
        jobseal::OsKeyFiles.create_new(path, &[])?;
        record_created(path);
        record_write(path, 0, bytes)?;
        jobseal::OsKeyFiles.overwrite(path, bytes)
    }

    fn overwrite(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if !path.exists() {
            return Err(io::ErrorKind::NotFound.into());
        }
        record_write(path, 0, bytes)?;
        jobseal::OsKeyFiles.overwrite(path, bytes)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        record_sync(path, false)?;
        jobseal::OsKeyFiles.sync_file(path)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        before_remove(path)?;
        jobseal::OsKeyFiles.remove(path)?;
        record_removed(path, false);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        record_dir_sync(dir)?;
        jobseal::OsKeyFiles.sync_dir(dir)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        jobseal::OsKeyFiles.read(path)
    }
}
