//! The versioned text format of our SPL Memo payloads.
//!
//! ```text
//! ca1:c:<issuer>:<credential-uuid>:<credential-hash-base58>          one credential
//! ca1:b:<issuer>:<batch-uuid>:<count>:<merkle-root-base58>           a Merkle batch
//! ca1:r:<issuer>:<credential-uuid>:<credential-hash-base58>          a revocation
//! ca1:s:<issuer>:<list>:<version>:<list-hash-base58>                 a status list version
//! ca1:v:<issuer>:<batch-uuid>:<credential-uuid>.<hash-base58>[,...]   1 to 10 revocations
//! ```
//!
//! A revocation list (`ca1:v`, issue #18) is how an issuer in Merkle mode anchors its
//! revocations: up to [`MAX_REVOCATIONS_PER_MEMO`] per transaction, one fee instead of ten.
//! It names every revoked credential in the clear rather than behind a Merkle root, because a
//! verifier holding only a credential and the chain must still find its revocation (a root
//! would hide which credentials it revokes; see ARCHITECTURE.md, "Revocation lists").
//!
//! A status-list memo names the list by its number (decimal, `0..=u32::MAX`), the version by
//! its number (`1..=u32::MAX`) and anchors `status_list::Bitstring::anchored_hash`: the
//! issuer, the list number and its bits, never the signed JSON (see `status_list`).
//!
//! Memos carry only hashes and opaque ids (no personal data goes on chain). Anyone can write
//! a memo, so `decode` is total and strict: anything that is not exactly the canonical
//! encoding of a memo is `NotOurs`, never a panic and never a "close enough" match. Exactly one
//! text exists per memo (lowercase hyphenated UUIDs, no leading zeros in the count, canonical
//! base58), which is what lets the reconciler compare memos as text. Decoding a memo proves
//! nothing about who wrote it: callers must still check the transaction's signer.

use std::fmt;

use uuid::Uuid;

use crate::hash::CredentialHash;
use crate::ids::{BatchId, CredentialId, IssuerId, MAX_ISSUER_ID_LEN};
use crate::merkle::MerkleRoot;
use crate::status_list::StatusListHash;

/// Version prefix of every memo of ours.
pub const MEMO_PREFIX: &str = "ca1";

/// Largest number of credentials one batch memo may claim.
pub const MAX_BATCH_COUNT: u32 = 1_000_000;

const UUID_TEXT_LEN: usize = 36;
/// Base58 of 32 bytes is at most 44 characters (58^44 > 2^256 > 58^43).
const MAX_BASE58_32_LEN: usize = 44;
const MAX_COUNT_DIGITS: usize = 7; // "1000000"

/// Most revocations one `ca1:v` memo lists: ten entries keep the longest memo (895 bytes)
/// under the 1,000 bytes a transaction carries (`chain::fees::MAX_MEMO_BYTES`).
pub const MAX_REVOCATIONS_PER_MEMO: usize = 10;

/// The longest text the format allows: a revocation list of ten entries with a 32-character
/// issuer (895 bytes), under the 1,000 bytes one transaction carries.
pub const MAX_MEMO_LEN: usize = MEMO_PREFIX.len()
    + ":v:".len()
    + MAX_ISSUER_ID_LEN
    + 1
    + UUID_TEXT_LEN
    + 1
    + MAX_REVOCATIONS_PER_MEMO * (UUID_TEXT_LEN + 1 + MAX_BASE58_32_LEN)
    + (MAX_REVOCATIONS_PER_MEMO - 1);

/// One entry of a revocation list: the credential and the hash it was anchored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Revoked {
    pub credential: CredentialId,
    pub hash: CredentialHash,
}

