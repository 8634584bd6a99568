//! W3C Bitstring Status List (revocation), anchored: where each credential's bit lives, the
//! list's bits and their encoding, the hash a `ca1:s` memo anchors, and how a verifier
//! judges a list it was given against the versions anchored on chain.
//!
//! Every credential of an issuer gets an ordinal ([`StatusOrdinal`]) at issuance; list `n`
//! holds ordinals `n * LIST_SIZE ..`, so the list and the index inside it follow from the
//! ordinal alone. Bit `i` is the `i`-th bit from the left (the W3C rule: index 0 is the most
//! significant bit of the first byte).
//!
//! The anchored hash covers the issuer, the list number and the **bits** (not the signed
//! JSON): a list credential re-signed at another instant or by a rotated key states the
//! same thing and anchors the same hash, which is what lets a restored database prove its
//! regenerated list is the anchored one again. Revocations are never undone, so the bits of
//! successive versions only gain ones and no two versions share a hash.

use std::io::{Read, Write};

use base64::Engine;
use ring::digest::{Context, SHA256};

use crate::ids::IssuerId;
use crate::verdict::{Verdict, VerdictKind};

/// Entries per list: the W3C minimum (16 KiB of bits), for herd privacy.
pub const LIST_SIZE: u32 = 131_072;
/// Bytes of one list's bitstring.
pub const LIST_BYTES: usize = LIST_SIZE as usize / 8;
/// The largest decompressed bitstring a verifier accepts from a server: exactly one of our
/// lists (only those can match an anchored hash), so a GZIP bomb stops one byte past it.
pub const MAX_DECODED_BYTES: usize = LIST_BYTES;
/// Domain separation of the anchored hash.
const HASH_TAG: &[u8] = b"credential-anchor/status-list/v1";

/// An issuer's credential ordinal: which list and which bit in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusOrdinal(u64);

/// A bit's place: list number and index inside the list (`< LIST_SIZE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusPosition {
    pub list: u32,
    pub index: u32,
}

impl StatusOrdinal {
    /// `None` past the last list a `u32` can number.
    pub fn new(ordinal: u64) -> Option<StatusOrdinal> {
        (ordinal / u64::from(LIST_SIZE) <= u64::from(u32::MAX)).then_some(StatusOrdinal(ordinal))
    }

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn position(self) -> StatusPosition {
        let size = u64::from(LIST_SIZE);
        // Both fit by construction (`new`).
        StatusPosition {
            list: u32::try_from(self.0 / size).unwrap_or(u32::MAX),
            index: u32::try_from(self.0 % size).unwrap_or(0),
        }
    }
}

impl StatusPosition {
    /// The ordinals list `list` holds, as a half-open range.
    pub fn ordinals_of(list: u32) -> std::ops::Range<u64> {
        let start = u64::from(list) * u64::from(LIST_SIZE);
        start..start + u64::from(LIST_SIZE)
    }
}

/// The 32-byte hash a `ca1:s` memo anchors.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusListHash([u8; 32]);

crate::hash::fixed_bytes_newtype!(StatusListHash, 32, to_hex, from_hex);

/// Why an `encodedList` cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("encodedList is not multibase base64url (a 'u' prefix)")]
    NotMultibase,
    #[error("encodedList is not GZIP data")]
    NotGzip,
    #[error("the list holds {0} bytes, not {LIST_BYTES}")]
    Size(usize),
}

/// One list's bits.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitstring(Vec<u8>);

impl std::fmt::Debug for Bitstring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Bitstring({} bits, {} set)",
            self.0.len() * 8,
            self.count_set()
        )
    }
}

impl Bitstring {
    /// A list of `LIST_SIZE` zeros.
    pub fn zeros() -> Bitstring {
        Bitstring(vec![0; LIST_BYTES])
    }

    /// A list with the given indexes set (indexes past the list are ignored: they belong
    /// to no credential of this list).
    pub fn with_set(indexes: impl IntoIterator<Item = u32>) -> Bitstring {
        let mut bits = Bitstring::zeros();
        for i in indexes {
            bits.set(i);
        }
        bits
    }

    pub fn set(&mut self, index: u32) {
        if let Some(byte) = self.0.get_mut(index as usize / 8) {
            *byte |= 0x80 >> (index % 8);
        }
    }

