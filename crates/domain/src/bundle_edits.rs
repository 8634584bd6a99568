//! The catalogue of refused spellings: raw-JSON edits of a genuine proof bundle that
//! [`crate::proof::ProofBundle::from_json`] must refuse (an unknown field at each level, each
//! alternative spelling of each value, mode-specific fields in the other mode, malformed
//! base58). Shared by the domain tests (the reader and the published JSON Schema against it)
//! and the end-to-end tamper suite (the API, the page and `credential-verify` against it), so
//! the two cannot drift. Pure data and functions, no I/O.

use serde_json::Value;

/// One raw-JSON edit of a genuine bundle for the strict reader: (name, edit, whether
/// the published JSON Schema can see it too; it cannot see duplicate keys, which JSON
/// parsers collapse before a schema runs, a base58 string of the right alphabet and length
/// that decodes to the wrong number of bytes, nor `5.0` for an integer, which JSON Schema
/// counts as one).
pub type RawEdit = (&'static str, fn(&mut Value), bool);

// The helpers are total: an edit of a place the bundle does not have changes nothing, and
// the callers assert that every edit changed the bundle.

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn set(v: &mut Value, pointer: &str, value: Value) {
    if let Some(slot) = v.pointer_mut(pointer) {
        *slot = value;
    }
}

fn upper(v: &mut Value, pointer: &str) {
    let upper = text(v, pointer).to_uppercase();
    set(v, pointer, upper.into());
}

fn object<'v>(v: &'v mut Value, pointer: &str) -> Option<&'v mut serde_json::Map<String, Value>> {
    v.pointer_mut(pointer).and_then(Value::as_object_mut)
}

fn extra(v: &mut Value, pointer: &str) {
    if let Some(map) = object(v, pointer) {
        map.insert("revoked".into(), Value::Bool(false));
    }
}

/// Edits every bundle gets; `MERKLE` only Merkle ones, `SINGLE` single ones.
const ALL: &[RawEdit] = &[
    ("unknown field at the top", |v| extra(v, ""), true),
    ("unknown field in fields", |v| extra(v, "/fields"), true),
    (
        "unknown field in issuer_signature",
        |v| extra(v, "/issuer_signature"),
        true,
    ),
    ("unknown field in anchor", |v| extra(v, "/anchor"), true),
    (
        "credential_hash in uppercase hex",
        |v| upper(v, "/credential_hash"),
        true,
    ),
    (
        "file_digest in uppercase hex",
        |v| upper(v, "/fields/file_digest"),
        true,
    ),
    (
        "credential_id in uppercase",
        |v| upper(v, "/credential_id"),
        true,
    ),
    (
        "credential_id without hyphens",
        |v| {
            let id = text(v, "/credential_id").replace('-', "");
            set(v, "/credential_id", Value::String(id));
        },
        true,
    ),
    (
        "credential_id in braces",
        |v| {
            let id = format!("{{{}}}", text(v, "/credential_id"));
            set(v, "/credential_id", Value::String(id));
        },
        true,
    ),
    (
        "credential_id as a URN",
        |v| {
            let id = format!("urn:uuid:{}", text(v, "/credential_id"));
            set(v, "/credential_id", Value::String(id));
        },
        true,
    ),
    (
        "issued_at with fractional seconds",
        |v| set(v, "/fields/issued_at", "2026-06-30T12:00:00.000Z".into()),
        true,
    ),
    (
        "issued_at with an offset",
        |v| set(v, "/fields/issued_at", "2026-06-30T12:00:00+00:00".into()),
        true,
    ),
    (
        "issued_at with a lowercase t",
        |v| set(v, "/fields/issued_at", "2026-06-30t12:00:00Z".into()),
        true,
    ),
    (
        "issued_at with a lowercase z",
        |v| set(v, "/fields/issued_at", "2026-06-30T12:00:00z".into()),
        true,
    ),
    (
        "cluster unknown",
        |v| set(v, "/anchor/cluster", "mainnet".into()),
        true,
    ),
    (
        "cluster in uppercase",
        |v| upper(v, "/anchor/cluster"),
        true,
    ),
    (
        "slot as a string",
        |v| set(v, "/anchor/slot", "5".into()),
        true,
    ),
    // JSON Schema counts 5.0 as an integer; the reader does not.
    (
        "slot as a float",
        |v| set(v, "/anchor/slot", serde_json::json!(5.0)),
        false,
    ),
    (
        "slot negative",
        |v| set(v, "/anchor/slot", serde_json::json!(-5)),
        true,
    ),
    (
        "anchor signature not base58",
        |v| set(v, "/anchor/signature", "0OIl".repeat(22).into()),
        true,
    ),
    (
        "anchor signature of 63 bytes",
        |v| {
            set(
                v,
                "/anchor/signature",
                bs58::encode([5u8; 63]).into_string().into(),
            )
        },
        false,
    ),
    (
        "anchor signature with a leading space",
        |v| {
            let spaced = format!(" {}", text(v, "/anchor/signature"));
            set(v, "/anchor/signature", spaced.into());
        },
        true,
    ),
    (
        "anchoring key of 31 bytes",
        |v| {
            set(
                v,
                "/anchor/anchor_pubkey",
                bs58::encode([6u8; 31]).into_string().into(),
            )
        },
        false,
    ),
    (
        "anchoring key not base58",
        |v| set(v, "/anchor/anchor_pubkey", "payer".into()),
        true,
    ),
    (
        "mode capitalized",
        |v| {
            let mode = text(v, "/anchor/mode");
            let mut chars = mode.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            let capitalized = first.into_iter().chain(chars).collect::<String>();
            set(v, "/anchor/mode", capitalized.into());
        },
        true,
    ),
    (
        "issuer_name null",
        |v| set(v, "/issuer_name", Value::Null),
        true,
    ),
    (
        "version unknown",
        |v| set(v, "/version", "credential-anchor/proof-bundle/v3".into()),
        true,
    ),
    (
        "version relabelled, the salt kept",
        |v| {
            let other = if text(v, "/version").ends_with("/v2") {
                "v1"
            } else {
                "v2"
            };
            set(
                v,
                "/version",
                format!("credential-anchor/proof-bundle/{other}").into(),
            );
        },
        true,
    ),
    (
        "salt null",
        |v| {
            if let Some(map) = object(v, "") {
                map.insert("salt".into(), Value::Null);
            }
        },
        true,
    ),
];