/// One anchoring memo of ours.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Memo {
    Credential {
        issuer: IssuerId,
        credential: CredentialId,
        hash: CredentialHash,
    },
    Batch {
        issuer: IssuerId,
        batch: BatchId,
        /// Number of credentials in the batch. `decode` only accepts 1..=MAX_BATCH_COUNT;
        /// build batch memos with `Memo::batch` to have the range checked up front.
        count: u32,
        root: MerkleRoot,
    },
    Revocation {
        issuer: IssuerId,
        credential: CredentialId,
        hash: CredentialHash,
    },
    /// These credentials are revoked (1..=MAX_REVOCATIONS_PER_MEMO, distinct ids, in the
    /// order sealed). Build with `Memo::revocation_list` to have that checked.
    RevocationList {
        issuer: IssuerId,
        batch: BatchId,
        members: Vec<Revoked>,
    },
    /// Version `version` of the issuer's status list `list` has these bits.
    StatusList {
        issuer: IssuerId,
        list: u32,
        version: u32,
        hash: StatusListHash,
    },
}

/// Result of decoding an arbitrary memo text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Ours(Memo),
    NotOurs,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoError {
    #[error("batch count must be 1..={MAX_BATCH_COUNT}, got {0}")]
    BatchCount(u32),
    #[error(
        "a revocation list names 1..={MAX_REVOCATIONS_PER_MEMO} distinct credentials, got {0}"
    )]
    RevocationListSize(usize),
}

impl Memo {
    /// A batch memo, refusing counts the decoder would not accept.
    pub fn batch(
        issuer: IssuerId,
        batch: BatchId,
        count: u32,
        root: MerkleRoot,
    ) -> Result<Memo, MemoError> {
        if !(1..=MAX_BATCH_COUNT).contains(&count) {
            return Err(MemoError::BatchCount(count));
        }
        Ok(Memo::Batch {
            issuer,
            batch,
            count,
            root,
        })
    }

    /// A revocation list, refusing what the decoder would not accept: no entries, more than
    /// `MAX_REVOCATIONS_PER_MEMO`, or one credential twice.
    pub fn revocation_list(
        issuer: IssuerId,
        batch: BatchId,
        members: Vec<Revoked>,
    ) -> Result<Memo, MemoError> {
        if !valid_revocation_list(&members) {
            return Err(MemoError::RevocationListSize(members.len()));
        }
        Ok(Memo::RevocationList {
            issuer,
            batch,
            members,
        })
    }

    pub fn issuer(&self) -> &IssuerId {
        match self {
            Memo::Credential { issuer, .. }
            | Memo::Batch { issuer, .. }
            | Memo::Revocation { issuer, .. }
            | Memo::RevocationList { issuer, .. }
            | Memo::StatusList { issuer, .. } => issuer,
        }
    }

    /// The credentials this memo revokes (`ca1:r` or `ca1:v`), none for other memos.
    pub fn revoked(&self) -> Vec<Revoked> {
        match self {
            Memo::Revocation {
                credential, hash, ..
            } => vec![Revoked {
                credential: *credential,
                hash: *hash,
            }],
            Memo::RevocationList { members, .. } => members.clone(),
            Memo::Credential { .. } | Memo::Batch { .. } | Memo::StatusList { .. } => Vec::new(),
        }
    }

    /// The canonical text. A `Batch` with a count outside 1..=MAX_BATCH_COUNT encodes to a
    /// text `decode` rejects; `Memo::batch` prevents building one.
    pub fn encode(&self) -> String {
        match self {
            Memo::Credential {
                issuer,
                credential,
                hash,
            } => format!(
                "{MEMO_PREFIX}:c:{issuer}:{}:{}",
                credential.as_uuid().hyphenated(),
                hash.to_base58()
            ),
            Memo::Batch {
                issuer,
                batch,
                count,
                root,
            } => format!(
                "{MEMO_PREFIX}:b:{issuer}:{}:{count}:{}",
                batch.as_uuid().hyphenated(),
                root.to_base58()
            ),
            Memo::Revocation {
                issuer,
                credential,
                hash,
            } => format!(
                "{MEMO_PREFIX}:r:{issuer}:{}:{}",
                credential.as_uuid().hyphenated(),
                hash.to_base58()
            ),
            Memo::StatusList {
                issuer,
                list,
                version,
                hash,
            } => format!(
                "{MEMO_PREFIX}:s:{issuer}:{list}:{version}:{}",
                hash.to_base58()
            ),
            Memo::RevocationList {
                issuer,
                batch,
                members,
            } => {
                let entries: Vec<String> = members
                    .iter()
                    .map(|m| {
                        format!(
                            "{}.{}",
                            m.credential.as_uuid().hyphenated(),
                            m.hash.to_base58()
                        )
                    })
                    .collect();
                format!(
                    "{MEMO_PREFIX}:v:{issuer}:{}:{}",
                    batch.as_uuid().hyphenated(),
                    entries.join(",")
                )
            }
        }
    }
}

