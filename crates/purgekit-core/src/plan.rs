//! The planner: from a request and a provider's limits to batches, before anything is sent.
//!
//! [`plan_provider`] checks capabilities and maps every target (unsupported targets become
//! report rows, never silent drops), then [`pack`] removes exact duplicates, groups by scope and
//! packs greedily under the count and byte limits, wildcards alone where required, keeping input
//! order within a scope. Both are pure and run in O(n).

use std::collections::HashMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::provider::{Item, Mapped, Provider};
use crate::request::{OptionKind, PurgeRequest};

/// Items that go out in one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Batch {
    /// The scope shared by every item (empty when the provider has none).
    pub scope: String,
    /// The items, in input order.
    pub items: Vec<Item>,
    /// Body bytes, overhead included.
    pub bytes: usize,
}

/// Where one input item went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// Index of the batch.
    pub batch: usize,
    /// Index within the batch.
    pub slot: usize,
    /// The earlier input item this one duplicates exactly (merged into its slot).
    pub duplicate_of: Option<usize>,
}

/// Packs `items` into batches under `limits`; `overhead` is the body size of an empty request.
///
/// Returns the batches and, for every input item in order, where it went. Errors only when one
/// item alone cannot fit the byte limit.
///
/// ```
/// use purgekit_core::{pack, Item, Limits, TargetKind};
/// let item = |v: &str| Item { kind: TargetKind::Url, value: v.into(), scope: String::new(),
///                             wildcard: false, bytes: 10 };
/// let limits = Limits { max_items: 2, ..Limits::default() };
/// let (batches, placements) = pack(vec![item("/a"), item("/b"), item("/a"), item("/c")], &limits, 0).unwrap();
/// assert_eq!(batches.len(), 2);
/// assert_eq!(placements[2].duplicate_of, Some(0));
/// ```
pub fn pack(
    items: Vec<Item>,
    limits: &Limits,
    overhead: usize,
) -> Result<(Vec<Batch>, Vec<Placement>)> {
    let max_items = limits.max_items.max(1);
    let max_bytes = limits.max_body_bytes.unwrap_or(usize::MAX);

    // Exact duplicates: same scope, kind, value and wildcard flag.
    let mut duplicate_of: Vec<Option<usize>> = Vec::with_capacity(items.len());
    {
        let mut first: HashMap<&Item, usize> = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            duplicate_of.push(match first.get(item) {
                Some(&j) => Some(j),
                None => {
                    first.insert(item, i);
                    None
                }
            });
            if overhead.saturating_add(item.bytes) > max_bytes {
                return Err(Error::invalid(
                    &item.value,
                    format!(
                        "too large for one request: {} bytes with the request's own {} exceed the \
                         provider's {max_bytes}-byte body limit",
                        item.bytes, overhead
                    ),
                ));
            }
        }
    }

    let mut batches: Vec<Batch> = Vec::new();
    let mut placements: Vec<Placement> = Vec::with_capacity(items.len());
    // Per scope: the batch still open for non-wildcard items.
    let mut open: HashMap<String, usize> = HashMap::new();

    for (i, item) in items.into_iter().enumerate() {
        if let Some(j) = duplicate_of[i] {
            placements.push(Placement {
                duplicate_of: Some(j),
                ..placements[j]
            });
            continue;
        }
        let alone = item.wildcard && limits.wildcard_alone;
        let scope_key = if limits.group_by_scope {
            item.scope.as_str()
        } else {
            ""
        };
        let target_batch = if alone {
            None
        } else {
            open.get(scope_key).copied().filter(|&b| {
                let batch = &batches[b];
                batch.items.len() < max_items && batch.bytes + item.bytes <= max_bytes
            })
        };
        let b = match target_batch {
            Some(b) => b,
            None => {
                batches.push(Batch {
                    scope: if limits.group_by_scope {
                        item.scope.clone()
                    } else {
                        String::new()
                    },
                    items: Vec::new(),
                    bytes: overhead,
                });
                let b = batches.len() - 1;
                if !alone {
                    open.insert(scope_key.to_owned(), b);
                }
                b
            }
        };
        let batch = &mut batches[b];
        batch.bytes += item.bytes;
        batch.items.push(item);
        placements.push(Placement {
            batch: b,
            slot: batch.items.len() - 1,
            duplicate_of: None,
        });
    }
    Ok((batches, placements))
}

