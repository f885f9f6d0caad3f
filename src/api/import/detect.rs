//! Sniffing a CSV file's delimiter and encoding from its first bytes (SPEC §9: `,` or `;`, UTF-8 or
//! Windows-1251; also UTF-16, which spreadsheets write as "Unicode text").
//!
//! - Delimiter: whichever of `,` and `;` occurs more often in the header line outside quotes (`,` on a tie).
//! - Encoding: a byte order mark decides (UTF-8, UTF-16LE, UTF-16BE); UTF-16 without one is recognised by its
//!   zero bytes ([`utf16_without_bom`]); otherwise UTF-8 or Windows-1251, whichever most lines with non-ASCII
//!   bytes of the sample are in (see [`encoding`]). Rows that do not fit the chosen encoding are caught one by one
//!   (see `rows`): a file that mixes both gets its minority rows reported as "mixed encodings".
//! - A file whose start does not read as text in the chosen encoding (zero bytes or control characters, invalid
//!   sequences, UTF-8 forced as Windows-1251) is refused as a whole, naming the encoding ([`garbage`]).

/// How many bytes are examined.
pub const SAMPLE: usize = 64 * 1024;

/// A text encoding of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Windows1251,
    Utf16Le,
    Utf16Be,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Windows1251 => "windows-1251",
            Encoding::Utf16Le => "utf-16le",
            Encoding::Utf16Be => "utf-16be",
        }
    }

    /// Whether the file is read through the UTF-16 → UTF-8 decoder.
    pub fn is_utf16(self) -> bool {
        matches!(self, Encoding::Utf16Le | Encoding::Utf16Be)
    }

    /// `utf-8`/`utf8`, `windows-1251`/`cp1251`, `utf-16le`, `utf-16be`; `auto` or empty = detect (None).
    pub fn parse(s: &str) -> Result<Option<Encoding>, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(None),
            "utf-8" | "utf8" => Ok(Some(Encoding::Utf8)),
            "windows-1251" | "cp1251" | "win1251" => Ok(Some(Encoding::Windows1251)),
            "utf-16le" | "utf16le" => Ok(Some(Encoding::Utf16Le)),
            "utf-16be" | "utf16be" => Ok(Some(Encoding::Utf16Be)),
            other => Err(format!(
                "{:?} is not supported (utf-8, windows-1251, utf-16le, utf-16be or auto)",
                crate::text::prefix(other)
            )),
        }
    }
}

/// The encoding a byte order mark at the start of `sample` announces, with the mark's length.
pub fn bom(sample: &[u8]) -> Option<(Encoding, usize)> {
    if sample.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Some((Encoding::Utf8, 3))
    } else if sample.starts_with(&[0xFF, 0xFE]) {
        Some((Encoding::Utf16Le, 2))
    } else if sample.starts_with(&[0xFE, 0xFF]) {
        Some((Encoding::Utf16Be, 2))
    } else {
        None
    }
}

/// UTF-16 without a byte order mark: a CSV header is mostly ASCII, so in UTF-16 many of the odd bytes (in
/// little-endian; the even ones in big-endian) are zero, and almost none of the others. Text in UTF-8 or
/// Windows-1251 has no zero bytes at all.
pub fn utf16_without_bom(sample: &[u8]) -> Option<Encoding> {
    let head = &sample[..sample.len().min(512) & !1];
    if head.len() < 4 {
        return None;
    }
    let zeros = |parity: usize| {
        head.iter()
            .skip(parity)
            .step_by(2)
            .filter(|b| **b == 0)
            .count()
    };
    let half = head.len() / 2;
    let (even, odd) = (zeros(0), zeros(1));
    if odd * 3 >= half && even * 20 < half {
        Some(Encoding::Utf16Le)
    } else if even * 3 >= half && odd * 20 < half {
        Some(Encoding::Utf16Be)
    } else {
        None
    }
}

