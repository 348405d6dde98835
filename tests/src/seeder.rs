//! A native seeder (`peerhost seed --site DIR`) of the published demo site,
//! on its own runtime, for browser tests. Its arguments are parsed as the
//! CLI parses them, so every default comes from `SeedArgs` itself.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use peerhost_seeder::{SeedArgs, Seeder, SiteStatus};

/// A running seeder and the runtime it runs on.
pub struct DemoSeeder {
    rt: tokio::runtime::Runtime,
    seeder: Seeder,
}

impl DemoSeeder {
    /// Seeds `site_dir` under the demo's key, announcing to `tracker`, with
    /// WebRTC on `udp_addr`; returns once it holds the site and reached the
    /// tracker (panics after 20 s).
    pub fn start(site_dir: &Path, tracker: &str, udp_addr: &str) -> DemoSeeder {
        #[derive(Parser)]
        struct Cmd {
            #[command(flatten)]
            seed: SeedArgs,
        }
        let key = peerhost_site::demo::demo_site_key().to_string();
        let site = site_dir.to_string_lossy();
        let argv = [
            "seed",
            "--site",
            &site,
            "--site-key",
            &key,
            "--tracker",
            tracker,
            "--udp-addr",
            udp_addr,
        ];
        let args = Cmd::try_parse_from(argv).expect("valid arguments").seed;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let seeder = rt.block_on(Seeder::start(&args)).expect("seeder starts");
        let s = DemoSeeder { rt, seeder };
        assert!(s.status().complete, "the seeder holds the site");
        let joined = Instant::now();
        while !s.status().tracker_connected {
            assert!(
                joined.elapsed() < Duration::from_secs(20),
                "the seeder did not reach the tracker"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// The status of its one site.
    pub fn status(&self) -> SiteStatus {
        self.seeder.status().into_iter().next().expect("one site")
    }

    /// Leaves the swarm and stops (bounded).
    pub fn shutdown(self) {
        let DemoSeeder { rt, seeder } = self;
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(15), seeder.shutdown())
                .await
                .expect("seeder shuts down");
        });
        rt.shutdown_timeout(Duration::from_secs(5));
    }
}
