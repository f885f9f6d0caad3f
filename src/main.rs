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
    /// FreeSWITCH Event Socket tools.
    Esl {
        #[command(subcommand)]
        command: EslCommand,
    },
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Member store: `memory://` or `redis://host:port`.
    #[arg(long, default_value = "memory://")]
    store: String,
    /// An external switch's event socket (a real FreeSWITCH, or `fsdialer sim`), instead of the in-process one.
    #[arg(long)]
    esl: Option<String>,
    /// Its ESL password.
    #[arg(long, default_value = "ClueCon")]
    password: String,
    /// Simulated seconds per real second (the engine runs at the same speed).
    #[arg(long, default_value_t = 100.0)]
    speed: f64,
    /// The campaign file.
    #[arg(long)]
    campaign: Option<PathBuf>,
    /// The members file (a JSON array).
    #[arg(long)]
    members: Option<PathBuf>,
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

fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let mut opts = fsdialer::engine::demo::DemoOptions {
        store: args.store,
        esl: args.esl.map(|addr| (addr, args.password)),
        speed: args.speed,
        ..Default::default()
    };
    if let Some(c) = args.campaign {
        opts.campaign = c;
    }
    if let Some(m) = args.members {
        opts.members = m;
    }
    let rt = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    let report = rt.block_on(fsdialer::engine::demo::run(
        opts,
        fsdialer::engine::default_callflow(),
    ))?;
    println!("{}", report.table());
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo draws a progress line: per-attempt logs only when asked for with RUST_LOG.
    init_logging(match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    });
    let result = match cli.command {
        Command::Sim(args) => sim(args),
        Command::Demo(args) => demo(args),
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
