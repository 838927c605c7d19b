//! The bounded buffer of received, not yet consumed bytes, and its lossy UTF-8 view for matching.

/// Keeps at most `max` of the newest bytes; older ones are discarded and counted.
#[derive(Debug)]
pub(crate) struct RxBuffer {
    data: Vec<u8>,
    max: usize,
    discarded: u64,
}

impl RxBuffer {
    pub fn new(max: usize) -> Self {
        Self {
            data: Vec::new(),
            max: max.max(1),
            discarded: 0,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        let bytes = if bytes.len() > self.max {
            self.discarded += (bytes.len() - self.max) as u64;
            &bytes[bytes.len() - self.max..]
        } else {
            bytes
        };
        self.data.extend_from_slice(bytes);
        if self.data.len() > self.max {
            let excess = self.data.len() - self.max;
            self.data.drain(..excess);
            self.discarded += excess as u64;
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    pub fn consume(&mut self, n: usize) {
        self.data.drain(..n.min(self.data.len()));
    }

    pub fn clear(&mut self) {
        self.data.clear();
    }

    /// The buffer as text for matching; a trailing incomplete UTF-8 sequence is left out so a
    /// character split across reads is not matched as a replacement character.
    pub fn decode(&self) -> Decoded {
        Decoded::new(&self.data[..complete_len(&self.data)])
    }
}

/// Length of `data` without a trailing, possibly still incomplete, UTF-8 sequence.
fn complete_len(data: &[u8]) -> usize {
    for back in 1..=3.min(data.len()) {
        let start = data.len() - back;
        if let Err(e) = std::str::from_utf8(&data[start..])
            && e.valid_up_to() == 0
            && e.error_len().is_none()
        {
            return start;
        }
    }
    data.len()
}

/// A lossy decoding and the way back from text offsets to raw byte offsets.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub text: String,
    /// (text start, raw start, raw length of an invalid sequence or 0 for valid text)
    segs: Vec<(usize, usize, usize)>,
    raw_len: usize,
}

impl Decoded {
    fn new(raw: &[u8]) -> Self {
        let mut text = String::with_capacity(raw.len());
        let mut segs = Vec::new();
        let mut raw_at = 0;
        for chunk in raw.utf8_chunks() {
            if !chunk.valid().is_empty() {
                segs.push((text.len(), raw_at, 0));
                text.push_str(chunk.valid());
                raw_at += chunk.valid().len();
            }
            if !chunk.invalid().is_empty() {
                segs.push((text.len(), raw_at, chunk.invalid().len()));
                text.push(char::REPLACEMENT_CHARACTER);
                raw_at += chunk.invalid().len();
            }
        }
        Self {
            text,
            segs,
            raw_len: raw.len(),
        }
    }

    /// Raw offset of a char boundary in `text`.
    pub fn raw_offset(&self, text_off: usize) -> usize {
        if text_off >= self.text.len() {
            return self.raw_len;
        }
        let idx = self.segs.partition_point(|s| s.0 <= text_off);
        match idx.checked_sub(1).and_then(|i| self.segs.get(i)) {
            Some(&(t, r, 0)) => r + (text_off - t),
            Some(&(t, r, invalid)) if text_off > t => r + invalid,
            Some(&(_, r, _)) => r,
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_newest_bytes_and_counts_the_rest() {
        let mut b = RxBuffer::new(4);
        b.push(b"abc");
        b.push(b"def");
        assert_eq!(b.bytes(), b"cdef");
        assert_eq!(b.discarded(), 2);
        b.push(b"0123456789");
        assert_eq!(b.bytes(), b"6789");
        assert_eq!(b.discarded(), 12);
        b.consume(3);
        assert_eq!(b.bytes(), b"9");
    }

    #[test]
    fn maps_text_offsets_across_invalid_bytes() {
        let mut b = RxBuffer::new(100);
        b.push(b"a\xffb\xe2\x82xc\xc3");
        let d = b.decode();
        // the trailing \xc3 may start a character still on its way
        assert_eq!(d.text, "a\u{fffd}b\u{fffd}xc");
        let pos = |s: &str| d.text.find(s).unwrap();
        assert_eq!(d.raw_offset(pos("b")), 2);
        assert_eq!(d.raw_offset(pos("x")), 5);
        assert_eq!(d.raw_offset(pos("c") + 1), 7);
        assert_eq!(d.raw_offset(d.text.len()), 7);
        assert_eq!(d.raw_offset(0), 0);
    }

    #[test]
    fn incomplete_tail_detection() {
        assert_eq!(complete_len(b"ab\xe2\x82"), 2);
        assert_eq!(complete_len(b"ab\xff"), 3);
        assert_eq!(complete_len("é".as_bytes()), 2);
        assert_eq!(complete_len(b""), 0);
    }
}
