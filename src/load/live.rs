//! The live view on standard error: a progress bar (calls placed of `--calls`, or seconds of `--duration`) and one
//! line per whole second: calls placed and answered in it, calls up, failures by cause so far, setup-time
//! percentiles so far. The bar is drawn only on a terminal; the lines are written anyway (a log of the run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::options::StopAfter;
use super::stats::{Snapshot, Stats};

/// The line for the whole second that just ended.
pub fn second_line(snapshot: &Snapshot, second: u64) -> Option<String> {
    let s = snapshot.seconds.iter().find(|s| s.second == second)?;
    let causes: Vec<String> = snapshot
        .failed_by_cause
        .iter()
        .map(|(cause, n)| format!("{cause}={n}"))
        .collect();
    let pdd = &snapshot.post_dial_delay;
    Some(format!(
        "{} placed {:>5}/s answered {:>5}/s up {:>6} | failed {}{} | pdd p50 {:.0} p90 {:.0} p99 {:.0} ms",
        chrono::DateTime::from_timestamp(s.unix_second, 0).map_or_else(
            || s.unix_second.to_string(),
            |t| t.format("%H:%M:%S").to_string()
        ),
        s.placed,
        s.answered,
        s.concurrent_max,
        snapshot.failed,
        if causes.is_empty() {
            String::new()
        } else {
            format!(" ({})", causes.join(" "))
        },
        pdd.p50_ms,
        pdd.p90_ms,
        pdd.p99_ms
    ))
}

/// Draws until `done` is cancelled; the caller awaits the task.
pub async fn run(stats: Arc<Stats>, stop: StopAfter, start: Instant, done: CancellationToken) {
    let bar = match stop {
        StopAfter::Calls(n) => ProgressBar::new(n),
        StopAfter::Duration(d) => ProgressBar::new(d.as_secs().max(1)),
    };
    let template = match stop {
        StopAfter::Calls(_) => "[{bar:40}] {pos}/{len} calls placed, {msg}",
        StopAfter::Duration(_) => "[{bar:40}] {pos}/{len} s, {msg}",
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(stats.first_whole_second()),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = done.cancelled() => break,
        }
        let now = Instant::now();
        stats.tick(now);
        let snapshot = stats.snapshot();
        let elapsed = now.saturating_duration_since(start).as_secs();
        if let Some(text) = second_line(&snapshot, stats.second_of(now).saturating_sub(1)) {
            bar.suspend(|| eprintln!("{text}"));
        }
        bar.set_position(match stop {
            StopAfter::Calls(_) => snapshot.placed,
            StopAfter::Duration(_) => elapsed,
        });
        bar.set_message(format!("{} up", snapshot.up));
    }
    bar.finish_and_clear();
}
