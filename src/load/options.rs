//! What a load run is asked to do ([`LoadPlan`]), and the parsing of the options that have a syntax of their own
//! (`--hold-dist lognormal:MEDIAN,SIGMA`, durations). Every check of the operator's input lives here, so a run
//! that starts is a run that makes sense: a bad value is refused with the option's name and what was wrong.

use std::path::PathBuf;
use std::time::Duration;

use rand::rngs::StdRng;
use rand_distr::{Distribution, LogNormal};

use super::LoadError;
use super::numbers::DialTemplate;

/// How long an answered call is held before we hang it up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HoldTime {
    /// The same hold for every call.
    Fixed(Duration),
    /// Drawn per call from a log-normal distribution: half the calls shorter than `median`, spread `sigma`
    /// (the standard deviation of the logarithm; 0.5-1.0 is typical of call-centre talk times).
    LogNormal { median: Duration, sigma: f64 },
}

/// Longest hold drawn from a distribution (its tail is cut here, not left to run for days).
pub const MAX_DRAWN_HOLD: Duration = Duration::from_secs(4 * 3600);

impl HoldTime {
    /// Parses `--hold-dist`: `lognormal:MEDIAN,SIGMA`, MEDIAN in seconds (fractions allowed), SIGMA ≥ 0.
    pub fn parse_dist(text: &str) -> Result<HoldTime, LoadError> {
        let bad = |why: &str| LoadError::Option {
            option: "--hold-dist",
            why: format!(
                "{why} in {:?} (expected lognormal:MEDIAN_SEC,SIGMA, e.g. lognormal:60,0.8)",
                crate::text::prefix(text)
            ),
        };
        let Some((kind, params)) = text.split_once(':') else {
            return Err(bad("no distribution name"));
        };
        if !kind.trim().eq_ignore_ascii_case("lognormal") {
            return Err(bad(&format!(
                "unknown distribution {:?}",
                crate::text::prefix(kind)
            )));
        }
        let Some((median, sigma)) = params.split_once(',') else {
            return Err(bad("two parameters needed"));
        };
        let median: f64 = median
            .trim()
            .parse()
            .map_err(|_| bad("the median is not a number"))?;
        let sigma: f64 = sigma
            .trim()
            .parse()
            .map_err(|_| bad("sigma is not a number"))?;
        if !(median.is_finite() && median > 0.0) {
            return Err(bad("the median must be above 0 seconds"));
        }
        if !(sigma.is_finite() && (0.0..=5.0).contains(&sigma)) {
            return Err(bad("sigma must be between 0 and 5"));
        }
        if median > MAX_DRAWN_HOLD.as_secs_f64() {
            return Err(bad("the median is longer than 4 hours"));
        }
        Ok(HoldTime::LogNormal {
            median: Duration::from_secs_f64(median),
            sigma,
        })
    }

    /// One call's hold.
    pub fn draw(&self, rng: &mut StdRng) -> Duration {
        match *self {
            HoldTime::Fixed(d) => d,
            HoldTime::LogNormal { median, sigma } => {
                match LogNormal::new(median.as_secs_f64().ln(), sigma) {
                    Ok(dist) => {
                        let secs: f64 = dist.sample(rng);
                        Duration::from_secs_f64(secs.min(MAX_DRAWN_HOLD.as_secs_f64()))
                    }
                    // Parameters are checked at parse time; a Fixed median is the safe reading anyway.
                    Err(_) => median,
                }
            }
        }
    }
}

/// When the run stops placing calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAfter {
    /// After this many calls are placed.
    Calls(u64),
    /// After this long (real time) of placing.
    Duration(Duration),
}

/// One switch to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchAddr {
    /// `host:port` of its event socket.
    pub addr: String,
}

impl SwitchAddr {
    /// Checks `HOST:PORT` (a name or an address, and a port number): a clear refusal before any connection.
    pub fn parse(text: &str) -> Result<SwitchAddr, LoadError> {
        let bad = |why: &str| LoadError::Option {
            option: "--esl",
            why: format!("{:?}: {why}", crate::text::prefix(text)),
        };
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| bad("expected HOST:PORT"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("no host name"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(SwitchAddr {
                addr: text.to_owned(),
            }),
            _ => Err(bad("the port must be a number from 1 to 65535")),
        }
    }
}

/// Everything a run needs, checked.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub switches: Vec<SwitchAddr>,
    pub password: String,
    pub dial: DialTemplate,
    /// Sessions each call takes on the switch (`--sessions-per-call`, else [`DialTemplate::sessions_per_call`]).
    pub sessions_per_call: u32,
    /// `--numbers`: lines that `{n}` takes in turn (wrapping round); `None`: `{n}` is the call's sequence number.
    pub numbers: Option<PathBuf>,
    /// Calls per second asked for (at most this many in any whole second).
    pub rate: f64,
    /// At most this many calls up at once.
    pub limit: u32,
    pub stop: StopAfter,
    /// The rate rises linearly from 0 to `rate` over this long.
    pub ramp_up: Duration,
    pub hold: HoldTime,
    /// `originate_timeout` of each call, seconds (switch time).
    pub originate_timeout_sec: u32,
    pub caller_id_number: Option<String>,
    /// Place above the switches' own `sessions-per-second`.
    pub force: bool,
    /// The switch runs this many of its seconds per real second (`fsdialer sim --speed`): hold times are switch
    /// time and are waited for `hold / speed`; the switch's `sessions-per-second` allows `speed` times as many
    /// calls per real second. The asked rate and every reported time are real time.
    pub speed: f64,
    /// Write the report as JSON here.
    pub report: Option<PathBuf>,
    /// Draw the live view (a progress bar and a line a second) on standard error.
    pub live: bool,
}

