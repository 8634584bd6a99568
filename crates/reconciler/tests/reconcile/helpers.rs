//! The reconciler suites run on the one test stack (`stack`): a fresh database, the real
//! issuer-api with one issuer, a funded anchoring key, relays and reconcilers built like the
//! services.

use serde_json::{json, Value};

pub use stack::Stack as World;

pub const ISSUER: &str = "uni-recon";

pub async fn world() -> World {
    World::builder()
        .issuer(ISSUER, "Reconciled University")
        .start()
        .await
}

/// A confirmed blockhash, by plain JSON-RPC (the chain crate keeps that call internal).
pub async fn latest_blockhash(rpc_url: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(rpc_url)
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "getLatestBlockhash",
                       "params": [{"commitment": "confirmed"}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["result"]["value"]["blockhash"]
        .as_str()
        .unwrap()
        .to_string()
}
