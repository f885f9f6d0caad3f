//! A campaign's webhooks as written: where each outcome is POSTed, which events, the signing secret and the
//! delivery limits. Validation fails closed: a URL that is not plain `http(s)://host…` (another scheme, user
//! information, no host, whitespace), an empty or short secret, an empty event list or a duplicate URL refuses
//! the whole campaign, naming the field (`webhooks[1].url: …`).
//!
//! Delivery itself (the durable outbox, signing, retries) lives in `crate::webhooks`.

use super::error::FieldError;
use serde::{Deserialize, Serialize};

/// Shortest secret accepted (an HMAC key shorter than this is guessable).
pub const MIN_SECRET_LEN: usize = 16;
/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Most webhooks per campaign.
pub const MAX_WEBHOOKS: usize = 8;

fn default_timeout_ms() -> u64 {
    5_000
}
fn default_max_attempts() -> u32 {
    25
}
fn default_retry_min_ms() -> u64 {
    1_000
}
fn default_retry_max_ms() -> u64 {
    600_000
}

/// The events a webhook can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// Every attempt's result (SPEC §4).
    AttemptEnd,
    /// A member that ended (success or not).
    MemberEnd,
    /// A campaign state transition (SPEC §6).
    CampaignState,
}

impl WebhookEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::AttemptEnd => "attempt_end",
            WebhookEvent::MemberEnd => "member_end",
            WebhookEvent::CampaignState => "campaign_state",
        }
    }

    pub fn parse(s: &str) -> Option<WebhookEvent> {
        match s {
            "attempt_end" => Some(WebhookEvent::AttemptEnd),
            "member_end" => Some(WebhookEvent::MemberEnd),
            "campaign_state" => Some(WebhookEvent::CampaignState),
            _ => None,
        }
    }
}

/// One webhook of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` endpoint receiving `POST` with a JSON body.
    pub url: String,
    /// What is sent to it.
    pub events: Vec<WebhookEvent>,
    /// HMAC-SHA256 key of `X-Fsdialer-Signature` (at least [`MIN_SECRET_LEN`] bytes).
    pub secret: String,
    /// How long one delivery may take before it counts as failed.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Deliveries of one event before it goes to the dead-letter list.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First back-off after a failed delivery; doubles per failure (with jitter) up to `retry_max_ms`.
    #[serde(default = "default_retry_min_ms")]
    pub retry_min_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
}

impl WebhookConfig {
    pub fn wants(&self, event: WebhookEvent) -> bool {
        self.events.contains(&event)
    }

    /// Every problem of one webhook, paths relative to it (`url`, `secret`...).
    fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(reason) = check_url(&self.url) {
            errors.push(FieldError::new("url", reason));
        }
        if self.events.is_empty() {
            errors.push(FieldError::new(
                "events",
                "must name at least one of attempt_end, member_end, campaign_state",
            ));
        }
        for (i, e) in self.events.iter().enumerate() {
            if self.events[..i].contains(e) {
                errors.push(FieldError::new(
                    format!("events[{i}]"),
                    format!("{} is listed twice", e.as_str()),
                ));
            }
        }
        if self.secret.len() < MIN_SECRET_LEN {
            errors.push(FieldError::new(
                "secret",
                format!("must be at least {MIN_SECRET_LEN} characters"),
            ));
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            errors.push(FieldError::new(
                "timeout_ms",
                format!("must be 100 to 60000, got {}", self.timeout_ms),
            ));
        }
        if !(1..=100).contains(&self.max_attempts) {
            errors.push(FieldError::new(
                "max_attempts",
                format!("must be 1 to 100, got {}", self.max_attempts),
            ));
        }
        if !(10..=3_600_000).contains(&self.retry_min_ms) {
            errors.push(FieldError::new(
                "retry_min_ms",
                format!("must be 10 to 3600000, got {}", self.retry_min_ms),
            ));
        }
        if self.retry_max_ms < self.retry_min_ms || self.retry_max_ms > 86_400_000 {
            errors.push(FieldError::new(
                "retry_max_ms",
                format!(
                    "must be retry_min_ms ({}) to 86400000, got {}",
                    self.retry_min_ms, self.retry_max_ms
                ),
            ));
        }
        errors
    }
}

/// Every problem of a campaign's webhook list, paths under `webhooks`.
pub fn check_webhooks(hooks: &[WebhookConfig]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if hooks.len() > MAX_WEBHOOKS {
        errors.push(FieldError::new(
            "webhooks",
            format!("at most {MAX_WEBHOOKS} webhooks, got {}", hooks.len()),
        ));
    }
    for (i, h) in hooks.iter().enumerate() {
        let at = format!("webhooks[{i}]");
        errors.extend(h.check().into_iter().map(|e| e.under(&at)));
        if hooks[..i].iter().any(|o| o.url == h.url) {
            errors.push(FieldError::new(
                format!("{at}.url"),
                "the same URL is listed twice",
            ));
        }
    }
    errors
}

/// `Ok` for a plain `http://` or `https://` URL with a host; why not otherwise.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("longer than {MAX_URL_LEN} characters"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters".into());
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "scheme {:?} refused: only http and https",
            parsed.scheme()
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry a user or password (the secret signs the body)".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(url: &str) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            events: vec![WebhookEvent::AttemptEnd],
            secret: "0123456789abcdef".into(),
            timeout_ms: default_timeout_ms(),
            max_attempts: default_max_attempts(),
            retry_min_ms: default_retry_min_ms(),
            retry_max_ms: default_retry_max_ms(),
        }
    }

    #[test]
    fn only_plain_http_and_https_urls_pass() {
        assert_eq!(
            check_url("https://crm.example.com/hooks/dialer?x=1"),
            Ok(())
        );
        assert_eq!(check_url("http://127.0.0.1:9000/"), Ok(()));
        for bad in [
            "file:///etc/passwd",
            "ftp://h/x",
            "javascript:alert(1)",
            "http://user:pw@h/",
            "https://",
            "crm.example.com/hook",
            "http://h/a b",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad} passed");
        }
    }

    #[test]
    fn every_problem_is_named_with_its_path() {
        let mut bad = hook("gopher://h");
        bad.secret = "short".into();
        bad.events = vec![];
        bad.timeout_ms = 5;
        let dup = hook("https://a.example/h");
        let errors = check_webhooks(&[bad, dup.clone(), dup]);
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let joined = text.join("\n");
        for want in [
            "webhooks[0].url: scheme \"gopher\" refused",
            "webhooks[0].events: must name at least one",
            "webhooks[0].secret: must be at least 16",
            "webhooks[0].timeout_ms: must be 100 to 60000, got 5",
            "webhooks[2].url: the same URL is listed twice",
        ] {
            assert!(joined.contains(want), "{want} missing from:\n{joined}");
        }
        assert!(check_webhooks(&[hook("https://a.example/h")]).is_empty());
    }

    #[test]
    fn defaults_fill_the_limits() {
        let h: WebhookConfig = serde_json::from_value(serde_json::json!({
            "url": "https://a.example/h", "events": ["attempt_end", "member_end"], "secret": "0123456789abcdef"
        }))
        .unwrap();
        assert_eq!((h.timeout_ms, h.max_attempts), (5_000, 25));
        assert!(h.wants(WebhookEvent::MemberEnd) && !h.wants(WebhookEvent::CampaignState));
        let e = serde_json::from_value::<WebhookConfig>(serde_json::json!({
            "url": "https://a.example/h", "events": ["call_end"], "secret": "0123456789abcdef"
        }))
        .unwrap_err();
        assert!(e.to_string().contains("call_end"), "{e}");
    }
}
