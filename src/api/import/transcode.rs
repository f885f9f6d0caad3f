//! UTF-16 CSV files read as UTF-8: a [`Read`] adapter over `encoding_rs`'s streaming decoder, so the CSV reader
//! (which works on bytes with one-byte delimiters) sees UTF-8 and memory stays bounded whatever the file's size.
//!
//! Malformed UTF-16 (an unpaired surrogate, an odd byte at the end) becomes U+FFFD, which the row decoder then
//! refuses naming the encoding (see `rows::decode`). Other files pass through unchanged.

use std::io::{self, BufRead, Read};

/// A byte source: as is, or decoded from UTF-16 to UTF-8.
pub enum Source<R: BufRead> {
    Plain(R),
    Utf16(Utf16ToUtf8<R>),
}

impl<R: BufRead> Read for Source<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(out),
            Source::Utf16(t) => t.read(out),
        }
    }
}

/// Decodes UTF-16 (without its byte order mark) from `inner` into UTF-8.
pub struct Utf16ToUtf8<R: BufRead> {
    inner: R,
    decoder: encoding_rs::Decoder,
    /// Decoded bytes not yet handed out: `pending[start..]`.
    pending: Vec<u8>,
    start: usize,
    finished: bool,
}

impl<R: BufRead> Utf16ToUtf8<R> {
    pub fn new(inner: R, big_endian: bool) -> Utf16ToUtf8<R> {
        let encoding = if big_endian {
            encoding_rs::UTF_16BE
        } else {
            encoding_rs::UTF_16LE
        };
        Utf16ToUtf8 {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            pending: Vec::with_capacity(16 * 1024),
            start: 0,
            finished: false,
        }
    }

    /// Decodes the next piece of input into `pending` (empty at the end of the input).
    fn refill(&mut self) -> io::Result<()> {
        self.pending.clear();
        self.start = 0;
        while self.pending.is_empty() && !self.finished {
            let input = self.inner.fill_buf()?;
            let last = input.is_empty();
            let room = self
                .decoder
                .max_utf8_buffer_length(input.len())
                .unwrap_or(input.len() * 3 + 16);
            self.pending.resize(room, 0);
            let (_, read, written, _) = self.decoder.decode_to_utf8(input, &mut self.pending, last);
            self.pending.truncate(written);
            self.inner.consume(read);
            self.finished = last;
        }
        Ok(())
    }
}

impl<R: BufRead> Read for Utf16ToUtf8<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.pending.len() {
            self.refill()?;
        }
        let n = out.len().min(self.pending.len() - self.start);
        out[..n].copy_from_slice(&self.pending[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `text` in UTF-16 of the given byte order, without a byte order mark.
    pub(crate) fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        text.encode_utf16()
            .flat_map(|u| {
                if big_endian {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect()
    }

    fn read_all(bytes: &[u8], big_endian: bool, chunk: usize) -> String {
        // A tiny BufReader capacity cuts the input inside code units and surrogate pairs.
        let inner = io::BufReader::with_capacity(chunk, bytes);
        let mut out = String::new();
        Utf16ToUtf8::new(inner, big_endian)
            .read_to_string(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn both_byte_orders_decode_whatever_the_read_sizes() {
        let text = "name,number_1,var_місто\nАнна 😀,+380441234567,Київ\n".repeat(50);
        for be in [false, true] {
            for chunk in [1, 3, 7, 4096] {
                assert_eq!(
                    read_all(&utf16(&text, be), be, chunk),
                    text,
                    "be={be} chunk={chunk}"
                );
            }
        }
    }

    #[test]
    fn malformed_utf16_becomes_replacement_characters() {
        let mut bytes = utf16("a,", false);
        bytes.extend([0x00, 0xD8]); // an unpaired high surrogate
        bytes.extend(utf16("b", false));
        bytes.push(0x41); // an odd byte at the end
        assert_eq!(read_all(&bytes, false, 2), "a,\u{FFFD}b\u{FFFD}");
    }
}
