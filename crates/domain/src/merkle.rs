//! Merkle trees over credential hashes, for batch anchoring.
//!
//! One memo anchors the root of a batch; each credential keeps an inclusion proof. Hashing is
//! domain-separated (leaf = SHA-256(0x00 || credential hash), node = SHA-256(0x01 || left ||
//! right)) so an inner node can never be passed off as a leaf. An odd node at the end of a
//! level is promoted unchanged instead of being paired with a copy of itself: duplicating it
//! would make the trees `[a, b, c]` and `[a, b, c, c]` share a root (the CVE-2012-2459
//! ambiguity), letting one batch be claimed to contain a credential twice.
//!
//! Building is O(n) hashes, a proof is O(log n) steps. Fixed vectors live in
//! `tests/vectors/merkle_v1.json`.

use serde::{Deserialize, Serialize};

use crate::hash::{hex32, sha256, CredentialHash};

/// Prefix byte of leaf hashes.
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix byte of inner node hashes.
pub const NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x00 || credential hash)`.
pub fn leaf_hash(leaf: &CredentialHash) -> [u8; 32] {
    sha256(&[&[LEAF_PREFIX], leaf.as_bytes()])
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    sha256(&[&[NODE_PREFIX], left, right])
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("a Merkle tree needs at least one leaf")]
    Empty,
}

/// The root of a batch tree: hex in JSON, base58 in memos.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MerkleRoot([u8; 32]);

crate::hash::fixed_bytes_newtype!(MerkleRoot, 32, to_hex, from_hex);

/// The side on which the SIBLING sits at one step of a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Left,
    Right,
}

/// One step of an inclusion proof: the sibling hash and its side.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProofStep {
    pub side: Side,
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
}

/// An inclusion proof from a leaf to the root, bottom-up. Levels where the node was promoted
/// contribute no step.
///
/// `verify` authenticates membership only; [`MerkleProof::verify_at`] (what proof bundles use)
/// also authenticates `leaf_index`: in a tree of known size, the index alone fixes on which
/// side every sibling sits and at which levels the node is promoted, so a proof whose index
/// was edited no longer fits its own path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MerkleProof {
    pub leaf_index: u64,
    pub steps: Vec<ProofStep>,
}

impl MerkleProof {
    /// The root this proof leads to from `leaf`.
    pub fn root_for(&self, leaf: &CredentialHash) -> MerkleRoot {
        let root = self
            .steps
            .iter()
            .fold(leaf_hash(leaf), |current, step| match step.side {
                Side::Left => node_hash(&step.hash, &current),
                Side::Right => node_hash(&current, &step.hash),
            });
        MerkleRoot(root)
    }

    pub fn verify(&self, leaf: &CredentialHash, root: &MerkleRoot) -> bool {
        // Roots are public values, so a plain comparison leaks nothing worth protecting.
        self.root_for(leaf) == *root
    }

    /// Membership AND position: the path must be exactly the one leaf `leaf_index` has in a
    /// tree of `count` leaves (sides and promoted levels as `MerkleTree::build` makes them),
    /// and lead to `root`.
    pub fn verify_at(&self, leaf: &CredentialHash, root: &MerkleRoot, count: u64) -> bool {
        if count == 0 || self.leaf_index >= count {
            return false;
        }
        let (mut index, mut width) = (self.leaf_index, count);
        let mut steps = self.steps.iter();
        let mut current = leaf_hash(leaf);
        while width > 1 {
            let promoted = index == width - 1 && width % 2 == 1;
            if !promoted {
                let Some(step) = steps.next() else {
                    return false;
                };
                let expected = if index % 2 == 0 {
                    Side::Right
                } else {
                    Side::Left
                };
                if step.side != expected {
                    return false;
                }
                current = match step.side {
                    Side::Left => node_hash(&step.hash, &current),
                    Side::Right => node_hash(&current, &step.hash),
                };
            }
            index /= 2;
            width = width.div_ceil(2);
        }
        steps.next().is_none() && MerkleRoot(current) == *root
    }
}

/// A complete tree, kept level by level (leaf hashes first, root last) so proofs are cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<[u8; 32]>>,
}

impl MerkleTree {
    pub fn build(leaves: &[CredentialHash]) -> Result<MerkleTree, MerkleError> {
        if leaves.is_empty() {
            return Err(MerkleError::Empty);
        }
        let mut levels = vec![leaves.iter().map(leaf_hash).collect::<Vec<_>>()];
        loop {
            let current = match levels.last() {
                Some(level) if level.len() > 1 => level,
                _ => break,
            };
            let next: Vec<[u8; 32]> = current
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(left, right),
                    // The odd last node is promoted unchanged (see the module docs).
                    [single] => *single,
                    // `chunks(2)` never yields an empty or longer slice.
                    _ => [0u8; 32],
                })
                .collect();
            levels.push(next);
        }
        Ok(MerkleTree { levels })
    }

    pub fn root(&self) -> MerkleRoot {
        // `build` guarantees a last level with exactly one node.
        MerkleRoot(
            self.levels
                .last()
                .and_then(|level| level.first())
                .copied()
                .unwrap_or([0u8; 32]),
        )
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// Always false: `build` refuses empty trees. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The inclusion proof of leaf `index`, or `None` if out of range.
    pub fn proof(&self, index: usize) -> Option<MerkleProof> {
        if index >= self.len() {
            return None;
        }
        let mut steps = Vec::new();
        let mut position = index;
        // The root level has no sibling.
        for level in &self.levels[..self.levels.len().saturating_sub(1)] {
            let sibling = if position % 2 == 1 {
                level.get(position - 1).map(|hash| (Side::Left, hash))
            } else {
                // None when this node is the promoted odd last one.
                level.get(position + 1).map(|hash| (Side::Right, hash))
            };
            if let Some((side, hash)) = sibling {
                steps.push(ProofStep { side, hash: *hash });
            }
            position /= 2;
        }
        Some(MerkleProof {
            leaf_index: u64::try_from(index).unwrap_or(u64::MAX),
            steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaf(i: u32) -> CredentialHash {
        CredentialHash::from_bytes(sha256(&[&i.to_be_bytes()]))
    }

    fn leaves(n: u32) -> Vec<CredentialHash> {
        (0..n).map(leaf).collect()
    }

    #[test]
    fn empty_tree_is_an_error() {
        assert_eq!(MerkleTree::build(&[]), Err(MerkleError::Empty));
    }

    #[test]
    fn single_leaf_root_is_its_leaf_hash() {
        let tree = MerkleTree::build(&leaves(1)).unwrap();
        assert_eq!(tree.root(), MerkleRoot::from_bytes(leaf_hash(&leaf(0))));
        let proof = tree.proof(0).unwrap();
        assert!(proof.steps.is_empty());
        assert!(proof.verify(&leaf(0), &tree.root()));
        assert_eq!(tree.proof(1), None);
    }

    #[test]
    fn odd_node_is_promoted_not_duplicated() {
        let l: Vec<[u8; 32]> = leaves(3).iter().map(leaf_hash).collect();
        let tree = MerkleTree::build(&leaves(3)).unwrap();
        let expected = node_hash(&node_hash(&l[0], &l[1]), &l[2]);
        assert_eq!(tree.root().as_bytes(), &expected);

        let mut with_duplicate = leaves(3);
        with_duplicate.push(leaf(2));
        assert_ne!(
            MerkleTree::build(&with_duplicate).unwrap().root(),
            tree.root()
        );
        // The promoted leaf's proof has a single step: the left subtree.
        let proof = tree.proof(2).unwrap();
        assert_eq!(
            proof.steps,
            vec![ProofStep {
                side: Side::Left,
                hash: node_hash(&l[0], &l[1])
            }]
        );
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        // A two-leaf tree's root must not verify as a leaf of anything by reinterpreting it.
        let tree = MerkleTree::build(&leaves(2)).unwrap();
        let as_leaf = CredentialHash::from_bytes(*tree.root().as_bytes());
        assert_ne!(leaf_hash(&as_leaf), *tree.root().as_bytes());
    }

    #[test]
    fn proof_serializes_with_hex_and_lowercase_sides() {
        let tree = MerkleTree::build(&leaves(2)).unwrap();
        let proof = tree.proof(0).unwrap();
        let json = serde_json::to_value(&proof).unwrap();
        let expected_hash = hex::encode(leaf_hash(&leaf(1)));
        assert_eq!(
            json,
            serde_json::json!({
                "leaf_index": 0,
                "steps": [{"side": "right", "hash": expected_hash}]
            })
        );
        let back: MerkleProof = serde_json::from_value(json).unwrap();
        assert_eq!(back, proof);
        let root_json = serde_json::to_string(&tree.root()).unwrap();
        assert_eq!(root_json, format!("\"{}\"", tree.root().to_hex()));
        assert!(serde_json::from_str::<MerkleProof>(
            r#"{"leaf_index":0,"steps":[{"side":"up","hash":"00"}]}"#
        )
        .is_err());
    }

    #[test]
    fn root_encodings_round_trip() {
        let root = MerkleTree::build(&leaves(5)).unwrap().root();
        assert_eq!(MerkleRoot::from_base58(&root.to_base58()).unwrap(), root);
        assert_eq!(MerkleRoot::from_hex(&root.to_hex()).unwrap(), root);
    }

    #[test]
    fn ten_thousand_leaves_build_and_prove() {
        let many = leaves(10_001);
        let tree = MerkleTree::build(&many).unwrap();
        assert_eq!(tree.len(), 10_001);
        let root = tree.root();
        for index in (0..many.len()).step_by(97).chain([many.len() - 1]) {
            let proof = tree.proof(index).unwrap();
            assert!(proof.steps.len() <= 14);
            assert!(proof.verify(&many[index], &root), "leaf {index}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn every_proof_verifies_and_any_change_fails(
            raw in prop::collection::vec(any::<[u8; 32]>(), 1..=300),
            pick in any::<prop::sample::Index>(),
            step_pick in any::<prop::sample::Index>(),
            bit in 0usize..256,
        ) {
            let hashes: Vec<CredentialHash> =
                raw.into_iter().map(CredentialHash::from_bytes).collect();
            let tree = MerkleTree::build(&hashes).unwrap();
            let root = tree.root();
            let count = hashes.len() as u64;
            for (index, hash) in hashes.iter().enumerate() {
                let proof = tree.proof(index).unwrap();
                prop_assert_eq!(proof.leaf_index, index as u64);
                prop_assert!(proof.verify(hash, &root));
                prop_assert!(proof.verify_at(hash, &root, count));
            }

            let index = pick.index(hashes.len());
            let proof = tree.proof(index).unwrap();

            // Any other index (or batch size) no longer fits the path.
            for wrong in [index as u64 + 1, index.wrapping_sub(1) as u64, count, u64::MAX] {
                let mut moved = proof.clone();
                moved.leaf_index = wrong;
                prop_assert!(!moved.verify_at(&hashes[index], &root, count));
            }
            if count > 1 {
                let other_index = (index + 1 + step_pick.index(hashes.len() - 1)) % hashes.len();
                let mut moved = proof.clone();
                moved.leaf_index = other_index as u64;
                prop_assert!(!moved.verify_at(&hashes[index], &root, count), "{} -> {}", index, other_index);
            }

            let mut other = *hashes[index].as_bytes();
            other[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!proof.verify(&CredentialHash::from_bytes(other), &root));

            if !proof.steps.is_empty() {
                let step = step_pick.index(proof.steps.len());

                let mut tampered = proof.clone();
                tampered.steps[step].hash[bit / 8] ^= 1 << (bit % 8);
                prop_assert!(!tampered.verify(&hashes[index], &root));

                let mut flipped = proof.clone();
                flipped.steps[step].side = match flipped.steps[step].side {
                    Side::Left => Side::Right,
                    Side::Right => Side::Left,
                };
                prop_assert!(!flipped.verify(&hashes[index], &root));

                let mut dropped = proof.clone();
                dropped.steps.remove(step);
                prop_assert!(!dropped.verify(&hashes[index], &root));
            }
        }
    }
}
