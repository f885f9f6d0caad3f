//! `fsdialer load`: a load generator for FreeSWITCH deployments, built from the engine's own parts.
//!
//! It places calls on one or several switches at exactly the asked rate (never more in any whole second), at most
//! a given number at once, holds each answered call for its hold time and hangs it up, and reports what the
//! switches did: calls placed, answered and failed by hangup cause, the post-dial delay and the originate's
//! latency (HDR histograms), the rate achieved, calls up over time, and each switch's own `status` before and
//! after. No store: everything is in memory. Ctrl-C / SIGTERM stops placing, hangs up what was placed and still
//! reports. Against `fsdialer sim --speed F` it is the project's end-to-end throughput benchmark.
//!
//! Layout: [`options`] (what is asked, checked), [`numbers`] (the dial string of each call), [`pacer`] (when and
//! where the next call goes), [`switch`] (a switch's connection, events and figures), [`call`] (one call's life),
//! [`stats`] (the figures as they come), [`live`] (the terminal view), [`report`] (the final report), [`cli`].

pub mod call;
pub mod cli;
pub mod live;
pub mod numbers;
pub mod options;
pub mod pacer;
pub mod report;
pub mod stats;
pub mod switch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use options::{HoldTime, LoadPlan, StopAfter, SwitchAddr};
pub use report::{Report, StoppedBy};

use numbers::Numbers;
use pacer::{Decision, Pacer};
use stats::Stats;
use switch::{Calls, Switch};

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{option}: {why}")]
    Option { option: &'static str, why: String },
    #[error("numbers file {path}: {why}")]
    Numbers { path: PathBuf, why: String },
    #[error("switch {addr}: {why}")]
    Switch { addr: String, why: String },
    #[error("report file {path}: {why}")]
    Report { path: PathBuf, why: String },
}

/// The CPU time this process has used so far.
fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Calls a second one switch of `sessions-per-second = sps` lets through, each call taking `sessions_per_call`
/// sessions: the engine's rule, FreeSWITCH lets `sps - 1` sessions through in each of its seconds
/// ([`SessionWindow::for_switch`](crate::engine::pacing::SessionWindow::for_switch)).
fn calls_per_switch_second(sps: u32, sessions_per_call: u32) -> u32 {
    sps.saturating_sub(1).max(1) / sessions_per_call.max(1)
}

/// The rate the switches let through, in calls per real second (`None`: not limited by them).
fn switch_rate(switch_sps: &[Option<u32>], sessions_per_call: u32, speed: f64) -> Option<f64> {
    let mut total = 0.0;
    for sps in switch_sps {
        total += f64::from(calls_per_switch_second((*sps)?, sessions_per_call)) * speed;
    }
    Some(total)
}

/// What happened while waiting for the next call's turn.
enum Turn {
    Place { switch: usize },
    Stop(StoppedBy),
}

/// The placing side of a run.
struct Dialler {
    plan: LoadPlan,
    numbers: Numbers,
    tag: String,
    start: Instant,
    pacer: Pacer,
    slots: Arc<Semaphore>,
    stop: CancellationToken,
    seq: u64,
    placed_on: Vec<u64>,
    ramp_end: Instant,
    steady_first: Option<Instant>,
    steady_count: u64,
    last_placed: Option<Instant>,
}

impl Dialler {
    fn deadline(&self) -> Option<Instant> {
        match self.plan.stop {
            StopAfter::Duration(d) => Some(self.start + d),
            StopAfter::Calls(_) => None,
        }
    }