/// 1..=MAX_REVOCATIONS_PER_MEMO entries naming distinct credentials.
fn valid_revocation_list(members: &[Revoked]) -> bool {
    (1..=MAX_REVOCATIONS_PER_MEMO).contains(&members.len())
        && members
            .iter()
            .enumerate()
            .all(|(i, m)| members[..i].iter().all(|o| o.credential != m.credential))
}

fn parse_revocation_entries(text: &str) -> Option<Vec<Revoked>> {
    let members = text
        .split(',')
        .map(|entry| {
            let (credential, hash) = entry.split_once('.')?;
            Some(Revoked {
                credential: CredentialId::from_uuid(parse_canonical_uuid(credential)?),
                hash: parse_canonical_hash(hash)?,
            })
        })
        .collect::<Option<Vec<Revoked>>>()?;
    valid_revocation_list(&members).then_some(members)
}

impl fmt::Display for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// Only the canonical lowercase hyphenated form.
fn parse_canonical_uuid(text: &str) -> Option<Uuid> {
    if text.len() != UUID_TEXT_LEN {
        return None;
    }
    let uuid = Uuid::try_parse(text).ok()?;
    (uuid.hyphenated().to_string() == text).then_some(uuid)
}

/// Decimal 1..=MAX_BATCH_COUNT without sign, leading zeros or anything else.
fn parse_canonical_count(text: &str) -> Option<u32> {
    if text.is_empty()
        || text.len() > MAX_COUNT_DIGITS
        || text.starts_with('0')
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let count: u32 = text.parse().ok()?;
    (1..=MAX_BATCH_COUNT).contains(&count).then_some(count)
}

/// Decimal `u32` without sign or leading zeros (`"0"` itself is canonical).
fn parse_canonical_u32(text: &str) -> Option<u32> {
    if text.is_empty()
        || text.len() > 10
        || (text.len() > 1 && text.starts_with('0'))
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    text.parse().ok()
}

fn parse_canonical_hash(text: &str) -> Option<CredentialHash> {
    let hash = CredentialHash::from_base58(text).ok()?;
    // Base58 is already bijective for a fixed byte length; re-encoding makes that explicit.
    (hash.to_base58() == text).then_some(hash)
}

fn parse_canonical_root(text: &str) -> Option<MerkleRoot> {
    let root = MerkleRoot::from_base58(text).ok()?;
    (root.to_base58() == text).then_some(root)
}

