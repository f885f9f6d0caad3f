//! The `fsdialer` command line: a thin shell over the library (argument parsing, logging set-up, exit codes).

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "fsdialer",
    version,
    about = "Outbound auto-dialer engine for FreeSWITCH"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sample campaign end to end with nothing installed: memory queue, in-process simulated switch.
    Demo(DemoArgs),
    /// Run the simulated FreeSWITCH (an ESL server with a faithful call model).
    Sim(fsdialer::sim::cli::SimArgs),
    /// Load-test FreeSWITCH: place calls at an exact rate and concurrency, hold them, report what the switch did.
    Load(fsdialer::load::cli::LoadArgs),
    /// Simulate whole shifts of a predictive campaign on virtual time in the engine's own core, with fsdialer's
    /// pacer and the baselines (Webitel, ViciDial, progressive) on the same seeds.
    PacingSim(fsdialer::engine::pacing_sim::cli::PacingSimArgs),
    /// Serve the REST API with the engine: production from a configuration file, or the embedded default.
    Run(RunArgs),
    /// Import members from a CSV file straight into the store (SPEC §9).
    Import(ImportArgs),
    /// FreeSWITCH Event Socket tools.
    Esl {
        #[command(subcommand)]
        command: EslCommand,
    },
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Member store: `memory://`, `redis://host:port`, `redis+sentinel://host:port,host:port/mastername` or
    /// `redis+cluster://host:port,host:port`.
    #[arg(long, default_value = "memory://")]
    store: String,
    /// An external switch's event socket `HOST:PORT` (a real FreeSWITCH, or `fsdialer sim`), instead of the
    /// in-process one. Runs in real time (speed 1) unless --speed is given; its session limits are read from it.
    #[arg(long)]
    esl: Option<String>,
    /// Its ESL password.
    #[arg(long, default_value = "ClueCon")]
    password: String,
    /// Simulated seconds per real second (the engine runs at the same speed). Default: 100 with the in-process
    /// simulator, 1 (real time) with --esl; give it with --esl only for an `fsdialer sim` at the same speed.
    #[arg(long)]
    speed: Option<f64>,
    /// Give up after this many real seconds. Default: scaled with the work (members × max_tries × (originate
    /// timeout + 60 s talk) / limit, plus the waits between tries, over the speed, doubled; 60 s to 24 h).
    #[arg(long, value_name = "SEC")]
    timeout: Option<u64>,
    /// The campaign file (TOML, SPEC §2). Default: fixtures/campaigns/demo.toml.
    #[arg(long)]
    campaign: Option<PathBuf>,
    /// The members file: a JSON array of members (`name`, `priority`, `variables`, `communications` of
    /// `{number, priority}`, optional `external_id`, `timezone`). Default:
    /// fixtures/demo/members.json (1,000 members). For a real switch, fixtures/demo/members-small.json: 15
    /// members whose numbers ../shared/real-freeswitch/dialplan-demo.xml routes.
    #[arg(long, value_name = "FILE")]
    members: Option<PathBuf>,
    /// Dialling mode: `broadcast` (the campaign's callflow), or `progressive` / `preview` / `predictive` to join
    /// answered calls to 10 simulated agents (preview: a simulated desk accepts every member shown; predictive:
    /// more calls than free agents, as the pacer predicts); the agent modes default to
    /// fixtures/demo/members-agents.json (200 members), fixtures/sim/demo-agents.toml (predictive:
    /// demo-predictive.toml, whose agent phones auto-answer) and speed 30. Default: the campaign's own mode.
    #[arg(long, value_parser = ["broadcast", "preview", "progressive", "predictive"])]
    mode: Option<String>,
    /// Answering-machine detection on (mod_amd on the simulated switch, whose `silent_*` callees are answering
    /// machines; they get a voicemail message after the beep): the table splits answers by AMD result.
    #[arg(long)]
    amd: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The configuration file (TOML). Without it: memory store, in-process simulated switch, API on
    /// 127.0.0.1:8080, admin key from FSDIALER_API_KEY + FSDIALER_API_TOKEN or generated and printed.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The campaign to add the members to (it must exist in the store).
    #[arg(long)]
    campaign: String,
    /// Member store: `redis://host:port`, `rediss://host:port` (TLS), `redis+sentinel://host:port,host:port/name`,
    /// `redis+cluster://host:port,host:port`, or `memory://` (only useful for checking a file).
    #[arg(long, conflicts_with = "config")]
    store: Option<String>,
    /// With a `rediss://` --store: trust only the CA(s) of this PEM file (a private CA) instead of the system's.
    #[arg(long, requires = "store")]
    store_ca_file: Option<PathBuf>,
    /// Take the store URL from this `fsdialer run` configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// `,`, `;` or `tab`; detected when absent.
    #[arg(long)]
    delimiter: Option<String>,
    /// `utf-8` or `windows-1251`; detected when absent.
    #[arg(long)]
    encoding: Option<String>,
    /// Import nothing unless every row is valid.
    #[arg(long)]
    all_or_nothing: bool,
    /// The CSV file.
    file: PathBuf,
}

