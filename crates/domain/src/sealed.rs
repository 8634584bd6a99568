//! Sealing of issuer signing seeds at rest.
//!
//! Signing seeds are stored in Postgres encrypted with ChaCha20-Poly1305 under a master key
//! that comes from configuration (a mounted secret), so a database dump or backup alone leaks
//! no signing key. The caller passes associated data that names the row (e.g. issuer id and
//! key id) so a sealed seed copied onto another issuer's row fails to open instead of silently
//! letting that issuer sign with a foreign key.
//!
//! Layout: `nonce (12 bytes) || ciphertext (32) || tag (16)`. Nonces are random: with the few
//! seeds one master key ever seals, a 96-bit random nonce's collision risk is negligible.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::SecureRandom;

const SEED_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// Length of every sealed seed: nonce + ciphertext + tag.
pub const SEALED_SEED_LEN: usize = NONCE_LEN + SEED_LEN + TAG_LEN;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the master key must be 32 bytes of base64")]
    InvalidMasterKey,
    #[error("the random number generator failed")]
    Rng,
    #[error("a sealed seed must be {SEALED_SEED_LEN} bytes, got {0}")]
    WrongLength(usize),
    /// Wrong master key, wrong associated data, or tampered bytes: deliberately not told apart.
    #[error("the sealed seed could not be opened (wrong key, wrong associated data or corrupted)")]
    OpenFailed,
    #[error("encryption failed")]
    SealFailed,
}

/// The key that seals signing seeds. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey(bytes)
    }

    /// Parses standard base64 (padded) or base64url (unpadded); surrounding whitespace, such
    /// as the newline at the end of a mounted secret file, is ignored.
    pub fn from_base64(text: &str) -> Result<MasterKey, SealError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| SealError::InvalidMasterKey)?;
        <[u8; 32]>::try_from(bytes)
            .map(MasterKey)
            .map_err(|_| SealError::InvalidMasterKey)
    }

    /// Standard padded base64, the form `from_base64` is documented to take.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// A fresh random master key (for operator tooling).
    pub fn generate(rng: &dyn SecureRandom) -> Result<MasterKey, SealError> {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes).map_err(|_| SealError::Rng)?;
        Ok(MasterKey(bytes))
    }

    fn aead_key(&self) -> Result<LessSafeKey, SealError> {
        UnboundKey::new(&CHACHA20_POLY1305, &self.0)
            .map(LessSafeKey::new)
            .map_err(|_| SealError::InvalidMasterKey)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Additional authenticated data binding a sealed seed to its issuer and key id: a sealed
/// seed copied onto another issuer's row (or another key's) does not open.
pub fn seal_aad(issuer: &crate::IssuerId, key_id: &crate::KeyId) -> Vec<u8> {
    format!(
        "issuer-signing-key/v1/{}/{}",
        issuer.as_str(),
        key_id.as_str()
    )
    .into_bytes()
}

/// Additional authenticated data of a webhook endpoint's secret (32 bytes, sealed like a
/// seed): a sealed secret copied onto another endpoint does not open.
pub fn webhook_secret_aad(endpoint: &uuid::Uuid) -> Vec<u8> {
    format!("webhook-secret/v1/{endpoint}").into_bytes()
}

/// Encrypts `seed` under `master`, binding it to `aad`.
pub fn seal_seed(
    master: &MasterKey,
    aad: &[u8],
    seed: &[u8; 32],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| SealError::Rng)?;
    let mut in_out = seed.to_vec();
    master
        .aead_key()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut in_out,
        )
        .map_err(|_| SealError::SealFailed)?;
    let mut sealed = Vec::with_capacity(SEALED_SEED_LEN);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&in_out);
    Ok(sealed)
}

/// Decrypts a value produced by `seal_seed` with the same master key and `aad`. Total: any
/// other input is an error.
pub fn open_seed(master: &MasterKey, aad: &[u8], sealed: &[u8]) -> Result<[u8; 32], SealError> {
    if sealed.len() != SEALED_SEED_LEN {
        return Err(SealError::WrongLength(sealed.len()));
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::OpenFailed)?;
    let mut in_out = ciphertext.to_vec();
    let plain = master
        .aead_key()?
        .open_in_place(nonce, Aad::from(aad), &mut in_out)
        .map_err(|_| SealError::OpenFailed)?;
    <[u8; 32]>::try_from(&plain[..]).map_err(|_| SealError::OpenFailed)
}