fn decode_memo(text: &str) -> Option<Memo> {
    if text.len() > MAX_MEMO_LEN {
        return None;
    }
    let fields: Vec<&str> = text.split(':').collect();
    match fields.as_slice() {
        [prefix, "c", issuer, credential, hash] if *prefix == MEMO_PREFIX => {
            Some(Memo::Credential {
                issuer: IssuerId::parse(issuer).ok()?,
                credential: CredentialId::from_uuid(parse_canonical_uuid(credential)?),
                hash: parse_canonical_hash(hash)?,
            })
        }
        [prefix, "r", issuer, credential, hash] if *prefix == MEMO_PREFIX => {
            Some(Memo::Revocation {
                issuer: IssuerId::parse(issuer).ok()?,
                credential: CredentialId::from_uuid(parse_canonical_uuid(credential)?),
                hash: parse_canonical_hash(hash)?,
            })
        }
        [prefix, "b", issuer, batch, count, root] if *prefix == MEMO_PREFIX => Some(Memo::Batch {
            issuer: IssuerId::parse(issuer).ok()?,
            batch: BatchId::from_uuid(parse_canonical_uuid(batch)?),
            count: parse_canonical_count(count)?,
            root: parse_canonical_root(root)?,
        }),
        [prefix, "v", issuer, batch, entries] if *prefix == MEMO_PREFIX => {
            Some(Memo::RevocationList {
                issuer: IssuerId::parse(issuer).ok()?,
                batch: BatchId::from_uuid(parse_canonical_uuid(batch)?),
                members: parse_revocation_entries(entries)?,
            })
        }
        [prefix, "s", issuer, list, version, hash] if *prefix == MEMO_PREFIX => {
            let hash = StatusListHash::from_base58(hash)
                .ok()
                .filter(|h| h.to_base58() == *hash)?;
            Some(Memo::StatusList {
                issuer: IssuerId::parse(issuer).ok()?,
                list: parse_canonical_u32(list)?,
                version: parse_canonical_u32(version).filter(|v| *v >= 1)?,
                hash,
            })
        }
        _ => None,
    }
}

/// Decodes one memo text. Total: anything but a canonical encoding is `NotOurs`.
pub fn decode(text: &str) -> Decoded {
    match decode_memo(text) {
        Some(memo) => Decoded::Ours(memo),
        None => Decoded::NotOurs,
    }
}

/// Splits a `[<len>] <text>` item at the start of `rest`; returns the length and the text
/// after the `"] "`.
fn split_length_prefix(rest: &str) -> Option<(usize, &str)> {
    let inner = rest.strip_prefix('[')?;
    let close = inner.find("] ")?;
    let digits = &inner[..close];
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, &inner[close + 2..]))
}

/// What the RPC node writes instead of a memo that is not valid UTF-8.
const UNPARSEABLE: &str = "(unparseable)";
const SEPARATOR: &str = "; ";

/// Walks the field using the byte lengths the node wrote, so a foreign memo that quotes
/// `"; [n] ca1:..."` inside its own text stays one (foreign) memo. Returns the texts, or
/// `None` if the field does not have that exact shape.
fn split_by_lengths(field: &str) -> Option<Vec<&str>> {
    let mut texts = Vec::new();
    let mut rest = field;
    loop {
        let (len, after) = split_length_prefix(rest)?;
        let (text, tail) = match after.get(..len).zip(after.get(len..)) {
            Some((text, tail)) if tail.is_empty() || tail.starts_with(SEPARATOR) => (text, tail),
            // A non-UTF-8 memo is shown as "(unparseable)" with the raw byte length.
            _ => {
                let tail = after.strip_prefix(UNPARSEABLE)?;
                if !(tail.is_empty() || tail.starts_with(SEPARATOR)) {
                    return None;
                }
                (UNPARSEABLE, tail)
            }
        };
        texts.push(text);
        if tail.is_empty() {
            return Some(texts);
        }
        rest = &tail[SEPARATOR.len()..];
    }
}

