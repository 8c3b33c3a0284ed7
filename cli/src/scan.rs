//! `jobseal scan`: the forensic check that customer data is really gone (G1, G3).
//!
//! A privacy officer, or a CI job, must be able to show from outside the vault that no customer
//! value survives in a data directory: not in the database, its WAL, the keystore folder or any
//! stray file. This module walks a tree without following symlinks and reports every occurrence
//! of each needle's bytes, reading files in bounded chunks so that size does not matter. Needles
//! are customer data themselves, so they are only ever named by their number.

use crate::error::CliError;
use memchr::memmem;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Bytes read from a file at a time, beyond the overlap kept from the previous read.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// A byte string to look for, wiped on drop.
///
/// The searcher (`memchr::memmem`) is built afresh for each chunk, borrowing these bytes, rather
/// than kept here: a kept searcher would hold its own copy of the needle (and tables derived from
/// it) that could not be wiped.
pub struct Needle {
    bytes: Zeroizing<Vec<u8>>,
}

impl Needle {
    /// Prepares `bytes` for searching. `number` names it in errors, which never quote it.
    pub fn new(bytes: Zeroizing<Vec<u8>>, number: usize) -> Result<Self, CliError> {
        if bytes.is_empty() {
            return Err(CliError::Input(format!("needle #{number} is empty")));
        }
        Ok(Needle { bytes })
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Calls `hit` with every position at or after `from` where the needle starts in `hay`,
    /// overlapping occurrences included.
    fn find_all(&self, hay: &[u8], from: usize, mut hit: impl FnMut(usize)) {
        let finder = memmem::Finder::new(self.bytes.as_slice());
        let mut i = from;
        // `find_iter` skips overlapping occurrences, so search again one byte past each hit.
        while let Some(found) = hay.get(i..).and_then(|rest| finder.find(rest)) {
            hit(i + found);
            i += found + 1;
        }
    }
}

/// Parses a `--hex` needle: an even number of hex digits (either case). A needle is customer
/// data, so it is decoded by the core's constant-time codec.
pub fn parse_hex(s: &str, number: usize) -> Result<Vec<u8>, CliError> {
    jobseal::hex::decode(s)
        .ok_or_else(|| CliError::Input(format!("needle #{number} (--hex) must be an even number of hex digits")))
}

/// One occurrence of a needle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The file it is in.
    pub path: PathBuf,
    /// The needle's number, from 1, in the order documented by `jobseal scan --help`.
    pub needle: usize,
    /// Byte offset of its first byte in the file.
    pub offset: u64,
}

/// An entry that could not be read; the scan goes on, but cannot claim absence.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScanError {
    /// The file or directory.
    pub path: PathBuf,
    /// What went wrong (an operating-system message, never file content).
    pub message: String,
}

/// What a scan found.
#[derive(Debug, Default, serde::Serialize)]
pub struct ScanReport {
    /// Regular files read to the end.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Entries neither directories nor regular files (symlinks, sockets, devices), not read.
    pub skipped: u64,
    /// Every occurrence, in walk order and then by offset.
    pub findings: Vec<Finding>,
    /// Entries that could not be read.
    pub errors: Vec<ScanError>,
}

