//! `peerhost keygen`: creates a new site key from OS randomness.

use std::path::PathBuf;

use peerhost_core::manifest::SiteSecret;

use crate::fsutil::Overwrite;
use crate::keyfile;

/// Create a new site signing key.
///
/// Writes the secret key file (mode 0600) and prints the public site key:
/// the identity of the site, which goes in the page's script tag.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the secret key file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace FILE if it exists (the old key is lost).
    #[arg(long)]
    pub force: bool,
}

/// A new secret from the operating system's randomness.
pub fn generate() -> anyhow::Result<SiteSecret> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow::anyhow!("the OS random number generator failed: {e}"))?;
    Ok(SiteSecret::from_seed(seed))
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let secret = generate()?;
    let overwrite = if args.force {
        Overwrite::Allow
    } else {
        Overwrite::Refuse
    };
    keyfile::write_key_file(&args.out, &secret, overwrite)?;
    eprintln!(
        "wrote the secret site key to {} (mode 0600): keep it private",
        args.out.display()
    );
    eprintln!("the public site key (share it; pages name it) is:");
    println!("{}", secret.site_key());
    Ok(())
}
