//! `fsdialer load`: the command line of the load generator. The binary's clap `Command` enum wraps [`LoadArgs`]
//! and calls [`run`], which turns the arguments into a [`LoadPlan`], stops placing on the first Ctrl-C or SIGTERM
//! (a second one exits at once), prints the report and writes `--report`.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::numbers::DialTemplate;
use super::options::{HoldTime, LoadPlan, StopAfter, SwitchAddr, parse_duration};
use super::{LoadError, Report};

/// `{n}` as clap's help shows it: clap replaces every literal `{n}` in help text with a line break, so the
/// braces are kept apart by an SGR reset, which has no visible effect and is dropped when the help is not
/// written to a terminal.
macro_rules! placeholder_help {
    () => {
        "`{\x1b[0mn}`"
    };
}

const DIAL_STRING_HELP: &str = concat!(
    "What to call: a FreeSWITCH dial string where ",
    placeholder_help!(),
    " is each call's sequence number (from 1) or, with --numbers, the next line of the file."
);

const NUMBERS_HELP: &str = concat!(
    "A file of numbers, one a line, taken in turn for ",
    placeholder_help!(),
    " (blank lines and `#` comments skipped; starts again at the first line after the last)."
);

/// Arguments of `fsdialer load`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("stop").required(true).args(["calls", "duration"])))]
pub struct LoadArgs {
    /// A switch's event socket `HOST:PORT` (a real FreeSWITCH, or `fsdialer sim`); repeat for several switches
    /// (calls go round the switches in turn).
    #[arg(long = "esl", required = true, value_name = "HOST:PORT")]
    pub esl: Vec<String>,
    /// The switches' ESL password.
    #[arg(long, default_value = "ClueCon")]
    pub password: String,
    // What to call (the help is a constant: clap turns a literal `{n}` in help text into a line break).
    #[arg(long, value_name = "DIAL_STRING", help = DIAL_STRING_HELP)]
    pub dial_string: String,
    /// Calls per second: never more than this many in any whole second.
    #[arg(long)]
    pub rate: f64,
    /// At most this many calls up at once.
    #[arg(long)]
    pub limit: u32,
    /// Place this many calls.
    #[arg(long)]
    pub calls: Option<u64>,
    /// Place calls for this long: seconds, or with a unit (`90s`, `15m`, `1h`).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Rise linearly from 0 to --rate over this long (seconds or with a unit).
    #[arg(long, value_name = "DURATION", default_value = "0")]
    pub ramp_up: String,
    /// Hold each answered call this many seconds, then hang it up (unless the far end did first).
    #[arg(
        long,
        value_name = "SEC",
        conflicts_with = "hold_dist",
        default_value = "30"
    )]
    pub hold: String,
    /// Hold times drawn per call: `lognormal:MEDIAN_SEC,SIGMA` (e.g. `lognormal:60,0.8`).
    #[arg(long, value_name = "DIST")]
    pub hold_dist: Option<String>,
    // A file of numbers for `{n}` (help as a constant, as for --dial-string).
    #[arg(long, value_name = "FILE", help = NUMBERS_HELP)]
    pub numbers: Option<PathBuf>,
    /// Write the final report as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Sessions each call takes on the switch [default: 2 for a `loopback/` dial string (its -a and -b leg), 1
    /// otherwise]: the switches' sessions-per-second and max-sessions are respected in sessions.
    #[arg(long, value_name = "N")]
    pub sessions_per_call: Option<u32>,
    /// Place calls above the switches' own `sessions-per-second` (they will refuse some).
    #[arg(long)]
    pub force: bool,
    /// The switch is `fsdialer sim --speed F`: hold times and its sessions-per-second are in its time.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// `originate_timeout` of each call, seconds.
    #[arg(long, value_name = "SEC", default_value_t = 60)]
    pub originate_timeout: u32,
    /// Caller ID number of the calls.
    #[arg(long, value_name = "NUMBER")]
    pub caller_id: Option<String>,
    /// No live view (the report only).
    #[arg(long)]
    pub quiet: bool,
}