/// Scans `reader` for every needle, `chunk` new bytes at a time, and calls `hit(needle index,
/// offset)` for each occurrence in order of needle within each chunk. Returns the bytes read.
///
/// The last `longest needle - 1` bytes of each read are kept in front of the next, so an
/// occurrence that straddles reads (or spans many, when a needle is longer than a chunk) is seen
/// whole once its last byte arrives; an occurrence lying entirely in those kept bytes was already
/// reported and is skipped.
pub fn scan_reader(
    mut reader: impl Read,
    needles: &[Needle],
    chunk: usize,
    mut hit: impl FnMut(usize, u64),
) -> io::Result<u64> {
    let chunk = chunk.max(1);
    let keep_max = needles.iter().map(Needle::len).max().unwrap_or(1) - 1;
    let mut buf: Vec<u8> = Vec::with_capacity(keep_max + chunk);
    // File offset of buf[0].
    let mut base: u64 = 0;
    let mut total: u64 = 0;
    loop {
        let kept = buf.len();
        buf.resize(kept + chunk, 0);
        let n = loop {
            match reader.read(&mut buf[kept..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        buf.truncate(kept + n);
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        for (index, needle) in needles.iter().enumerate() {
            // Start where an occurrence would end inside the new bytes.
            let from = (kept + 1).saturating_sub(needle.len());
            needle.find_all(&buf, from, |pos| hit(index, base + pos as u64));
        }
        let keep = keep_max.min(buf.len());
        let drop = buf.len() - keep;
        buf.drain(..drop);
        base += drop as u64;
    }
}

/// Walks `root` and scans every regular file under it.
///
/// `root` itself is followed if it is a symlink, since the caller named it (like `find -H`);
/// nothing below it is. An unreadable entry is recorded and the walk goes on; only an unreadable
/// `root` is an error.
pub fn scan_path(root: &Path, needles: &[Needle]) -> Result<ScanReport, CliError> {
    let meta =
        fs::metadata(root).map_err(|e| CliError::Input(format!("cannot scan {}: {e}", crate::output::path(root))))?;
    let mut report = ScanReport::default();
    if meta.is_file() {
        scan_file(root, needles, &mut report);
        return Ok(report);
    }
    if !meta.is_dir() {
        return Err(CliError::Input(format!(
            "cannot scan {}: not a regular file or directory",
            crate::output::path(root)
        )));
    }
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let mut entries: Vec<PathBuf> = match fs::read_dir(&dir) {
            Ok(rd) => {
                let mut v = Vec::new();
                for entry in rd {
                    match entry {
                        Ok(e) => v.push(e.path()),
                        Err(e) => report.errors.push(ScanError { path: dir.clone(), message: e.to_string() }),
                    }
                }
                v
            }
            Err(e) => {
                report.errors.push(ScanError { path: dir, message: e.to_string() });
                continue;
            }
        };
        // Sorted so that two scans of the same tree print the same report; reversed because the
        // stack pops from the end.
        entries.sort();
        let mut subdirs = Vec::new();
        for path in entries {
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => subdirs.push(path),
                Ok(m) if m.is_file() => scan_file(&path, needles, &mut report),
                Ok(_) => report.skipped += 1,
                Err(e) => report.errors.push(ScanError { path, message: e.to_string() }),
            }
        }
        dirs.extend(subdirs.into_iter().rev());
    }
    Ok(report)
}

fn scan_file(path: &Path, needles: &[Needle], report: &mut ScanReport) {
    // A regular file could be swapped for a FIFO between the metadata call and this open; the
    // tool is meant for trees at rest, where that does not happen.
    let result = File::open(path).and_then(|f| {
        let mut found = Vec::new();
        let bytes = scan_reader(f, needles, CHUNK_BYTES, |index, offset| found.push((index, offset)))?;
        Ok((bytes, found))
    });
    match result {
        Ok((bytes, mut found)) => {
            report.files += 1;
            report.bytes += bytes;
            found.sort_by_key(|&(index, offset)| (offset, index));
            report.findings.extend(found.into_iter().map(|(index, offset)| Finding {
                path: path.to_path_buf(),
                needle: index + 1,
                offset,
            }));
        }
        Err(e) => report.errors.push(ScanError { path: path.to_path_buf(), message: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needles(list: &[&[u8]]) -> Vec<Needle> {
        list.iter().enumerate().map(|(i, n)| Needle::new(Zeroizing::new(n.to_vec()), i + 1).unwrap()).collect()
    }

    fn naive(hay: &[u8], list: &[&[u8]]) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        for (i, n) in list.iter().enumerate() {
            for p in 0..hay.len() {
                if hay[p..].starts_with(n) {
                    out.push((i, p as u64));
                }
            }
        }
        out.sort();
        out
    }

    /// A reader that hands out at most `step` bytes per read, to exercise short reads.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn every_occurrence_is_found_once_whatever_the_chunking() {
        let hay = b"xxabcabcabxabcaaaaabcabcfake-valuezzfake-valuefake-valu".repeat(3);
        let list: &[&[u8]] = &[b"abc", b"abcabcab", b"a", b"aa", b"fake-value", b"z", &hay[5..40], b"nothere"];
        let expected = naive(&hay, list);
        let ns = needles(list);
        for chunk in [1, 2, 3, 5, 7, 16, 64, 1000] {
            for step in [1, 4, 1000] {
                let mut got = Vec::new();
                let read = scan_reader(Trickle { data: &hay, step }, &ns, chunk, |i, o| got.push((i, o))).unwrap();
                got.sort();
                assert_eq!(read, hay.len() as u64);
                assert_eq!(got, expected, "chunk {chunk}, step {step}");
            }
        }
    }

    #[test]
    fn a_needle_longer_than_the_chunk_is_found() {
        let needle = vec![b'q'; 100];
        let mut hay = vec![b'.'; 300];
        hay[150..250].copy_from_slice(&needle);
        let ns = needles(&[&needle]);
        let mut got = Vec::new();
        scan_reader(&hay[..], &ns, 7, |i, o| got.push((i, o))).unwrap();
        assert_eq!(got, vec![(0, 150)]);
    }

    #[test]
    fn hex_needles_parse_and_bad_ones_do_not_echo() {
        assert_eq!(parse_hex("00fFa1", 1).unwrap(), vec![0x00, 0xff, 0xa1]);
        for bad in ["0", "zz", "+33", "0x00"] {
            let e = parse_hex(bad, 3).unwrap_err().to_string();
            assert!(e.contains("#3") && !e.contains(bad), "{e}");
        }
        assert!(Needle::new(Zeroizing::new(Vec::new()), 2).is_err());
    }
}
