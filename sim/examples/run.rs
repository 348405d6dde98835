//! Quick runner for development: `cargo run --release -p peerhost-sim
//! --example run -- SCENARIO [SEED]` prints the summary JSON and the wall
//! time, without building the whole `peerhost` binary.

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "flash-crowd-1k".into());
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let scenario = match peerhost_sim::scenario::Scenario::load(&name) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let run = peerhost_sim::run(&scenario, seed, &mut |p| {
        eprint!(
            "\r{:>8.1} s virtual, {}/{} settled, {:.1}M events   ",
            p.now_ms as f64 / 1000.0,
            p.settled,
            p.visitors,
            p.events as f64 / 1e6
        );
    });
    eprintln!();
    println!(
        "{}",
        serde_json::to_string(&run.summary).expect("plain data")
    );
    println!(
        "wall_s {:.2} events {} events_per_s {:.0}",
        run.wall_s,
        run.summary.events,
        run.events_per_s()
    );
}
