//! A USB bus a simulated device publishes as a JSON file: a list of [`UsbDevice`]s, the same shape
//! as the recorded fixtures. The virtual reference board writes it so the harness finds the board
//! by identity, and a re-enumeration can be played by rewriting it.
//!
//! The file is re-read on every listing. A missing file is an empty bus (the device is unplugged, or
//! between two enumerations). The read is bounded like every other input hilt reads: only a regular
//! file, opened without blocking (a FIFO cannot hang the listing), at most [`MAX_BUS_FILE_BYTES`].
//! Writers should write a temporary file and rename it over the old one, so a reader never sees a
//! half-written list (which would be a malformed file, not an empty bus).

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use super::{UsbBus, UsbDevice, UsbError};

/// The largest bus file read: 1 MiB, thousands of devices.
pub const MAX_BUS_FILE_BYTES: u64 = 1 << 20;

/// A bus listed from a JSON file holding an array of devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBus {
    path: PathBuf,
}

impl FileBus {
    pub fn new(path: PathBuf) -> Self {
        FileBus { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's bytes; `None` when it does not exist.
    fn read(&self) -> Result<Option<Vec<u8>>, UsbError> {
        let path = &self.path;
        let fail = |what: String| UsbError::List(format!("{}: {what}", path.display()));
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fail(format!("cannot read: {e}"))),
        };
        // Judge the opened file, so what is checked is what is read.
        let meta = file
            .metadata()
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if !meta.file_type().is_file() {
            return Err(fail(format!(
                "is not a regular file ({})",
                kind(&meta.file_type())
            )));
        }
        let too_large = || fail(format!("is larger than {MAX_BUS_FILE_BYTES} bytes"));
        if meta.len() > MAX_BUS_FILE_BYTES {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        // One byte past the cap shows a file that grew after the check.
        file.take(MAX_BUS_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if bytes.len() as u64 > MAX_BUS_FILE_BYTES {
            return Err(too_large());
        }
        Ok(Some(bytes))
    }
}

fn kind(ft: &std::fs::FileType) -> &'static str {
    if ft.is_dir() {
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
    }
}

impl UsbBus for FileBus {
    fn devices(&self) -> Result<Vec<UsbDevice>, UsbError> {
        let Some(bytes) = self.read()? else {
            return Ok(Vec::new());
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            // serde_json ends its message with the position; say it once, compiler-style.
            let text = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let msg = text.strip_suffix(&suffix).unwrap_or(&text);
            UsbError::List(format!(
                "{}:{}:{}: not a list of USB devices: {msg}",
                self.path.display(),
                e.line(),
                e.column()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usb::UsbInterface;

    fn device(serial: &str, tty: &str) -> UsbDevice {
        UsbDevice {
            vid: 0x1209,
            pid: 0x4854,
            serial: Some(serial.into()),
            manufacturer: Some("hilt".into()),
            product: Some("virtual reference board".into()),
            class: 0xef,
            subclass: 2,
            protocol: 1,
            location: "vboard-1".into(),
            interfaces: vec![UsbInterface {
                number: 0,
                class: 2,
                subclass: 2,
                protocol: 0,
                name: None,
                tty: Some(tty.into()),
            }],
        }
    }

    #[test]
    fn lists_what_the_file_says_each_time_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus.json");
        let bus = FileBus::new(path.clone());
        assert_eq!(bus.devices().unwrap(), []);
        let first = vec![device("VB-0001", "/dev/pts/7")];
        std::fs::write(&path, serde_json::to_vec(&first).unwrap()).unwrap();
        assert_eq!(bus.devices().unwrap(), first);
        // Re-enumerated at a new tty: the next listing shows it.
        let again = vec![device("VB-0001", "/dev/pts/9")];
        std::fs::write(&path, serde_json::to_vec(&again).unwrap()).unwrap();
        assert_eq!(bus.devices().unwrap(), again);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(bus.devices().unwrap(), []);
        // An interface written without a tty field has none.
        std::fs::write(
            &path,
            r#"[{"vid":1,"pid":2,"class":0,"subclass":0,"protocol":0,
                "interfaces":[{"number":0,"class":255,"subclass":0,"protocol":0}]}]"#,
        )
        .unwrap();
        assert_eq!(bus.devices().unwrap()[0].interfaces[0].tty, None);
    }

    #[test]
    fn a_malformed_file_is_named_with_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus.json");
        std::fs::write(&path, "[\n  {\"vid\": 1,\n   \"pid\": }\n]").unwrap();
        let err = FileBus::new(path.clone()).devices().unwrap_err();
        let UsbError::List(text) = &err else {
            panic!("{err}")
        };
        assert!(
            text.starts_with(&format!("{}:3:", path.display())),
            "{text}"
        );
        assert_eq!(text.matches("line").count(), 0, "{text}");
        // Valid JSON of the wrong shape is malformed too.
        std::fs::write(&path, "{\"vid\": 1}").unwrap();
        let err = FileBus::new(path.clone())
            .devices()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bus.json:1:") && err.contains("not a list"),
            "{err}"
        );
        // Half-written (empty) is not an empty bus.
        std::fs::write(&path, "").unwrap();
        assert!(FileBus::new(path.clone()).devices().is_err());
    }

    #[test]
    fn refuses_large_and_special_files_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_BUS_FILE_BYTES as usize + 1]).unwrap();
        let err = FileBus::new(big).devices().unwrap_err().to_string();
        assert!(err.contains("larger than 1048576 bytes"), "{err}");

        let err = FileBus::new(dir.path().to_path_buf())
            .devices()
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file (a directory)"), "{err}");

        // Opening a FIFO for reading would wait for a writer; this must not.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = FileBus::new(fifo).devices().unwrap_err().to_string();
        assert!(err.contains("not a regular file (a FIFO)"), "{err}");

        let err = FileBus::new("/dev/null".into())
            .devices()
            .unwrap_err()
            .to_string();
        assert!(err.contains("a character device"), "{err}");
    }
}
