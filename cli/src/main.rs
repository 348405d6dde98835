//! The `peerhost` binary; everything lives in the library (`src/lib.rs`).

fn main() -> std::process::ExitCode {
    peerhost_cli::main()
}
