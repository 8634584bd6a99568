//! The independent verifiers of `interop/` (pinned npm and PyPI packages), installed by
//! `scripts/install-interop.sh` into a content-addressed cache directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Installs them if needed and returns their directory (the installer's last line). Panics
/// with the installer's output when it fails: a test cannot go on without them.
#[allow(clippy::expect_used, clippy::unwrap_used)]
pub fn install() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/install-interop.sh"))
        .output()
        .expect("run scripts/install-interop.sh");
    assert!(
        out.status.success(),
        "install-interop failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("install dir").trim())
}
