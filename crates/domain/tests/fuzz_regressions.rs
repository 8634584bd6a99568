//! Replays every input kept under `fuzz/regressions/<target>/` (findings of `make fuzz` and
//! seed inputs) through the same property functions the fuzz targets run, on stable, in
//! `make test`: a fixed finding can never come back unnoticed.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails again", path.display());
        n += 1;
    }
    n
}

#[test]
fn memo_decode_findings_stay_fixed() {
    assert!(replay("memo_decode", domain::fuzzing::memo_decode) > 0);
}

#[test]
fn proof_bundle_findings_stay_fixed() {
    assert!(replay("proof_bundle", domain::fuzzing::proof_bundle) > 0);
}

#[test]
fn api_key_findings_stay_fixed() {
    assert!(replay("api_key", domain::fuzzing::api_key) > 0);
}

/// The seeds are genuine bundles, so the fuzzer starts from inputs the strict reader accepts
/// (regenerate them with `cargo test -p domain write_fuzz_seeds -- --ignored`).
#[test]
fn proof_bundle_seeds_are_accepted_by_the_strict_reader() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/proof_bundle");
    for name in ["seed-single.json", "seed-merkle.json"] {
        let data = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Err(e) = domain::proof::ProofBundle::from_json(&data) {
            panic!("{name}: {e}");
        }
    }
}