const MERKLE: &[RawEdit] = &[
    (
        "unknown field in anchor.proof",
        |v| extra(v, "/anchor/proof"),
        true,
    ),
    (
        "unknown field in a path step",
        |v| extra(v, "/anchor/proof/steps/0"),
        true,
    ),
    ("root in uppercase hex", |v| upper(v, "/anchor/root"), true),
    (
        "sibling hash in uppercase hex",
        |v| upper(v, "/anchor/proof/steps/0/hash"),
        true,
    ),
    (
        "batch_id in uppercase",
        |v| upper(v, "/anchor/batch_id"),
        true,
    ),
    (
        "side capitalized",
        |v| upper(v, "/anchor/proof/steps/0/side"),
        true,
    ),
    (
        "leaf_index as a string",
        |v| set(v, "/anchor/proof/leaf_index", "2".into()),
        true,
    ),
    (
        "count as a string",
        |v| set(v, "/anchor/count", "5".into()),
        true,
    ),
    (
        "proof removed",
        |v| {
            if let Some(anchor) = object(v, "/anchor") {
                anchor.remove("proof");
            }
        },
        true,
    ),
    (
        "relabelled single, Merkle fields kept",
        |v| set(v, "/anchor/mode", "single".into()),
        true,
    ),
];

const SINGLE: &[RawEdit] = &[
    (
        "Merkle fields in a single-mode bundle",
        |v| {
            let Some(anchor) = object(v, "/anchor") else {
                return;
            };
            anchor.insert(
                "batch_id".into(),
                "0193b6c2-0000-7000-8000-000000000000".into(),
            );
            anchor.insert("count".into(), 1.into());
            anchor.insert("root".into(), hex::encode([1u8; 32]).into());
            anchor.insert(
                "proof".into(),
                serde_json::json!({ "leaf_index": 0, "steps": [] }),
            );
        },
        true,
    ),
    (
        "relabelled merkle without Merkle fields",
        |v| set(v, "/anchor/mode", "merkle".into()),
        true,
    ),
];

/// Every edit that applies to `bundle` (a genuine bundle as JSON), applied: (name, edited
/// JSON, whether the JSON Schema can see it).
pub fn spellings(bundle: &Value) -> Vec<(&'static str, Value, bool)> {
    let merkle = bundle.pointer("/anchor/mode") == Some(&Value::from("merkle"));
    let has_salt = bundle.get("salt").is_some();
    ALL.iter()
        .chain(if merkle { MERKLE } else { SINGLE })
        // A null salt is an edit of v1 bundles (a v2 bundle's salt is a hash input).
        .filter(|(name, _, _)| !(*name == "salt null" && has_salt))
        .map(|(name, apply, schema)| {
            let mut v = bundle.clone();
            apply(&mut v);
            (*name, v, *schema)
        })
        .collect()
}
