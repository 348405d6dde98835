//! Atomic file writes: a temporary file in the target's directory, synced,
//! then renamed over the target, so a reader (or a crash) never sees a
//! half-written key or manifest.

use std::fs::{self, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Whether [`write_atomic`] may replace an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Replace whatever is there.
    Allow,
    /// Fail with [`io::ErrorKind::AlreadyExists`] if the target exists. The
    /// check and the rename are one atomic step (`renameat2`/`link`), so a
    /// concurrent writer cannot slip in between.
    Refuse,
}

/// Writes `contents` to `path` atomically with permission bits `mode`.
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    overwrite: Overwrite,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".peerhost-tmp-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    // `permissions` is filtered by the umask at creation; set the exact bits.
    fs::set_permissions(tmp.path(), Permissions::from_mode(mode))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    let persisted = match overwrite {
        Overwrite::Allow => tmp.persist(path),
        Overwrite::Refuse => tmp.persist_noclobber(path),
    };
    // On failure the temporary file is dropped, which deletes it.
    persisted.map_err(|e| e.error)?;
    // Make the rename itself durable; best effort (not every filesystem allows it).
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
