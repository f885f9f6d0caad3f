//! CSV cells that a spreadsheet would run as a formula (OWASP "CSV injection"), and their way back in.
//!
//! Exports ([`neutralise`]): a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a `'`
//! in front, so Excel, LibreOffice and Google Sheets show it as text instead of evaluating it
//! (`=HYPERLINK(...)`, `+cmd|'/C calc'!A0`, `@SUM(...)`). This applies to every cell of every export, phone
//! numbers included: `+380441234567` is exported as `'+380441234567` — OWASP's advice, and what a spreadsheet
//! user wants anyway (without it the `+` is dropped and the number shown as `3.80441E+11`).
//!
//! Imports ([`restore`]): a cell that begins with `'` followed by one of those characters loses the `'`, so an
//! export imports back unchanged (`'+380441234567` is the number `+380441234567` again).

use std::borrow::Cow;

/// Whether a spreadsheet could read a cell starting with `c` as a formula.
fn triggers(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// The cell as exported: prefixed with `'` when it could start a formula.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some(c) if triggers(c) => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// The cell as imported: an exported [`neutralise`]d cell gets its `'` removed; any other cell is unchanged.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.chars().next().is_some_and(triggers) => rest,
        _ => cell,
    }
}

/// [`restore`] of an owned cell.
pub fn restore_owned(mut cell: String) -> String {
    if restore(&cell).len() < cell.len() {
        cell.remove(0);
    }
    cell
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_prefixed_and_nothing_else() {
        for cell in [
            "=1+1",
            "+380441234567",
            "-5",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "+cmd|'/C calc'!A0",
        ] {
            assert_eq!(neutralise(cell), format!("'{cell}"));
        }
        for cell in ["380441234567", "Anna", "", "a=b", " =x", "'quoted"] {
            assert_eq!(neutralise(cell), cell);
        }
    }

    #[test]
    fn restore_undoes_neutralise_and_leaves_other_cells_alone() {
        for cell in [
            "=1+1",
            "+380441234567",
            "-5",
            "@x",
            "\tx",
            "plain",
            "'quoted",
            "''=x",
            "",
        ] {
            assert_eq!(restore(&neutralise(cell)), cell, "{cell:?}");
        }
        assert_eq!(restore("'hello"), "'hello");
        assert_eq!(restore_owned("'+380".into()), "+380");
        assert_eq!(restore_owned("'x".into()), "'x");
    }
}