#[derive(Subcommand)]
enum EslCommand {
    /// Parse a raw ESL byte stream (a capture of what FreeSWITCH sent) and print each frame as one JSON line.
    Parse {
        /// Output format.
        #[arg(long, value_enum, default_value_t = DumpFormat::Json)]
        format: DumpFormat,
        /// Largest frame accepted, in bytes.
        #[arg(long, default_value_t = fsdialer::esl::frame::DEFAULT_MAX_FRAME)]
        max_frame: usize,
        /// The capture file, or `-` for standard input.
        input: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DumpFormat {
    /// One JSON object per frame.
    Json,
}

fn init_logging(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
}

fn esl_parse(input: PathBuf, max_frame: usize) -> anyhow::Result<ExitCode> {
    let limits = fsdialer::esl::Limits { max_frame };
    let stdout = std::io::stdout().lock();
    let out = std::io::BufWriter::new(stdout);
    let summary = if input.as_os_str() == "-" {
        fsdialer::esl::dump::dump(std::io::stdin().lock(), out, &limits)?
    } else {
        let file = std::fs::File::open(&input)
            .with_context(|| format!("cannot open {}", input.display()))?;
        fsdialer::esl::dump::dump(std::io::BufReader::new(file), out, &limits)?
    };
    tracing::info!(
        frames = summary.frames,
        errors = summary.errors,
        bytes = summary.bytes,
        "parsed"
    );
    Ok(if summary.all_parsed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn sim(args: fsdialer::sim::cli::SimArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    rt.block_on(fsdialer::sim::cli::run(args))?;
    Ok(ExitCode::SUCCESS)
}

fn load(args: fsdialer::load::cli::LoadArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    rt.block_on(fsdialer::load::cli::run(args))?;
    Ok(ExitCode::SUCCESS)
}

fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    use fsdialer::engine::demo;
    if args.timeout == Some(0) {
        anyhow::bail!("--timeout must be at least 1 second");
    }
    let mode: Option<fsdialer::campaign::agents::DialMode> = match &args.mode {
        Some(m) => {
            Some(serde_json::from_value(serde_json::Value::String(m.clone())).context("--mode")?)
        }
        None => None,
    };
    let agents = mode.is_some_and(|m| m.uses_agents());
    // Agent calls pass more round trips per call (reserve, the agent's leg, the join): a slower default speed
    // keeps the engine's real milliseconds from becoming seconds of a waiting callee's patience.
    // So does AMD (the detector, beep detection, the voicemail drop): the same slower default.
    let asked = match (args.speed, (agents || args.amd) && args.esl.is_none()) {
        (None, true) => Some(demo::agents::AGENT_SIM_SPEED),
        (asked, _) => asked,
    };
    let choice = demo::choose_speed(args.esl.is_some(), asked)?;
    if choice.real_time {
        eprintln!("fsdialer: {}", demo::REAL_TIME_NOTE);
    }
    let mut opts = demo::DemoOptions {
        store: args.store,
        esl: args.esl.map(|addr| (addr, args.password)),
        speed: choice.speed,
        timeout: args.timeout.map(std::time::Duration::from_secs),
        ..Default::default()
    };
    if let Some(c) = args.campaign {
        opts.campaign = c;
    }
    let members_given = args.members.is_some();
    if let Some(m) = args.members {
        opts.members = m;
    }
    opts.mode = mode;
    if agents {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        // Predictive dialing joins an answered member to an agent within 2 s: its agents' phones auto-answer.
        let scenario = if mode == Some(fsdialer::campaign::agents::DialMode::Predictive) {
            "fixtures/sim/demo-predictive.toml"
        } else {
            "fixtures/sim/demo-agents.toml"
        };
        opts.scenario = Some(root.join(scenario));
        if !members_given {
            opts.members = root.join("fixtures/demo/members-agents.json");
        }
    }
    opts.amd = args.amd;
    if args.amd && !agents {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        opts.scenario = Some(root.join(demo::amd::DEMO_AMD_SCENARIO));
    }
    let rt = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    let report = rt.block_on(fsdialer::engine::demo::run(
        opts,
        fsdialer::engine::default_callflow(),
    ))?;
    println!("{}", report.table());
    Ok(ExitCode::SUCCESS)
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (cfg, generate) = match &args.config {
        Some(path) => (fsdialer::run::config::RunConfig::from_file(path)?, false),
        None => (fsdialer::run::config::RunConfig::embedded(), true),
    };
    let rt = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    rt.block_on(async {
        let running = fsdialer::run::start(cfg, |k| std::env::var(k).ok(), generate).await?;
        print!("{}", running.banner());
        use fsdialer::run::Exit;
        Ok(match running.wait().await {
            Exit::Drained => ExitCode::SUCCESS,
            Exit::LeftCalls(n) => {
                eprintln!("fsdialer: {n} calls left up for the next start to adopt");
                ExitCode::SUCCESS
            }
            Exit::EngineFailed(why) => {
                eprintln!("fsdialer: the engine failed: {why}");
                ExitCode::from(70)
            }
            Exit::ServerFailed(why) => {
                eprintln!("fsdialer: the API server failed: {why}");
                ExitCode::from(71)
            }
        })
    })
}

fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    use fsdialer::api::import::{self, Phase, detect};
    let (store_url, store_tls) = match (&args.store, &args.config) {
        (Some(s), _) => (
            s.clone(),
            fsdialer::store::StoreTls {
                ca_file: args.store_ca_file.clone(),
            },
        ),
        (None, Some(path)) => {
            let cfg = fsdialer::run::config::RunConfig::from_file(path)?;
            let tls = cfg.store_tls();
            (cfg.store, tls)
        }
        (None, None) => anyhow::bail!("give --store redis://host:port or --config FILE"),
    };
    let format = import::rows::Format {
        delimiter: detect::parse_delimiter(args.delimiter.as_deref().unwrap_or(""))
            .map_err(|e| anyhow::anyhow!("--delimiter: {e}"))?,
        encoding: detect::Encoding::parse(args.encoding.as_deref().unwrap_or(""))
            .map_err(|e| anyhow::anyhow!("--encoding: {e}"))?,
    };
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?
        .len();
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let progress_bar = bar.clone();
    let progress: import::Progress = std::sync::Arc::new(move |phase, bytes, _rows| {
        progress_bar.set_message(match phase {
            Phase::Validating => "validating",
            Phase::Importing => "importing",
        });
        progress_bar.set_position(bytes);
    });
    let rt = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    let result = rt.block_on(async {
        let store = fsdialer::store::Store::open_with(
            &store_url,
            &store_tls,
            fsdialer::store::AttemptIds::Random,
        )
        .await?;
        if store.campaign_doc(&args.campaign).await?.is_none() {
            anyhow::bail!(
                "campaign {:?} is not known to the store at {}; create it first (POST /api/v2/dialer or [[campaigns]] in the configuration file)",
                args.campaign,
                fsdialer::logging::redact_url(&store_url)
            );
        }
        let opts = import::ImportOptions {
            format,
            all_or_nothing: args.all_or_nothing,
            limits: fsdialer::campaign::member::MemberLimits::default(),
        };
        let now = chrono::Utc::now();
        Ok(import::import_file(&store, &args.campaign, &args.file, opts, now, Some(progress)).await)
    })?;
    bar.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(import::ImportError::Rejected(r)) => {
            for e in &r.errors {
                eprintln!("{}: {e}", args.file.display());
            }
            eprintln!(
                "{} of {} rows are invalid; nothing was imported (--all-or-nothing)",
                r.rejected, r.rows
            );
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    for e in &report.errors {
        eprintln!("{}: {e}", args.file.display());
    }
    if report.errors_truncated {
        eprintln!("… {} rows refused in all", report.rejected);
    }
    println!(
        "{} rows: {} added, {} updated, {} in a call (unchanged), {} refused ({}, {})",
        report.rows,
        report.added,
        report.updated,
        report.in_call,
        report.rejected,
        report.encoding,
        match report.delimiter.as_str() {
            "tab" => "tab-separated".to_string(),
            d => format!("'{d}'-separated"),
        }
    );
    Ok(if report.rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo draws a progress line: per-attempt logs only when asked for with RUST_LOG.
    init_logging(match cli.command {
        Command::Demo(_) | Command::Import(_) | Command::Load(_) | Command::PacingSim(_) => "warn",
        _ => "info",
    });
    let result = match cli.command {
        Command::Sim(args) => sim(args),
        Command::Load(args) => load(args),
        Command::PacingSim(args) => {
            fsdialer::engine::pacing_sim::cli::run(&args, &mut std::io::stdout().lock())
                .map(|()| ExitCode::SUCCESS)
                .map_err(anyhow::Error::from)
        }
        Command::Demo(args) => demo(args),
        Command::Run(args) => run(args),
        Command::Import(args) => import(args),
        Command::Esl {
            command:
                EslCommand::Parse {
                    format: DumpFormat::Json,
                    max_frame,
                    input,
                },
        } => esl_parse(input, max_frame),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fsdialer: {e:#}");
            ExitCode::from(2)
        }
    }
}
