//! Sniffing a CSV file's delimiter and encoding from its first bytes (SPEC §9: `,` or `;`, UTF-8 or
//! Windows-1251).
//!
//! - Delimiter: whichever of `,` and `;` occurs more often in the header line outside quotes (`,` on a tie).
//! - Encoding: UTF-8 or Windows-1251, whichever most lines with non-ASCII bytes of the sample are in (see
//!   [`encoding`]). Rows that do not fit the chosen encoding are caught one by one (see `rows`): a file that mixes
//!   both gets its minority rows reported as "mixed encodings".

/// How many bytes are examined.
pub const SAMPLE: usize = 64 * 1024;

/// A text encoding of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Windows1251,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Windows1251 => "windows-1251",
        }
    }

    /// `utf-8`/`utf8`, `windows-1251`/`cp1251`; `auto` or empty = detect (None).
    pub fn parse(s: &str) -> Result<Option<Encoding>, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(None),
            "utf-8" | "utf8" => Ok(Some(Encoding::Utf8)),
            "windows-1251" | "cp1251" | "win1251" => Ok(Some(Encoding::Windows1251)),
            other => Err(format!(
                "{:?} is not supported (utf-8, windows-1251 or auto)",
                crate::text::prefix(other)
            )),
        }
    }
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
            Encoding::Windows1251 => other += 1,
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
        assert_eq!(parse_delimiter("tab"), Ok(Some(b'\t')));
        assert!(parse_delimiter("|").is_err());
    }
}