/// Most sessions a call may take (a loopback call takes 2; a few more for dial strings that fork).
pub const MAX_SESSIONS_PER_CALL: u32 = 16;

/// Highest rate accepted: far above what one ESL connection carries, low enough to keep arithmetic exact.
pub const MAX_RATE: f64 = 100_000.0;

impl LoadPlan {
    /// Checks the numbers that must make sense together.
    pub fn validate(&self) -> Result<(), LoadError> {
        let option = |option: &'static str, why: String| Err(LoadError::Option { option, why });
        if self.switches.is_empty() {
            return option("--esl", "give at least one switch".into());
        }
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= MAX_RATE) {
            return option(
                "--rate",
                format!("{} is not a rate above 0 and up to {MAX_RATE}", self.rate),
            );
        }
        if self.limit == 0 {
            return option(
                "--limit",
                "at least one call must be allowed at once".into(),
            );
        }
        match self.stop {
            StopAfter::Calls(0) => return option("--calls", "at least one call".into()),
            StopAfter::Duration(d) if d.is_zero() => {
                return option("--duration", "must be above 0 seconds".into());
            }
            _ => {}
        }
        if !(1..=MAX_SESSIONS_PER_CALL).contains(&self.sessions_per_call) {
            return option(
                "--sessions-per-call",
                format!(
                    "{} is not from 1 to {MAX_SESSIONS_PER_CALL}",
                    self.sessions_per_call
                ),
            );
        }
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return option("--speed", format!("{} is not above 0", self.speed));
        }
        if self.originate_timeout_sec == 0 {
            return option("--originate-timeout", "must be at least 1 second".into());
        }
        if let Some(cid) = &self.caller_id_number
            && !crate::campaign::gateway::is_dial_safe(cid)
        {
            return option(
                "--caller-id",
                format!(
                    "{:?} may only hold letters, digits and + * # . - _",
                    crate::text::prefix(cid)
                ),
            );
        }
        Ok(())
    }

    /// A real-time wait for `switch_time` of the switch's time.
    pub fn real(&self, switch_time: Duration) -> Duration {
        Duration::from_secs_f64(switch_time.as_secs_f64() / self.speed)
    }
}

/// Parses a duration option: seconds (`90`, `0.5`) or with a unit (`500ms`, `90s`, `15m`, `2h`).
pub fn parse_duration(option: &'static str, text: &str) -> Result<Duration, LoadError> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    let value: f64 = number.trim().parse().unwrap_or(f64::NAN);
    let secs = value * scale;
    if (0.0..366.0 * 86400.0).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(LoadError::Option {
            option,
            why: format!(
                "{:?} is not a duration (seconds, or a number with ms, s, m or h)",
                crate::text::prefix(text)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lognormal_hold_parses_and_draws_around_its_median() {
        let hold = HoldTime::parse_dist("lognormal:60,0.8").unwrap();
        assert_eq!(
            hold,
            HoldTime::LogNormal {
                median: Duration::from_secs(60),
                sigma: 0.8
            }
        );
        let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(7);
        let mut draws: Vec<Duration> = (0..2001).map(|_| hold.draw(&mut rng)).collect();
        draws.sort();
        let median = draws[1000].as_secs_f64();
        assert!((45.0..80.0).contains(&median), "median {median}");
        assert!(draws.iter().all(|d| *d <= MAX_DRAWN_HOLD));
    }

    #[test]
    fn a_malformed_hold_distribution_is_refused_naming_the_option_and_the_fault() {
        for (text, why) in [
            ("lognormal", "no distribution name"),
            ("normal:60,1", "unknown distribution"),
            ("lognormal:60", "two parameters"),
            ("lognormal:x,1", "median is not a number"),
            ("lognormal:60,y", "sigma is not a number"),
            ("lognormal:0,1", "above 0"),
            ("lognormal:60,-1", "between 0 and 5"),
            ("lognormal:NaN,1", "above 0"),
        ] {
            let e = HoldTime::parse_dist(text).unwrap_err().to_string();
            assert!(e.contains("--hold-dist") && e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn esl_addresses_need_a_host_and_a_port() {
        assert!(SwitchAddr::parse("127.0.0.1:8021").is_ok());
        assert!(SwitchAddr::parse("fs1.example.com:8021").is_ok());
        assert!(SwitchAddr::parse("[::1]:8021").is_ok());
        for bad in [
            "127.0.0.1",
            ":8021",
            "host:",
            "host:0",
            "host:99999",
            "host:abc",
        ] {
            let e = SwitchAddr::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--esl"), "{bad}: {e}");
        }
    }

    #[test]
    fn durations_take_seconds_or_a_unit() {
        let d = |t| parse_duration("--duration", t);
        assert_eq!(d("90").unwrap(), Duration::from_secs(90));
        assert_eq!(d("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(d("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(d("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(d("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["", "-1", "5d", "abc", "1e400"] {
            assert!(
                d(bad).unwrap_err().to_string().contains("--duration"),
                "{bad}"
            );
        }
    }
}
