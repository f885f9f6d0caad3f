//! Client configuration: where to connect, how to authenticate, channel sizes, timeouts and the reconnect policy.
//!
//! The back-off delay is a pure function of the attempt number and a random draw, so its shape (exponential
//! growth, cap, jitter bounds) is unit-tested without clocks.

use std::fmt;
use std::time::Duration;

use crate::esl::frame::Limits;

use super::error::ClientError;

/// How the client authenticates after FreeSWITCH's `auth/request`.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `auth <password>` (event_socket.conf.xml's password).
    Password(String),
    /// `userauth <user>@<domain>:<password>` (a directory user with `esl-password`).
    User {
        user: String,
        domain: String,
        password: String,
    },
}

impl Auth {
    /// The command line, e.g. `auth ClueCon`. Never logged.
    pub(crate) fn command_line(&self) -> String {
        match self {
            Auth::Password(p) => format!("auth {p}"),
            Auth::User {
                user,
                domain,
                password,
            } => format!("userauth {user}@{domain}:{password}"),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Password(_) => f.write_str("Auth::Password(<redacted>)"),
            Auth::User { user, domain, .. } => {
                write!(f, "Auth::User({user}@{domain}, <redacted>)")
            }
        }
    }
}

/// The format FreeSWITCH uses for events on a connection (`event plain|json|xml …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EventFormat {
    #[default]
    Plain,
    Json,
    Xml,
}

impl EventFormat {
    /// The keyword in the `event` command.
    pub fn as_str(self) -> &'static str {
        match self {
            EventFormat::Plain => "plain",
            EventFormat::Json => "json",
            EventFormat::Xml => "xml",
        }
    }
}

impl fmt::Display for EventFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exponential back-off with jitter between reconnect attempts.
///
/// Attempt `n` (1-based) waits `min(max, initial × multiplierⁿ⁻¹)`, shortened by a random fraction of up to
/// `jitter` (0 = no jitter, 1 = anywhere between 0 and the full delay), so many clients that lost the same switch
/// do not reconnect in lock-step.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    pub jitter: f64,
    /// Give up (and close the client) after this many failed attempts in a row; `None` = never.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.3,
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (1-based) given a uniform random draw `unit` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(64) as i32;
        let base = self.initial.as_secs_f64() * self.multiplier.powi(exp);
        let capped = base.min(self.max.as_secs_f64());
        let factor = 1.0 - self.jitter * unit.clamp(0.0, 1.0);
        Duration::from_secs_f64((capped * factor).max(0.0))
    }

    /// The delay before attempt `attempt`, with a fresh random draw.
    pub fn next_delay(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random_range(0.0..1.0))
    }

    fn validate(&self) -> Result<(), ClientError> {
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ClientError::InvalidConfig(format!(
                "reconnect jitter {} is outside 0..=1",
                self.jitter
            )));
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(ClientError::InvalidConfig(format!(
                "reconnect multiplier {} must be a finite number >= 1",
                self.multiplier
            )));
        }
        if self.initial > self.max {
            return Err(ClientError::InvalidConfig(format!(
                "reconnect initial delay {:?} is above the maximum {:?}",
                self.initial, self.max
            )));
        }
        Ok(())
    }
}

/// The client's own liveness probe: a cheap `api` sent every `interval` on each connection, so that a socket that
/// went silent (switch frozen, host gone, half-open TCP) is noticed even when nothing else is in flight.
///
/// The connection is declared dead when the probe has had no reply and nothing else came from FreeSWITCH for
/// `timeout` after it was written. FreeSWITCH runs an inbound socket's `api` commands one at a time and sends no
/// events meanwhile, so `timeout` is also the longest a synchronous `api` of yours may keep the socket silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    pub interval: Duration,
    pub timeout: Duration,
    /// The api command (without `api `); its answer, even `-ERR`, proves the switch reads and answers.
    pub command: String,
}

impl Default for Liveness {
    /// Every 5 s `api uptime`, dead after 15 s of silence: a silent socket is noticed within 21 s.
    fn default() -> Self {
        Liveness {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            command: "uptime".into(),
        }
    }
}

impl Liveness {
    /// The longest time from the moment a switch goes silent to the connection being declared lost: up to one
    /// interval until the next probe, the timeout, and one check period of the reader.
    pub fn detection_bound(&self) -> Duration {
        self.interval + self.timeout + check_period(self.timeout)
    }

    fn validate(&self) -> Result<(), ClientError> {
        if self.interval.is_zero() || self.timeout.is_zero() {
            return Err(ClientError::InvalidConfig(
                "liveness interval and timeout must be above zero".into(),
            ));
        }
        let command = self.command.trim();
        if command.is_empty() || self.command.contains(['\n', '\r']) {
            return Err(ClientError::InvalidConfig(format!(
                "liveness command {:?} must be one non-empty line",
                self.command
            )));
        }
        Ok(())
    }
}

