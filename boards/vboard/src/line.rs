//! Byte-at-a-time line editing, as an MCU UART console does it.

/// Longest accepted line, in bytes.
pub const MAX_LINE: usize = 256;

const BS: u8 = 0x08;
const DEL: u8 = 0x7f;
const ETX: u8 = 0x03; // Ctrl-C

/// What one input byte did to the line.
#[derive(Debug, PartialEq, Eq)]
pub enum Edit {
    /// Nothing visible happened (ignored control byte, or the LF of a CR LF).
    None,
    /// A byte was added; echo it if echoing.
    Added(u8),
    /// The last byte was erased; echo `\b \b` if echoing.
    Erased,
    /// Enter: the finished line.
    Enter(Vec<u8>),
    /// Enter on a line that grew past [`MAX_LINE`]; its content is discarded.
    TooLong,
    /// Ctrl-C: the line was dropped.
    Interrupt,
}

#[derive(Debug, Default)]
pub struct LineEditor {
    buf: Vec<u8>,
    overflow: bool,
    last_cr: bool,
}

impl LineEditor {
    pub fn push(&mut self, b: u8) -> Edit {
        let after_cr = std::mem::replace(&mut self.last_cr, b == b'\r');
        match b {
            b'\n' if after_cr => Edit::None,
            b'\r' | b'\n' => {
                let line = std::mem::take(&mut self.buf);
                if std::mem::take(&mut self.overflow) {
                    Edit::TooLong
                } else {
                    Edit::Enter(line)
                }
            }
            BS | DEL => {
                if !self.overflow && self.buf.pop().is_some() {
                    Edit::Erased
                } else {
                    Edit::None
                }
            }
            ETX => {
                self.clear();
                Edit::Interrupt
            }
            // Other control bytes (including ESC) are dropped, never stored or echoed.
            0x00..=0x1f => Edit::None,
            _ if self.overflow => Edit::None,
            _ if self.buf.len() >= MAX_LINE => {
                self.overflow = true;
                self.buf.clear();
                Edit::None
            }
            _ => {
                self.buf.push(b);
                Edit::Added(b)
            }
        }
    }

    /// Drops any partial line (used when the console changes state under it).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.overflow = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(ed: &mut LineEditor, bytes: &[u8]) -> Vec<Edit> {
        bytes
            .iter()
            .map(|&b| ed.push(b))
            .filter(|e| *e != Edit::None)
            .collect()
    }

    #[test]
    fn crlf_is_one_enter_and_lf_alone_is_enter() {
        let mut ed = LineEditor::default();
        let edits = feed(&mut ed, b"ab\r\n\ncd\n");
        assert_eq!(
            edits,
            vec![
                Edit::Added(b'a'),
                Edit::Added(b'b'),
                Edit::Enter(b"ab".to_vec()),
                Edit::Enter(vec![]),
                Edit::Added(b'c'),
                Edit::Added(b'd'),
                Edit::Enter(b"cd".to_vec()),
            ]
        );
    }

    #[test]
    fn backspace_and_control_bytes() {
        let mut ed = LineEditor::default();
        let edits = feed(&mut ed, b"ax\x7f\x08\x08b\x1b\x00c\r");
        assert_eq!(edits.last(), Some(&Edit::Enter(b"bc".to_vec())));
        assert_eq!(edits.iter().filter(|e| **e == Edit::Erased).count(), 2);
    }

    #[test]
    fn exactly_max_is_accepted_one_more_is_too_long() {
        let mut ed = LineEditor::default();
        let mut line = vec![b'a'; MAX_LINE];
        line.push(b'\r');
        assert_eq!(
            feed(&mut ed, &line).pop(),
            Some(Edit::Enter(vec![b'a'; MAX_LINE]))
        );
        let mut line = vec![b'a'; MAX_LINE + 1];
        line.push(b'\r');
        let edits = feed(&mut ed, &line);
        assert_eq!(edits.len(), MAX_LINE + 1);
        assert_eq!(edits.last(), Some(&Edit::TooLong));
        assert_eq!(
            feed(&mut ed, b"ok\r").pop(),
            Some(Edit::Enter(b"ok".to_vec()))
        );
    }
}
