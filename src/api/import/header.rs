//! The header row of a member CSV (SPEC §9): which column holds what.
//!
//! `name`, `priority`, `timezone`, `expire`, `external_id`, `number_N`, `priority_N`, `description_N`, `type_N`
//! (N = 1…10) and `var_<name>`. Names are matched without regard to case and surrounding spaces (a variable's
//! name keeps its case). The read-only columns of the members export (`id`, `state`, `tries`, `state_N`…) are
//! accepted and ignored, so an export can be edited and imported again. Anything else is refused: a misspelt
//! `nubmer_1` would otherwise drop every number.

/// Numbers per member a CSV can carry.
pub const MAX_NUMBERS: usize = 10;

/// What one column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Name,
    Priority,
    Timezone,
    Expire,
    ExternalId,
    /// Index 0..MAX_NUMBERS (`number_1` is 0).
    Number(usize),
    NumberPriority(usize),
    Description(usize),
    Type(usize),
    Var(String),
    /// A read-only export column.
    Ignored,
}

const IGNORED: &[&str] = &[
    "id",
    "_id",
    "dialer",
    "state",
    "tries",
    "attempts",
    "end_cause",
    "success",
    "next_due",
];
const IGNORED_PER_NUMBER: &[&str] = &["state", "attempts", "last_call_at", "last_cause"];

fn numbered(name: &str, prefix: &str) -> Option<Result<usize, String>> {
    let n = name.strip_prefix(prefix)?.strip_prefix('_')?;
    Some(match n.parse::<usize>() {
        Ok(k) if (1..=MAX_NUMBERS).contains(&k) => Ok(k - 1),
        _ => Err(format!(
            "column {:?}: {prefix}_N needs N from 1 to {MAX_NUMBERS}",
            crate::text::prefix(name)
        )),
    })
}

fn column(raw: &str) -> Result<Column, String> {
    let trimmed = raw.trim();
    if let Some(var) = trimmed
        .strip_prefix("var_")
        .or_else(|| trimmed.strip_prefix("VAR_"))
    {
        if var.is_empty() {
            return Err("column \"var_\": the variable needs a name (var_<name>)".into());
        }
        return Ok(Column::Var(var.to_string()));
    }
    let name = trimmed.to_ascii_lowercase();
    Ok(match name.as_str() {
        "name" => Column::Name,
        "priority" => Column::Priority,
        "timezone" => Column::Timezone,
        "expire" => Column::Expire,
        "external_id" => Column::ExternalId,
        n if IGNORED.contains(&n) => Column::Ignored,
        n => {
            for (prefix, make) in [
                ("number", Column::Number as fn(usize) -> Column),
                ("priority", Column::NumberPriority),
                ("description", Column::Description),
                ("type", Column::Type),
            ] {
                if let Some(k) = numbered(n, prefix) {
                    return k.map(make);
                }
            }
            for p in IGNORED_PER_NUMBER {
                if numbered(n, p).is_some_and(|k| k.is_ok()) {
                    return Ok(Column::Ignored);
                }
            }
            return Err(format!(
                "unknown column {:?} (expected name, priority, timezone, expire, external_id, number_N, \
                 priority_N, description_N, type_N or var_<name>)",
                crate::text::prefix(trimmed)
            ));
        }
    })
}

/// The parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub columns: Vec<Column>,
}

impl Header {
    /// Reads the header's (decoded) names; every problem is reported together.
    pub fn parse(names: &[String]) -> Result<Header, String> {
        let mut problems = Vec::new();
        let mut columns = Vec::with_capacity(names.len());
        for n in names {
            match column(n) {
                Ok(c) => {
                    if c != Column::Ignored && columns.contains(&c) {
                        problems.push(format!(
                            "column {:?} appears twice",
                            crate::text::prefix(n.trim())
                        ));
                    }
                    columns.push(c);
                }
                Err(e) => {
                    problems.push(e);
                    columns.push(Column::Ignored);
                }
            }
        }
        if !columns.contains(&Column::Name) {
            problems.push("no \"name\" column".into());
        }
        if !columns.iter().any(|c| matches!(c, Column::Number(_))) {
            problems.push("no number column (number_1 … number_10)".into());
        }
        for c in &columns {
            let k = match c {
                Column::NumberPriority(k) | Column::Description(k) | Column::Type(k) => *k,
                _ => continue,
            };
            if !columns.contains(&Column::Number(k)) {
                problems.push(format!(
                    "column for number {} without a \"number_{}\" column",
                    k + 1,
                    k + 1
                ));
            }
        }
        if problems.is_empty() {
            Ok(Header { columns })
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spec_columns_are_recognised() {
        let h = Header::parse(&names(&[
            "name",
            " Priority ",
            "timezone",
            "expire",
            "number_1",
            "priority_1",
            "description_1",
            "type_1",
            "number_10",
            "var_productID",
            "external_id",
        ]))
        .unwrap();
        assert_eq!(h.columns[1], Column::Priority);
        assert_eq!(h.columns[5], Column::NumberPriority(0));
        assert_eq!(h.columns[8], Column::Number(9));
        assert_eq!(h.columns[9], Column::Var("productID".into()));
    }

    #[test]
    fn bad_headers_say_every_problem() {
        assert_eq!(
            Header::parse(&names(&["nmae", "number_11"])).unwrap_err(),
            "unknown column \"nmae\" (expected name, priority, timezone, expire, external_id, number_N, priority_N, \
             description_N, type_N or var_<name>); column \"number_11\": number_N needs N from 1 to 10; \
             no \"name\" column; no number column (number_1 … number_10)"
        );
        assert_eq!(
            Header::parse(&names(&["name", "number_1", "number_1", "priority_2"])).unwrap_err(),
            "column \"number_1\" appears twice; column for number 2 without a \"number_2\" column"
        );
    }

    #[test]
    fn export_only_columns_are_ignored() {
        let h = Header::parse(&names(&[
            "id",
            "name",
            "state",
            "number_1",
            "state_1",
            "last_cause_1",
        ]))
        .unwrap();
        assert_eq!(h.columns[0], Column::Ignored);
        assert_eq!(h.columns[4], Column::Ignored);
    }
}
