//! Compute budget and fee arithmetic for memo transactions.
//!
//! Owns the pure rules: how many compute units a memo of a given length may use, which
//! priority price to pay given the recent fees the node reports, and what a signed
//! transaction will cost. No I/O, so the numbers are unit-tested and the formula's
//! measurements live next to it.

/// Largest memo we put in one transaction. A 1,000-byte memo plus the compute-budget
/// instructions and one signature still fits in the 1,232-byte packet limit; the memo
/// program itself would accept more, the packet would not.
pub const MAX_MEMO_BYTES: usize = 1_000;

/// Base fee per signature, in lamports.
pub const LAMPORTS_PER_SIGNATURE: u64 = 5_000;

/// Highest compute-unit limit a transaction may request.
pub const MAX_COMPUTE_UNIT_LIMIT: u32 = 1_400_000;

/// `(memo length in bytes, compute units consumed)` by the whole anchor transaction
/// (set_compute_unit_limit + set_compute_unit_price + SPL Memo v3 signed by the payer, ASCII
/// memo), measured with `simulateTransaction` on solana-test-validator 4.2.2 (see
/// `ChainClient::simulate_memo_compute_units`). Fitted: about 15,200 + 350.8 x len.
///
/// The constant part is mostly the memo program logging the signer's base58 address, so it
/// varies by ~300 CU with the key (14,906-15,218 for an empty memo over three fresh keys;
/// these are the highest). The compute-budget instructions themselves cost nothing measurable.
/// The per-byte part is the memo program's UTF-8 check and `{:?}` log of the text. The
/// default 200,000-CU limit runs out at about 527 bytes.
pub const MEASURED_MEMO_COMPUTE_UNITS: &[(usize, u64)] = &[
    (0, 15_218),
    (1, 15_609),
    (10, 19_073),
    (50, 33_174),
    (100, 50_726),
    (250, 103_299),
    (500, 190_851),
    (566, 214_013),
    (750, 278_538),
    (900, 330_976),
    (1_000, 366_007),
];

/// Fitted cost of an anchor transaction before the first memo byte, rounded up to cover the
/// key-dependent part.
pub const MEMO_BASE_COMPUTE_UNITS: u32 = 15_500;

/// Fitted cost per memo byte (measured 350.8), rounded up.
pub const MEMO_COMPUTE_UNITS_PER_BYTE: u32 = 351;

/// Compute-unit limit to request for a memo of `memo_len` bytes:
/// `1.1 x (15,500 + 351 x len) + 2,000`, i.e. 19,050 for an empty memo and 405,150 for the
/// largest (1,000 bytes; measured 366,007).
///
/// Why a margin: a limit that is too low fails the transaction on chain, and a failed
/// transaction still pays its fee and must be re-signed; a limit that is too high only costs
/// priority fee on the unused units. 10% + 2,000 CU absorbs key-dependent costs and modest
/// cost-model changes in future runtime versions. The
/// `memo_compute_unit_limit_covers_the_simulated_cost` integration test re-measures the cost on
/// the validator and fails if the formula no longer covers it.
pub fn compute_unit_limit_for_memo(memo_len: usize) -> u32 {
    let len = u64::try_from(memo_len).unwrap_or(u64::MAX);
    let fitted = u64::from(MEMO_BASE_COMPUTE_UNITS)
        .saturating_add(len.saturating_mul(u64::from(MEMO_COMPUTE_UNITS_PER_BYTE)));
    let limit = (fitted.saturating_mul(11) / 10).saturating_add(2_000);
    u32::try_from(limit.min(u64::from(MAX_COMPUTE_UNIT_LIMIT))).unwrap_or(MAX_COMPUTE_UNIT_LIMIT)
}

