//! `fsdialer sim --listen 127.0.0.1:8021 --password ClueCon [--scenario FILE] [--speed F] [--heartbeat-sec N]`: runs the simulated
//! switch until Ctrl-C. The binary's clap `Commands` enum wraps [`SimArgs`] and calls [`run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::sim::model::Config;
use crate::sim::server::{self, ServerConfig, ServerError};

/// Arguments of `fsdialer sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on for ESL clients.
    #[arg(long, default_value = "127.0.0.1:8021")]
    pub listen: SocketAddr,
    /// ESL password (`auth <password>`).
    #[arg(long, default_value = "ClueCon")]
    pub password: String,
    /// TOML scenario file (without it: the built-in dialplan of the captures).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Simulated seconds per real second (100 runs a day of calls in about 15 minutes).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// `max_sessions` of the simulated switch.
    #[arg(long, default_value_t = 1000)]
    pub max_sessions: u32,
    /// `sessions_per_second` of the simulated switch (29 get through per second at the default 30).
    #[arg(long, default_value_t = 30)]
    pub sessions_per_second: u32,
    /// Simulated seconds between HEARTBEAT events (FreeSWITCH's `event-heartbeat-interval`); 0 = none.
    #[arg(long, default_value_t = 20)]
    pub heartbeat_sec: u64,
}

/// Starts the server and waits for Ctrl-C.
pub async fn run(args: SimArgs) -> Result<(), ServerError> {
    let cfg = ServerConfig {
        listen: args.listen,
        password: args.password,
        switch: Config {
            max_sessions: args.max_sessions,
            sessions_per_second: args.sessions_per_second,
            ..Config::default()
        },
        scenario: args.scenario,
        speed: args.speed,
        heartbeat: (args.heartbeat_sec > 0).then(|| Duration::from_secs(args.heartbeat_sec)),
    };
    let handle = server::start(cfg).await?;
    println!("fsdialer sim listening on {}", handle.local_addr());
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
    Ok(())
}
