//! The `if` expression language of the callflow (SPEC §7), parsed at validation time.
//!
//! Grammar (lowest precedence first; `&&` binds tighter than `||`, `!` applies to what follows it):
//!
//! ```text
//! expr       := and ( "||" and )*
//! and        := unary ( "&&" unary )*
//! unary      := "!" unary | "(" expr ")" | comparison
//! comparison := operand ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) operand
//! operand    := "${" name "}" | number | "'" chars "'" | "\"" chars "\""
//! ```
//!
//! Numbers are `-?digits(.digits)?`; strings take `\\`, `\'` and `\"` escapes. A bare operand is not a
//! condition (`${confirmed}` alone is refused: write `${confirmed} == "yes"`), so no truthiness rules exist to be
//! surprised by; `!${a} == 1` means `!(${a} == 1)`.
//!
//! Evaluation: a missing variable is the empty string. A comparison is **numeric when both sides read as finite
//! decimal numbers** (`"01" == 1`, `"10" > 9`), whether they were written quoted or not; otherwise it compares the
//! strings by Unicode code point (`"" < "5"` is true: guard with `${digits} != ""` when "no input" matters).
//! `&&` and `||` short-circuit.

use std::cmp::Ordering;
use std::fmt;

use super::template::is_reference_name;

/// Longest expression accepted, in bytes.
pub const MAX_EXPR_LEN: usize = 4096;
/// Deepest nesting of `(`…`)` and `!` accepted.
pub const MAX_EXPR_DEPTH: usize = 64;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Eq => ord == Ordering::Equal,
            CmpOp::Ne => ord != Ordering::Equal,
            CmpOp::Lt => ord == Ordering::Less,
            CmpOp::Le => ord != Ordering::Greater,
            CmpOp::Gt => ord == Ordering::Greater,
            CmpOp::Ge => ord != Ordering::Less,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `${name}`.
    Var(String),
    /// A number literal, kept as written (it compares as text when the other side is not a number).
    Number(String),
    /// A quoted string literal, unescaped.
    Str(String),
}

/// A parsed `if` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Operand, CmpOp, Operand),
}

/// A bad expression: what and where (1-based character column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid expression at column {column}: {message}")]
pub struct ExprError {
    pub column: usize,
    pub message: String,
}