    /// Waits for a free slot and the pacer's go.
    async fn next_turn(&mut self) -> (Turn, Option<tokio::sync::OwnedSemaphorePermit>) {
        if let StopAfter::Calls(n) = self.plan.stop
            && self.seq >= n
        {
            return (Turn::Stop(StoppedBy::Calls), None);
        }
        let deadline = self.deadline().map(tokio::time::Instant::from_std);
        let over = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(over);
        let permit = tokio::select! {
            biased;
            () = self.stop.cancelled() => return (Turn::Stop(StoppedBy::Signal), None),
            () = &mut over => return (Turn::Stop(StoppedBy::Duration), None),
            permit = self.slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return (Turn::Stop(StoppedBy::Signal), None),
            },
        };
        loop {
            let at = match self.pacer.decide(Instant::now()) {
                Decision::Place { switch } => return (Turn::Place { switch }, Some(permit)),
                Decision::Wait(at) => at,
            };
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return (Turn::Stop(StoppedBy::Signal), None),
                () = &mut over => return (Turn::Stop(StoppedBy::Duration), None),
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
            }
        }
    }

    fn record_placed(&mut self, switch: usize, now: Instant) {
        self.pacer.placed(switch, now);
        self.placed_on[switch] += 1;
        if now >= self.ramp_end {
            self.steady_first.get_or_insert(now);
            self.steady_count += 1;
        }
        self.last_placed = Some(now);
    }

    /// Calls per second from the first call after the ramp to the last.
    fn achieved_rate(&self) -> (f64, f64) {
        let span = match (self.steady_first, self.last_placed) {
            (Some(first), Some(last)) => last.saturating_duration_since(first).as_secs_f64(),
            _ => 0.0,
        };
        let placing = self.last_placed.map_or(0.0, |l| {
            l.saturating_duration_since(self.start).as_secs_f64()
        });
        let rate = if self.steady_count >= 2 && span > 0.0 {
            (self.steady_count - 1) as f64 / span
        } else if placing > 0.0 {
            self.seq as f64 / placing
        } else {
            0.0
        };
        (rate, placing)
    }
}

