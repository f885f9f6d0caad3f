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
    /// Run the simulated FreeSWITCH (an ESL server with a faithful call model).
    Sim(fsdialer::sim::cli::SimArgs),
    /// FreeSWITCH Event Socket tools.
    Esl {
        #[command(subcommand)]
        command: EslCommand,
    },
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

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
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

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(args) => sim(args),
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