/// Reads a value as a number for comparison: a finite decimal (`f64` syntax, so `1e3` counts; `inf`/`NaN` do not).
fn as_number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Compares two values: numerically when both are numbers, else as strings.
pub fn compare_values(a: &str, b: &str) -> Ordering {
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

impl Operand {
    fn value(&self, lookup: &impl Fn(&str) -> Option<String>) -> String {
        match self {
            Operand::Var(name) => lookup(name).unwrap_or_default(),
            Operand::Number(text) | Operand::Str(text) => text.clone(),
        }
    }
}

impl Expr {
    /// Parses an expression (see the module doc for the grammar).
    pub fn parse(source: &str) -> Result<Expr, ExprError> {
        if source.len() > MAX_EXPR_LEN {
            return Err(ExprError {
                column: 1,
                message: format!("longer than {MAX_EXPR_LEN} bytes"),
            });
        }
        let tokens = lex(source)?;
        let mut p = Parser {
            tokens: &tokens,
            pos: 0,
            end_column: source.chars().count() + 1,
        };
        if tokens.is_empty() {
            return Err(p.error_here("empty expression"));
        }
        let expr = p.or(0)?;
        if let Some(t) = p.peek() {
            return Err(ExprError {
                column: t.column,
                message: format!("unexpected {} after a complete expression", t.kind),
            });
        }
        Ok(expr)
    }

    /// Evaluates with `lookup` giving variable values (`None` = missing = empty string).
    pub fn eval(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.eval_ref(&lookup)
    }

    fn eval_ref(&self, lookup: &impl Fn(&str) -> Option<String>) -> bool {
        match self {
            Expr::Or(a, b) => a.eval_ref(lookup) || b.eval_ref(lookup),
            Expr::And(a, b) => a.eval_ref(lookup) && b.eval_ref(lookup),
            Expr::Not(a) => !a.eval_ref(lookup),
            Expr::Cmp(a, op, b) => op.holds(compare_values(&a.value(lookup), &b.value(lookup))),
        }
    }

    /// The variable names the expression reads.
    pub fn variables(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_vars(&mut out);
        out
    }

    fn collect_vars<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Or(a, b) | Expr::And(a, b) => {
                a.collect_vars(out);
                b.collect_vars(out);
            }
            Expr::Not(a) => a.collect_vars(out),
            Expr::Cmp(a, _, b) => {
                for o in [a, b] {
                    if let Operand::Var(name) = o {
                        out.push(name);
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Operand(Operand),
    Cmp(CmpOp),
    And,
    Or,
    Not,
    Open,
    Close,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Operand(Operand::Var(n)) => write!(f, "${{{n}}}"),
            Kind::Operand(Operand::Number(n)) => write!(f, "number {n}"),
            Kind::Operand(Operand::Str(s)) => write!(f, "string {s:?}"),
            Kind::Cmp(op) => write!(f, "\"{}\"", op.as_str()),
            Kind::And => f.write_str("\"&&\""),
            Kind::Or => f.write_str("\"||\""),
            Kind::Not => f.write_str("\"!\""),
            Kind::Open => f.write_str("\"(\""),
            Kind::Close => f.write_str("\")\""),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: Kind,
    column: usize,
}

fn lex(source: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let err = |i: usize, message: String| ExprError {
        column: i + 1,
        message,
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start = i;
        let kind = match (c, next) {
            (c, _) if c.is_whitespace() => {
                i += 1;
                continue;
            }
            ('=', Some('=')) => {
                i += 2;
                Kind::Cmp(CmpOp::Eq)
            }
            ('!', Some('=')) => {
                i += 2;
                Kind::Cmp(CmpOp::Ne)
            }
            ('<', Some('=')) => {
                i += 2;
                Kind::Cmp(CmpOp::Le)
            }
            ('>', Some('=')) => {
                i += 2;
                Kind::Cmp(CmpOp::Ge)
            }
            ('<', _) => {
                i += 1;
                Kind::Cmp(CmpOp::Lt)
            }
            ('>', _) => {
                i += 1;
                Kind::Cmp(CmpOp::Gt)
            }
            ('&', Some('&')) => {
                i += 2;
                Kind::And
            }
            ('|', Some('|')) => {
                i += 2;
                Kind::Or
            }
            ('!', _) => {
                i += 1;
                Kind::Not
            }
            ('(', _) => {
                i += 1;
                Kind::Open
            }
            (')', _) => {
                i += 1;
                Kind::Close
            }
            ('=', _) => {
                return Err(err(
                    i,
                    "\"=\" is not an operator: compare with \"==\"".into(),
                ));
            }
            ('&', _) => return Err(err(i, "\"&\" is not an operator: use \"&&\"".into())),
            ('|', _) => return Err(err(i, "\"|\" is not an operator: use \"||\"".into())),
            ('$', Some('{')) => {
                let close = chars[i + 2..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or_else(|| err(i, "\"${\" is not closed by \"}\"".into()))?;
                let name: String = chars[i + 2..i + 2 + close].iter().collect();
                if !is_reference_name(&name) {
                    return Err(err(
                        i,
                        format!("bad variable name {name:?} (letters, digits, _ . - only)"),
                    ));
                }
                i += 2 + close + 1;
                Kind::Operand(Operand::Var(name))
            }
            ('\'' | '"', _) => {
                let quote = c;
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(err(
                                start,
                                format!("string starting here is not closed by {quote}"),
                            ));
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some('\\') => match chars.get(i + 1) {
                            Some(&e @ ('\\' | '\'' | '"')) => {
                                text.push(e);
                                i += 2;
                            }
                            _ => {
                                return Err(err(
                                    i,
                                    "unknown escape: only \\\\, \\' and \\\" are allowed".into(),
                                ));
                            }
                        },
                        Some(&ch) => {
                            text.push(ch);
                            i += 1;
                        }
                    }
                }
                Kind::Operand(Operand::Str(text))
            }
            (c, _)
                if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) =>
            {
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                if j < chars.len() && chars[j] == '.' {
                    if !chars.get(j + 1).is_some_and(|c| c.is_ascii_digit()) {
                        return Err(err(j, "a decimal point must be followed by digits".into()));
                    }
                    j += 1;
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                }
                if chars
                    .get(j)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    return Err(err(
                        j,
                        "a number is followed by a letter: quote text, like \"1a\"".into(),
                    ));
                }
                let text: String = chars[i..j].iter().collect();
                i = j;
                Kind::Operand(Operand::Number(text))
            }
            (c, _) => {
                return Err(err(
                    i,
                    format!(
                        "unexpected character {c:?} (operands are ${{var}}, numbers and quoted strings)"
                    ),
                ));
            }
        };
        tokens.push(Token {
            kind,
            column: start + 1,
        });
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    end_column: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn error_here(&self, message: &str) -> ExprError {
        let (column, found) = match self.peek() {
            Some(t) => (t.column, format!("{}", t.kind)),
            None => (self.end_column, "the end".to_string()),
        };
        ExprError {
            column,
            message: format!("{message}, found {found}"),
        }
    }

    fn eat(&mut self, kind: &Kind) -> bool {
        if self.peek().is_some_and(|t| &t.kind == kind) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut left = self.and(depth)?;
        while self.eat(&Kind::Or) {
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut left = self.unary(depth)?;
        while self.eat(&Kind::And) {
            let right = self.unary(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, ExprError> {
        if depth >= MAX_EXPR_DEPTH {
            return Err(self.error_here(&format!("nested deeper than {MAX_EXPR_DEPTH} levels")));
        }
        if self.eat(&Kind::Not) {
            return Ok(Expr::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.eat(&Kind::Open) {
            let inner = self.or(depth + 1)?;
            if !self.eat(&Kind::Close) {
                return Err(self.error_here("expected \")\""));
            }
            return Ok(inner);
        }
        self.comparison()
    }

    fn operand(&mut self, what: &str) -> Result<Operand, ExprError> {
        match self.peek() {
            Some(Token {
                kind: Kind::Operand(o),
                ..
            }) => {
                let o = o.clone();
                self.pos += 1;
                Ok(o)
            }
            _ => Err(self.error_here(what)),
        }
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        let left = self.operand("expected ${var}, a number, a quoted string, \"!\" or \"(\"")?;
        let op = match self.peek() {
            Some(Token {
                kind: Kind::Cmp(op),
                ..
            }) => *op,
            _ => {
                let shown = Kind::Operand(left);
                return Err(self.error_here(&format!(
                    "expected a comparison operator (== != < <= > >=) after {shown}"
                )));
            }
        };
        self.pos += 1;
        let right = self.operand(&format!(
            "expected ${{var}}, a number or a quoted string after \"{}\"",
            op.as_str()
        ))?;
        if let Some(Token {
            kind: Kind::Cmp(_),
            column,
        }) = self.peek()
        {
            return Err(ExprError {
                column: *column,
                message: "comparisons cannot be chained: join them with && or ||".into(),
            });
        }
        Ok(Expr::Cmp(left, op, right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn eval(src: &str, vars: &[(&str, &str)]) -> bool {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Expr::parse(src)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .eval(|n| map.get(n).cloned())
    }

    fn error(src: &str) -> ExprError {
        Expr::parse(src).expect_err(src)
    }

    #[test]
    fn numbers_compare_numerically_when_both_sides_are_numbers() {
        assert!(eval("${d} == 1", &[("d", "01")]));
        assert!(eval("${d} > 9", &[("d", "10")]));
        assert!(eval("${debt} >= 100.5", &[("debt", "100.50")]));
        assert!(eval("${a} < ${b}", &[("a", "-3"), ("b", "2")]));
        assert!(eval("'10' > '9'", &[]), "quoted numbers are still numbers");
    }

    #[test]
    fn other_values_compare_as_strings() {
        assert!(eval("${lang} == 'uk'", &[("lang", "uk")]));
        assert!(eval("${lang} != \"en\"", &[("lang", "uk")]));
        assert!(eval("'abc' < 'abd'", &[]));
        assert!(eval("${d} > 9", &[("d", "x")]), "\"x\" > \"9\" as strings");
        assert!(!eval("${d} == 1", &[("d", "1a")]));
    }

    #[test]
    fn missing_variable_is_the_empty_string() {
        assert!(eval("${nothing} == ''", &[]));
        assert!(!eval("${nothing} == 0", &[]));
        assert!(eval("${digits} != '' && ${digits} < 5", &[("digits", "3")]));
        assert!(!eval("${digits} != '' && ${digits} < 5", &[]));
    }

    #[test]
    fn and_binds_tighter_than_or_and_not_applies_to_what_follows() {
        assert!(eval("1 == 1 || 1 == 2 && 1 == 2", &[]));
        assert!(!eval("(1 == 1 || 1 == 2) && 1 == 2", &[]));
        assert!(eval("!${a} == 1", &[("a", "2")]));
        assert!(!eval("!(1 == 1 || 2 == 3)", &[]));
        assert!(eval("!!(1 == 1)", &[]));
    }

    #[test]
    fn string_escapes_and_non_ascii() {
        assert!(eval(r#"${n} == 'O\'Brien'"#, &[("n", "O'Brien")]));
        assert!(eval(
            r#"${n} == "Олена \"Лена\"""#,
            &[("n", "Олена \"Лена\"")]
        ));
    }

    #[test]
    fn errors_give_the_column() {
        assert_eq!(
            error("${digits} = 1").to_string(),
            "invalid expression at column 11: \"=\" is not an operator: compare with \"==\""
        );
        let e = error("${digits}");
        assert_eq!(e.column, 10);
        assert!(e.message.contains("expected a comparison operator"), "{e}");
        assert_eq!(error("1 == 1 &&").column, 10);
        assert_eq!(error("(1 == 1").column, 8);
        assert_eq!(error("1 == 1)").column, 7);
        assert_eq!(error("1 == 'abc").column, 6);
        assert_eq!(error("1 < 2 < 3").column, 7);
        assert_eq!(error("${a b} == 1").column, 1);
        assert_eq!(error("1 == 1 & 2 == 2").column, 8);
        assert_eq!(error("1 == 1 | 2 == 2").column, 8);
        assert_eq!(error("x == 1").column, 1);
        assert_eq!(error("1x == 1").column, 2);
        assert_eq!(error("1. == 1").column, 2);
        assert!(error("   ").message.contains("empty expression"));
    }

    #[test]
    fn deep_nesting_and_huge_input_are_refused_not_overflowing() {
        let long = format!("{}1 == 1{}", "(".repeat(3000), ")".repeat(3000));
        assert!(
            Expr::parse(&long)
                .unwrap_err()
                .message
                .contains("longer than")
        );
        let deep = format!("{}1 == 1{}", "(".repeat(100), ")".repeat(100));
        assert!(
            Expr::parse(&deep)
                .unwrap_err()
                .message
                .contains("nested deeper")
        );
        let nots = format!("{}1 == 1", "!".repeat(1000));
        assert!(
            Expr::parse(&nots)
                .unwrap_err()
                .message
                .contains("nested deeper")
        );
        let ok = format!("{}1 == 1{}", "(".repeat(30), ")".repeat(30));
        assert!(Expr::parse(&ok).is_ok());
    }

    #[test]
    fn variables_lists_references() {
        let e = Expr::parse("${a} == 1 || !(${b} < ${c})").unwrap();
        assert_eq!(e.variables(), ["a", "b", "c"]);
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_arbitrary_input(s in "\\PC{0,64}") {
            let _ = Expr::parse(&s);
        }

        #[test]
        fn numeric_comparison_matches_integer_order(a in -1000i64..1000, b in -1000i64..1000) {
            let vars = [("a", a.to_string()), ("b", b.to_string())];
            let map: HashMap<&str, String> = vars.iter().cloned().collect();
            let look = |n: &str| map.get(n).cloned();
            prop_assert_eq!(Expr::parse("${a} < ${b}").unwrap().eval(look), a < b);
            prop_assert_eq!(Expr::parse("${a} >= ${b}").unwrap().eval(look), a >= b);
            prop_assert_eq!(Expr::parse("${a} != ${b}").unwrap().eval(look), a != b);
        }
    }
}
