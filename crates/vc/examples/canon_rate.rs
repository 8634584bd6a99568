//! Canonicalizations per second of one Open Badges credential of ours
//! (`cargo run --release -p vc --example canon_rate`).
#![allow(clippy::unwrap_used)]
fn main() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../tests/open-badge.json")).unwrap();
    let n = 500;
    let start = std::time::Instant::now();
    for _ in 0..n {
        vc::canonicalize(&doc).unwrap();
    }
    let per = start.elapsed() / n;
    println!(
        "{per:?} per canonicalization ({:.0}/s on one core)",
        1.0 / per.as_secs_f64()
    );
}
