//! The relay suites (and the crash suite) run on the one test stack (`stack`): a fresh
//! database, the real issuer-api on port 0 with one issuer, a funded anchoring keypair on the
//! shared validator, and relays built like production ones.

#[allow(unused_imports)]
pub use stack::{api_settings, Stack as World};
use testkit::TestDb;

const ISSUER: (&str, &str) = ("uni-relay", "Relay University");

pub async fn world() -> World {
    World::builder().issuer(ISSUER.0, ISSUER.1).start().await
}

/// A world on a given database (e.g. on a PostgreSQL server of the test's own, to restart;
/// the crash suite).
#[allow(dead_code)]
pub async fn world_on(db: TestDb) -> World {
    World::builder()
        .issuer(ISSUER.0, ISSUER.1)
        .database(db)
        .start()
        .await
}