/// What happens to one input target at one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "disposition")]
pub enum Disposition {
    /// Sent in `batch` at `slot`.
    Planned {
        /// Index of the batch.
        batch: usize,
        /// Index within the batch.
        slot: usize,
        /// The earlier target whose identical item carries this one too.
        merged_with: Option<String>,
    },
    /// Not sent: the provider cannot purge it.
    Unsupported {
        /// Why.
        reason: String,
    },
}

/// One target's plan at one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetPlan {
    /// The target as given (`tag:` prefixed for tags).
    pub target: String,
    /// What happens to it.
    #[serde(flatten)]
    pub disposition: Disposition,
}

/// An HTTP request exactly as it would be sent, secrets redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedRequest {
    /// `POST`, `GET`…
    pub method: String,
    /// The full URL.
    pub url: String,
    /// Headers in order, secrets redacted.
    pub headers: Vec<(String, String)>,
    /// The body (UTF-8; every provider's bodies are text), secrets redacted.
    pub body: String,
}

/// The plan for one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderPlan {
    /// The purger's name (the config's provider name).
    pub provider: String,
    /// The provider kind.
    pub kind: String,
    /// Batches in sending order.
    pub batches: Vec<Batch>,
    /// One entry per input target, in input order.
    pub targets: Vec<TargetPlan>,
    /// Warnings for every planned row (advisory options the provider ignores, client-side dry run).
    pub warnings: Vec<String>,
    /// The requests that would be sent, one per batch, secrets redacted. Empty for a dry run
    /// done client-side.
    pub requests: Vec<PlannedRequest>,
    /// The dry run is done here, not by the provider: nothing will be sent.
    pub client_side_dry_run: bool,
}

/// The plan of a purge across one or more providers. Nothing has been sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// One entry per provider.
    pub providers: Vec<ProviderPlan>,
}