/// Opens with the first of `keys` that fits, in order (the current master key first, then
/// those being rotated away from), so replicas keep signing while a master-key rotation is
/// under way.
pub fn open_with_any(keys: &[MasterKey], aad: &[u8], sealed: &[u8]) -> Result<[u8; 32], SealError> {
    let mut last = SealError::OpenFailed;
    for key in keys {
        match open_seed(key, aad, sealed) {
            Ok(seed) => return Ok(seed),
            Err(e @ SealError::WrongLength(_)) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The master-key rotation rule for one sealed seed: `None` if it already opens under
/// `current` (nothing to do, so a rotation can be run again after an interruption), else the
/// seed sealed afresh under `current` after opening it with one of `previous`. A seed that
/// opens under none of them is an error: the rotation must then change nothing at all.
pub fn reseal(
    current: &MasterKey,
    previous: &[MasterKey],
    aad: &[u8],
    sealed: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Option<Vec<u8>>, SealError> {
    if open_seed(current, aad, sealed).is_ok() {
        return Ok(None);
    }
    let seed = open_with_any(previous, aad, sealed)?;
    seal_seed(current, aad, &seed, rng).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ring::rand::SystemRandom;

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_bytes([byte; 32])
    }

    const AAD: &[u8] = b"issuer=uni-graz;key=k1";

    #[test]
    fn round_trip() {
        let rng = SystemRandom::new();
        let seed = [42u8; 32];
        let sealed = seal_seed(&master(1), AAD, &seed, &rng).unwrap();
        assert_eq!(sealed.len(), SEALED_SEED_LEN);
        assert_ne!(&sealed[NONCE_LEN..NONCE_LEN + 32], &seed);
        assert_eq!(open_seed(&master(1), AAD, &sealed).unwrap(), seed);
        // Random nonces: sealing twice gives different bytes.
        assert_ne!(seal_seed(&master(1), AAD, &seed, &rng).unwrap(), sealed);
    }

    #[test]
    fn wrong_key_wrong_aad_and_tampering_fail() {
        let rng = SystemRandom::new();
        let sealed = seal_seed(&master(1), AAD, &[7; 32], &rng).unwrap();
        assert_eq!(
            open_seed(&master(2), AAD, &sealed),
            Err(SealError::OpenFailed)
        );
        assert_eq!(
            open_seed(&master(1), b"issuer=other;key=k1", &sealed),
            Err(SealError::OpenFailed)
        );
        for index in [0, NONCE_LEN, SEALED_SEED_LEN - 1] {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x80;
            assert_eq!(
                open_seed(&master(1), AAD, &tampered),
                Err(SealError::OpenFailed)
            );
        }
    }

    #[test]
    fn truncated_or_extended_input_fails() {
        let rng = SystemRandom::new();
        let sealed = seal_seed(&master(1), AAD, &[7; 32], &rng).unwrap();
        assert_eq!(
            open_seed(&master(1), AAD, &sealed[..SEALED_SEED_LEN - 1]),
            Err(SealError::WrongLength(SEALED_SEED_LEN - 1))
        );
        assert!(open_seed(&master(1), AAD, &[]).is_err());
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(open_seed(&master(1), AAD, &longer).is_err());
    }

    #[test]
    fn reseal_moves_a_seed_to_the_current_key_once() {
        let rng = SystemRandom::new();
        let seed = [5u8; 32];
        let old = seal_seed(&master(1), AAD, &seed, &rng).unwrap();
        let new = reseal(&master(2), &[master(3), master(1)], AAD, &old, &rng)
            .unwrap()
            .expect("re-sealed");
        assert_eq!(open_seed(&master(2), AAD, &new).unwrap(), seed);
        assert_eq!(open_seed(&master(1), AAD, &new), Err(SealError::OpenFailed));
        // Run again: nothing to do.
        assert_eq!(reseal(&master(2), &[master(1)], AAD, &new, &rng), Ok(None));
        // A seed no key opens is refused, not skipped.
        let stranger = seal_seed(&master(9), AAD, &seed, &rng).unwrap();
        assert_eq!(
            reseal(&master(2), &[master(1)], AAD, &stranger, &rng),
            Err(SealError::OpenFailed)
        );
        assert_eq!(
            open_with_any(&[master(1), master(9)], AAD, &stranger).unwrap(),
            seed
        );
        assert!(open_with_any(&[], AAD, &stranger).is_err());
    }

    proptest! {
        #[test]
        fn a_resealed_seed_opens_under_the_current_key_to_the_same_seed(
            seed in any::<[u8; 32]>(), old in any::<u8>(), current in any::<u8>(),
        ) {
            let rng = SystemRandom::new();
            let sealed = seal_seed(&master(old), AAD, &seed, &rng).unwrap();
            let after = reseal(&master(current), &[master(old)], AAD, &sealed, &rng)
                .unwrap()
                .unwrap_or(sealed);
            prop_assert_eq!(open_seed(&master(current), AAD, &after).unwrap(), seed);
        }
    }

    #[test]
    fn master_key_parses_base64_and_hides_itself() {
        let key = master(9);
        let text = key.to_base64();
        assert_eq!(MasterKey::from_base64(&text).unwrap(), key);
        assert_eq!(MasterKey::from_base64(&format!("{text}\n")).unwrap(), key);
        assert_eq!(
            MasterKey::from_base64(&URL_SAFE_NO_PAD.encode([9u8; 32])).unwrap(),
            key
        );
        assert_eq!(
            MasterKey::from_base64(&STANDARD.encode([9u8; 31])),
            Err(SealError::InvalidMasterKey)
        );
        assert_eq!(
            MasterKey::from_base64("not base64!"),
            Err(SealError::InvalidMasterKey)
        );
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
        let generated = MasterKey::generate(&SystemRandom::new()).unwrap();
        assert_ne!(generated, key);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn open_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            prop_assert!(open_seed(&master(1), AAD, &bytes).is_err());
        }
    }
}
