//! JSON-LD → RDFC-1.0 canonical N-Quads: the bytes a Data Integrity proof hashes.
//!
//! Expansion is strict, as `jsonld.js` is in its "safe mode" (which `@digitalbazaar/vc`
//! uses): a term the contexts do not define, or a malformed IRI, is an error rather than
//! silently dropped. Otherwise a claim could be added to a signed credential, shown to a
//! reader, and still verify, because a dropped term is not part of what was signed.

use std::sync::LazyLock;

use json_ld::context_processing::algorithm::Action;
use json_ld::rdf::RdfQuads;
use json_ld::syntax::TryFromJson;
use json_ld::{Expand, JsonLdProcessor, Process, RemoteDocument};

use crate::contexts::LOADER;
use crate::CanonError;

/// Most blank nodes a document may have. RDFC-1.0 is exponential in the number of blank
/// nodes that look alike ("poison" graphs), and `ssi-rdf` has no call budget of its own; a
/// credential of ours has three, its proof configuration one. Six keeps the worst case at
/// 6! orderings.
pub const MAX_BLANK_NODES: usize = 6;

const POLICY: json_ld::expansion::Policy = json_ld::expansion::Policy {
    invalid: Action::Reject,
    vocab: Action::Keep,
    allow_undefined: false,
};

/// The `@context` every credential and proof configuration of ours has, processed once:
/// processing the Open Badges context (large, with scoped contexts) was most of a
/// canonicalization's time. `None` if it does not process (then every document takes the
/// general path; `the_cached_context_gives_the_same_canonical_form` would fail first).
static CREDENTIAL_CONTEXT: LazyLock<Option<(serde_json::Value, json_ld::Context)>> =
    LazyLock::new(|| {
        let urls = serde_json::json!([
            crate::contexts::CREDENTIALS_V2,
            crate::contexts::OPEN_BADGES_V3
        ]);
        let syntax = json_ld::syntax::context::Context::try_from_json(
            json_syntax::Value::from_serde_json(urls.clone()),
        )
        .ok()?;
        let processed = futures_executor::block_on(syntax.process_full(
            &mut (),
            &json_ld::Context::new(None),
            &*LOADER,
            None,
            json_ld::context_processing::Options::default(),
            (),
        ))
        .ok()?;
        Some((urls, processed.into_processed()))
    });

/// The RDFC-1.0 canonical N-Quads of `document` (one line per quad, each ending in `\n`,
/// sorted), over the bundled contexts.
pub fn canonicalize(document: &serde_json::Value) -> Result<String, CanonError> {
    canonicalize_with(document, true)
}

