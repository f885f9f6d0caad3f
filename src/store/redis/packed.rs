//! The Redis member record: one string per member, as `lua/prelude.lua` reads and writes it (`parse_rec`,
//! `pack_rec`).
//!
//! ```text
//! h|x|z|b|s|w|t|u|r|q|y|o|p|a  \n  c  \n  v  \n  e  \n  n
//! ```
//!
//! Why one string and not a hash of fields: the hot path (claim, complete) then reads and writes a whole batch of
//! members with one `MGET` and one `MSET` instead of one `HMGET`/`HSET` per member; each of those cost Redis more
//! than the member's own logic (a listpack hash is searched field by field, and every Redis call from Lua has a
//! fixed price). The first line holds everything the queue logic reads, `|`-separated, `""` for a field at its
//! default (see the layout table in `redis/mod.rs`); none of those values can hold `|` or a newline (numbers,
//! state codes, causes (`record::check_cause`), IANA timezone names), except `a`, the active attempt
//! `attempt|k|claimed|node`, which comes last for that reason (a node id has no control characters). What a claim
//! reads (`h`, `x`, `z`) and rewrites (`b`, `s`) comes first, so `claim.lua` matches only the start of it. Then the
//! numbers and the variables as compact JSON (no newline), the external id as a JSON string (`""` = none) and the
//! name, raw, to the end of the string.

/// A member record, borrowed from the stored string.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Record<'a> {
    /// `r` ready, `w` waiting, `a` active, `e` ended.
    pub s: &'a str,
    /// Due ms.
    pub w: &'a str,
    /// Counted tries.
    pub t: &'a str,
    /// Attempts made.
    pub b: &'a str,
    /// Per-number state (`record::pack_nums`).
    pub u: &'a str,
    /// Last number used + 1.
    pub r: &'a str,
    /// Next-number hint `by_priority,top_down`.
    pub h: &'a str,
    /// `1`: terminate pending.
    pub q: &'a str,
    /// End cause.
    pub y: &'a str,
    /// `1`: ended successfully.
    pub o: &'a str,
    /// Expire ms.
    pub x: &'a str,
    /// Priority.
    pub p: &'a str,
    /// Timezone (`""` = the calendar's).
    pub z: &'a str,
    /// Active attempt `attempt|k|claimed|node`.
    pub a: &'a str,
    /// Everything after the first line, its newline included: stays as it is across claims and completions.
    pub tail: &'a str,
    /// Numbers (JSON).
    pub c: &'a str,
    /// Variables (JSON, `""` = none).
    pub v: &'a str,
    /// External id as a JSON string (`""` = none).
    pub e: &'a str,
    /// Name.
    pub n: &'a str,
}

/// The active attempt of a record's `a` field.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Active<'a> {
    pub attempt: &'a str,
    pub k: usize,
    pub claimed: i64,
    pub node: &'a str,
}

