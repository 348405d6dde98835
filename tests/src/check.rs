//! Assertions several end-to-end tests make about what a page received.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Asserts every image rendered (naturalWidth > 0) and its bytes are the
/// file's under `site_dir` (SHA-256); returns the images' total size.
pub fn images_match_files(site_dir: &Path, images: &[Value]) -> u64 {
    let mut total = 0u64;
    for img in images {
        let path = img["path"].as_str().expect("path");
        let file = std::fs::read(site_dir.join(path.trim_start_matches('/'))).expect("file");
        total += file.len() as u64;
        assert!(
            img["naturalWidth"].as_u64().unwrap_or(0) > 0,
            "{path} rendered: {img}"
        );
        let want: String = Sha256::digest(&file)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            img["sha256"].as_str(),
            Some(want.as_str()),
            "{path}: the page got the file's bytes"
        );
    }
    total
}
