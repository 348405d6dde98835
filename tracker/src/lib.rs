//! peerhost-tracker: a WebTorrent-compatible WebSocket signalling tracker
//! that also stores and pushes signed peerhost manifests.
//!
//! The dialect is [`peerhost_core::signal`]. The shape follows aquatic_ws:
//! a socket holder ([`server`]) around one pure state machine ([`hub`]),
//! which composes the swarm rules ([`swarm`]) and the manifest store
//! ([`manifests`]) and answers into an [`outbox`]. Every limit is in
//! [`config`], every refusal counted in [`metrics`].
//! See `docs/tracker.md` for decisions, the configuration reference and
//! benchmark figures.
//!
//! Embedding: `peerhost tracker` is [`cli::run`]; tests and other programs
//! build an [`server::AppState`] and call [`server::serve`].

pub mod config;
pub mod hub;
pub mod ice;
pub mod manifests;
pub mod metrics;
pub mod outbox;
mod read_clock;
pub mod server;
pub mod stun;
pub mod swarm;

pub use server::{AppState, app, serve};

/// The `peerhost tracker` command.
pub mod cli {
    use std::net::SocketAddr;
    use std::path::PathBuf;

    use anyhow::Context as _;

    use crate::config::Config;
    use crate::server::{AppState, serve};

    /// Arguments of `peerhost tracker`.
    #[derive(clap::Args, Debug, Clone, Default)]
    pub struct TrackerArgs {
        /// Address to listen on, e.g. 127.0.0.1:8000 (overrides `listen` in the config).
        #[arg(long, env = "PEERHOST_TRACKER_LISTEN")]
        pub listen: Option<SocketAddr>,
        /// TOML configuration file (see `--print-config`).
        #[arg(long, env = "PEERHOST_TRACKER_CONFIG")]
        pub config: Option<PathBuf>,
        /// Override one setting, `section.field=value` (TOML value); repeatable.
        /// The env variable takes a comma-separated list.
        #[arg(
            long = "set",
            value_name = "KEY=VALUE",
            env = "PEERHOST_TRACKER_SET",
            value_delimiter = ','
        )]
        pub set: Vec<String>,
        /// Answer STUN Binding requests on this UDP address, e.g.
        /// 0.0.0.0:3478 (overrides `stun.listen`; off by default).
        #[arg(long, value_name = "ADDR", env = "PEERHOST_TRACKER_STUN")]
        pub stun: Option<SocketAddr>,
        /// Print the effective configuration as TOML and exit.
        #[arg(long)]
        pub print_config: bool,
    }

    impl TrackerArgs {
        /// The configuration these arguments describe.
        pub fn load_config(&self) -> anyhow::Result<Config> {
            let mut cfg = Config::load(self.config.as_deref(), &self.set)?;
            if let Some(l) = self.listen {
                cfg.listen = l;
            }
            if let Some(s) = self.stun {
                cfg.stun.listen = Some(s);
            }
            Ok(cfg)
        }
    }

    /// Runs the tracker until SIGINT or SIGTERM, then closes connections
    /// gracefully. Prints `peerhost tracker listening on ws://ADDR` on
    /// stdout once bound (the bench waits for that line).
    pub async fn run(args: TrackerArgs) -> anyhow::Result<()> {
        let cfg = args.load_config()?;
        if args.print_config {
            print!("{}", cfg.to_toml());
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("binding {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        println!("peerhost tracker listening on ws://{addr}");
        tracing::info!(%addr, "tracker listening");
        let stun = match cfg.stun.listen {
            Some(at) => Some(
                tokio::net::UdpSocket::bind(at)
                    .await
                    .with_context(|| format!("binding STUN on {at}"))?,
            ),
            None => None,
        };
        let state = AppState::new(cfg);
        if let Some(socket) = stun {
            let at = socket.local_addr()?;
            println!("peerhost tracker answering STUN on udp://{at}");
            tracing::info!(%at, "STUN responder listening");
            tokio::spawn(crate::stun::serve_stun(socket, state.clone()));
        }
        serve(listener, state, shutdown_signal()).await?;
        tracing::info!("tracker stopped");
        Ok(())
    }

    /// Resolves on SIGINT or SIGTERM.
    pub async fn shutdown_signal() {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {}
            () = term => {}
        }
    }
}