    /// The bit at `index`; `None` past the end of the list.
    pub fn get(&self, index: u32) -> Option<bool> {
        let byte = self.0.get(index as usize / 8)?;
        Some(byte & (0x80 >> (index % 8)) != 0)
    }

    pub fn count_set(&self) -> u32 {
        self.0.iter().map(|b| b.count_ones()).sum()
    }

    /// `encodedList`: multibase base64url (no padding) of the GZIP-compressed bits.
    pub fn encode(&self) -> String {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(&self.0);
        let compressed = gz.finish().unwrap_or_default();
        format!(
            "u{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(compressed)
        )
    }

    /// Reads an `encodedList` from anyone: bounded (no more than `MAX_DECODED_BYTES` is ever
    /// inflated), total (errors, never panics).
    pub fn decode(encoded: &str) -> Result<Bitstring, ListError> {
        let b64 = encoded.strip_prefix('u').ok_or(ListError::NotMultibase)?;
        let compressed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| ListError::NotMultibase)?;
        let mut bits = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .take(MAX_DECODED_BYTES as u64 + 1)
            .read_to_end(&mut bits)
            .map_err(|_| ListError::NotGzip)?;
        if bits.len() != LIST_BYTES {
            return Err(ListError::Size(bits.len()));
        }
        Ok(Bitstring(bits))
    }

    /// The hash a `ca1:s` memo anchors for this list of `issuer`.
    pub fn anchored_hash(&self, issuer: &IssuerId, list: u32) -> StatusListHash {
        let mut ctx = Context::new(&SHA256);
        ctx.update(HASH_TAG);
        let issuer = issuer.as_str().as_bytes();
        ctx.update(&(issuer.len() as u32).to_be_bytes());
        ctx.update(issuer);
        ctx.update(&list.to_be_bytes());
        ctx.update(&self.0);
        let mut out = [0; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        StatusListHash(out)
    }
}

/// A version of a list the database knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownVersion {
    pub version: u32,
    pub hash: StatusListHash,
    /// Whether its signed list credential is stored (a version rebuilt from the chain has
    /// only its hash until the publisher re-signs the same bits).
    pub signed: bool,
}

/// What the publisher does with a list whose bits hash to `hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publication {
    /// New bits: sign them as the next version and anchor it.
    New { version: u32 },
    /// These bits are a version anchored before a restore: sign them again for serving; the
    /// anchor on chain already covers them (no new memo).
    SignRecovered { version: u32 },
    /// A signed version already states exactly these bits.
    UpToDate,
}

/// The publisher's decision (one rule, property-tested below). Bits already stated by the
/// newest version, and by no other row of that version number, need no new version (signed:
/// up to date; rebuilt from the chain: sign them again). Anything else is a new version above
/// every known one, also when the newest number is held by two different bit sets (a
/// database restored behind the chain published under a number the chain already had): a
/// fresh, unique newest version ends the ambiguity.
pub fn next_publication(hash: &StatusListHash, known: &[KnownVersion]) -> Publication {
    let newest = known.iter().map(|k| k.version).max().unwrap_or(0);
    let holders: Vec<&KnownVersion> = known.iter().filter(|k| k.version == newest).collect();
    match holders.as_slice() {
        [only] if &only.hash == hash && only.signed => Publication::UpToDate,
        [only] if &only.hash == hash => Publication::SignRecovered { version: newest },
        _ => Publication::New {
            version: newest.saturating_add(1),
        },
    }
}

/// One anchored version of a list, as a trusted `ca1:s` memo states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchoredVersion {
    pub version: u32,
    pub hash: StatusListHash,
}

/// How a list a verifier was given stands against the versions anchored on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFreshness {
    /// It is the newest anchored version.
    Current { version: u32 },
    /// It was anchored, and a newer version has been anchored since: a server serving it is
    /// behind (or hiding a revocation).
    Stale { version: u32, newest: u32 },
    /// No anchored version has its bits: nothing proves what it says.
    Unanchored,
    /// The newest anchored version number names two different bit sets (a restored
    /// database republished it): which one is current cannot be told.
    Conflict { version: u32 },
}