/// Plans `request` for `provider` under the name `name`: checks options and capabilities, maps
/// each target and packs the items. Encodes nothing (see [`crate::ProviderPurger::plan`]).
pub fn plan_provider<P: Provider + ?Sized>(
    name: &str,
    provider: &P,
    request: &PurgeRequest,
) -> Result<ProviderPlan> {
    let options = request.options();
    provider.check_options(options)?;
    let caps = provider.capabilities();
    let kind = provider.kind();

    let mut missing_semantic = Vec::new();
    let mut warnings = Vec::new();
    let mut client_side_dry_run = false;
    for option in options.requested() {
        if caps.supports_option(option) {
            continue;
        }
        if option.is_semantic() {
            missing_semantic.push(option.name());
        } else if option == OptionKind::DryRun {
            client_side_dry_run = true;
            warnings.push(format!(
                "{kind} has no native dry run: validated and planned here, nothing sent"
            ));
        } else {
            warnings.push(format!(
                "{kind} does not support option `{option}`: purged without it"
            ));
        }
    }

    let mut items = Vec::new();
    let mut owners = Vec::new(); // items[i] came from targets[owners[i]]
    let mut dispositions: Vec<Option<Disposition>> = Vec::with_capacity(request.targets().len());
    for (t, target) in request.targets().iter().enumerate() {
        let unsupported = if !caps.supports_target(target.kind()) {
            Some(format!("{kind} does not support {} targets", target.kind()))
        } else if !missing_semantic.is_empty() {
            Some(format!(
                "{kind} does not support option `{}`",
                missing_semantic.join("`, `")
            ))
        } else {
            match provider.map(target, options)? {
                Mapped::Item(item) => {
                    items.push(item);
                    owners.push(t);
                    None
                }
                Mapped::Unsupported(reason) => Some(reason),
            }
        };
        dispositions.push(unsupported.map(|reason| Disposition::Unsupported { reason }));
    }

    let (batches, placements) = pack(items, &provider.limits(), provider.body_overhead(options))?;
    for (i, placement) in placements.into_iter().enumerate() {
        let merged_with = placement
            .duplicate_of
            .map(|j| request.targets()[owners[j]].to_string());
        dispositions[owners[i]] = Some(Disposition::Planned {
            batch: placement.batch,
            slot: placement.slot,
            merged_with,
        });
    }

    let targets = request
        .targets()
        .iter()
        .zip(dispositions)
        .map(|(target, disposition)| TargetPlan {
            target: target.to_string(),
            disposition: disposition.expect("every target is either mapped or unsupported"),
        })
        .collect();
    Ok(ProviderPlan {
        provider: name.to_owned(),
        kind: kind.to_owned(),
        batches,
        targets,
        warnings,
        requests: Vec::new(),
        client_side_dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::TargetKind;
    use proptest::prelude::*;

    fn item(scope: &str, value: &str, wildcard: bool, bytes: usize) -> Item {
        Item {
            kind: if wildcard {
                TargetKind::Pattern
            } else {
                TargetKind::Url
            },
            value: value.to_owned(),
            scope: scope.to_owned(),
            wildcard,
            bytes,
        }
    }

    fn limits(max_items: usize, max_body: Option<usize>, alone: bool, scoped: bool) -> Limits {
        Limits {
            max_items,
            max_body_bytes: max_body,
            wildcard_alone: alone,
            group_by_scope: scoped,
            ..Limits::default()
        }
    }

    #[test]
    fn groups_by_scope_and_keeps_order() {
        let items = vec![
            item("a", "/1", false, 1),
            item("b", "/1", false, 1),
            item("a", "/2", false, 1),
            item("a", "/*", true, 1),
            item("a", "/3", false, 1),
        ];
        let (batches, placements) = pack(items, &limits(200, None, true, true), 0).unwrap();
        let values: Vec<Vec<&str>> = batches
            .iter()
            .map(|b| b.items.iter().map(|i| i.value.as_str()).collect())
            .collect();
        assert_eq!(values, [vec!["/1", "/2", "/3"], vec!["/1"], vec!["/*"]]);
        assert_eq!(batches[1].scope, "b");
        assert_eq!(
            placements[4],
            Placement {
                batch: 0,
                slot: 2,
                duplicate_of: None
            }
        );
    }

    #[test]
    fn same_value_in_two_scopes_is_not_a_duplicate() {
        let items = vec![item("a", "/x", false, 1), item("b", "/x", false, 1)];
        let (batches, placements) = pack(items, &limits(10, None, false, true), 0).unwrap();
        assert_eq!(batches.len(), 2);
        assert!(placements.iter().all(|p| p.duplicate_of.is_none()));
    }

    #[test]
    fn splits_on_bytes() {
        let items = (0..5)
            .map(|i| item("", &format!("/{i}"), false, 40))
            .collect();
        let (batches, _) = pack(items, &limits(100, Some(100), false, false), 10).unwrap();
        let sizes: Vec<usize> = batches.iter().map(|b| b.items.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert!(batches.iter().all(|b| b.bytes <= 100));
    }

    #[test]
    fn an_item_too_big_alone_is_an_error_naming_it() {
        let err = pack(
            vec![item("", "/huge", false, 95)],
            &limits(1, Some(100), false, false),
            10,
        )
        .unwrap_err();
        assert!(err.to_string().contains("/huge"), "{err}");
    }

    fn arb_items() -> impl Strategy<Value = Vec<Item>> {
        prop::collection::vec(
            (0..3usize, 0..40usize, prop::bool::weighted(0.1), 1..60usize),
            0..400,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(scope, value, wildcard, bytes)| {
                    item(&format!("s{scope}"), &format!("/{value}"), wildcard, bytes)
                })
                .collect()
        })
    }

    fn arb_limits() -> impl Strategy<Value = Limits> {
        (
            1..50usize,
            prop::option::of(100..400usize),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(n, bytes, alone, scoped)| limits(n, bytes, alone, scoped))
    }

    proptest! {
        #[test]
        fn every_item_lands_exactly_once(items in arb_items(), limits in arb_limits()) {
            let (batches, placements) = pack(items.clone(), &limits, 20).unwrap();
            prop_assert_eq!(placements.len(), items.len());
            // Every distinct item sits in exactly one slot, and every slot holds an input item.
            let slots: usize = batches.iter().map(|b| b.items.len()).sum();
            let distinct = placements.iter().filter(|p| p.duplicate_of.is_none()).count();
            prop_assert_eq!(slots, distinct);
            for (i, p) in placements.iter().enumerate() {
                prop_assert_eq!(&batches[p.batch].items[p.slot], &items[i]);
                if let Some(j) = p.duplicate_of {
                    prop_assert!(j < i);
                    prop_assert_eq!(&items[j], &items[i]);
                }
            }
        }

        #[test]
        fn no_batch_breaks_a_limit(items in arb_items(), limits in arb_limits()) {
            let (batches, _) = pack(items, &limits, 20).unwrap();
            for b in &batches {
                prop_assert!(!b.items.is_empty());
                prop_assert!(b.items.len() <= limits.max_items);
                let bytes = 20 + b.items.iter().map(|i| i.bytes).sum::<usize>();
                prop_assert_eq!(b.bytes, bytes);
                if let Some(max) = limits.max_body_bytes { prop_assert!(b.bytes <= max); }
                if limits.wildcard_alone && b.items.iter().any(|i| i.wildcard) {
                    prop_assert_eq!(b.items.len(), 1);
                }
                if limits.group_by_scope {
                    prop_assert!(b.items.iter().all(|i| i.scope == b.scope));
                }
            }
        }

        #[test]
        fn deterministic_and_order_preserving(items in arb_items(), limits in arb_limits()) {
            let first = pack(items.clone(), &limits, 20).unwrap();
            let again = pack(items, &limits, 20).unwrap();
            prop_assert_eq!(&first, &again);
            // Within a scope, (batch, slot) grows with input position.
            let (_, placements) = first;
            let mut last: HashMap<&str, (usize, usize)> = HashMap::new();
            let (batches, _) = &again;
            for p in placements.iter().filter(|p| p.duplicate_of.is_none()) {
                let scope = batches[p.batch].scope.as_str();
                let is_wild = batches[p.batch].items[p.slot].wildcard && limits.wildcard_alone;
                if is_wild { continue; }
                if let Some(prev) = last.insert(scope, (p.batch, p.slot)) {
                    prop_assert!(prev < (p.batch, p.slot));
                }
            }
        }

        #[test]
        fn batches_are_as_few_as_greedy_packing_allows(items in arb_items(), limits in arb_limits()) {
            let (batches, _) = pack(items, &limits, 20).unwrap();
            let max_bytes = limits.max_body_bytes.unwrap_or(usize::MAX);
            // No two successive multi-item-capable batches of one scope could have been one:
            // the next batch's first item did not fit in the previous open batch.
            let mut prev_open: HashMap<&str, usize> = HashMap::new();
            for (b, batch) in batches.iter().enumerate() {
                let alone = limits.wildcard_alone && batch.items[0].wildcard;
                if alone { continue; }
                if let Some(&p) = prev_open.get(batch.scope.as_str()) {
                    let prev = &batches[p];
                    let first = &batch.items[0];
                    prop_assert!(prev.items.len() == limits.max_items
                        || prev.bytes + first.bytes > max_bytes);
                }
                prev_open.insert(batch.scope.as_str(), b);
            }
            // With no byte limit and no wildcards alone, the count is the minimum: ceil(n / max).
            if limits.max_body_bytes.is_none() && !limits.wildcard_alone {
                let mut per_scope: HashMap<&str, usize> = HashMap::new();
                for b in &batches { *per_scope.entry(b.scope.as_str()).or_default() += b.items.len(); }
                let minimum: usize = per_scope.values().map(|n| n.div_ceil(limits.max_items)).sum();
                prop_assert_eq!(batches.len(), minimum);
            }
        }
    }
}