/// Runs a load test until its calls or duration are done or `stop` is cancelled, and reports.
pub async fn run(plan: LoadPlan, stop: CancellationToken) -> Result<Report, LoadError> {
    plan.validate()?;
    let numbers = match &plan.numbers {
        Some(path) => Numbers::from_file(path)?,
        None => Numbers::Sequence,
    };
    if plan.numbers.is_some() && !plan.dial.has_placeholder() {
        return Err(LoadError::Option {
            option: "--numbers",
            why: format!(
                "the dial string has no {} to put the numbers in",
                numbers::PLACEHOLDER
            ),
        });
    }
    if let Some(path) = &plan.report {
        // Found out now, not after an hour of calls.
        std::fs::File::create(path).map_err(|e| LoadError::Report {
            path: path.clone(),
            why: e.to_string(),
        })?;
    }
    let tag = format!("load-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let calls = Arc::new(Calls::default());
    let mut switches = Vec::new();
    for s in &plan.switches {
        switches.push(Arc::new(
            Switch::connect(&s.addr, &plan.password, &tag, calls.clone()).await?,
        ));
    }
    let switch_sps: Vec<Option<u32>> = if plan.force {
        vec![None; switches.len()]
    } else {
        let mut sps = Vec::new();
        for s in &switches {
            let Some(limits) = s.limits else {
                return Err(LoadError::Switch {
                    addr: s.addr.clone(),
                    why: "its sessions-per-second could not be read (`fsctl sps`); give --force to place \
                          calls without respecting it"
                        .into(),
                });
            };
            if calls_per_switch_second(limits.sessions_per_second, plan.sessions_per_call) == 0 {
                return Err(LoadError::Switch {
                    addr: s.addr.clone(),
                    why: format!(
                        "its sessions-per-second {} lets fewer sessions a second through than one call takes \
                         ({}); give --force to place calls it will partly refuse",
                        limits.sessions_per_second, plan.sessions_per_call
                    ),
                });
            }
            sps.push(Some(limits.sessions_per_second));
        }
        sps
    };
    let spc = plan.sessions_per_call;
    let paced_rate = match switch_rate(&switch_sps, spc, plan.speed) {
        Some(allowed) if allowed < plan.rate => {
            tracing::warn!(
                asked = plan.rate,
                allowed,
                sessions_per_call = spc,
                "the switches' sessions-per-second allow fewer calls per second than asked (counted in \
                 sessions: {spc} a call): pacing at what they allow (--force to place above it)"
            );
            allowed
        }
        _ => plan.rate,
    };
    let max_sessions: Option<u32> = switches
        .iter()
        .map(|s| s.limits.map(|l| l.max_sessions))
        .sum();
    let limit_sessions = u64::from(plan.limit) * u64::from(spc);
    if let Some(max) = max_sessions
        && limit_sessions > u64::from(max)
    {
        tracing::warn!(
            limit = plan.limit,
            sessions_per_call = spc,
            max_sessions = max,
            "--limit calls of {spc} session(s) are {limit_sessions} sessions, above the switches' max-sessions \
             together: they will refuse calls beyond {} at once",
            max / spc
        );
    }
    let mut status_before = Vec::new();
    for s in &switches {
        status_before.push(s.status().await);
    }

    let started_at = chrono::Utc::now();
    let start = Instant::now();
    let cpu_start = process_cpu();
    let stats = Arc::new(Stats::new(start, started_at));
    let live_done = CancellationToken::new();
    let live = plan.live.then(|| {
        tokio::spawn(live::run(
            stats.clone(),
            plan.stop,
            start,
            live_done.clone(),
        ))
    });
    let mut dialler = Dialler {
        pacer: Pacer::new(
            start,
            started_at,
            paced_rate,
            plan.ramp_up,
            plan.speed,
            &switch_sps,
            plan.sessions_per_call,
        ),
        slots: Arc::new(Semaphore::new(plan.limit as usize)),
        numbers,
        tag: tag.clone(),
        start,
        stop: stop.clone(),
        seq: 0,
        placed_on: vec![0; switches.len()],
        ramp_end: start + plan.ramp_up,
        steady_first: None,
        steady_count: 0,
        last_placed: None,
        plan,
    };
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let mut tasks = JoinSet::new();
    let stopped_by = loop {
        let (turn, permit) = dialler.next_turn().await;
        let switch = match turn {
            Turn::Place { switch } => switch,
            Turn::Stop(by) => break by,
        };
        let now = Instant::now();
        dialler.seq += 1;
        let number = dialler.numbers.number(dialler.seq);
        let hold = dialler.plan.real(dialler.plan.hold.draw(&mut rng));
        let call_plan = call::CallPlan {
            seq: dialler.seq,
            placed_at: now,
            dial_string: dialler.plan.dial.expand(&number),
            hold,
            originate_timeout_sec: dialler.plan.originate_timeout_sec,
            caller_id_number: dialler.plan.caller_id_number.clone(),
            tag: dialler.tag.clone(),
        };
        dialler.record_placed(switch, now);
        let (sw, calls, stats, stop) = (
            switches[switch].clone(),
            calls.clone(),
            stats.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            call::run(call_plan, sw, calls, stats, stop).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    };
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "a call task failed");
        }
    }
    let mut snapshot = stats.snapshot();
    let swept = stopped_by == StoppedBy::Signal || snapshot.unconfirmed > 0;
    if swept {
        for s in &switches {
            s.hang_up_all(&tag).await;
        }
    }
    live_done.cancel();
    if let Some(task) = live {
        let _ = task.await;
    }
    let cpu = process_cpu().saturating_sub(cpu_start);
    stats.tick(Instant::now());
    snapshot = stats.snapshot();
    let mut switch_reports = Vec::new();
    for (i, s) in switches.iter().enumerate() {
        switch_reports.push(report::SwitchReport {
            addr: s.addr.clone(),
            sessions_per_second: s.limits.map(|l| l.sessions_per_second),
            max_sessions: s.limits.map(|l| l.max_sessions),
            placed: dialler.placed_on[i],
            status_before: status_before[i].clone(),
            status_after: s.status().await,
        });
    }
    for s in switches {
        if let Ok(s) = Arc::try_unwrap(s) {
            s.close().await;
        }
    }
    let (achieved_rate, placing_secs) = dialler.achieved_rate();
    let placed = snapshot.placed;
    let report = Report {
        tag,
        started_at,
        ended_at: chrono::Utc::now(),
        stopped_by,
        asked_rate: dialler.plan.rate,
        paced_rate,
        sessions_per_call: dialler.plan.sessions_per_call,
        achieved_rate,
        most_placed_in_a_second: snapshot.seconds.iter().map(|s| s.placed).max().unwrap_or(0),
        limit: dialler.plan.limit,
        placing_secs,
        calls: snapshot,
        switches: switch_reports,
        cpu: report::CpuUse {
            total_ms: cpu.as_secs_f64() * 1000.0,
            per_call_us: if placed > 0 {
                cpu.as_secs_f64() * 1e6 / placed as f64
            } else {
                0.0
            },
        },
        swept_with_hupall: swept,
    };
    if let Some(path) = &dialler.plan.report {
        report.write_json(path)?;
    }
    Ok(report)
}