/// Why the start of a file, decoded in `encoding` (`decoded`), is not text, if it is not: zero bytes or control
/// characters (a binary file such as .xlsx, or UTF-16 read as something else), invalid UTF-16; and, for
/// Windows-1251 given by the caller, a file that is valid UTF-8 with non-ASCII letters (it would import as
/// mojibake). `raw` is the undecoded sample.
pub fn garbage(raw: &[u8], decoded: &str, encoding: Encoding) -> Option<String> {
    if encoding == Encoding::Windows1251 && !raw.is_ascii() {
        let valid_utf8 = match std::str::from_utf8(raw) {
            Ok(_) => true,
            // Cut inside a sequence at the end of the sample.
            Err(e) => e.error_len().is_none(),
        };
        if valid_utf8 {
            return Some(
                "it is UTF-8 text, which would import as mojibake (give encoding=utf-8)".into(),
            );
        }
    }
    if let Some(c) = decoded
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
    {
        return Some(format!(
            "it holds the control character U+{:04X} (a binary file such as .xlsx, or another encoding?)",
            c as u32
        ));
    }
    // (Invalid UTF-8 and Windows-1251 rows are reported one by one: a file may mix encodings.)
    if encoding.is_utf16() && decoded.contains('\u{FFFD}') {
        return Some("it holds byte sequences that are not valid in it".into());
    }
    None
}

/// A delimiter given by name: `,` `;` `tab` (or a literal tab); empty or `auto` = detect (None).
pub fn parse_delimiter(s: &str) -> Result<Option<u8>, String> {
    match s {
        "" | "auto" => Ok(None),
        "," | "comma" => Ok(Some(b',')),
        ";" | "semicolon" => Ok(Some(b';')),
        "\t" | "tab" => Ok(Some(b'\t')),
        other => Err(format!(
            "{:?} is not supported (\",\", \";\", \"tab\" or auto)",
            crate::text::prefix(other)
        )),
    }
}

/// The delimiter of the header line at the start of `sample`.
pub fn delimiter(sample: &[u8]) -> u8 {
    let (mut commas, mut semis, mut quoted) = (0usize, 0usize, false);
    for &b in sample {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semis += 1,
            _ => {}
        }
    }
    if semis > commas { b';' } else { b',' }
}

/// The encoding of a sample; `complete` says whether the sample is the whole file (then a cut sequence at its
/// end is invalid rather than cut). Lines are judged one by one: each line with non-ASCII bytes is either valid
/// UTF-8 or not; the majority decides (on a tie, the first such line), so in a file that mixes both the minority
/// rows are the ones reported.
pub fn encoding(sample: &[u8], complete: bool) -> Encoding {
    let (mut utf8, mut other, mut first) = (0usize, 0usize, None);
    let mut lines = sample.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        if line.is_ascii() {
            continue;
        }
        let kind = match std::str::from_utf8(line) {
            Ok(_) => Encoding::Utf8,
            // The sample ends inside a sequence that may continue after it: not evidence either way.
            Err(e) if e.error_len().is_none() && !complete && lines.peek().is_none() => continue,
            Err(_) => Encoding::Windows1251,
        };
        first.get_or_insert(kind);
        match kind {
            Encoding::Utf8 => utf8 += 1,
            _ => other += 1,
        }
    }
    match utf8.cmp(&other) {
        std::cmp::Ordering::Greater => Encoding::Utf8,
        std::cmp::Ordering::Less => Encoding::Windows1251,
        std::cmp::Ordering::Equal => first.unwrap_or(Encoding::Utf8),
    }
}

#[cfg(test)]
mod tests {
    use super::super::transcode::tests::utf16;
    use super::*;

    #[test]
    fn the_more_frequent_separator_of_the_header_wins() {
        assert_eq!(delimiter(b"name;number_1;var_x\nA,B;1;2\n"), b';');
        assert_eq!(delimiter(b"name,number_1\n"), b',');
        assert_eq!(delimiter(b"\"a;b;c\",number_1\n"), b',');
        assert_eq!(delimiter(b"name\n"), b',');
    }