impl<'a> Record<'a> {
    pub fn parse(rec: &'a str) -> Result<Record<'a>, String> {
        let (line, tail) = match rec.find('\n') {
            Some(i) => (&rec[..i], &rec[i..]),
            None => return Err("member record without its data lines".into()),
        };
        let mut f = line.splitn(14, '|');
        let mut next = |name: &str| {
            f.next()
                .ok_or_else(|| format!("member record: no field {name}"))
        };
        let (h, x, z, b, s, w, t) = (
            next("h")?,
            next("x")?,
            next("z")?,
            next("b")?,
            next("s")?,
            next("w")?,
            next("t")?,
        );
        let (u, r, q, y, o, p, a) = (
            next("u")?,
            next("r")?,
            next("q")?,
            next("y")?,
            next("o")?,
            next("p")?,
            next("a")?,
        );
        let mut data = tail[1..].splitn(4, '\n');
        let mut line = |name: &str| {
            data.next()
                .ok_or_else(|| format!("member record: no {name} line"))
        };
        let (c, v, e, n) = (
            line("numbers")?,
            line("variables")?,
            line("external id")?,
            line("name")?,
        );
        Ok(Record {
            s,
            w,
            t,
            b,
            u,
            r,
            h,
            q,
            y,
            o,
            x,
            p,
            z,
            a,
            tail,
            c,
            v,
            e,
            n,
        })
    }

    /// The record as stored (its first line rebuilt from the fields, the rest as it was).
    pub fn pack(&self) -> String {
        let fields = [
            self.h, self.x, self.z, self.b, self.s, self.w, self.t, self.u, self.r, self.q, self.y,
            self.o, self.p, self.a,
        ];
        let mut out = String::with_capacity(
            fields.iter().map(|f| f.len() + 1).sum::<usize>() + self.tail.len(),
        );
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push('|');
            }
            out.push_str(f);
        }
        out.push_str(self.tail);
        out
    }

    /// The active attempt, if any.
    pub fn active(&self) -> Result<Option<Active<'a>>, String> {
        if self.a.is_empty() {
            return Ok(None);
        }
        let mut p = self.a.splitn(4, '|');
        let bad = || format!("active attempt {:?}", self.a);
        let attempt = p.next().ok_or_else(bad)?;
        let k = p.next().and_then(|k| k.parse().ok()).ok_or_else(bad)?;
        let claimed = p.next().and_then(|m| m.parse().ok()).ok_or_else(bad)?;
        let node = p.next().ok_or_else(bad)?;
        Ok(Some(Active {
            attempt,
            k,
            claimed,
            node,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAIMED: &str = "1,0|1709999999999|Europe/Kyiv|3|a|1709546400000|2|0;1,i,1,5,USER_BUSY|2||||-4|\
        0b0e7a52-9a6c-4d0e-8d3a-0c8f0b6f1b2e|1|1709546400100|node|a\n[[\"+380440000001\"],[\"+380500000001\"]]\n\
        {\"city\":\"Kyiv\"}\n\"ext-1\"\nAnn | Smith\nsecond line";

    #[test]
    fn a_claimed_record_parses_field_by_field_with_bars_in_the_attempt_and_the_name() {
        let r = Record::parse(CLAIMED).unwrap();
        assert_eq!((r.s, r.w, r.t, r.b), ("a", "1709546400000", "2", "3"));
        assert_eq!((r.u, r.r, r.h), ("0;1,i,1,5,USER_BUSY", "2", "1,0"));
        assert_eq!((r.q, r.y, r.o), ("", "", ""));
        assert_eq!((r.x, r.p, r.z), ("1709999999999", "-4", "Europe/Kyiv"));
        assert_eq!(r.c, "[[\"+380440000001\"],[\"+380500000001\"]]");
        assert_eq!(r.v, "{\"city\":\"Kyiv\"}");
        assert_eq!(r.e, "\"ext-1\"");
        assert_eq!(r.n, "Ann | Smith\nsecond line");
        let a = r.active().unwrap().unwrap();
        assert_eq!(a.attempt, "0b0e7a52-9a6c-4d0e-8d3a-0c8f0b6f1b2e");
        assert_eq!((a.k, a.claimed, a.node), (1, 1709546400100, "node|a"));
    }

    #[test]
    fn packing_a_parsed_record_gives_the_same_bytes_and_changes_only_the_first_line() {
        let r = Record::parse(CLAIMED).unwrap();
        assert_eq!(r.pack(), CLAIMED);
        let done = Record {
            s: "r",
            a: "",
            t: "3",
            ..r.clone()
        }
        .pack();
        assert!(done.starts_with("1,0|1709999999999|Europe/Kyiv|3|r|1709546400000|3|"));
        assert!(done.ends_with(r.tail));
        assert_eq!(Record::parse(&done).unwrap().active().unwrap(), None);
    }

    #[test]
    fn truncated_records_are_refused_with_what_is_missing() {
        assert!(Record::parse("r|1|2").unwrap_err().contains("data lines"));
        assert!(
            Record::parse("r|1|2\n[]\n\n\nx")
                .unwrap_err()
                .contains("no field")
        );
        let thirteen = format!("r{}", "|".repeat(12));
        assert!(
            Record::parse(&format!("{thirteen}\n[]\n\n\nAnn"))
                .unwrap_err()
                .contains("no field a")
        );
        assert!(
            Record::parse(&format!("{thirteen}|\n[]\n"))
                .unwrap_err()
                .contains("no external id line")
        );
        let bad_attempt = format!("{thirteen}|x|1\n[]\n\n\nAnn");
        assert!(Record::parse(&bad_attempt).unwrap().active().is_err());
    }
}
