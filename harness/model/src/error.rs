//! Load errors that point at the offending place in a file.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::fsread::{ReadError, read_text};

/// A place in a source file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// Location of byte offset `offset` in `text`.
    pub fn at(file: &Path, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = &text.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        Location {
            file: file.to_path_buf(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// An error loading a profile, scenario or catalogue. Displays as one line: `file:line:col: message`.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read, or is no regular file within the size cap; names the path.
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

impl LoadError {
    pub fn invalid(
        file: &Path,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        LoadError::Invalid {
            location: Location::at(file, text, span.start),
            message: message.into(),
        }
    }

    pub(crate) fn from_toml(file: &Path, text: &str, err: toml::de::Error) -> Self {
        let message = err.message().trim().to_string();
        match err.span() {
            Some(span) => LoadError::invalid(file, text, span, message),
            None => LoadError::File {
                path: file.to_path_buf(),
                message,
            },
        }
    }
}

/// Collects semantic errors against one source text, so a file reports its first problem with a location.
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// Files carry a schema number so that a future hilt can tell an old file from a new one.
    pub fn check_schema(
        &self,
        schema: &serde_spanned::Spanned<u32>,
        supported: u32,
    ) -> Result<(), LoadError> {
        if *schema.get_ref() == supported {
            return Ok(());
        }
        Err(self.err(
            schema.span(),
            format!(
                "schema {} is not supported (this hilt reads schema {supported})",
                schema.get_ref()
            ),
        ))
    }

    pub fn err(&self, span: Range<usize>, message: impl Into<String>) -> LoadError {
        LoadError::invalid(self.path, self.text, span, message)
    }
}

/// Read a file people write: regular, at most [`crate::fsread::MAX_INPUT_BYTES`], UTF-8.
pub(crate) fn read(path: &Path) -> Result<String, LoadError> {
    Ok(read_text(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_columns() {
        let text = "a = 1\nbb = 2\n";
        let loc = Location::at(Path::new("f.toml"), text, 7);
        assert_eq!((loc.line, loc.column), (2, 2));
        assert_eq!(loc.to_string(), "f.toml:2:2");
        let end = Location::at(Path::new("f.toml"), text, 999);
        assert_eq!(end.line, 3);
    }
}
