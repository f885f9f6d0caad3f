//! The `fsdialer pacing-sim` command: reads a profile, runs every policy on each seed, prints a line per seed and
//! policy (or one JSON object per line with `--json`) and a summary per policy.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::{Profile, ShiftResult, simulate};
use crate::agents::pacer::PacingPolicy;

#[derive(Debug, Clone, clap::Args)]
pub struct PacingSimArgs {
    /// The traffic profile (TOML; see fixtures/pacing/).
    #[arg(long, value_name = "FILE")]
    pub profile: PathBuf,
    /// How many seeds (shifts per policy), numbered from --first-seed.
    #[arg(long, default_value_t = 10)]
    pub seeds: u64,
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// One JSON object per line and policy and seed (no summary).
    #[arg(long)]
    pub json: bool,
    /// Only these policies (comma-separated: fsdialer, webitel, vicidial, progressive). Default: all.
    #[arg(long, value_delimiter = ',')]
    pub policies: Vec<String>,
    /// Shifts simulated at once, on as many threads (default: the machine's cores). The output is the same
    /// whatever the number: every shift is seeded on its own and printed in seed and policy order.
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// Why the simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum PacingSimError {
    #[error("{path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: {error}")]
    Profile {
        path: String,
        error: super::ProfileError,
    },
    #[error("--policies: unknown policy {0:?} (fsdialer, webitel, vicidial, progressive)")]
    Policy(String),
    #[error("--seeds must be at least 1")]
    NoSeeds,
    #[error("{0}")]
    Campaign(String),
    #[error("writing the output: {0}")]
    Output(std::io::Error),
}

/// Runs the command, writing to `out`.
pub fn run(args: &PacingSimArgs, out: &mut impl Write) -> Result<(), PacingSimError> {
    let path = args.profile.display().to_string();
    let text = std::fs::read_to_string(&args.profile).map_err(|error| PacingSimError::Read {
        path: path.clone(),
        error,
    })?;
    let profile = Profile::from_toml_str(&text).map_err(|error| PacingSimError::Profile {
        path: path.clone(),
        error,
    })?;
    if args.seeds == 0 {
        return Err(PacingSimError::NoSeeds);
    }
    let policies: Vec<PacingPolicy> = if args.policies.is_empty() {
        PacingPolicy::ALL.to_vec()
    } else {
        args.policies
            .iter()
            .map(|name| {
                PacingPolicy::ALL
                    .into_iter()
                    .find(|p| p.as_str() == name)
                    .ok_or_else(|| PacingSimError::Policy(name.clone()))
            })
            .collect::<Result<_, _>>()?
    };
    let shifts: Vec<(u64, PacingPolicy)> = (args.first_seed
        ..args.first_seed.saturating_add(args.seeds))
        .flat_map(|seed| policies.iter().map(move |&p| (seed, p)))
        .collect();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, shifts.len().max(1));
    let started = Instant::now();
    let results = simulate_all(&profile, &shifts, jobs)?;
    for r in &results {
        if args.json {
            let line = serde_json::to_string(r).unwrap_or_default();
            writeln!(out, "{line}").map_err(PacingSimError::Output)?;
        } else {
            let m = &r.metrics;
            writeln!(
                out,
                "seed {:>4} {:<12} abandon {:>5.2} %  talk {:>5.1} min/agent-h  occupancy {:>5.1} %  calls {:>6}  live {:>6}  wait p50 {:>5.0} ms p99 {:>5.0} ms",
                r.seed,
                r.policy,
                m.abandon_pct,
                m.talk_min_per_agent_hour,
                m.occupancy * 100.0,
                m.calls,
                m.live_answers,
                m.wait_p50_ms,
                m.wait_p99_ms
            )
            .map_err(PacingSimError::Output)?;
        }
    }
    let shifts = shifts.len();
    if !args.json {
        let elapsed = started.elapsed().as_secs_f64();
        writeln!(
            out,
            "\nsummary over {} seeds of {} h with {} agents:",
            args.seeds, profile.shift_hours, profile.agents
        )
        .map_err(PacingSimError::Output)?;
        for policy in &policies {
            let mine: Vec<&ShiftResult> = results
                .iter()
                .filter(|r| r.policy == policy.as_str())
                .collect();
            let n = mine.len() as f64;
            let mean = |f: &dyn Fn(&ShiftResult) -> f64| mine.iter().map(|r| f(r)).sum::<f64>() / n;
            let worst = mine
                .iter()
                .map(|r| r.metrics.abandon_pct)
                .fold(0.0, f64::max);
            let over = mine.iter().filter(|r| r.metrics.abandon_pct > 3.0).count();
            writeln!(
                out,
                "{:<12} abandon mean {:>5.2} % max {:>5.2} % (seeds over 3 %: {over})  talk {:>5.1} min/agent-h  occupancy {:>5.1} %  wait p99 mean {:>5.0} ms",
                policy.as_str(),
                mean(&|r| r.metrics.abandon_pct),
                worst,
                mean(&|r| r.metrics.talk_min_per_agent_hour),
                mean(&|r| r.metrics.occupancy * 100.0),
                mean(&|r| r.metrics.wait_p99_ms),
            )
            .map_err(PacingSimError::Output)?;
        }
        writeln!(
            out,
            "{shifts} shifts in {elapsed:.1} s on {jobs} threads ({:.3} s of a thread per shift)",
            elapsed * jobs as f64 / shifts.max(1) as f64
        )
        .map_err(PacingSimError::Output)?;
    }
    Ok(())
}

/// Simulates every (seed, policy) shift on `jobs` threads, each taking the next shift not yet taken; the results
/// come back in the order of `shifts`.
fn simulate_all(
    profile: &Profile,
    shifts: &[(u64, PacingPolicy)],
    jobs: usize,
) -> Result<Vec<ShiftResult>, PacingSimError> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Result<ShiftResult, String>>>> =
        Mutex::new(shifts.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(seed, policy)) = shifts.get(i) else {
                        break;
                    };
                    let r = simulate(profile, seed, policy);
                    done.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                }
            });
        }
    });
    done.into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| Err("a shift was not simulated".into()))
                .map_err(PacingSimError::Campaign)
        })
        .collect()
}
