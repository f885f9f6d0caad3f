//! What the logs may contain: secrets never, phone numbers only when the operator allows it.
//!
//! - API secrets: request spans carry the path and the query string with `access_token` (and anything else
//!   named like a secret) replaced by `<redacted>` ([`redact_query`]); the `X-Access-Token` header is marked
//!   sensitive, so no layer prints it. Keys are compared in constant time elsewhere ([`crate::api::auth`]).
//! - Phone numbers are personal data: [`mask_number`] keeps only their last 3 characters unless
//!   `log_numbers = true` in the configuration ([`set_log_numbers`]). Every log line that carries a number uses
//!   it.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

static LOG_NUMBERS: AtomicBool = AtomicBool::new(false);

/// Characters of a number kept by [`mask_number`].
pub const KEPT_DIGITS: usize = 3;

/// Allows (or forbids, the default) whole phone numbers in logs, for the whole process.
pub fn set_log_numbers(allowed: bool) {
    LOG_NUMBERS.store(allowed, Ordering::Relaxed);
}

/// Whether whole phone numbers may be logged.
pub fn log_numbers() -> bool {
    LOG_NUMBERS.load(Ordering::Relaxed)
}

/// A phone number as it may appear in a log line: whole when [`log_numbers`] allows, else `***` and its last
/// [`KEPT_DIGITS`] characters (`+380441234567` → `***567`; a number that short is all masked).
pub fn mask_number(number: &str) -> Cow<'_, str> {
    if log_numbers() {
        return Cow::Borrowed(number);
    }
    mask(number)
}

fn mask(number: &str) -> Cow<'_, str> {
    let count = number.chars().count();
    if count <= KEPT_DIGITS {
        return Cow::Borrowed("***");
    }
    let tail: String = number.chars().skip(count - KEPT_DIGITS).collect();
    Cow::Owned(format!("***{tail}"))
}

/// Query parameter names whose values are never logged.
const SECRET_PARAMS: &[&str] = &["access_token", "token", "secret", "password"];

/// A query string for the logs: the value of every secret parameter (`access_token=...`, case-insensitively,
/// percent-encoded names included) replaced by `<redacted>`.
pub fn redact_query(query: &str) -> Cow<'_, str> {
    let secret = |name: &str| {
        let name = crate::api::auth::form_urlencoded_pairs(name)
            .into_iter()
            .next()
            .map(|(n, _)| n)
            .unwrap_or_default();
        SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(&name))
    };
    if !query
        .split('&')
        .any(|p| secret(p.split_once('=').map_or(p, |(n, _)| n)))
    {
        return Cow::Borrowed(query);
    }
    let parts: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((n, _)) if secret(n) => format!("{n}=<redacted>"),
            _ => p.to_string(),
        })
        .collect();
    Cow::Owned(parts.join("&"))
}

/// A URL for messages and logs: the password of its user information replaced by `<redacted>`
/// (`redis://app:s3cr3t@host:6379` → `redis://app:<redacted>@host:6379`).
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return Cow::Borrowed(url);
    };
    let rest = &url[scheme_end..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let Some(at) = authority.rfind('@') else {
        return Cow::Borrowed(url);
    };
    let user = match authority[..at].split_once(':') {
        Some((user, _)) => user,
        None => return Cow::Borrowed(url),
    };
    Cow::Owned(format!(
        "{}{user}:<redacted>{}",
        &url[..scheme_end],
        &rest[at..]
    ))
}

/// The span of one API request: method, path and the [`redact_query`]ed query string (never headers).
pub fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    let query = req.uri().query().map(redact_query).unwrap_or_default();
    tracing::debug_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        query = %query,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_masked_to_their_last_three_characters() {
        assert_eq!(mask("+380441234567"), "***567");
        assert_eq!(mask("1234"), "***234");
        assert_eq!(mask("123"), "***");
        assert_eq!(mask("Київ-001"), "***001");
    }

    #[test]
    fn mask_number_honours_the_switch() {
        set_log_numbers(true);
        assert_eq!(mask_number("+380441234567"), "+380441234567");
        set_log_numbers(false);
        assert_eq!(mask_number("+380441234567"), "***567");
    }

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://app:s3cr3t@10.0.0.1:6379/0"),
            "redis://app:<redacted>@10.0.0.1:6379/0"
        );
        assert_eq!(redact_url("rediss://:p@ss@h"), "rediss://:<redacted>@h");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("memory://"), "memory://");
    }

    #[test]
    fn secret_query_values_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_query("x_key=ops&access_token=s3cr3t&limit=10"),
            "x_key=ops&access_token=<redacted>&limit=10"
        );
        assert_eq!(
            redact_query("ACCESS_TOKEN=a&access%5Ftoken=b"),
            "ACCESS_TOKEN=<redacted>&access%5Ftoken=<redacted>"
        );
        assert_eq!(redact_query("limit=10&page=2"), "limit=10&page=2");
    }
}