/// Judges the given list's hash against every trusted anchored version of the same list
/// (any order). The newest is the highest version; should two memos name the same version
/// (a database restored behind the chain and republished), the hash a verifier was given
/// is current if it is one of them.
pub fn judge_list(given: &StatusListHash, anchored: &[AnchoredVersion]) -> ListFreshness {
    let Some(newest) = anchored.iter().map(|a| a.version).max() else {
        return ListFreshness::Unanchored;
    };
    let mut newest_hashes = anchored
        .iter()
        .filter(|a| a.version == newest)
        .map(|a| a.hash);
    let first = newest_hashes.next();
    let conflict = newest_hashes.any(|h| Some(h) != first);
    match anchored
        .iter()
        .filter(|a| &a.hash == given)
        .map(|a| a.version)
        .max()
    {
        Some(v) if v == newest && conflict => ListFreshness::Conflict { version: v },
        Some(v) if v == newest => ListFreshness::Current { version: v },
        Some(v) => ListFreshness::Stale { version: v, newest },
        None => ListFreshness::Unanchored,
    }
}

/// What the status-list check of one credential found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusCheck {
    /// The list is current; `revoked` is the credential's bit.
    Current {
        version: u32,
        revoked: bool,
    },
    /// An older (or conflicting) anchored version sets the credential's bit: bits are never
    /// cleared, so the issuer revoked it, whatever newer version was hidden.
    RevokedByList,
    Stale {
        version: u32,
        newest: u32,
    },
    Unanchored,
    /// The list could not be obtained or read (404, network, not a list): `reason` is a
    /// stable code, `detail` a sentence.
    Unavailable {
        reason: &'static str,
        detail: String,
    },
}

/// Combines the freshness of a list with the credential's bit in it.
pub fn check_status(freshness: ListFreshness, bit: bool) -> StatusCheck {
    match (freshness, bit) {
        (ListFreshness::Current { version }, revoked) => StatusCheck::Current { version, revoked },
        (ListFreshness::Stale { .. } | ListFreshness::Conflict { .. }, true) => {
            StatusCheck::RevokedByList
        }
        (ListFreshness::Stale { version, newest }, false) => StatusCheck::Stale { version, newest },
        (ListFreshness::Conflict { version }, false) => StatusCheck::Unavailable {
            reason: "status_list_conflict",
            detail: format!(
                "two different lists were anchored as version {version}: ask the issuer to republish"
            ),
        },
        // Anyone can serve a list with a bit set: unanchored, it proves nothing either way.
        (ListFreshness::Unanchored, _) => StatusCheck::Unanchored,
    }
}

