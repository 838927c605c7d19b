//! Bounded reads of the files people write: board profiles, scenarios, CSV fixtures and credential
//! files.
//!
//! A path given on the command line or in a profile can name anything: `/dev/zero` (endless), a FIFO
//! (an open for reading waits for a writer), a directory, or a file far larger than any real input.
//! [`read_text`] reads only regular files no larger than [`MAX_INPUT_BYTES`], and fails fast otherwise:
//!
//! - the file is opened with `O_NONBLOCK` (so opening a FIFO cannot hang) and `O_NOCTTY` (so opening a
//!   terminal cannot make it ours);
//! - the *opened* file is checked (`fstat`), so what is judged is what is read;
//! - at most the cap plus one byte is read, so a file that grows after the check is still bounded;
//! - the text must be UTF-8, and the error gives the byte offset of the first bad byte.
//!
//! Every [`ReadError`] names the path once and says what is wrong once.

use nix::fcntl::OFlag;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The largest input file hilt reads: 16 MiB, far above any profile, scenario, fixture or label.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Why a file people write could not be read. Displays as one line naming the path.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: cannot read: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}: is not a regular file ({kind})", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "{}: is larger than the {} MiB limit for input files",
        path.display(),
        MAX_INPUT_BYTES >> 20
    )]
    TooLarge { path: PathBuf },
    #[error("{}: is not valid UTF-8 (byte {offset})", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },
}

impl ReadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Io { path, .. }
            | ReadError::NotRegular { path, .. }
            | ReadError::TooLarge { path }
            | ReadError::NotUtf8 { path, .. } => path,
        }
    }

    /// An I/O error about `path` (also used for directories that cannot be listed).
    pub fn io(path: &Path, error: io::Error) -> Self {
        ReadError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// Read `path` as UTF-8 text: a regular file of at most [`MAX_INPUT_BYTES`].
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    let file = open_nonblocking(path).map_err(|e| ReadError::io(path, e))?;
    let meta = file.metadata().map_err(|e| ReadError::io(path, e))?;
    check_regular(path, &meta)?;
    if meta.len() > MAX_INPUT_BYTES {
        return Err(ReadError::TooLarge { path: path.into() });
    }
    let bytes = read_bounded(file, meta.len()).map_err(|e| ReadError::io(path, e))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(ReadError::TooLarge { path: path.into() });
    }
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 {
        path: path.into(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Opens `path` for reading only if it is a regular file, without blocking on a FIFO or taking a
/// terminal; the checks apply to the opened handle, so what is judged is what is read. For readers
/// with their own size limits (key files, signed envelopes).
pub fn open_regular(path: &Path) -> Result<(File, Metadata), ReadError> {
    let file = open_nonblocking(path).map_err(|e| ReadError::io(path, e))?;
    let meta = file.metadata().map_err(|e| ReadError::io(path, e))?;
    check_regular(path, &meta)?;
    Ok((file, meta))
}

fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)
}

fn check_regular(path: &Path, meta: &Metadata) -> Result<(), ReadError> {
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(());
    }
    let kind = if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a special file"
    };
    Err(ReadError::NotRegular {
        path: path.into(),
        kind,
    })
}

/// Read at most one byte more than the cap, so growth past it after the size check is seen.
fn read_bounded(file: File, expected: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(expected.min(MAX_INPUT_BYTES) as usize);
    file.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.toml");
        std::fs::write(&p, "x = 1\n").unwrap();
        assert_eq!(read_text(&p).unwrap(), "x = 1\n");
    }

    #[test]
    fn missing_file_names_the_path_once() {
        let err = read_text(Path::new("/nonexistent/hilt.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("/nonexistent/hilt.toml: cannot read: "),
            "{msg}"
        );
        assert_eq!(msg.matches("/nonexistent/hilt.toml").count(), 1, "{msg}");
        assert!(std::error::Error::source(&err).is_none());
    }

    #[test]
    fn bad_utf8_gives_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, b"abc\xffdef").unwrap();
        let err = read_text(&p).unwrap_err();
        assert!(matches!(err, ReadError::NotUtf8 { offset: 3, .. }), "{err}");
        assert!(
            err.to_string().ends_with("is not valid UTF-8 (byte 3)"),
            "{err}"
        );
    }
}
