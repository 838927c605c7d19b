//! Splitting a connection's byte stream into request lines, holding at most one line's worth.

/// What the bytes received so far hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its `\n` (nor a `\r` before it).
    Line(Vec<u8>),
    /// A line longer than the limit: reported once, as soon as it passes the limit; the rest of it,
    /// up to its `\n`, is discarded.
    Overlong,
}

/// Accumulates bytes into lines of at most `max` bytes.
#[derive(Debug)]
pub struct LineFramer {
    max: usize,
    partial: Vec<u8>,
    /// Inside an overlong line that was already reported.
    skipping: bool,
}

impl LineFramer {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            partial: Vec::new(),
            skipping: false,
        }
    }

    /// Takes `bytes` and returns the frames they complete, in order.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<Frame> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            let (piece, ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(at) => (&bytes[..at], true),
                None => (bytes, false),
            };
            bytes = &bytes[(piece.len() + usize::from(ended)).min(bytes.len())..];
            if let Some(frame) = self.take(piece, ended) {
                frames.push(frame);
            }
        }
        frames
    }

    /// Adds one piece of a line (`ended`: its `\n` came too).
    fn take(&mut self, piece: &[u8], ended: bool) -> Option<Frame> {
        if self.skipping {
            self.skipping = !ended;
            return None;
        }
        if self.partial.len() + piece.len() > self.max {
            self.partial = Vec::new();
            self.skipping = !ended;
            return Some(Frame::Overlong);
        }
        self.partial.extend_from_slice(piece);
        if !ended {
            return None;
        }
        let mut line = std::mem::take(&mut self.partial);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some(Frame::Line(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Frame {
        Frame::Line(text.as_bytes().to_vec())
    }

    #[test]
    fn lines_split_across_reads_and_joined_in_one() {
        let mut f = LineFramer::new(16);
        assert!(f.push(b"{\"op\":").is_empty());
        assert_eq!(
            f.push(b"\"a\"}\r\nsecond\nthi"),
            [line("{\"op\":\"a\"}"), line("second")]
        );
        assert_eq!(f.push(b"rd\n\n"), [line("third"), line("")]);
    }

    #[test]
    fn an_overlong_line_is_reported_once_and_the_next_line_is_whole() {
        let mut f = LineFramer::new(4);
        assert_eq!(f.push(b"abc"), []);
        assert_eq!(f.push(b"de"), [Frame::Overlong]);
        assert_eq!(f.push(&[b'x'; 100]), []);
        assert_eq!(f.push(b"yy\nok\n"), [line("ok")]);
        assert_eq!(
            f.push(b"abcd\nabcde\nz\n"),
            [line("abcd"), Frame::Overlong, line("z")]
        );
        assert!(f.partial.capacity() <= 8, "memory stays bounded");
    }
}