/// The verdict once the status list is taken into account. A verdict that is already not
/// `valid` stands (a revoked, tampered or unanchored credential stays so); a `valid` one
/// becomes `revoked` if the list sets its bit, `stale` if the list is behind the chain and
/// `inconclusive` if the list cannot be had or proven. Never turns anything into `valid`.
pub fn with_status(base: Verdict, check: Option<&StatusCheck>) -> Verdict {
    let Some(check) = check else { return base };
    if base.kind != VerdictKind::Valid {
        return base;
    }
    match check {
        StatusCheck::Current { revoked: false, .. } => base,
        StatusCheck::Current {
            revoked: true,
            version,
        } => Verdict::new(
            VerdictKind::Revoked,
            "status_list_revoked",
            format!("the issuer's status list (version {version}, anchored) marks it revoked"),
        ),
        StatusCheck::RevokedByList => Verdict::new(
            VerdictKind::Revoked,
            "status_list_revoked",
            "an anchored version of the issuer's status list marks it revoked",
        ),
        StatusCheck::Stale { version, newest } => Verdict::new(
            VerdictKind::Stale,
            "status_list_stale",
            format!(
                "the status list given is version {version}, but version {newest} is anchored: \
                 whoever served it is behind, and a newer revocation may be hidden"
            ),
        ),
        StatusCheck::Unanchored => Verdict::new(
            VerdictKind::Inconclusive,
            "status_list_unanchored",
            "no anchored version of the status list has the bits of the list given",
        ),
        StatusCheck::Unavailable { reason, detail } => {
            Verdict::new(VerdictKind::Inconclusive, reason, detail.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn issuer() -> IssuerId {
        IssuerId::parse("uni-graz").unwrap()
    }

    #[test]
    fn index_zero_is_the_leftmost_bit() {
        let bits = Bitstring::with_set([0, 9]);
        assert_eq!(bits.0[0], 0x80);
        assert_eq!(bits.0[1], 0x40);
        assert_eq!(bits.get(0), Some(true));
        assert_eq!(bits.get(1), Some(false));
        assert_eq!(bits.get(LIST_SIZE), None);
    }

    #[test]
    fn ordinals_map_to_lists_and_back() {
        let p = StatusOrdinal::new(u64::from(LIST_SIZE) * 3 + 5)
            .unwrap()
            .position();
        assert_eq!(p, StatusPosition { list: 3, index: 5 });
        assert!(StatusPosition::ordinals_of(3).contains(&(u64::from(LIST_SIZE) * 3 + 5)));
        assert!(StatusOrdinal::new(u64::MAX).is_none());
    }

    #[test]
    fn decoding_refuses_what_is_not_a_list() {
        assert_eq!(Bitstring::decode("H4sI"), Err(ListError::NotMultibase));
        assert_eq!(Bitstring::decode("u!!"), Err(ListError::NotMultibase));
        assert_eq!(Bitstring::decode("uAAAA"), Err(ListError::NotGzip));
        // A short list is refused: our credentials' indexes must all be inside it.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[0; 16]).unwrap();
        let short = format!(
            "u{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(gz.finish().unwrap())
        );
        assert_eq!(Bitstring::decode(&short), Err(ListError::Size(16)));
    }

    #[test]
    fn a_gzip_bomb_is_cut_at_the_bound() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0; MAX_DECODED_BYTES * 4]).unwrap();
        let bomb = format!(
            "u{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(gz.finish().unwrap())
        );
        assert_eq!(
            Bitstring::decode(&bomb),
            Err(ListError::Size(MAX_DECODED_BYTES + 1))
        );
    }

    #[test]
    fn the_hash_binds_issuer_list_and_bits() {
        let a = Bitstring::with_set([7]);
        let h = a.anchored_hash(&issuer(), 0);
        assert_ne!(h, a.anchored_hash(&issuer(), 1));
        assert_ne!(h, a.anchored_hash(&IssuerId::parse("tu").unwrap(), 0));
        assert_ne!(h, Bitstring::with_set([8]).anchored_hash(&issuer(), 0));
    }

    #[test]
    fn a_list_is_judged_against_the_newest_anchored_version() {
        let v = |version, bit| AnchoredVersion {
            version,
            hash: Bitstring::with_set([bit]).anchored_hash(&issuer(), 0),
        };
        let anchored = [v(1, 1), v(2, 2), v(3, 3)];
        assert_eq!(
            judge_list(&anchored[2].hash, &anchored),
            ListFreshness::Current { version: 3 }
        );
        assert_eq!(
            judge_list(&anchored[1].hash, &anchored),
            ListFreshness::Stale {
                version: 2,
                newest: 3
            }
        );
        let other = Bitstring::with_set([9]).anchored_hash(&issuer(), 0);
        assert_eq!(judge_list(&other, &anchored), ListFreshness::Unanchored);
        assert_eq!(judge_list(&other, &[]), ListFreshness::Unanchored);
        // A version number anchored twice with different bits (republished after a restore):
        // neither is current; an older one is still stale.
        let twice = [v(1, 1), v(2, 2), v(2, 4)];
        assert_eq!(
            judge_list(&twice[1].hash, &twice),
            ListFreshness::Conflict { version: 2 }
        );
        assert_eq!(
            judge_list(&twice[0].hash, &twice),
            ListFreshness::Stale {
                version: 1,
                newest: 2
            }
        );
    }

    #[test]
    fn the_status_never_turns_anything_into_valid() {
        let valid = Verdict::new(VerdictKind::Valid, "valid", "ok");
        let tampered = Verdict::new(VerdictKind::Tampered, "file_mismatch", "no");
        let checks = [
            StatusCheck::Current {
                version: 1,
                revoked: false,
            },
            StatusCheck::Current {
                version: 1,
                revoked: true,
            },
            StatusCheck::RevokedByList,
            StatusCheck::Stale {
                version: 1,
                newest: 2,
            },
            StatusCheck::Unanchored,
            StatusCheck::Unavailable {
                reason: "status_list_unreachable",
                detail: "404".into(),
            },
        ];
        let kinds: Vec<VerdictKind> = checks
            .iter()
            .map(|c| with_status(valid.clone(), Some(c)).kind)
            .collect();
        assert_eq!(
            kinds,
            [
                VerdictKind::Valid,
                VerdictKind::Revoked,
                VerdictKind::Revoked,
                VerdictKind::Stale,
                VerdictKind::Inconclusive,
                VerdictKind::Inconclusive
            ]
        );
        for c in &checks {
            assert_eq!(with_status(tampered.clone(), Some(c)), tampered);
        }
        assert_eq!(with_status(valid.clone(), None), valid);
    }

    #[test]
    fn a_bit_set_in_an_anchored_version_revokes_and_an_unanchored_list_proves_nothing() {
        for f in [
            ListFreshness::Stale {
                version: 1,
                newest: 2,
            },
            ListFreshness::Conflict { version: 2 },
        ] {
            assert_eq!(check_status(f, true), StatusCheck::RevokedByList);
        }
        for bit in [true, false] {
            assert_eq!(
                check_status(ListFreshness::Unanchored, bit),
                StatusCheck::Unanchored
            );
        }
        assert!(matches!(
            check_status(ListFreshness::Conflict { version: 2 }, false),
            StatusCheck::Unavailable {
                reason: "status_list_conflict",
                ..
            }
        ));
        assert_eq!(
            check_status(ListFreshness::Current { version: 4 }, true),
            StatusCheck::Current {
                version: 4,
                revoked: true
            }
        );
    }

    #[test]
    fn the_publisher_signs_new_bits_as_the_next_version_only() {
        let h = |bit| Bitstring::with_set([bit]).anchored_hash(&issuer(), 0);
        assert_eq!(
            next_publication(&h(1), &[]),
            Publication::New { version: 1 }
        );
        let known = [
            KnownVersion {
                version: 1,
                hash: h(1),
                signed: true,
            },
            KnownVersion {
                version: 2,
                hash: h(2),
                signed: false,
            },
        ];
        assert_eq!(
            next_publication(&h(2), &known),
            Publication::SignRecovered { version: 2 }
        );
        let current = [KnownVersion {
            version: 1,
            hash: h(1),
            signed: true,
        }];
        assert_eq!(next_publication(&h(1), &current), Publication::UpToDate);
        assert_eq!(
            next_publication(&h(3), &known),
            Publication::New { version: 3 }
        );
        // Bits of an older version (a regression after a restore) are a new version too.
        let signed = [
            KnownVersion {
                version: 1,
                hash: h(1),
                signed: true,
            },
            KnownVersion {
                version: 2,
                hash: h(2),
                signed: true,
            },
        ];
        assert_eq!(
            next_publication(&h(1), &signed),
            Publication::New { version: 3 }
        );
        // The newest number held twice: a new, unique version, even for one of its bit sets.
        let doubled = [
            KnownVersion {
                version: 2,
                hash: h(2),
                signed: true,
            },
            KnownVersion {
                version: 2,
                hash: h(4),
                signed: false,
            },
        ];
        assert_eq!(
            next_publication(&h(4), &doubled),
            Publication::New { version: 3 }
        );
    }

    proptest! {
        #[test]
        fn a_new_version_is_always_above_every_known_one(
            versions in proptest::collection::vec((1u32..1000, any::<bool>()), 0..20),
            bit in 0..LIST_SIZE,
        ) {
            let known: Vec<KnownVersion> = versions
                .iter()
                .enumerate()
                .map(|(i, (v, signed))| KnownVersion {
                    version: *v,
                    hash: StatusListHash::from_bytes([i as u8; 32]),
                    signed: *signed,
                })
                .collect();
            let ours = Bitstring::with_set([bit]).anchored_hash(&issuer(), 0);
            if let Publication::New { version } = next_publication(&ours, &known) {
                prop_assert!(known.iter().all(|k| k.version < version));
            } else {
                prop_assert!(false, "unknown bits must be a new version");
            }
        }

        #[test]
        fn encoding_round_trips_every_bit(set in proptest::collection::btree_set(0..LIST_SIZE, 0..200)) {
            let bits = Bitstring::with_set(set.iter().copied());
            let back = Bitstring::decode(&bits.encode()).unwrap();
            prop_assert_eq!(&back, &bits);
            prop_assert_eq!(back.count_set() as usize, set.len());
            for i in set.iter().take(20) {
                prop_assert_eq!(back.get(*i), Some(true));
            }
        }

        #[test]
        fn decoding_arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = Bitstring::decode(&s);
            let _ = Bitstring::decode(&format!("u{s}"));
        }
    }
}