    #[test]
    fn in_a_mixed_sample_the_majority_of_lines_decides() {
        let mut s = "a\nАнна\n".as_bytes().to_vec();
        s.extend(encoding_rs::WINDOWS_1251.encode("Борис\n").0.iter());
        s.extend("Віра\n".as_bytes());
        assert_eq!(encoding(&s, true), Encoding::Utf8);
        let mut s = encoding_rs::WINDOWS_1251.encode("a\nАнна\n").0.to_vec();
        s.extend("Борис\n".as_bytes());
        s.extend(encoding_rs::WINDOWS_1251.encode("Віра\n").0.iter());
        assert_eq!(encoding(&s, true), Encoding::Windows1251);
    }

    #[test]
    fn windows_1251_is_told_from_utf8() {
        let (cp, _, _) = encoding_rs::WINDOWS_1251.encode("name\nПривет");
        assert_eq!(encoding(&cp, true), Encoding::Windows1251);
        assert_eq!(encoding("name\nПривет".as_bytes(), true), Encoding::Utf8);
        // A sample cut inside a two-byte letter is still UTF-8.
        let s = "Привет".as_bytes();
        assert_eq!(encoding(&s[..3], false), Encoding::Utf8);
        assert_eq!(encoding(&s[..3], true), Encoding::Windows1251);
    }

    #[test]
    fn names_of_encodings_and_delimiters_parse() {
        assert_eq!(Encoding::parse("CP1251"), Ok(Some(Encoding::Windows1251)));
        assert_eq!(Encoding::parse("auto"), Ok(None));
        assert!(Encoding::parse("latin1").is_err());
        assert_eq!(Encoding::parse("UTF-16LE"), Ok(Some(Encoding::Utf16Le)));
        assert_eq!(Encoding::parse("utf16be"), Ok(Some(Encoding::Utf16Be)));
        assert_eq!(parse_delimiter("tab"), Ok(Some(b'\t')));
        assert!(parse_delimiter("|").is_err());
    }

    #[test]
    fn byte_order_marks_and_bomless_utf16_are_recognised() {
        assert_eq!(bom(b"\xEF\xBB\xBFname"), Some((Encoding::Utf8, 3)));
        assert_eq!(bom(b"\xFF\xFEn\0"), Some((Encoding::Utf16Le, 2)));
        assert_eq!(bom(b"\xFE\xFF\0n"), Some((Encoding::Utf16Be, 2)));
        assert_eq!(bom(b"name"), None);
        let header = "name;number_1;var_місто\nАнна;1;Київ\n";
        assert_eq!(
            utf16_without_bom(&utf16(header, false)),
            Some(Encoding::Utf16Le)
        );
        assert_eq!(
            utf16_without_bom(&utf16(header, true)),
            Some(Encoding::Utf16Be)
        );
        assert_eq!(utf16_without_bom(header.as_bytes()), None);
        assert_eq!(utf16_without_bom(b"na"), None);
    }

    #[test]
    fn binary_invalid_and_mis_declared_samples_are_garbage_naming_why() {
        assert_eq!(
            garbage(
                b"name,number_1\r\n\tA,1",
                "name,number_1\r\n\tA,1",
                Encoding::Utf8
            ),
            None
        );
        let zip = b"PK\x03\x04\x14\0";
        assert!(
            garbage(zip, &String::from_utf8_lossy(zip), Encoding::Utf8)
                .unwrap()
                .contains("U+0003")
        );
        assert!(
            garbage(b"x", "a\u{FFFD}", Encoding::Utf16Le)
                .unwrap()
                .contains("not valid")
        );
        let utf8 = "name\nКиїв".as_bytes();
        let as_1251 = encoding_rs::WINDOWS_1251
            .decode_without_bom_handling(utf8)
            .0;
        assert!(
            garbage(utf8, &as_1251, Encoding::Windows1251)
                .unwrap()
                .contains("UTF-8 text")
        );
        let cp = encoding_rs::WINDOWS_1251.encode("name\nКиїв").0;
        let back = encoding_rs::WINDOWS_1251.decode_without_bom_handling(&cp).0;
        assert_eq!(garbage(&cp, &back, Encoding::Windows1251), None);
    }
}
