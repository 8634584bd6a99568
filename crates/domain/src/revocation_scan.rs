//! How far an offline verifier must read an anchoring key's history before it may say
//! "not revoked".
//!
//! A revocation memo (`ca1:r`, or a `ca1:v` list) is only ever sent after its credential's anchor is finalized, so
//! it lies in a LATER slot than the anchor, in the finalized history of the key that paid for
//! the anchor. The history is read newest first, a page at a time. A fixed number of pages
//! would let anyone hide a revocation behind cheap traffic to the key (about 5,000 one-lamport
//! transfers push it past five pages), so the search reads back to the anchor's own slot,
//! whatever the number of pages, and when it cannot get there (the node has pruned that far
//! back, or the verifier's page budget runs out) the answer is *inconclusive*, never
//! "not revoked".

use serde::Serialize;

/// What to do after reading one page of the key's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStep {
    /// The page did not reach the anchor's slot and more history follows: read the next one.
    NextPage,
    /// Every transaction from the anchor's slot onwards has been read.
    Covered,
    /// The search stops before the anchor's slot: no verdict on revocation.
    Stop(Incomplete),
}

/// Why a search could not reach the anchor's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Incomplete {
    /// The node's history of the key ends after the anchor's slot (pruned, or a node
    /// without full history).
    HistoryUnavailable,
    /// The verifier's page budget ran out first.
    PageLimit,
}

impl Incomplete {
    pub const fn code(self) -> &'static str {
        match self {
            Incomplete::HistoryUnavailable => "history_unavailable",
            Incomplete::PageLimit => "page_limit",
        }
    }
}

/// The decision after a page. `anchor_slot`: the slot of the anchor transaction as the chain
/// reports it (never the bundle's claim). `pages_read`: pages read so far, this one included.
/// `oldest_slot`: the slot of the page's last (oldest) entry, `None` for an empty page.
/// `page_full`: the page had the maximum size, so the node may have more.
pub fn after_page(
    anchor_slot: u64,
    pages_read: u32,
    max_pages: u32,
    oldest_slot: Option<u64>,
    page_full: bool,
) -> ScanStep {
    if oldest_slot.is_some_and(|slot| slot <= anchor_slot) {
        return ScanStep::Covered;
    }
    if !page_full {
        return ScanStep::Stop(Incomplete::HistoryUnavailable);
    }
    if pages_read >= max_pages {
        return ScanStep::Stop(Incomplete::PageLimit);
    }
    ScanStep::NextPage
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reaching_the_anchor_slot_covers_the_history() {
        assert_eq!(after_page(100, 1, 50, Some(100), true), ScanStep::Covered);
        assert_eq!(after_page(100, 1, 50, Some(20), false), ScanStep::Covered);
        assert_eq!(after_page(100, 50, 50, Some(99), true), ScanStep::Covered);
    }

    #[test]
    fn a_full_page_above_the_anchor_reads_on_until_the_budget() {
        assert_eq!(after_page(100, 1, 50, Some(101), true), ScanStep::NextPage);
        assert_eq!(
            after_page(100, 50, 50, Some(101), true),
            ScanStep::Stop(Incomplete::PageLimit)
        );
    }

    #[test]
    fn history_ending_above_the_anchor_is_inconclusive() {
        assert_eq!(
            after_page(100, 1, 50, Some(101), false),
            ScanStep::Stop(Incomplete::HistoryUnavailable)
        );
        assert_eq!(
            after_page(100, 1, 50, None, false),
            ScanStep::Stop(Incomplete::HistoryUnavailable)
        );
    }

    proptest! {
        /// Simulates a key history (slots, newest first) split into pages: the search says
        /// Covered exactly when the pages it read include every entry at or after the anchor
        /// slot, and never Covered when an unread entry after the anchor remains.
        #[test]
        fn covered_only_when_every_later_entry_was_read(
            mut slots in proptest::collection::vec(0u64..500, 0..300),
            anchor in 0u64..500,
            page in 1usize..40,
            max_pages in 1u32..20,
            pruned_below in 0u64..500,
        ) {
            slots.sort_unstable_by(|a, b| b.cmp(a));
            // A node that pruned its history keeps only the newer part.
            let history: Vec<u64> = slots.into_iter().filter(|s| *s >= pruned_below).collect();
            let mut read = 0usize;
            let mut pages = 0u32;
            let step = loop {
                let chunk = &history[read..(read + page).min(history.len())];
                read += chunk.len();
                pages += 1;
                let step = after_page(anchor, pages, max_pages, chunk.last().copied(), chunk.len() == page);
                if step != ScanStep::NextPage {
                    break step;
                }
            };
            let unread_after_anchor = history[read..].iter().any(|s| *s > anchor);
            if step == ScanStep::Covered {
                prop_assert!(!unread_after_anchor);
                prop_assert!(history.get(read.saturating_sub(1)).is_some_and(|s| *s <= anchor));
            }
            prop_assert!(pages <= max_pages.max(1));
        }
    }
}