fn canonicalize_with(document: &serde_json::Value, use_cache: bool) -> Result<String, CanonError> {
    let mut generator = rdf_types::generator::Blank::new();
    let cached = CREDENTIAL_CONTEXT
        .as_ref()
        .filter(|(urls, _)| use_cache && document.get("@context") == Some(urls));
    let quads: Vec<rdf_types::LexicalQuad> = match cached {
        // Our own context: expand the rest of the document from the processed context, as
        // JSON-LD does after processing a top-level `@context` against an empty one.
        Some((_, context)) => {
            let mut rest = document.clone();
            if let Some(object) = rest.as_object_mut() {
                object.remove("@context");
            }
            let value = json_syntax::Value::from_serde_json(rest);
            let options = json_ld::expansion::Options {
                policy: POLICY,
                ..Default::default()
            };
            let mut expanded = futures_executor::block_on(value.expand_full(
                &mut (),
                context.clone(),
                None,
                &*LOADER,
                options,
                (),
            ))
            .map_err(|e| CanonError::JsonLd(e.to_string()))?;
            expanded.relabel_and_canonicalize_with(&mut (), &mut generator);
            expanded
                .rdf_quads_full(&mut (), &mut generator, None, false)
                .cloned()
                .filter_map(|rdf_types::Quad(s, p, o, g)| {
                    Some(rdf_types::Quad(s, p.into_iri()?, o, g))
                })
                .collect()
        }
        None => {
            let value = json_syntax::Value::from_serde_json(document.clone());
            let input = RemoteDocument::new(None, None, value);
            let options = json_ld::Options {
                expansion_policy: POLICY,
                ..json_ld::Options::default()
            };
            // The loader answers from memory, so the future never waits on I/O.
            let mut rdf =
                futures_executor::block_on(input.to_rdf_using(&mut generator, &*LOADER, options))
                    .map_err(|e| CanonError::JsonLd(e.to_string()))?;
            rdf.cloned_quads()
                // A predicate is always an IRI: generalized RDF is off.
                .filter_map(|rdf_types::Quad(s, p, o, g)| {
                    Some(rdf_types::Quad(s, p.into_iri()?, o, g))
                })
                .collect()
        }
    };
    let blank: std::collections::HashSet<&rdf_types::BlankIdBuf> = quads
        .iter()
        .flat_map(|rdf_types::Quad(s, _, o, g)| {
            [
                s.as_blank(),
                o.as_blank(),
                g.as_ref().and_then(|g| g.as_blank()),
            ]
        })
        .flatten()
        .collect();
    if blank.len() > MAX_BLANK_NODES {
        return Err(CanonError::TooManyBlankNodes(blank.len()));
    }
    let mut lines: Vec<String> =
        ssi_rdf::urdna2015::normalize(quads.iter().map(|q| q.as_lexical_quad_ref()))
            .map(|quad| format!("{quad} .\n"))
            .collect();
    lines.sort_unstable();
    Ok(lines.concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alumni() -> serde_json::Value {
        json!({
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
            "type": ["VerifiableCredential"],
            "issuer": "did:example:issuer",
            "validFrom": "2023-01-01T00:00:00Z",
            "credentialSubject": {"id": "did:example:abcdefgh", "name": "Alice"}
        })
    }

    #[test]
    fn canonical_form_is_sorted_nquads_with_typed_dates() {
        let out = canonicalize(&alumni()).unwrap();
        assert!(out.contains(
            "<urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33> <https://www.w3.org/2018/credentials#validFrom> \"2023-01-01T00:00:00Z\"^^<http://www.w3.org/2001/XMLSchema#dateTime> .\n"
        ), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        let mut sorted = lines.clone();
        sorted.sort_unstable();
        assert_eq!(lines, sorted);
    }

    #[test]
    fn key_order_and_whitespace_do_not_change_the_canonical_form() {
        let text = serde_json::to_string_pretty(&alumni()).unwrap();
        let reparsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(canonicalize(&alumni()), canonicalize(&reparsed));
    }

    #[test]
    fn an_unknown_context_is_refused_never_fetched() {
        let mut doc = alumni();
        doc["@context"] = json!([
            "https://www.w3.org/ns/credentials/v2",
            "https://evil.example/ctx"
        ]);
        assert!(matches!(canonicalize(&doc), Err(CanonError::JsonLd(_))));
    }

    #[test]
    fn a_term_no_context_defines_is_refused_not_dropped() {
        // The VC 2.0 context maps unknown terms through its @vocab, so use an IRI-less
        // context of our own to show a dropped term is an error.
        let doc =
            json!({"@context": {"name": "https://schema.org/name"}, "name": "x", "bogus term": 1});
        assert!(canonicalize(&doc).is_err());
    }

    #[test]
    fn a_graph_of_many_blank_nodes_is_refused_before_canonicalization() {
        // Ten blank nodes that all look alike: RDFC-1.0 would try every ordering.
        let nodes: Vec<serde_json::Value> = (0..10)
            .map(|i| json!({"@id": format!("_:n{i}"), "urn:p": [{"@id": format!("_:n{}", (i + 1) % 10)}]}))
            .collect();
        let doc = json!({"@graph": nodes});
        assert_eq!(canonicalize(&doc), Err(CanonError::TooManyBlankNodes(10)));
    }

    /// An Open Badges credential of ours and its proof configuration, as issued.
    fn ours() -> Vec<serde_json::Value> {
        let context = json!([
            crate::contexts::CREDENTIALS_V2,
            crate::contexts::OPEN_BADGES_V3
        ]);
        let credential: serde_json::Value =
            serde_json::from_str(include_str!("../tests/open-badge.json")).unwrap();
        assert_eq!(credential["@context"], context);
        let proof = json!({
            "@context": context,
            "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-rdfc-2022",
            "created": "2026-12-03T12:13:09Z",
            "verificationMethod": "did:web:127.0.0.1%3A38737:issuers:demo-university#demo-university-f7799091",
            "proofPurpose": "assertionMethod"
        });
        vec![credential, proof]
    }

    #[test]
    fn the_cached_context_gives_the_same_canonical_form() {
        assert!(CREDENTIAL_CONTEXT.is_some());
        for doc in ours() {
            let fast = canonicalize_with(&doc, true).unwrap();
            assert_eq!(fast, canonicalize_with(&doc, false).unwrap());
            assert!(
                fast.contains("\"true\"^^<https://www.w3.org/2001/XMLSchema#boolean>")
                    || doc.get("proofPurpose").is_some(),
                "{fast}"
            );
        }
        // And an undefined term is still refused on the cached path.
        let mut bad = ours().remove(0);
        bad["credentialSubject"]["achievement"]["@type"] = json!("NoSuchType");
        assert!(canonicalize_with(&bad, true).is_err());
        assert!(canonicalize_with(&bad, false).is_err());
    }

    #[test]
    fn a_changed_claim_changes_the_canonical_form() {
        let mut doc = alumni();
        doc["credentialSubject"]["name"] = json!("Mallory");
        assert_ne!(
            canonicalize(&doc).unwrap(),
            canonicalize(&alumni()).unwrap()
        );
    }
}