/// Compute-unit price to pay, from the per-slot fees `getRecentPrioritizationFees` returned:
/// the `percentile` (nearest-rank; clamped to 0..=100) of the non-zero fees, capped at `cap`.
/// Zero fees are ignored because most slots of a quiet cluster report 0 and would drag any
/// percentile to 0 even when the busy slots needed a price. No non-zero fee → 0.
pub fn priority_fee_from_recent(recent: &[u64], percentile: u8, cap: u64) -> u64 {
    let mut fees: Vec<u64> = recent.iter().copied().filter(|&f| f > 0).collect();
    if fees.is_empty() {
        return 0;
    }
    fees.sort_unstable();
    let p = usize::from(percentile.min(100));
    // Nearest rank: the smallest fee with at least p% of the samples at or below it.
    let rank = (p * fees.len()).div_ceil(100).max(1);
    let idx = rank.saturating_sub(1).min(fees.len() - 1);
    fees[idx].min(cap)
}

/// Total fee in lamports: base fee per signature plus the priority fee
/// `ceil(limit × price / 1,000,000)`.
pub fn fee_lamports(signatures: u64, compute_unit_limit: u32, price_micro_lamports: u64) -> u64 {
    let priority =
        (u128::from(compute_unit_limit) * u128::from(price_micro_lamports)).div_ceil(1_000_000);
    let priority = u64::try_from(priority).unwrap_or(u64::MAX);
    signatures
        .saturating_mul(LAMPORTS_PER_SIGNATURE)
        .saturating_add(priority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_limit_grows_with_the_memo_and_stays_within_bounds() {
        let mut previous = 0;
        for len in 0..=MAX_MEMO_BYTES {
            let limit = compute_unit_limit_for_memo(len);
            assert!(limit > previous || len == 0, "not increasing at {len}");
            assert!(limit <= MAX_COMPUTE_UNIT_LIMIT);
            previous = limit;
        }
        // The default 200k limit is not enough for the largest memo; ours must be.
        assert!(compute_unit_limit_for_memo(MAX_MEMO_BYTES) > 200_000);
        assert_eq!(compute_unit_limit_for_memo(0), 19_050);
        assert_eq!(compute_unit_limit_for_memo(MAX_MEMO_BYTES), 405_150);
        assert_eq!(
            compute_unit_limit_for_memo(usize::MAX),
            MAX_COMPUTE_UNIT_LIMIT
        );
    }

    #[test]
    fn compute_limit_covers_the_measurements_with_margin() {
        for &(len, measured) in MEASURED_MEMO_COMPUTE_UNITS {
            let limit = u64::from(compute_unit_limit_for_memo(len));
            assert!(
                limit >= measured + measured / 10,
                "len {len}: limit {limit} leaves < 10% over measured {measured}"
            );
            assert!(
                limit <= measured * 13 / 10 + 10_000,
                "len {len}: limit {limit} is wasteful for measured {measured}"
            );
        }
    }

    #[test]
    fn priority_fee_takes_the_percentile_of_non_zero_fees() {
        assert_eq!(priority_fee_from_recent(&[], 75, 1_000), 0);
        assert_eq!(priority_fee_from_recent(&[0, 0, 0], 75, 1_000), 0);
        let fees = [0, 0, 10, 20, 30, 40, 0];
        assert_eq!(priority_fee_from_recent(&fees, 75, 1_000), 30);
        assert_eq!(priority_fee_from_recent(&fees, 100, 1_000), 40);
        assert_eq!(priority_fee_from_recent(&fees, 0, 1_000), 10);
        assert_eq!(priority_fee_from_recent(&fees, 50, 1_000), 20);
        assert_eq!(priority_fee_from_recent(&fees, 255, 1_000), 40);
        assert_eq!(priority_fee_from_recent(&fees, 75, 25), 25);
        assert_eq!(priority_fee_from_recent(&[7], 1, 1_000), 7);
    }

    #[test]
    fn fee_is_base_plus_rounded_up_priority() {
        assert_eq!(fee_lamports(1, 200_000, 0), 5_000);
        assert_eq!(fee_lamports(1, 200_000, 1), 5_001); // 0.2 rounds up
        assert_eq!(fee_lamports(1, 1_000_000, 1_000), 6_000);
        assert_eq!(fee_lamports(2, 1, 1), 10_001);
        assert_eq!(fee_lamports(1, u32::MAX, u64::MAX), u64::MAX);
    }
}
