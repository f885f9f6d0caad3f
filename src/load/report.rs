//! The final report of a run: what was asked, what was placed and how it ended, the latencies, the rate achieved,
//! calls up over time, each switch's own figures before and after, and the CPU the run cost. Written as text to
//! the terminal and, with `--report FILE.json`, as JSON (the same fields).

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::LoadError;
use super::stats::{Percentiles, Second, Snapshot};
use super::switch::SwitchStatus;

/// Why placing stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoppedBy {
    /// `--calls N` were placed.
    Calls,
    /// `--duration` was over.
    Duration,
    /// Ctrl-C or SIGTERM.
    Signal,
}

/// One switch of the run.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchReport {
    pub addr: String,
    /// Its `sessions-per-second`, when it answered `fsctl sps`.
    pub sessions_per_second: Option<u32>,
    pub max_sessions: Option<u32>,
    /// Calls this run placed on it.
    pub placed: u64,
    pub status_before: Option<SwitchStatus>,
    pub status_after: Option<SwitchStatus>,
}

/// The CPU time the load generator itself used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuUse {
    /// User + system time of the process over the run, milliseconds.
    pub total_ms: f64,
    /// Per placed call, microseconds.
    pub per_call_us: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tag: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub stopped_by: StoppedBy,
    /// `--rate`.
    pub asked_rate: f64,
    /// The rate calls were paced at: the asked one, or what the switches' `sessions-per-second` allow.
    pub paced_rate: f64,
    /// Sessions each call took on the switch (2 for a loopback call): what its limits were counted in.
    pub sessions_per_call: u32,
    /// Calls placed per second over the time spent placing them (first to last originate, ramp-up excluded).
    pub achieved_rate: f64,
    /// Most calls placed in one whole second of the run.
    pub most_placed_in_a_second: u64,
    pub limit: u32,
    /// Seconds from the first originate to the last.
    pub placing_secs: f64,
    pub calls: Snapshot,
    pub switches: Vec<SwitchReport>,
    pub cpu: CpuUse,
    /// Placed calls hung up by `hupall` at the end because their hangup was never confirmed.
    pub swept_with_hupall: bool,
}

fn line(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "  {label:<28} {value}");
}

fn percentiles(p: &Percentiles) -> String {
    if p.count == 0 {
        return "none".into();
    }
    format!(
        "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} calls)",
        p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms, p.count
    )
}

fn status_line(s: &Option<SwitchStatus>) -> String {
    let Some(s) = s else {
        return "not available".into();
    };
    let n = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
    format!(
        "{} sessions (peak {}), {} since startup, {}/s of max {} (peak {}/s)",
        n(s.sessions),
        n(s.sessions_peak),
        n(s.sessions_since_startup),
        n(s.sessions_per_second),
        n(s.sessions_per_second_max),
        n(s.sessions_per_second_peak)
    )
}

/// "3 ×10, 2 ×12": how many seconds saw each concurrency, compressed to its runs.
fn concurrency_over_time(seconds: &[Second]) -> String {
    let mut out = String::new();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for s in seconds {
        match runs.last_mut() {
            Some((value, n)) if *value == s.concurrent_max => *n += 1,
            _ => runs.push((s.concurrent_max, 1)),
        }
    }
    for (i, (value, n)) in runs.iter().enumerate() {
        if i == 24 {
            let _ = write!(out, " … ({} more changes)", runs.len() - 24);
            break;
        }
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{value}×{n}s");
    }
    out
}

impl Report {
    /// The report as the terminal shows it.
    pub fn text(&self) -> String {
        let c = &self.calls;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "fsdialer load {}: {} → {} (stopped by {})",
            self.tag,
            self.started_at.format("%H:%M:%S"),
            self.ended_at.format("%H:%M:%S"),
            match self.stopped_by {
                StoppedBy::Calls => "--calls",
                StoppedBy::Duration => "--duration",
                StoppedBy::Signal => "a signal",
            }
        );
        line(
            &mut out,
            "rate asked / paced",
            format!(
                "{:.1}/s / {:.1}/s ({} session(s) a call)",
                self.asked_rate, self.paced_rate, self.sessions_per_call
            ),
        );
        line(
            &mut out,
            "rate achieved",
            format!(
                "{:.1}/s over {:.1} s (most in one second: {})",
                self.achieved_rate, self.placing_secs, self.most_placed_in_a_second
            ),
        );
        line(&mut out, "placed", c.placed);
        line(&mut out, "answered", c.answered);
        line(
            &mut out,
            "hung up by us / far end",
            format!("{} / {}", c.hung_up_by_us, c.hung_up_by_far_end),
        );
        line(&mut out, "failed", c.failed);
        for (cause, n) in &c.failed_by_cause {
            line(&mut out, &format!("  {cause}"), n);
        }
        if c.unconfirmed > 0 {
            line(&mut out, "hangup not confirmed", c.unconfirmed);
        }
        line(&mut out, "post-dial delay", percentiles(&c.post_dial_delay));
        line(
            &mut out,
            "originate → BACKGROUND_JOB",
            percentiles(&c.background_job),
        );
        line(
            &mut out,
            "concurrent (limit)",
            format!("max {} ({})", c.concurrent_max, self.limit),
        );
        line(
            &mut out,
            "concurrent over time",
            concurrency_over_time(&c.seconds),
        );
        line(
            &mut out,
            "CPU of fsdialer",
            format!(
                "{:.0} ms, {:.1} µs per call",
                self.cpu.total_ms, self.cpu.per_call_us
            ),
        );
        for s in &self.switches {
            let _ = writeln!(
                out,
                "  switch {} (sessions-per-second {}, max-sessions {}): {} calls placed",
                s.addr,
                s.sessions_per_second.map_or("?".into(), |v| v.to_string()),
                s.max_sessions.map_or("?".into(), |v| v.to_string()),
                s.placed
            );
            line(&mut out, "  before", status_line(&s.status_before));
            line(&mut out, "  after", status_line(&s.status_after));
        }
        out
    }

    /// Writes the JSON report.
    pub fn write_json(&self, path: &Path) -> Result<(), LoadError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| LoadError::Report {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
        std::fs::write(path, json).map_err(|e| LoadError::Report {
            path: path.to_owned(),
            why: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_is_shown_as_runs_of_equal_seconds() {
        let s = |second, concurrent_max| Second {
            second,
            concurrent_max,
            ..Second::default()
        };
        let seconds = [s(0, 3), s(1, 5), s(2, 5), s(3, 5), s(4, 0)];
        assert_eq!(concurrency_over_time(&seconds), "3×1s 5×3s 0×1s");
    }
}
