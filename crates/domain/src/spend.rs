//! Spend control (#18): how many lamports one issuer's anchoring may cost per hour and per
//! day. All issuers share the relay's wallet, so without a budget one API key (a leaked one,
//! or a runaway script) could drain it for everyone. Over budget, the relay *defers* the
//! issuer's new transactions (the jobs wait, nothing is dropped or dead-lettered) and the
//! others carry on.

use serde::Deserialize;

/// Lamports an issuer may spend; `0` means no limit for that window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct SpendBudget {
    #[serde(default)]
    pub lamports_per_hour: u64,
    #[serde(default)]
    pub lamports_per_day: u64,
}

/// Lamports an issuer spent (or committed to: signed transactions) in the trailing windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    pub last_hour: u64,
    pub last_day: u64,
}

/// Which window a new transaction would overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendDecision {
    Within,
    OverHourly { spent: u64, budget: u64 },
    OverDaily { spent: u64, budget: u64 },
}

/// Whether a new transaction costing `cost` fits the budget. A window whose budget is 0 has
/// no limit.
pub fn check_spend(budget: SpendBudget, spent: Spent, cost: u64) -> SpendDecision {
    let over = |spent: u64, limit: u64| limit != 0 && spent.saturating_add(cost) > limit;
    if over(spent.last_hour, budget.lamports_per_hour) {
        SpendDecision::OverHourly {
            spent: spent.last_hour,
            budget: budget.lamports_per_hour,
        }
    } else if over(spent.last_day, budget.lamports_per_day) {
        SpendDecision::OverDaily {
            spent: spent.last_day,
            budget: budget.lamports_per_day,
        }
    } else {
        SpendDecision::Within
    }
}

/// `spent` after a transaction of `cost` is committed to.
pub fn add_spend(spent: Spent, cost: u64) -> Spent {
    Spent {
        last_hour: spent.last_hour.saturating_add(cost),
        last_day: spent.last_day.saturating_add(cost),
    }
}

/// The share of each limited window's budget that `spent` uses (1.0 = all of it; above 1.0
/// only if the budget was lowered): what the relay exports for the "nearly used" alert. A
/// window whose budget is 0 has no limit and no share.
pub fn budget_used(budget: SpendBudget, spent: Spent) -> Vec<(&'static str, f64)> {
    let share = |spent: u64, limit: u64| spent as f64 / limit as f64;
    let mut used = Vec::with_capacity(2);
    if budget.lamports_per_hour != 0 {
        used.push(("hour", share(spent.last_hour, budget.lamports_per_hour)));
    }
    if budget.lamports_per_day != 0 {
        used.push(("day", share(spent.last_day, budget.lamports_per_day)));
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_means_no_limit_and_the_hour_is_checked_first() {
        let none = SpendBudget::default();
        assert_eq!(
            check_spend(
                none,
                Spent {
                    last_hour: u64::MAX,
                    last_day: u64::MAX
                },
                5_000
            ),
            SpendDecision::Within
        );
        let budget = SpendBudget {
            lamports_per_hour: 10_000,
            lamports_per_day: 15_000,
        };
        let fresh = Spent::default();
        assert_eq!(check_spend(budget, fresh, 10_000), SpendDecision::Within);
        assert_eq!(
            check_spend(
                budget,
                Spent {
                    last_hour: 6_000,
                    last_day: 6_000
                },
                5_000
            ),
            SpendDecision::OverHourly {
                spent: 6_000,
                budget: 10_000
            }
        );
        assert_eq!(
            check_spend(
                budget,
                Spent {
                    last_hour: 0,
                    last_day: 12_000
                },
                5_000
            ),
            SpendDecision::OverDaily {
                spent: 12_000,
                budget: 15_000
            }
        );
    }

    proptest! {
        /// Admitting transactions one by one while the check says `Within` never takes an
        /// issuer past either budget.
        #[test]
        fn admitted_spend_never_exceeds_a_budget(
            hour in 0u64..100_000, day in 0u64..300_000,
            costs in proptest::collection::vec(1u64..20_000, 0..64),
        ) {
            let budget = SpendBudget { lamports_per_hour: hour, lamports_per_day: day };
            let mut spent = Spent::default();
            for cost in costs {
                if check_spend(budget, spent, cost) == SpendDecision::Within {
                    spent = add_spend(spent, cost);
                }
            }
            prop_assert!(hour == 0 || spent.last_hour <= hour);
            prop_assert!(day == 0 || spent.last_day <= day);
        }
    }

    #[test]
    fn the_used_share_is_per_limited_window() {
        let spent = Spent {
            last_hour: 8_000,
            last_day: 20_000,
        };
        assert_eq!(
            budget_used(
                SpendBudget {
                    lamports_per_hour: 10_000,
                    lamports_per_day: 0
                },
                spent
            ),
            vec![("hour", 0.8)]
        );
        assert_eq!(
            budget_used(
                SpendBudget {
                    lamports_per_hour: 10_000,
                    lamports_per_day: 40_000
                },
                spent
            ),
            vec![("hour", 0.8), ("day", 0.5)]
        );
        assert!(budget_used(SpendBudget::default(), spent).is_empty());
    }
}
