//! A flash image as a file: the one the virtual board writes, or a dump a lab already took. A region's
//! `start` is a byte offset into the file.
//!
//! Only regular files are read, and only `region.len` bytes of them: a FIFO, `/dev/zero` or a tty given
//! by mistake is refused up front instead of blocking or filling memory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::fcntl::OFlag;

use super::{Limits, MemoryError, MemoryLink, Region};

/// Bytes read between two looks at the cancel flag and the deadline.
const STEP: usize = 1 << 20;

/// A flash image or memory dump on disk.
#[derive(Debug)]
pub struct FileImage {
    path: PathBuf,
    file: File,
}

impl FileImage {
    /// Open `path` for reading. Missing, unreadable or not a regular file → [`MemoryError::Unreachable`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MemoryError> {
        let path = path.as_ref().to_path_buf();
        let unreachable = |reason: String| MemoryError::Unreachable {
            source_desc: format!("file {}", path.display()),
            reason,
        };
        // O_NONBLOCK so that opening a FIFO with no writer returns at once; the check below then
        // refuses it. On a regular file the flag changes nothing.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(&path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => unreachable("no such file".into()),
                _ => unreachable(format!("cannot open: {e}")),
            })?;
        let meta = file
            .metadata()
            .map_err(|e| unreachable(format!("cannot stat: {e}")))?;
        if !meta.is_file() {
            return Err(unreachable(format!(
                "not a regular file ({}); only image files are read",
                kind(&meta.file_type())
            )));
        }
        Ok(FileImage { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size now (a device may still be writing it).
    pub fn size(&self) -> Result<u64, MemoryError> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| self.unreachable(format!("cannot stat: {e}")))
    }

    fn unreachable(&self, reason: String) -> MemoryError {
        MemoryError::Unreachable {
            source_desc: self.describe(),
            reason,
        }
    }

    fn past_end(&self, region: &Region, size: u64) -> MemoryError {
        MemoryError::Protocol {
            source_desc: self.describe(),
            detail: format!(
                "region {} (offset {:#x}, {} bytes) ends at offset {:#x}, past the end of {} ({} bytes)",
                region.name,
                region.start,
                region.len,
                region.start.saturating_add(region.len),
                self.path.display(),
                size
            ),
        }
    }
}

fn kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

impl MemoryLink for FileImage {
    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn read(&mut self, region: &Region, limits: &Limits) -> Result<Vec<u8>, MemoryError> {
        limits.admit(region)?;
        let size = self.size()?;
        match region.start.checked_add(region.len) {
            Some(end) if end <= size => {}
            _ => return Err(self.past_end(region, size)),
        }
        let len = usize::try_from(region.len).map_err(|_| MemoryError::TooLarge {
            region: region.name.clone(),
            len: region.len,
            max: usize::MAX as u64,
        })?;
        self.file
            .seek(SeekFrom::Start(region.start))
            .map_err(|e| self.unreachable(format!("cannot seek to {:#x}: {e}", region.start)))?;
        let started = Instant::now();
        let mut out = vec![0u8; len];
        for piece in out.chunks_mut(STEP) {
            if limits.cancel.is_cancelled() {
                return Err(MemoryError::Cancelled);
            }
            if Instant::now() >= limits.deadline {
                return Err(MemoryError::Timeout {
                    source_desc: self.describe(),
                    what: format!("reading region {}", region.name),
                    after: limits.deadline.saturating_duration_since(started),
                });
            }
            if let Err(e) = self.file.read_exact(piece) {
                return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                    // The file shrank since its size was taken.
                    let now = self.size().unwrap_or(size);
                    self.past_end(region, now)
                } else {
                    self.unreachable(format!("cannot read region {}: {e}", region.name))
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cancel;
    use std::time::Duration;

    fn limits() -> Limits {
        Limits::new(1 << 20, Duration::from_secs(10), Cancel::new())
    }

    fn region(start: u64, len: u64) -> Region {
        Region {
            name: "flash".into(),
            start,
            len,
        }
    }

    #[test]
    fn memory_file_reads_regions_at_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flash.bin");
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut img = FileImage::open(&path).unwrap();
        assert_eq!(img.describe(), format!("file {}", path.display()));
        assert_eq!(img.size().unwrap(), 5000);
        assert_eq!(img.read(&region(0, 5000), &limits()).unwrap(), data);
        assert_eq!(
            img.read(&region(1000, 16), &limits()).unwrap(),
            data[1000..1016]
        );
        assert_eq!(img.read(&region(5000, 0), &limits()).unwrap(), b"");
        // Regions can be read in any order.
        assert_eq!(img.read(&region(3, 2), &limits()).unwrap(), data[3..5]);
    }

    #[test]
    fn memory_file_past_the_end_names_file_offset_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.bin");
        std::fs::write(&path, [0u8; 100]).unwrap();
        let mut img = FileImage::open(&path).unwrap();
        let err = img.read(&region(90, 20), &limits()).unwrap_err();
        assert!(matches!(err, MemoryError::Protocol { .. }), "{err}");
        assert!(!err.is_refusal());
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("0x5a"), "{msg}");
        assert!(msg.contains("100 bytes"), "{msg}");
        let err = img.read(&region(u64::MAX, 2), &limits()).unwrap_err();
        assert!(matches!(err, MemoryError::Protocol { .. }), "{err}");
    }

    #[test]
    fn memory_file_refuses_what_is_not_a_regular_file() {
        for path in ["/dev/zero", "/dev/null", "/"] {
            let err = FileImage::open(path).unwrap_err();
            assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        // A FIFO with no writer: refused at once, not blocked on.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let started = Instant::now();
        let err = FileImage::open(&fifo).unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn memory_file_missing_is_unreachable_and_limits_hold() {
        let dir = tempfile::tempdir().unwrap();
        let err = FileImage::open(dir.path().join("nope.bin")).unwrap_err();
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("nope.bin"), "{err}");

        let path = dir.path().join("big.bin");
        std::fs::write(&path, vec![1u8; 4096]).unwrap();
        let mut img = FileImage::open(&path).unwrap();
        let small = Limits::new(100, Duration::from_secs(10), Cancel::new());
        let err = img.read(&region(0, 4096), &small).unwrap_err();
        assert!(matches!(err, MemoryError::TooLarge { .. }), "{err}");
        let cancelled = Limits::new(1 << 20, Duration::from_secs(10), Cancel::new());
        cancelled.cancel.cancel(1);
        let err = img.read(&region(0, 16), &cancelled).unwrap_err();
        assert!(matches!(err, MemoryError::Cancelled), "{err}");
    }
}
