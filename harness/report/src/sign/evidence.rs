//! Lists what lies under `DIR/evidence/`, for signing (every file becomes a subject) and for
//! verification (every file must be a subject). Symlinks are never followed: one could point
//! outside the report and make the signed bytes depend on files the certifier never receives.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::statement::EVIDENCE_DIR;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A regular file, named `evidence/...` with `/` separators.
    File { name: String, path: PathBuf },
    /// Something that is neither a regular file nor a directory (symlink, fifo, socket, device).
    Other { name: String, what: &'static str },
    /// A name that is not UTF-8 and so cannot be an in-toto subject name.
    NonUtf8 { path: PathBuf },
}

/// Walks `root/evidence` (absent means no evidence). Entries come sorted by name.
pub(crate) fn walk(root: &Path) -> io::Result<Vec<Entry>> {
    let top = root.join(EVIDENCE_DIR);
    let meta = match fs::symlink_metadata(&top) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    if !meta.is_dir() {
        out.push(Entry::Other {
            name: EVIDENCE_DIR.to_string(),
            what: kind(&meta.file_type()),
        });
        return Ok(out);
    }
    // Explicit stack rather than recursion: a hostile tree may be arbitrarily deep.
    let mut pending = vec![(top, EVIDENCE_DIR.to_string())];
    while let Some((dir, prefix)) = pending.pop() {
        for item in fs::read_dir(&dir)? {
            let item = item?;
            let path = item.path();
            let Some(file_name) = item.file_name().to_str().map(str::to_owned) else {
                out.push(Entry::NonUtf8 { path });
                continue;
            };
            let name = format!("{prefix}/{file_name}");
            let file_type = item.file_type()?;
            if file_type.is_dir() {
                pending.push((path, name));
            } else if file_type.is_file() {
                out.push(Entry::File { name, path });
            } else {
                out.push(Entry::Other {
                    name,
                    what: kind(&file_type),
                });
            }
        }
    }
    out.sort_by(|a, b| sort_key(a).cmp(sort_key(b)));
    Ok(out)
}

fn sort_key(entry: &Entry) -> &str {
    match entry {
        Entry::File { name, .. } | Entry::Other { name, .. } => name,
        Entry::NonUtf8 { .. } => "",
    }
}

fn kind(file_type: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "fifo"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "device"
    } else if file_type.is_file() {
        "file"
    } else {
        "unknown file type"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_nested_files_sorted_and_flags_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let ev = dir.path().join("evidence");
        fs::create_dir_all(ev.join("sub/deeper")).unwrap();
        fs::write(ev.join("b.log"), "b").unwrap();
        fs::write(ev.join("a.log"), "a").unwrap();
        fs::write(ev.join("sub/deeper/c.bin"), "c").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", ev.join("link")).unwrap();
        let names: Vec<String> = walk(dir.path())
            .unwrap()
            .into_iter()
            .map(|e| match e {
                Entry::File { name, .. } => name,
                Entry::Other { name, what } => format!("{name} ({what})"),
                Entry::NonUtf8 { .. } => "?".into(),
            })
            .collect();
        assert_eq!(
            names,
            [
                "evidence/a.log",
                "evidence/b.log",
                "evidence/link (symlink)",
                "evidence/sub/deeper/c.bin"
            ]
        );
    }

    #[test]
    fn missing_evidence_dir_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(walk(dir.path()).unwrap().is_empty());
    }
}