impl LoadArgs {
    /// The checked plan.
    pub fn plan(&self) -> Result<LoadPlan, LoadError> {
        let stop = match (self.calls, &self.duration) {
            (Some(n), None) => StopAfter::Calls(n),
            (None, Some(d)) => StopAfter::Duration(parse_duration("--duration", d)?),
            _ => {
                return Err(LoadError::Option {
                    option: "--calls",
                    why: "give either --calls N or --duration D".into(),
                });
            }
        };
        let hold = match &self.hold_dist {
            Some(dist) => HoldTime::parse_dist(dist)?,
            None => HoldTime::Fixed(parse_duration("--hold", &self.hold)?),
        };
        let dial = DialTemplate::parse(&self.dial_string)?;
        let plan = LoadPlan {
            switches: self
                .esl
                .iter()
                .map(|a| SwitchAddr::parse(a))
                .collect::<Result<_, _>>()?,
            password: self.password.clone(),
            sessions_per_call: self
                .sessions_per_call
                .unwrap_or_else(|| dial.sessions_per_call()),
            dial,
            numbers: self.numbers.clone(),
            rate: self.rate,
            limit: self.limit,
            stop,
            ramp_up: parse_duration("--ramp-up", &self.ramp_up)?,
            hold,
            originate_timeout_sec: self.originate_timeout,
            caller_id_number: self.caller_id.clone(),
            force: self.force,
            speed: self.speed,
            report: self.report.clone(),
            live: !self.quiet,
        };
        plan.validate()?;
        Ok(plan)
    }
}

/// Stops the run on the first Ctrl-C or SIGTERM; exits at once (status 130) on a second.
fn watch_signals(stop: CancellationToken) -> Result<(), LoadError> {
    use tokio::signal::unix::{SignalKind, signal};
    let signal_error = |e: std::io::Error| LoadError::Option {
        option: "signals",
        why: format!("cannot watch SIGTERM: {e}"),
    };
    let mut term = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut int = signal(SignalKind::interrupt()).map_err(signal_error)?;
    tokio::spawn(async move {
        for n in 0.. {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if n > 0 {
                eprintln!("fsdialer load: second signal, exiting without hanging up");
                std::process::exit(130);
            }
            eprintln!(
                "fsdialer load: stopping: no new calls; hanging up the calls placed (again to exit at once)"
            );
            stop.cancel();
        }
    });
    Ok(())
}

/// Runs `fsdialer load` and prints the report.
pub async fn run(args: LoadArgs) -> Result<Report, LoadError> {
    let plan = args.plan()?;
    let stop = CancellationToken::new();
    watch_signals(stop.clone())?;
    let report = super::run(plan, stop).await?;
    print!("{}", report.text());
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn plan_of(extra: &[&str]) -> Result<LoadPlan, LoadError> {
        let mut args = vec!["load", "--esl", "127.0.0.1:8021", "--rate", "5"];
        args.extend(["--limit", "5", "--calls", "5"]);
        args.extend(extra);
        Cli::try_parse_from(args).unwrap().load.plan()
    }

    #[test]
    fn sessions_per_call_follow_the_dial_string_unless_given() {
        let loopback = ["--dial-string", "loopback/{n}/default"];
        assert_eq!(plan_of(&loopback).unwrap().sessions_per_call, 2);
        let sofia = ["--dial-string", "sofia/gateway/gw1/{n}"];
        assert_eq!(plan_of(&sofia).unwrap().sessions_per_call, 1);
        let given = [&loopback[..], &["--sessions-per-call", "1"]].concat();
        assert_eq!(plan_of(&given).unwrap().sessions_per_call, 1);
        let zero = [&sofia[..], &["--sessions-per-call", "0"]].concat();
        let e = plan_of(&zero).unwrap_err().to_string();
        assert!(e.contains("--sessions-per-call"), "{e}");
    }

    #[test]
    fn the_help_shows_the_placeholder_literally() {
        let help = <Cli as clap::CommandFactory>::command()
            .render_help()
            .to_string();
        assert!(
            help.contains("dial string where `{n}` is each call's sequence number"),
            "{help}"
        );
        assert!(
            help.contains("taken in turn for `{n}` (blank lines"),
            "{help}"
        );
    }
}