/// Every memo of ours in the `memo` field of a `getSignaturesForAddress` entry.
///
/// The node formats each memo instruction as `[<byte length>] <text>` and joins them with
/// `"; "`. The field is parsed by those lengths first; if the node's output does not have
/// that shape (other node versions, truncation), it falls back to splitting on `"; "` and
/// stripping each `[n] ` prefix. Anything that does not decode is ignored. This field is a
/// convenience for scanning: the authoritative memo is the transaction's instruction data.
pub fn decode_rpc_memo_field(field: &str) -> Vec<Memo> {
    let texts = split_by_lengths(field).unwrap_or_else(|| {
        field
            .split(SEPARATOR)
            .map(|item| split_length_prefix(item).map_or(item, |(_, text)| text))
            .collect()
    });
    texts
        .into_iter()
        .filter_map(|text| match decode(text) {
            Decoded::Ours(memo) => Some(memo),
            Decoded::NotOurs => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn issuer(s: &str) -> IssuerId {
        IssuerId::parse(s).unwrap()
    }

    fn credential_memo() -> Memo {
        Memo::Credential {
            issuer: issuer("uni-graz"),
            credential: CredentialId::from_uuid(Uuid::from_u128(
                0x0190_7e0a_1b2c_7d3e_8f40_1234_5678_9abc,
            )),
            hash: CredentialHash::from_bytes([0x11; 32]),
        }
    }

    #[test]
    fn encodes_the_documented_format() {
        let memo = credential_memo();
        let text = memo.encode();
        assert_eq!(
            text,
            format!(
                "ca1:c:uni-graz:01907e0a-1b2c-7d3e-8f40-123456789abc:{}",
                CredentialHash::from_bytes([0x11; 32]).to_base58()
            )
        );
        assert_eq!(decode(&text), Decoded::Ours(memo));

        let batch = Memo::batch(
            issuer("tu"),
            BatchId::from_uuid(Uuid::nil()),
            1000,
            MerkleRoot::from_bytes([0; 32]),
        )
        .unwrap();
        assert_eq!(
            batch.encode(),
            format!(
                "ca1:b:tu:00000000-0000-0000-0000-000000000000:1000:{}",
                "1".repeat(32)
            )
        );
        assert_eq!(decode(&batch.encode()), Decoded::Ours(batch));
        let revocation = Memo::Revocation {
            issuer: issuer("tu"),
            credential: CredentialId::from_uuid(Uuid::max()),
            hash: CredentialHash::from_bytes([0xff; 32]),
        };
        assert!(revocation
            .encode()
            .starts_with("ca1:r:tu:ffffffff-ffff-ffff-ffff-ffffffffffff:"));
        assert_eq!(decode(&revocation.encode()), Decoded::Ours(revocation));
    }

    fn revoked(n: u128) -> Revoked {
        Revoked {
            credential: CredentialId::from_uuid(Uuid::from_u128(u128::MAX - n)),
            hash: CredentialHash::from_bytes([0xff; 32]),
        }
    }

    #[test]
    fn max_memo_len_is_the_longest_encoding() {
        assert_eq!(MAX_MEMO_LEN, 895);
        let longest = Memo::revocation_list(
            issuer(&"z".repeat(32)),
            BatchId::from_uuid(Uuid::max()),
            (0..MAX_REVOCATIONS_PER_MEMO as u128).map(revoked).collect(),
        )
        .unwrap();
        assert_eq!(longest.encode().len(), MAX_MEMO_LEN);
        assert!(matches!(decode(&longest.encode()), Decoded::Ours(_)));
        // Every other kind is far shorter.
        let batch = Memo::batch(
            issuer(&"z".repeat(32)),
            BatchId::from_uuid(Uuid::max()),
            MAX_BATCH_COUNT,
            MerkleRoot::from_bytes([0xff; 32]),
        )
        .unwrap();
        assert_eq!(batch.encode().len(), 128);
    }

    #[test]
    fn a_revocation_list_names_one_to_ten_distinct_credentials() {
        let make = |members: Vec<Revoked>| {
            Memo::revocation_list(issuer("tu"), BatchId::from_uuid(Uuid::nil()), members)
        };
        assert_eq!(make(vec![]), Err(MemoError::RevocationListSize(0)));
        assert_eq!(
            make((0..11).map(revoked).collect()),
            Err(MemoError::RevocationListSize(11))
        );
        assert!(
            make(vec![revoked(1), revoked(1)]).is_err(),
            "a credential twice"
        );
        let two = make(vec![revoked(2), revoked(1)]).unwrap();
        let text = two.encode();
        assert_eq!(
            text,
            format!(
                "ca1:v:tu:00000000-0000-0000-0000-000000000000:ffffffff-ffff-ffff-ffff-fffffffffffd.{h},ffffffff-ffff-ffff-ffff-fffffffffffe.{h}",
                h = CredentialHash::from_bytes([0xff; 32]).to_base58()
            )
        );
        assert_eq!(decode(&text), Decoded::Ours(two.clone()));
        assert_eq!(two.revoked(), vec![revoked(2), revoked(1)]);
        // What the builder refuses, the decoder refuses too.
        let entry = text.rsplit(',').next().unwrap();
        assert_eq!(decode(&format!("{text},{entry}")), Decoded::NotOurs);
        assert_eq!(decode(&format!("{text},")), Decoded::NotOurs);
        assert_eq!(
            decode("ca1:v:tu:00000000-0000-0000-0000-000000000000:"),
            Decoded::NotOurs
        );
    }

    #[test]
    fn batch_count_is_range_checked() {
        let make = |count| {
            Memo::batch(
                issuer("tu"),
                BatchId::from_uuid(Uuid::nil()),
                count,
                MerkleRoot::from_bytes([1; 32]),
            )
        };
        assert_eq!(make(0), Err(MemoError::BatchCount(0)));
        assert_eq!(make(1_000_001), Err(MemoError::BatchCount(1_000_001)));
        assert!(make(1).is_ok());
        // A hand-built out-of-range batch encodes to something decode refuses.
        let bad = Memo::Batch {
            issuer: issuer("tu"),
            batch: BatchId::from_uuid(Uuid::nil()),
            count: 0,
            root: MerkleRoot::from_bytes([1; 32]),
        };
        assert_eq!(decode(&bad.encode()), Decoded::NotOurs);
    }

    #[test]
    fn non_canonical_and_foreign_texts_are_not_ours() {
        let good = credential_memo().encode();
        let root = MerkleRoot::from_bytes([2; 32]).to_base58();
        let uuid = "01907e0a-1b2c-7d3e-8f40-123456789abc";
        let cases = [
            String::new(),
            "hello".to_string(),
            "ca1".to_string(),
            "ca1:".to_string(),
            good.replacen("ca1", "ca2", 1),
            good.replacen("ca1", "CA1", 1),
            good.replacen(":c:", ":x:", 1),
            good.replacen(":c:", ":C:", 1),
            good.replacen("uni-graz", "Uni-Graz", 1),
            good.replacen("uni-graz", "", 1),
            good.replacen(uuid, &uuid.to_uppercase(), 1),
            good.replacen(uuid, &uuid.replace('-', ""), 1),
            good.replacen(uuid, &format!("{{{uuid}}}"), 1),
            format!("{good}:extra"),
            format!("{good}\n"),
            format!(" {good}"),
            format!("{good}1"),
            good[..good.len() - 1].to_string(),
            good.replacen(":c:", ":b:", 1),
            good.replacen(":c:", ":r:", 1).replacen("ca1", "ca1:r", 1),
            format!("ca1:b:tu:{uuid}:01000:{root}"),
            format!("ca1:b:tu:{uuid}:+1000:{root}"),
            format!("ca1:b:tu:{uuid}:0:{root}"),
            format!("ca1:b:tu:{uuid}:1000001:{root}"),
            format!("ca1:b:tu:{uuid}:1e3:{root}"),
            format!("ca1:b:tu:{uuid}::{root}"),
            format!(
                "ca1:b:tu:{uuid}:10:{}",
                bs58::encode([2u8; 31]).into_string()
            ),
            format!(
                "ca1:b:tu:{uuid}:10:{}",
                bs58::encode([2u8; 33]).into_string()
            ),
            format!("ca1:b:tu:{uuid}:10:0{}", &root[1..]),
            format!("ca1:c:tu:{uuid}:{}", "1".repeat(1000)),
        ];
        for case in cases {
            assert_eq!(decode(&case), Decoded::NotOurs, "{case:?}");
        }
        assert!(matches!(
            decode(&format!("ca1:b:tu:{uuid}:1000000:{root}")),
            Decoded::Ours(_)
        ));
    }

    #[test]
    fn rpc_memo_field_yields_our_memos_only() {
        let ours = credential_memo();
        let text = ours.encode();
        let field = format!("[{}] {text}", text.len());
        assert_eq!(decode_rpc_memo_field(&field), vec![ours.clone()]);

        let foreign = "hello; world";
        let field = format!(
            "[{}] {foreign}; [{}] {text}; [3] (unparseable); [1] x",
            foreign.len(),
            text.len()
        );
        assert_eq!(decode_rpc_memo_field(&field), vec![ours.clone()]);

        // A foreign memo quoting ours inside its own text is one foreign memo.
        let quoting = format!("see; [{}] {text}", text.len());
        let field = format!("[{}] {quoting}", quoting.len());
        assert!(decode_rpc_memo_field(&field).is_empty());

        // Unexpected shapes fall back to splitting on "; ".
        let field = format!("[999] {text}; garbage; {text}");
        assert_eq!(decode_rpc_memo_field(&field), vec![ours.clone(), ours]);
        assert!(decode_rpc_memo_field("").is_empty());
        assert!(decode_rpc_memo_field("[").is_empty());
        assert!(decode_rpc_memo_field("[18446744073709551616] x").is_empty());
    }

    fn arb_issuer() -> impl Strategy<Value = IssuerId> {
        "[a-z0-9][a-z0-9-]{0,31}".prop_map(|s| IssuerId::parse(&s).unwrap())
    }

    fn arb_memo() -> impl Strategy<Value = Memo> {
        prop_oneof![
            (arb_issuer(), any::<u128>(), any::<[u8; 32]>()).prop_map(|(issuer, id, hash)| {
                Memo::Credential {
                    issuer,
                    credential: CredentialId::from_uuid(Uuid::from_u128(id)),
                    hash: CredentialHash::from_bytes(hash),
                }
            }),
            (
                arb_issuer(),
                any::<u128>(),
                1..=MAX_BATCH_COUNT,
                any::<[u8; 32]>()
            )
                .prop_map(|(issuer, id, count, root)| Memo::Batch {
                    issuer,
                    batch: BatchId::from_uuid(Uuid::from_u128(id)),
                    count,
                    root: MerkleRoot::from_bytes(root),
                }),
            (arb_issuer(), any::<u128>(), any::<[u8; 32]>()).prop_map(|(issuer, id, hash)| {
                Memo::Revocation {
                    issuer,
                    credential: CredentialId::from_uuid(Uuid::from_u128(id)),
                    hash: CredentialHash::from_bytes(hash),
                }
            }),
            (
                arb_issuer(),
                any::<u128>(),
                prop::collection::btree_map(
                    any::<u128>(),
                    any::<[u8; 32]>(),
                    1..=MAX_REVOCATIONS_PER_MEMO
                )
            )
                .prop_map(|(issuer, id, members)| Memo::RevocationList {
                    issuer,
                    batch: BatchId::from_uuid(Uuid::from_u128(id)),
                    members: members
                        .into_iter()
                        .map(|(id, hash)| Revoked {
                            credential: CredentialId::from_uuid(Uuid::from_u128(id)),
                            hash: CredentialHash::from_bytes(hash),
                        })
                        .collect(),
                }),
            (arb_issuer(), any::<u32>(), 1..=u32::MAX, any::<[u8; 32]>()).prop_map(
                |(issuer, list, version, hash)| Memo::StatusList {
                    issuer,
                    list,
                    version,
                    hash: StatusListHash::from_bytes(hash),
                }
            ),
        ]
    }

    #[test]
    fn status_list_memos_are_canonical() {
        let hash = StatusListHash::from_bytes([3; 32]);
        let memo = Memo::StatusList {
            issuer: issuer("tu"),
            list: 0,
            version: 1,
            hash,
        };
        let text = memo.encode();
        assert_eq!(text, format!("ca1:s:tu:0:1:{}", hash.to_base58()));
        assert_eq!(decode(&text), Decoded::Ours(memo));
        let b58 = hash.to_base58();
        for bad in [
            format!("ca1:s:tu:00:1:{b58}"),
            format!("ca1:s:tu:0:0:{b58}"),
            format!("ca1:s:tu:0:01:{b58}"),
            format!("ca1:s:tu:-1:1:{b58}"),
            format!("ca1:s:tu:4294967296:1:{b58}"),
            format!("ca1:s:tu:0:1:{b58}:x"),
            "ca1:s:tu:0:1:1".to_string(),
        ] {
            assert_eq!(decode(&bad), Decoded::NotOurs, "{bad}");
        }
        assert!(text.len() <= MAX_MEMO_LEN);
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Replace(usize, char),
        Delete(usize),
        Insert(usize, char),
    }

    fn arb_mutation() -> impl Strategy<Value = Mutation> {
        let c = prop_oneof![
            prop::sample::select(vec![':', '-', '0', '1', 'a', 'A', 'z', 'Z', ' ', 'é', '\n']),
            any::<char>(),
        ];
        prop_oneof![
            (any::<usize>(), c.clone()).prop_map(|(i, c)| Mutation::Replace(i, c)),
            any::<usize>().prop_map(Mutation::Delete),
            (any::<usize>(), c).prop_map(|(i, c)| Mutation::Insert(i, c)),
        ]
    }

    fn apply(text: &str, mutation: &Mutation) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        match *mutation {
            Mutation::Replace(i, c) => {
                let i = i % chars.len();
                chars[i] = c;
            }
            Mutation::Delete(i) => {
                chars.remove(i % chars.len());
            }
            Mutation::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
        }
        chars.into_iter().collect()
    }

    proptest! {
        #[test]
        fn round_trip(memo in arb_memo()) {
            let text = memo.encode();
            prop_assert!(text.len() <= MAX_MEMO_LEN);
            prop_assert_eq!(decode(&text), Decoded::Ours(memo.clone()));
            let field = format!("[{}] {}", text.len(), text);
            prop_assert_eq!(decode_rpc_memo_field(&field), vec![memo]);
        }

        #[test]
        fn decode_never_panics_on_strings(s in "\\PC*|ca1:[cbrsv]:.{0,80}") {
            let _ = decode(&s);
            let _ = decode_rpc_memo_field(&s);
        }

        #[test]
        fn decode_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = decode(&text);
            let _ = decode_rpc_memo_field(&text);
        }

        #[test]
        fn mutated_encodings_are_rejected_or_canonical(
            memo in arb_memo(),
            mutations in prop::collection::vec(arb_mutation(), 1..4),
        ) {
            let mut text = memo.encode();
            for mutation in &mutations {
                text = apply(&text, mutation);
            }
            match decode(&text) {
                Decoded::NotOurs => {}
                Decoded::Ours(other) => prop_assert_eq!(other.encode(), text),
            }
        }

        #[test]
        fn rpc_field_finds_every_memo_among_foreign_ones(
            items in prop::collection::vec(
                prop_oneof![arb_memo().prop_map(Ok), "\\PC{0,60}".prop_map(Err)],
                0..6,
            ),
        ) {
            let texts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Ok(memo) => memo.encode(),
                    Err(foreign) => foreign.clone(),
                })
                .collect();
            let field = texts
                .iter()
                .map(|t| format!("[{}] {t}", t.len()))
                .collect::<Vec<_>>()
                .join("; ");
            let expected: Vec<Memo> = texts
                .iter()
                .filter_map(|t| match decode(t) {
                    Decoded::Ours(m) => Some(m),
                    Decoded::NotOurs => None,
                })
                .collect();
            prop_assert_eq!(decode_rpc_memo_field(&field), expected);
        }
    }
}