/// How often the reader checks its timeouts, given the shortest one: a quarter of it, between 10 ms and 1 s.
pub(crate) fn check_period(shortest: Duration) -> Duration {
    (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Everything the client needs to connect and stay connected.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of FreeSWITCH's event socket (default port 8021).
    pub addr: String,
    pub auth: Auth,
    /// Event format for the connection's own `BACKGROUND_JOB` subscription (an `event` call can change it).
    pub event_format: EventFormat,
    /// Capacity of the event channel; when it is full the reader waits (back-pressure).
    pub event_capacity: usize,
    /// Capacity of the command queue into the connection task; when full, callers wait.
    pub command_capacity: usize,
    /// Frame size limit.
    pub limits: Limits,
    pub connect_timeout: Duration,
    /// Time allowed from TCP connect to the reply of `auth`.
    pub auth_timeout: Duration,
    /// A connection whose oldest unanswered command has seen no frame at all for this long is declared dead
    /// (half-open socket). `None` disables the check. Keep it above the slowest synchronous `api` you send.
    pub reply_timeout: Option<Duration>,
    /// The liveness probe; `None` disables it (then a silent switch is only noticed through `reply_timeout`, when
    /// a command of yours is waiting).
    pub liveness: Option<Liveness>,
    pub reconnect: Backoff,
}

impl ClientConfig {
    /// Defaults for `addr` with `auth <password>`.
    pub fn new(addr: impl Into<String>, password: impl Into<String>) -> ClientConfig {
        ClientConfig {
            addr: addr.into(),
            auth: Auth::Password(password.into()),
            event_format: EventFormat::Plain,
            event_capacity: 1024,
            command_capacity: 1024,
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(5),
            auth_timeout: Duration::from_secs(5),
            reply_timeout: Some(Duration::from_secs(60)),
            liveness: Some(Liveness::default()),
            reconnect: Backoff::default(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ClientError> {
        if self.event_capacity == 0 || self.command_capacity == 0 {
            return Err(ClientError::InvalidConfig(
                "event_capacity and command_capacity must be at least 1".into(),
            ));
        }
        if self.limits.max_frame < 64 {
            return Err(ClientError::InvalidConfig(format!(
                "max_frame {} is too small for any ESL frame",
                self.limits.max_frame
            )));
        }
        let line = self.auth.command_line();
        if line.contains(['\n', '\r']) {
            return Err(ClientError::InvalidConfig(
                "credentials contain a line break".into(),
            ));
        }
        if let Some(liveness) = &self.liveness {
            liveness.validate()?;
        }
        self.reconnect.validate()
    }

    /// How often the reader checks its timeouts.
    pub(crate) fn check_period(&self) -> Duration {
        let shortest = [
            self.reply_timeout,
            self.liveness.as_ref().map(|l| l.timeout),
        ]
        .into_iter()
        .flatten()
        .min();
        shortest.map_or(Duration::from_secs(1), check_period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: 0.5,
            max_attempts: None,
        }
    }

    #[test]
    fn delay_grows_exponentially_up_to_the_cap() {
        let p = policy();
        let d: Vec<_> = (1..=8).map(|a| p.delay(a, 0.0)).collect();
        assert_eq!(d[0], Duration::from_millis(100));
        assert_eq!(d[1], Duration::from_millis(200));
        assert_eq!(d[2], Duration::from_millis(400));
        assert_eq!(d[5], Duration::from_millis(3200));
        assert_eq!(d[6], Duration::from_secs(5));
        assert_eq!(d[7], Duration::from_secs(5));
        assert_eq!(p.delay(u32::MAX, 0.0), Duration::from_secs(5));
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let p = policy();
        assert_eq!(p.delay(3, 0.999_999).as_millis(), 200);
        for _ in 0..1000 {
            let d = p.next_delay(3);
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
        }
    }

    #[test]
    fn bad_policies_are_refused_with_a_reason() {
        let mut p = policy();
        p.jitter = 1.5;
        assert!(p.validate().unwrap_err().to_string().contains("jitter"));
        let mut p = policy();
        p.multiplier = 0.5;
        assert!(p.validate().unwrap_err().to_string().contains("multiplier"));
    }

    #[test]
    fn default_liveness_notices_a_silent_switch_within_30_seconds() {
        let bound = Liveness::default().detection_bound();
        assert!(bound <= Duration::from_secs(30), "{bound:?}");
        let config = ClientConfig::new("127.0.0.1:8021", "ClueCon");
        assert_eq!(config.liveness, Some(Liveness::default()));
        assert_eq!(config.check_period(), Duration::from_secs(1));
    }

    #[test]
    fn liveness_settings_are_validated_and_shorten_the_check_period() {
        let mut config = ClientConfig::new("127.0.0.1:8021", "ClueCon");
        config.liveness = Some(Liveness {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(400),
            command: "uptime".into(),
        });
        assert!(config.validate().is_ok());
        assert_eq!(config.check_period(), Duration::from_millis(100));
        let refusal = |liveness: Liveness| {
            let mut config = config.clone();
            config.liveness = Some(liveness);
            config.validate().unwrap_err().to_string()
        };
        let two_lines = Liveness {
            command: "uptime\nexit".into(),
            ..Liveness::default()
        };
        assert!(refusal(two_lines).contains("one non-empty line"));
        let no_interval = Liveness {
            interval: Duration::ZERO,
            ..Liveness::default()
        };
        assert!(refusal(no_interval).contains("above zero"));
    }

    #[test]
    fn credentials_are_not_in_debug_output() {
        let a = Auth::User {
            user: "1000".into(),
            domain: "example.com".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{a:?}").contains("s3cret"));
        assert_eq!(a.command_line(), "userauth 1000@example.com:s3cret");
        assert!(!format!("{:?}", Auth::Password("ClueCon".into())).contains("ClueCon"));
    }
}
