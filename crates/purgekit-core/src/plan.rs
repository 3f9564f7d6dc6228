//! The planner: from a request and a provider's limits to batches, before anything is sent.
//!
//! [`plan_provider`] checks capabilities and maps every target (unsupported targets become
//! report rows, never silent drops), and packs each mapped item as it is produced: exact
//! duplicates merge, items group by scope and pack greedily under the count and byte limits,
//! wildcards alone where required, keeping input order within a scope. Both are pure and run in
//! O(n).
//!
//! The plan holds no items, only target indices: a purge of a million URLs must not keep a
//! million mapped items alive. [`ProviderPlan::batch`] maps a batch's targets again (mapping is
//! a pure function) just before the batch is encoded.
//!
//! Nor does it allocate per batch or per target: a provider with no batch call (Fastly's URL
//! purges) plans a million one-item batches. [`Batches`] keeps every batch's targets in one
//! shared index array (each batch a 16-byte span over it, its scope an index into a table of
//! the plan's distinct scopes), and [`ProviderPlan`] keeps each target's fate as one `u32` (its
//! position in that array, from which batch, slot and merged duplicate follow), unsupported
//! targets apart. [`BatchPlan`] and [`Disposition`] are the views read out of them.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::provider::{Batch, BatchId, Item, Mapped, Provider, RunId};
use crate::request::{OptionKind, Options, PurgeRequest, Target};

/// One planned batch, as read from its plan ([`Batches::get`]): which targets it carries, not
/// their items (see [`ProviderPlan::batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BatchPlan<'a> {
    /// The scope shared by every item (empty when the provider has none).
    pub scope: &'a str,
    /// Indices into the request's targets, in slot order; for a group of exact duplicates,
    /// the first target of the group.
    pub targets: &'a [u32],
    /// Body bytes, overhead included.
    pub bytes: usize,
    /// How many of its items are wildcards (counted against
    /// [`crate::InFlightCapacity::wildcards`]).
    pub wildcards: usize,
}

impl BatchPlan<'_> {
    /// The number of items (slots).
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// No items (never true of a planned batch).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// One batch as [`Batches`] stores it: no allocation of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    /// Index into [`Batches::scopes`].
    scope: u32,
    /// Where its targets end in [`Batches::slots`] (they start where the previous batch's
    /// end). While packing: how many targets it holds.
    end: u32,
    /// Body bytes, overhead included (the packer keeps every batch under `u32::MAX`).
    bytes: u32,
    /// How many of its items are wildcards.
    wildcards: u32,
}

/// The batches of a plan, in sending order: every batch's targets in one shared index array,
/// each batch a span over it with its scope interned. Read a batch with [`Batches::get`] or
/// [`Batches::iter`]; a plan from parts is built by [`PlanBuilder`].
#[derive(Debug, Clone, Default)]
pub struct Batches {
    spans: Vec<Span>,
    /// Every batch's targets, batch after batch.
    slots: Vec<u32>,
    /// The distinct scopes (a scope may appear twice: interning saves memory, it is not what
    /// makes two scopes equal).
    scopes: Vec<Box<str>>,
}

impl Batches {
    /// How many batches.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// No batches.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The number of items (slots) across all batches.
    pub fn items(&self) -> usize {
        self.slots.len()
    }

    /// Batch `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<BatchPlan<'_>> {
        let span = self.spans.get(index)?;
        Some(BatchPlan {
            scope: &self.scopes[span.scope as usize],
            targets: &self.slots[self.start(index)..span.end as usize],
            bytes: span.bytes as usize,
            wildcards: span.wildcards as usize,
        })
    }

    /// Batch `index`.
    ///
    /// # Panics
    ///
    /// When there is no batch `index`, as indexing a slice out of range does.
    pub fn at(&self, index: usize) -> BatchPlan<'_> {
        match self.get(index) {
            Some(batch) => batch,
            None => panic!("no batch {index} in a plan of {} batches", self.len()),
        }
    }

    /// Every batch, in sending order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = BatchPlan<'_>> + '_ {
        (0..self.len()).map(|i| self.at(i))
    }

    /// Appends a batch of `targets` (indices into the request's targets) under `scope`.
    /// Errors when it is empty or when `bytes` or the plan's total of targets leave `u32`.
    fn push(&mut self, scope: &str, targets: &[u32], bytes: usize, wildcards: usize) -> Result<()> {
        let end = u32::try_from(self.slots.len() + targets.len())
            .ok()
            .filter(|_| !targets.is_empty() && wildcards <= targets.len());
        let (Some(end), Ok(bytes)) = (end, u32::try_from(bytes)) else {
            return Err(Error::invalid(
                format!("a batch of {} targets and {bytes} bytes", targets.len()),
                "a batch holds 1 to 2^32 - 1 targets, at most as many wildcards, and under 4 GiB",
            ));
        };
        // Interned against the last few scopes: the plans read back are grouped by scope.
        let scope = match self.scopes.iter().rev().take(8).position(|s| **s == *scope) {
            Some(back) => self.scopes.len() - 1 - back,
            None => {
                self.scopes.push(scope.into());
                self.scopes.len() - 1
            }
        };
        self.slots.extend_from_slice(targets);
        self.spans.push(Span {
            scope: scope as u32,
            end,
            bytes,
            wildcards: wildcards as u32,
        });
        Ok(())
    }

    /// Where batch `index`'s targets start in `slots`.
    fn start(&self, index: usize) -> usize {
        index
            .checked_sub(1)
            .map_or(0, |i| self.spans[i].end as usize)
    }

    /// The batch and slot of position `at` in `slots`.
    fn locate(&self, at: u32) -> (u32, u32) {
        let batch = self.spans.partition_point(|s| s.end <= at);
        (batch as u32, at - self.start(batch) as u32)
    }
}

impl<'a> IntoIterator for &'a Batches {
    type Item = BatchPlan<'a>;
    type IntoIter = Box<dyn ExactSizeIterator<Item = BatchPlan<'a>> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// Equal when every batch reads the same (however the scopes were interned).
impl PartialEq for Batches {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Batches {}

/// A sequence of [`BatchPlan`]s (the shape a `Vec` of them had).
impl Serialize for Batches {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for batch in self.iter() {
            seq.serialize_element(&batch)?;
        }
        seq.end()
    }
}

/// Where one input item went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// Index of the batch.
    pub batch: u32,
    /// Index within the batch.
    pub slot: u32,
    /// The earlier input item this one duplicates exactly (merged into its slot).
    pub duplicate_of: Option<u32>,
}

/// Packs `items` into batches under `limits`; `overhead` is the body size of an empty request.
/// Batch targets are indices into `items`.
///
/// Returns the batches and, for every input item in order, where it went. Errors only when one
/// item alone cannot fit the byte limit. [`plan_provider`] packs the same way, item by item as
/// it maps them, without holding them.
///
/// ```
/// use purgekit_core::{pack, Item, Limits, TargetKind};
/// let item = |v: &str| Item { kind: TargetKind::Url, value: v.into(), scope: String::new(),
///                             wildcard: false, bytes: 10 };
/// let limits = Limits { max_items: 2, ..Limits::default() };
/// let items = [item("/a"), item("/b"), item("/a"), item("/c")];
/// let (batches, placements) = pack(&items, &limits, 0).unwrap();
/// assert_eq!(batches.len(), 2);
/// assert_eq!(batches.get(0).unwrap().targets, [0, 1]);
/// assert_eq!(placements[2].duplicate_of, Some(0));
/// ```
pub fn pack(items: &[Item], limits: &Limits, overhead: usize) -> Result<(Batches, Vec<Placement>)> {
    let mut packer = Packer::new(limits, overhead, items.len())?;
    let mut placements: Vec<Placement> = Vec::with_capacity(items.len());
    let mut places = Places::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let packed = packer.push(i as u32, item, &mut |j| Ok(items[j as usize].clone()))?;
        let placement = match packed {
            Packed::New { batch, slot } => Placement {
                batch,
                slot,
                duplicate_of: None,
            },
            Packed::Duplicate(j) => Placement {
                duplicate_of: Some(j),
                ..placements[j as usize]
            },
        };
        places.push(packed);
        placements.push(placement);
    }
    let (batches, _) = packer.finish(places);
    Ok((batches, placements))
}

/// What [`Packer::push`] did with an item.
#[derive(Clone, Copy)]
enum Packed {
    /// Put it in a slot.
    New { batch: u32, slot: u32 },
    /// Merged it with the earlier item of this index.
    Duplicate(u32),
}

/// [`Places`]' mark of an unsupported target.
const UNSUPPORTED: u32 = u32::MAX;
/// [`Places`]' mark of a target not placed yet: a merged duplicate while packing (its first is
/// in `merged`), a target [`PlanBuilder`] has not been given.
const PENDING: u32 = u32::MAX - 1;

/// Every target's fate in one `u32`: while packing, its batch (or a mark); once packed, its
/// position in [`Batches`]' index array, the slot of its first duplicate for a merged one
/// (or [`UNSUPPORTED`]).
struct Places {
    places: Vec<u32>,
    /// While packing: the merged duplicates and the targets they follow, in input order.
    merged: Vec<(u32, u32)>,
}

impl Places {
    fn with_capacity(targets: usize) -> Self {
        Places {
            places: Vec::with_capacity(targets),
            merged: Vec::new(),
        }
    }

    /// Records the next target's packing.
    fn push(&mut self, packed: Packed) {
        let index = self.places.len() as u32;
        self.places.push(match packed {
            Packed::New { batch, .. } => batch,
            Packed::Duplicate(first) => {
                self.merged.push((index, first));
                PENDING
            }
        });
    }

    /// Records the next target as unsupported.
    fn push_unsupported(&mut self) {
        self.places.push(UNSUPPORTED);
    }
}

/// Greedy packing, one item at a time, keeping only what packing needs.
struct Packer {
    max_items: usize,
    /// [`Limits::max_items_per_scope`], when scopes are grouped.
    max_items_per_scope: Vec<(String, usize)>,
    /// Per scope id: most items in one of its batches.
    scope_max: Vec<usize>,
    max_bytes: usize,
    wildcard_alone: bool,
    /// With an in-flight capacity: wildcards pack apart from other items, at most this many
    /// per batch, so each kind is admitted against its own allowance.
    max_wildcards: Option<usize>,
    group_by_scope: bool,
    overhead: usize,
    /// The batches so far, each span's `end` its count of targets.
    batches: Vec<Span>,
    /// Per scope id: its text (id 0 is the empty scope of ungrouped items).
    texts: Vec<Box<str>>,
    /// Each distinct scope's id (an index into `open`).
    scopes: HashMap<String, usize>,
    /// The last item's scope and its id: runs of one scope skip the lookup.
    last_scope: Option<(String, usize)>,
    /// Per scope: the batch still open for non-wildcard items.
    open: Vec<Option<u32>>,
    /// Per scope: the batch still open for wildcards, when they pack apart.
    open_wildcards: Vec<Option<u32>>,
    /// Scopes sharing requests at a parent scope, when the limits allow it.
    shared: Option<Sharing>,
    seen: Seen,
}

/// Packing under [`crate::SharedScope`]: items of any scope go to the first open batch where
/// they fit (first fit over a few open batches, so one scope's wildcard does not close a batch
/// to every other scope).
struct Sharing {
    shared: crate::SharedScope,
    /// The parent scope's id, once a batch is shared.
    parent: Option<u32>,
    /// Open batches, oldest first, with the scope ids they hold (`true`: a wildcard, alone in
    /// its scope there).
    open: Vec<(u32, HashMap<usize, bool>)>,
}

/// The most batches [`Sharing`] keeps open at once.
const SHARED_OPEN_BATCHES: usize = 4;

impl Packer {
    /// A packer for at most `capacity` items (the number of targets).
    fn new(limits: &Limits, overhead: usize, capacity: usize) -> Result<Self> {
        // Every index and position below both of [`Places`]' marks.
        if capacity >= PENDING as usize {
            return Err(Error::invalid(
                format!("{capacity} targets"),
                format!("one purge plans at most {} targets", PENDING - 1),
            ));
        }
        let in_flight = limits.in_flight_capacity;
        let max_items = in_flight.map_or(limits.max_items, |c| limits.max_items.min(c.items));
        let max_items = max_items.max(1);
        let cap = |n: usize| in_flight.map_or(n, |c| n.min(c.items)).max(1);
        Ok(Packer {
            max_items,
            max_items_per_scope: if limits.group_by_scope {
                limits
                    .max_items_per_scope
                    .iter()
                    .map(|(s, n)| (s.clone(), cap(*n)))
                    .collect()
            } else {
                Vec::new()
            },
            scope_max: vec![max_items],
            max_wildcards: in_flight.map(|c| c.wildcards.min(max_items).max(1)),
            // A batch's bytes are kept in a `u32`: no body reaches 4 GiB.
            max_bytes: limits
                .max_body_bytes
                .unwrap_or(usize::MAX)
                .min(u32::MAX as usize),
            wildcard_alone: limits.wildcard_alone,
            group_by_scope: limits.group_by_scope,
            overhead,
            batches: Vec::new(),
            texts: vec!["".into()],
            scopes: HashMap::new(),
            last_scope: None,
            open: vec![None],
            open_wildcards: vec![None],
            shared: limits
                .shared_scope
                .clone()
                .filter(|_| limits.group_by_scope)
                .map(|shared| Sharing {
                    shared,
                    parent: None,
                    open: Vec::new(),
                }),
            seen: Seen::with_capacity(capacity),
        })
    }

    /// A new scope id for `text`, whose batches hold at most `max` items.
    fn new_scope(&mut self, text: &str, max: usize) -> usize {
        self.open.push(None);
        self.open_wildcards.push(None);
        self.scope_max.push(max);
        self.texts.push(text.into());
        self.open.len() - 1
    }

    /// Packs `item`, the item of input `index` (indices grow from call to call; unsupported
    /// targets are skipped). `earlier` gives back the item of an earlier index, to tell an
    /// exact duplicate from a hash collision.
    fn push(
        &mut self,
        index: u32,
        item: &Item,
        earlier: &mut dyn FnMut(u32) -> Result<Item>,
    ) -> Result<Packed> {
        if self.overhead.saturating_add(item.bytes) > self.max_bytes {
            return Err(Error::invalid(
                &item.value,
                format!(
                    "too large for one request: {} bytes with the request's own {} exceed the \
                     provider's {}-byte body limit",
                    item.bytes, self.overhead, self.max_bytes
                ),
            ));
        }
        if let Some(first) = self.seen.first_or_insert(item, index, earlier)? {
            return Ok(Packed::Duplicate(first));
        }
        let alone = item.wildcard && self.wildcard_alone;
        let scope = if !self.group_by_scope {
            0
        } else if let Some((_, id)) = self
            .last_scope
            .as_ref()
            .filter(|(s, _)| same_scope(s, &item.scope))
        {
            *id
        } else {
            let id = match self.scopes.get(item.scope.as_str()) {
                Some(&id) => id,
                None => {
                    let max = self
                        .max_items_per_scope
                        .iter()
                        .find(|(s, _)| *s == item.scope)
                        .map_or(self.max_items, |&(_, n)| n);
                    let id = self.new_scope(&item.scope, max);
                    self.scopes.insert(item.scope.clone(), id);
                    id
                }
            };
            self.last_scope = Some((item.scope.clone(), id));
            id
        };
        // Shared packing for every item, but a wildcard that must stay alone in its request.
        if self.shared.is_some() && (!alone || self.shared_wildcards()) {
            return Ok(self.push_shared(item, scope));
        }
        let apart = item.wildcard && self.max_wildcards.is_some();
        let max_items = match self.max_wildcards {
            Some(max) if apart => max.min(self.scope_max[scope]),
            _ => self.scope_max[scope],
        };
        let fits = |b: &Span| {
            (b.end as usize) < max_items
                && (b.bytes as usize).saturating_add(item.bytes) <= self.max_bytes
        };
        let lane = if apart {
            &mut self.open_wildcards
        } else {
            &mut self.open
        };
        let open = if alone {
            None
        } else {
            lane[scope].filter(|&b| fits(&self.batches[b as usize]))
        };
        let batch = match open {
            Some(b) => b,
            None => {
                self.batches.push(Span {
                    scope: scope as u32,
                    end: 0,
                    bytes: self.overhead as u32,
                    wildcards: 0,
                });
                let b = (self.batches.len() - 1) as u32;
                if !alone {
                    lane[scope] = Some(b);
                }
                b
            }
        };
        let span = &mut self.batches[batch as usize];
        // Under `max_bytes`, itself under `u32::MAX`.
        span.bytes += item.bytes as u32;
        span.wildcards += u32::from(item.wildcard);
        span.end += 1;
        Ok(Packed::New {
            batch,
            slot: span.end - 1,
        })
    }

    /// Whether a wildcard may share a request with other scopes.
    fn shared_wildcards(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|s| s.shared.wildcard_alone_in_scope)
    }

    /// Packs a (new, distinct) item of scope id `scope` under [`Sharing`]: into the first open
    /// batch with room (items and bytes, the shared envelope and the scope's own bytes
    /// included) where its scope holds no wildcard (and, for a wildcard alone in its scope,
    /// where its scope holds nothing yet), else into a new open batch.
    fn push_shared(&mut self, item: &Item, scope: usize) -> Packed {
        let wildcard = item.wildcard && self.wildcard_alone;
        let (max_items, max_bytes) = (self.max_items, self.max_bytes);
        let parent = match self.shared.as_ref().and_then(|s| s.parent) {
            Some(parent) => parent,
            None => {
                let Some(sharing) = self.shared.as_ref() else {
                    unreachable!("called only when sharing")
                };
                let text = sharing.shared.parent.clone();
                let parent = self.new_scope(&text, max_items) as u32;
                if let Some(sharing) = self.shared.as_mut() {
                    sharing.parent = Some(parent);
                }
                parent
            }
        };
        let Some(sharing) = self.shared.as_mut() else {
            unreachable!("called only when sharing")
        };
        let (batches, texts) = (&mut self.batches, &self.texts);
        sharing
            .open
            .retain(|(b, _)| (batches[*b as usize].end as usize) < max_items);
        let shared = &sharing.shared;
        // What the item adds to an open batch, if its scope may join it.
        let cost = |span: &Span, scopes: &HashMap<usize, bool>| -> Option<usize> {
            match scopes.get(&scope) {
                Some(&held_wildcard) => (!held_wildcard && !wildcard).then_some(item.bytes),
                None if scopes.len() == 1 => Some(
                    item.bytes
                        + shared.request_overhead
                        + shared.scope_bytes(&texts[span.scope as usize])
                        + shared.scope_bytes(&item.scope),
                ),
                None => Some(item.bytes + shared.scope_bytes(&item.scope)),
            }
        };
        let found = sharing.open.iter_mut().find_map(|(b, scopes)| {
            let span = &batches[*b as usize];
            cost(span, scopes)
                .filter(|cost| (span.bytes as usize).saturating_add(*cost) <= max_bytes)
                .map(|cost| (*b, scopes, cost))
        });
        let batch = match found {
            Some((b, scopes, cost)) => {
                scopes.insert(scope, wildcard);
                let span = &mut batches[b as usize];
                if span.scope != scope as u32 {
                    span.scope = parent;
                }
                // Under `max_bytes`, itself under `u32::MAX`.
                span.bytes += cost as u32;
                b
            }
            None => {
                batches.push(Span {
                    scope: scope as u32,
                    end: 0,
                    bytes: (self.overhead + item.bytes) as u32,
                    wildcards: 0,
                });
                let b = (batches.len() - 1) as u32;
                if sharing.open.len() == SHARED_OPEN_BATCHES {
                    sharing.open.remove(0);
                }
                sharing.open.push((b, HashMap::from([(scope, wildcard)])));
                b
            }
        };
        let span = &mut batches[batch as usize];
        span.wildcards += u32::from(item.wildcard);
        span.end += 1;
        Packed::New {
            batch,
            slot: span.end - 1,
        }
    }

    /// The batches, with every target placed in their index array: `places` holds each
    /// target's batch (or a mark) on the way in, its position in the array on the way out.
    /// O(n), the dedup table freed first.
    fn finish(self, mut places: Places) -> (Batches, Vec<u32>) {
        let Packer {
            batches: mut spans,
            texts,
            seen,
            ..
        } = self;
        drop(seen);
        // Counts to starts (each span's `end` then moves up to its end as it fills).
        let mut total = 0u32;
        for span in &mut spans {
            let count = span.end;
            span.end = total;
            total += count;
        }
        let mut slots = vec![0u32; total as usize];
        for (target, place) in places.places.iter_mut().enumerate() {
            if *place < PENDING {
                let span = &mut spans[*place as usize];
                slots[span.end as usize] = target as u32;
                *place = span.end;
                span.end += 1;
            }
        }
        for &(target, first) in &places.merged {
            places.places[target as usize] = places.places[first as usize];
        }
        let batches = Batches {
            spans,
            slots,
            scopes: texts,
        };
        (batches, places.places)
    }
}

/// The first index of every distinct item key (scope, kind, value, wildcard), in 8 bytes a
/// slot: open addressing over 1.5 slots per possible item, each slot a 32-bit hash tag and the
/// index + 1 (0 = empty). A tag match is confirmed by comparing the earlier item itself, so a
/// hash collision can never merge two different items.
///
/// Written here rather than with `hashbrown::HashTable`: that table needs every stored entry's
/// hash again to grow, which would mean mapping the earlier item again (fallible, costly) or
/// storing the 64-bit hash (16-byte entries, taking the throughput bench's peak from 2.8× to
/// about 2.9× its input, against a 3× budget). Sized once for every target, this one never grows.
struct Seen<H = RandomState> {
    hasher: H,
    slots: Vec<u64>,
}

impl Seen {
    /// Room for `items` items: always at least one empty slot, so every probe ends.
    fn with_capacity(items: usize) -> Self {
        Seen {
            hasher: RandomState::new(),
            slots: vec![0; items + items / 2 + 1],
        }
    }
}

impl<H: BuildHasher> Seen<H> {
    /// The earlier index with `item`'s key, or `None` after recording `index` as its first.
    fn first_or_insert(
        &mut self,
        item: &Item,
        index: u32,
        earlier: &mut dyn FnMut(u32) -> Result<Item>,
    ) -> Result<Option<u32>> {
        let hash = self.hasher.hash_one(key(item));
        let tag = hash & 0xffff_ffff;
        let len = self.slots.len();
        // The high bits pick the slot, the low bits are the tag.
        let mut at = ((u128::from(hash) * len as u128) >> 64) as usize;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                self.slots[at] = (tag << 32) | (u64::from(index) + 1);
                return Ok(None);
            }
            if slot >> 32 == tag {
                let first = (slot & 0xffff_ffff) as u32 - 1;
                if key(&earlier(first)?) == key(item) {
                    return Ok(Some(first));
                }
            }
            at += 1;
            if at == len {
                at = 0;
            }
        }
    }
}

/// `a == b`, without a call into libc's `memcmp` when both are empty: the scope of most items
/// of a provider with no batch call (Fastly's single-URL purges), compared twice per item, a
/// measurable share of planning and sending a million of them.
fn same_scope(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

/// What makes two items exact duplicates.
fn key(item: &Item) -> (&str, crate::request::TargetKind, &str, bool) {
    (&item.scope, item.kind, &item.value, item.wildcard)
}

/// What happens to one input target at one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "disposition")]
pub enum Disposition {
    /// Sent in `batch` at `slot`.
    Planned {
        /// Index of the batch.
        batch: u32,
        /// Index within the batch.
        slot: u32,
        /// The index of the earlier target whose identical item carries this one too.
        merged_with: Option<u32>,
    },
    /// Not sent: the provider cannot purge it.
    Unsupported {
        /// Why (one shared string per distinct reason).
        #[serde(serialize_with = "shared_str")]
        reason: Arc<str>,
    },
}

fn shared_str<S: Serializer>(
    text: &Arc<str>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(text)
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

/// The plan for one provider. Targets are referred to by their index in the request's
/// [`PurgeRequest::targets`]: a plan is read together with its request.
///
/// Its batches are [`ProviderPlan::batches`], each target's fate
/// [`ProviderPlan::disposition`]. Built by [`plan_provider`], or from its parts by
/// [`PlanBuilder`] (a stored plan read back).
#[derive(Debug, Clone)]
pub struct ProviderPlan {
    /// The purger's name (the config's provider name).
    pub provider: String,
    /// The provider kind.
    pub kind: String,
    batches: Batches,
    /// Per input target: its position in the batches' index array (for a merged duplicate,
    /// its first's), or [`UNSUPPORTED`].
    places: Vec<u32>,
    /// The unsupported targets in input order, each with an index into `reasons`.
    unsupported: Vec<(u32, u32)>,
    /// The distinct reasons targets are unsupported.
    reasons: Vec<Arc<str>>,
    /// Warnings for every planned row (advisory options the provider ignores, client-side dry run).
    pub warnings: Vec<String>,
    /// The requests that would be sent, one per batch, secrets redacted. Empty for a dry run
    /// done client-side.
    pub requests: Vec<PlannedRequest>,
    /// The dry run is done here, not by the provider: nothing will be sent.
    pub client_side_dry_run: bool,
    /// What the purge would be billed, when the provider bills per item
    /// ([`crate::Limits::billing`]).
    pub billable: Option<Billable>,
}

/// Equal when they read the same: batches, every target's fate, and the rest.
impl PartialEq for ProviderPlan {
    fn eq(&self, other: &Self) -> bool {
        self.provider == other.provider
            && self.kind == other.kind
            && self.batches == other.batches
            && self.places.len() == other.places.len()
            && self.dispositions().eq(other.dispositions())
            && self.warnings == other.warnings
            && self.requests == other.requests
            && self.client_side_dry_run == other.client_side_dry_run
            && self.billable == other.billable
    }
}

impl Eq for ProviderPlan {}

/// The shape the plan had as plain vectors: `batches` a list of [`BatchPlan`], `targets` one
/// [`Disposition`] per target.
impl Serialize for ProviderPlan {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        /// The dispositions as a sequence.
        struct Targets<'a>(&'a ProviderPlan);
        impl Serialize for Targets<'_> {
            fn serialize<S: Serializer>(
                &self,
                serializer: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.dispositions())
            }
        }
        let mut s = serializer.serialize_struct("ProviderPlan", 8)?;
        s.serialize_field("provider", &self.provider)?;
        s.serialize_field("kind", &self.kind)?;
        s.serialize_field("batches", &self.batches)?;
        s.serialize_field("targets", &Targets(self))?;
        s.serialize_field("warnings", &self.warnings)?;
        s.serialize_field("requests", &self.requests)?;
        s.serialize_field("client_side_dry_run", &self.client_side_dry_run)?;
        s.serialize_field("billable", &self.billable)?;
        s.end()
    }
}

/// The billable units of a planned purge: one per planned item, duplicates merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Billable {
    /// How many units.
    pub units: usize,
    /// The unit, plural (`paths`).
    pub unit: String,
    /// The provider's terms (free allowance, price).
    pub terms: String,
}

impl ProviderPlan {
    /// The batches, in sending order.
    pub fn batches(&self) -> &Batches {
        &self.batches
    }

    /// The number of items across all batches.
    pub fn items(&self) -> usize {
        self.batches.items()
    }

    /// The number of input targets (the request's).
    pub fn target_count(&self) -> usize {
        self.places.len()
    }

    /// What happens to input target `target`, if the request has it.
    pub fn disposition(&self, target: usize) -> Option<Disposition> {
        let place = *self.places.get(target)?;
        if place == UNSUPPORTED {
            let at = self
                .unsupported
                .binary_search_by_key(&(target as u32), |&(t, _)| t)
                .ok()?;
            let reason = self.reasons[self.unsupported[at].1 as usize].clone();
            return Some(Disposition::Unsupported { reason });
        }
        let (batch, slot) = self.batches.locate(place);
        let first = self.batches.slots[place as usize];
        Some(Disposition::Planned {
            batch,
            slot,
            merged_with: (first as usize != target).then_some(first),
        })
    }

    /// The unsupported targets: the distinct reasons (in the order targets first gave them),
    /// and each unsupported target, in input order, with the index of its reason.
    pub fn unsupported(&self) -> (&[Arc<str>], &[(u32, u32)]) {
        (&self.reasons, &self.unsupported)
    }

    /// Every input target's fate, in input order.
    pub fn dispositions(&self) -> impl ExactSizeIterator<Item = Disposition> + '_ {
        (0..self.places.len()).map(|t| self.disposition(t).expect("in range"))
    }

    /// Batch `index` with its items, mapped again from `request`'s targets by `provider` (the
    /// plan's own request and provider), ready for [`Provider::encode`].
    ///
    /// Mapping is a pure function: an item that no longer maps, or maps to a different size or
    /// scope, is an [`Error::Protocol`] (the provider's mapping is not deterministic), as is an
    /// index or target out of range (the plan is not this request's).
    ///
    /// The batch belongs to no run ([`RunId::default`]): for previews and tests. The engine
    /// uses [`ProviderPlan::batch_of`] with the purge's run.
    pub fn batch<P: Provider + ?Sized>(
        &self,
        index: usize,
        provider: &P,
        request: &PurgeRequest,
    ) -> Result<Batch> {
        self.batch_of(RunId::default(), index, provider, request)
    }

    /// [`ProviderPlan::batch`] as batch `index` of run `run` (its [`Batch::id`]).
    pub fn batch_of<P: Provider + ?Sized>(
        &self,
        run: RunId,
        index: usize,
        provider: &P,
        request: &PurgeRequest,
    ) -> Result<Batch> {
        self.remapper(provider, request).batch(run, index)
    }

    /// What maps this plan's batches again for `provider` and `request`, with what every
    /// batch shares (the provider's limits, its body overhead) worked out once: sending a
    /// million one-URL batches must not build the provider's limits a million times.
    pub fn remapper<'a, P: Provider + ?Sized>(
        &'a self,
        provider: &'a P,
        request: &'a PurgeRequest,
    ) -> Remapper<'a, P> {
        let options = request.options();
        let limits = provider.limits();
        Remapper {
            plan: self,
            provider,
            request,
            scoped: limits.group_by_scope,
            shared: limits.shared_scope.filter(|_| limits.group_by_scope),
            overhead: provider.body_overhead(options),
        }
    }
}

/// Maps a plan's batches again, one at a time ([`ProviderPlan::remapper`]).
#[derive(Debug)]
pub struct Remapper<'a, P: ?Sized> {
    plan: &'a ProviderPlan,
    provider: &'a P,
    request: &'a PurgeRequest,
    /// [`Limits::group_by_scope`].
    scoped: bool,
    /// [`Limits::shared_scope`], when scopes are grouped.
    shared: Option<crate::SharedScope>,
    /// [`Provider::body_overhead`].
    overhead: usize,
}

impl<P: Provider + ?Sized> Remapper<'_, P> {
    /// Batch `index` of run `run` with its items (see [`ProviderPlan::batch`]).
    pub fn batch(&self, run: RunId, index: usize) -> Result<Batch> {
        let (provider, request) = (self.provider, self.request);
        let plan = self.plan.batches.get(index).ok_or_else(|| {
            Error::protocol(format!(
                "no batch {index} in a plan of {} batches",
                self.plan.batches.len()
            ))
        })?;
        let options = request.options();
        let scoped = self.scoped;
        let shared = self.shared.as_ref().filter(|s| s.parent == plan.scope);
        let mut items = Vec::with_capacity(plan.len());
        for &t in plan.targets {
            let target = request.targets().get(t as usize).ok_or_else(|| {
                Error::protocol(format!(
                    "the plan names target {t} of a request with {}",
                    request.targets().len()
                ))
            })?;
            let item = remap(provider, target, options)?;
            if scoped && shared.is_none() && !same_scope(&item.scope, plan.scope) {
                return Err(not_deterministic(provider, target, "scope"));
            }
            items.push(item);
        }
        let bytes = body_bytes(self.overhead, shared, &items);
        if bytes != plan.bytes {
            return Err(not_deterministic(
                provider,
                &request.targets()[plan.targets[0] as usize],
                "size",
            ));
        }
        Ok(Batch {
            id: BatchId { run, index },
            scope: plan.scope.to_owned(),
            items,
            bytes,
        })
    }
}

/// Builds a [`ProviderPlan`] from its parts (a stored plan read back, tests): its batches in
/// sending order, then the targets in no batch of their own. Every target of the request must
/// be given exactly one fate.
///
/// ```
/// use purgekit_core::{Disposition, PlanBuilder};
/// let mut plan = PlanBuilder::new("cdn", "level3", 3);
/// plan.batch("", &[0, 2], 120, 0).unwrap();
/// plan.merged(1, 0).unwrap();
/// let plan = plan.build().unwrap();
/// assert_eq!(plan.batches().get(0).unwrap().targets, [0, 2]);
/// assert_eq!(
///     plan.disposition(1),
///     Some(Disposition::Planned { batch: 0, slot: 0, merged_with: Some(0) })
/// );
/// ```
#[derive(Debug)]
pub struct PlanBuilder {
    plan: ProviderPlan,
}

impl PlanBuilder {
    /// A plan of `provider` (its name and kind) for a request of `targets` targets.
    pub fn new(provider: impl Into<String>, kind: impl Into<String>, targets: usize) -> Self {
        PlanBuilder {
            plan: ProviderPlan {
                provider: provider.into(),
                kind: kind.into(),
                batches: Batches::default(),
                places: vec![PENDING; targets],
                unsupported: Vec::new(),
                reasons: Vec::new(),
                warnings: Vec::new(),
                requests: Vec::new(),
                client_side_dry_run: false,
                billable: None,
            },
        }
    }

    /// Target `target`'s place, when it has none yet.
    fn pending(&mut self, target: u32) -> Result<&mut u32> {
        let targets = self.plan.places.len();
        match self.plan.places.get_mut(target as usize) {
            Some(place) if *place == PENDING => Ok(place),
            Some(_) => Err(Error::invalid(
                format!("target {target}"),
                "a target has one fate in a plan: it was given two",
            )),
            None => Err(Error::invalid(
                format!("target {target}"),
                format!("not a target of a request of {targets}"),
            )),
        }
    }

    /// The next batch: `targets` in slot order, `bytes` its body, `wildcards` how many of its
    /// items are wildcards.
    pub fn batch(
        &mut self,
        scope: &str,
        targets: &[u32],
        bytes: usize,
        wildcards: usize,
    ) -> Result<()> {
        let start = self.plan.batches.items();
        for (slot, &t) in targets.iter().enumerate() {
            let at = u32::try_from(start + slot)
                .ok()
                .filter(|&at| at < PENDING)
                .ok_or_else(|| Error::invalid("a plan", "too many targets"))?;
            *self.pending(t)? = at;
        }
        if let Err(error) = self.plan.batches.push(scope, targets, bytes, wildcards) {
            for &t in targets {
                self.plan.places[t as usize] = PENDING;
            }
            return Err(error);
        }
        Ok(())
    }

    /// Target `target` is unsupported, for `reason`.
    pub fn unsupported(&mut self, target: u32, reason: Arc<str>) -> Result<()> {
        *self.pending(target)? = UNSUPPORTED;
        let reasons = &mut self.plan.reasons;
        let at = match reasons
            .iter()
            .position(|r| Arc::ptr_eq(r, &reason) || *r == reason)
        {
            Some(at) => at,
            None => {
                reasons.push(reason);
                reasons.len() - 1
            }
        };
        self.plan.unsupported.push((target, at as u32));
        Ok(())
    }

    /// Target `target` is an exact duplicate of target `first`, which holds a slot.
    pub fn merged(&mut self, target: u32, first: u32) -> Result<()> {
        let place = self
            .plan
            .places
            .get(first as usize)
            .copied()
            .filter(|&p| p < PENDING && self.plan.batches.slots[p as usize] == first)
            .ok_or_else(|| {
                Error::invalid(
                    format!("target {target}"),
                    format!("merged with target {first}, which holds no slot of its own"),
                )
            })?;
        *self.pending(target)? = place;
        Ok(())
    }

    /// The plan, once every target has its fate.
    pub fn build(mut self) -> Result<ProviderPlan> {
        if let Some(t) = self.plan.places.iter().position(|&p| p == PENDING) {
            return Err(Error::invalid(
                format!("target {t}"),
                "every target of a plan has a fate: this one has none",
            ));
        }
        self.plan.unsupported.sort_unstable();
        Ok(self.plan)
    }
}

/// The body bytes of a batch of `items`: `overhead` (the provider's empty body), each item's
/// bytes, and for a batch at a shared parent scope (`shared`, already matched to the batch's
/// scope) the shared envelope and each scope's own bytes once.
fn body_bytes(overhead: usize, shared: Option<&crate::SharedScope>, items: &[Item]) -> usize {
    let mut bytes = overhead + items.iter().map(|i| i.bytes).sum::<usize>();
    if let Some(shared) = shared {
        bytes += shared.request_overhead;
        let mut scopes: Vec<&str> = Vec::new();
        for item in items {
            if !scopes.contains(&item.scope.as_str()) {
                scopes.push(&item.scope);
                bytes += shared.scope_bytes(&item.scope);
            }
        }
    }
    bytes
}

/// Some of a plan's targets, queued in one batch of another run (same account, same options):
/// they leave this run's packing and form one batch of their own, which follows that one
/// ([`plan_following`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowGroup {
    /// The other batch's scope.
    pub scope: String,
    /// This plan's targets in it (each the first of its group of exact duplicates), in the
    /// order of their slots in the new batch.
    pub targets: Vec<u32>,
}

/// `base` (the plan of `request` for `provider`) with the targets of each group taken out of
/// the packing: the rest are packed again as [`plan_provider`] packs, in input order, and each
/// group becomes one batch of its own after them (batch `packed batches + group index`), with
/// its targets in the group's order. Duplicates merged with a group's target follow with it.
/// With no group, `base` itself. O(n): every planned target is mapped again.
pub fn plan_following<P: Provider + ?Sized>(
    provider: &P,
    request: &PurgeRequest,
    base: &ProviderPlan,
    groups: &[FollowGroup],
) -> Result<ProviderPlan> {
    if groups.is_empty() {
        return Ok(base.clone());
    }
    let options = request.options();
    let targets = request.targets();
    if base.target_count() != targets.len() {
        return Err(Error::protocol(format!(
            "a plan of {} targets given a request of {}",
            base.target_count(),
            targets.len()
        )));
    }
    let limits = provider.limits();
    let overhead = provider.body_overhead(options);
    let shared = limits
        .shared_scope
        .clone()
        .filter(|_| limits.group_by_scope);
    // Per target: its group and slot, when it follows.
    let mut follows: HashMap<u32, (usize, usize)> = HashMap::new();
    for (g, group) in groups.iter().enumerate() {
        for (slot, &t) in group.targets.iter().enumerate() {
            if follows.insert(t, (g, slot)).is_some() {
                return Err(Error::protocol(format!(
                    "target {t} follows two batches of other runs"
                )));
            }
        }
    }
    let mut packer = Packer::new(&limits, overhead, targets.len())?;
    let mut earlier = |t: u32| remap(provider, &targets[t as usize], options);
    // Followers and their duplicates are marked unsupported while packing (the packer places
    // only what it packs) and placed once the groups' batches are appended.
    let mut places = Places::with_capacity(targets.len());
    let mut follower_duplicates: Vec<(u32, u32)> = Vec::new();
    let mut group_items: Vec<Vec<Option<Item>>> =
        groups.iter().map(|g| vec![None; g.targets.len()]).collect();
    for (t, disposition) in base.dispositions().enumerate() {
        match disposition {
            Disposition::Unsupported { .. } => places.push_unsupported(),
            Disposition::Planned {
                merged_with: Some(first),
                ..
            } => {
                if follows.contains_key(&first) {
                    follower_duplicates.push((t as u32, first));
                    places.push_unsupported();
                } else {
                    places.push(Packed::Duplicate(first));
                }
            }
            Disposition::Planned {
                merged_with: None, ..
            } => {
                let item = remap(provider, &targets[t], options)?;
                if let Some(&(g, slot)) = follows.get(&(t as u32)) {
                    group_items[g][slot] = Some(item);
                    places.push_unsupported();
                } else {
                    places.push(packer.push(t as u32, &item, &mut earlier)?);
                }
            }
        }
    }
    let (mut batches, mut places) = packer.finish(places);
    let packed = batches.len();
    for (group, items) in groups.iter().zip(group_items) {
        let items: Vec<Item> = items.into_iter().collect::<Option<_>>().ok_or_else(|| {
            Error::protocol("a target following another run's batch is not planned here")
        })?;
        let start = batches.items() as u32;
        let shared = shared.as_ref().filter(|s| s.parent == group.scope);
        let wildcards = items.iter().filter(|i| i.wildcard).count();
        batches.push(
            &group.scope,
            &group.targets,
            body_bytes(overhead, shared, &items),
            wildcards,
        )?;
        for (slot, &t) in group.targets.iter().enumerate() {
            places[t as usize] = start + slot as u32;
        }
    }
    for (t, first) in follower_duplicates {
        places[t as usize] = places[first as usize];
    }
    let billable = base.billable.as_ref().map(|billable| Billable {
        // Only what this run sends.
        units: batches.start(packed),
        ..billable.clone()
    });
    Ok(ProviderPlan {
        provider: base.provider.clone(),
        kind: base.kind.clone(),
        batches,
        places,
        unsupported: base.unsupported.clone(),
        reasons: base.reasons.clone(),
        warnings: base.warnings.clone(),
        requests: Vec::new(),
        client_side_dry_run: base.client_side_dry_run,
        billable,
    })
}

/// `target`'s item, mapped again after planning.
fn remap<P: Provider + ?Sized>(provider: &P, target: &Target, options: &Options) -> Result<Item> {
    match provider.map(target, options)? {
        Mapped::Item(item) => Ok(item),
        Mapped::Unsupported(_) => Err(not_deterministic(provider, target, "support")),
    }
}

fn not_deterministic<P: Provider + ?Sized>(provider: &P, target: &Target, what: &str) -> Error {
    Error::protocol(format!(
        "{}'s mapping is not deterministic: `{target}` changed {what} between planning and \
         sending",
        provider.kind()
    ))
}

/// The plan of a purge across one or more providers. Nothing has been sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// One entry per provider.
    pub providers: Vec<ProviderPlan>,
}

/// Plans `request` for `provider` under the name `name`: checks options and capabilities, maps
/// each target and packs the items. Encodes nothing (see [`crate::Purger::plan`], which
/// [`crate::ProviderPurger`] implements).
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
        if option == OptionKind::DryRun && request.local_dry_run() {
            client_side_dry_run = true;
            warnings.push(format!(
                "{kind}: dry run validated and planned here, nothing sent"
            ));
            continue;
        }
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

    warnings.extend(provider.action_warning(options));
    let targets = request.targets();
    let limits = provider.limits();
    let mut packer = Packer::new(&limits, provider.body_overhead(options), targets.len())?;
    let mut earlier = |t: u32| remap(provider, &targets[t as usize], options);
    // Each distinct reason once: its index in `reasons`.
    let mut reason_ids: HashMap<String, u32> = HashMap::new();
    let mut reasons: Vec<Arc<str>> = Vec::new();
    let mut unsupported: Vec<(u32, u32)> = Vec::new();
    let mut places = Places::with_capacity(targets.len());
    for (t, target) in targets.iter().enumerate() {
        let reason = if !caps.supports_target(target.kind()) {
            provider
                .unsupported_reason(target.kind())
                .unwrap_or_else(|| format!("{kind} does not support {} targets", target.kind()))
        } else if !missing_semantic.is_empty() {
            format!(
                "{kind} does not support option `{}`",
                missing_semantic.join("`, `")
            )
        } else {
            match provider.map(target, options)? {
                Mapped::Item(item) => {
                    places.push(packer.push(t as u32, &item, &mut earlier)?);
                    continue;
                }
                Mapped::Unsupported(reason) => reason,
            }
        };
        let id = *reason_ids.entry(reason).or_insert_with_key(|r| {
            reasons.push(Arc::from(r.as_str()));
            (reasons.len() - 1) as u32
        });
        unsupported.push((t as u32, id));
        places.push_unsupported();
    }

    let (batches, places) = packer.finish(places);
    let billable = limits.billing.map(|billing| Billable {
        units: batches.items(),
        unit: billing.unit.to_owned(),
        terms: billing.terms.to_owned(),
    });
    Ok(ProviderPlan {
        provider: name.to_owned(),
        kind: kind.to_owned(),
        batches,
        places,
        unsupported,
        reasons,
        billable,
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
    use std::hash::{BuildHasherDefault, Hasher};

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

    /// The items of a packed batch.
    fn items_of<'a>(batch: BatchPlan, items: &'a [Item]) -> Vec<&'a Item> {
        batch.targets.iter().map(|&t| &items[t as usize]).collect()
    }

    #[test]
    fn a_scope_may_have_its_own_item_limit() {
        // One URL per request, up to three keys per request, in the same plan.
        let items: Vec<Item> = (0..4)
            .flat_map(|i| {
                [
                    item("url", &format!("/u{i}"), false, 1),
                    item("keys", &format!("k{i}"), false, 1),
                ]
            })
            .collect();
        let limits = Limits {
            max_items_per_scope: vec![("url".into(), 1)],
            ..limits(3, None, false, true)
        };
        let (batches, _) = pack(&items, &limits, 0).unwrap();
        let sizes: Vec<(&str, usize)> = batches.iter().map(|b| (b.scope, b.len())).collect();
        assert_eq!(
            sizes,
            [
                ("url", 1),
                ("keys", 3),
                ("url", 1),
                ("url", 1),
                ("url", 1),
                ("keys", 1)
            ]
        );
        // Without scope grouping the per-scope limits do not apply.
        let flat = Limits {
            group_by_scope: false,
            ..limits.clone()
        };
        assert_eq!(flat.max_items_for("url"), 3);
        assert_eq!(pack(&items, &flat, 0).unwrap().0.len(), 3);
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
        let (batches, placements) = pack(&items, &limits(200, None, true, true), 0).unwrap();
        let values: Vec<Vec<&str>> = batches
            .iter()
            .map(|b| {
                items_of(b, &items)
                    .iter()
                    .map(|i| i.value.as_str())
                    .collect()
            })
            .collect();
        assert_eq!(values, [vec!["/1", "/2", "/3"], vec!["/1"], vec!["/*"]]);
        assert_eq!(batches.at(0).targets, [0, 2, 4]);
        assert_eq!(batches.at(1).scope, "b");
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
        let (batches, placements) = pack(&items, &limits(10, None, false, true), 0).unwrap();
        assert_eq!(batches.len(), 2);
        assert!(placements.iter().all(|p| p.duplicate_of.is_none()));
    }

    #[test]
    fn splits_on_bytes() {
        let items: Vec<Item> = (0..5)
            .map(|i| item("", &format!("/{i}"), false, 40))
            .collect();
        let (batches, _) = pack(&items, &limits(100, Some(100), false, false), 10).unwrap();
        let sizes: Vec<usize> = batches.iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert!(batches.iter().all(|b| b.bytes <= 100));
    }

    #[test]
    fn an_item_too_big_alone_is_an_error_naming_it() {
        let err = pack(
            &[item("", "/huge", false, 95)],
            &limits(1, Some(100), false, false),
            10,
        )
        .unwrap_err();
        assert!(err.to_string().contains("/huge"), "{err}");
    }

    fn shared(limits: Limits, in_scope: bool) -> Limits {
        Limits {
            group_by_scope: true,
            shared_scope: Some(crate::SharedScope {
                parent: "AG".into(),
                wildcard_alone_in_scope: in_scope,
                request_overhead: 10,
                scope_overhead: 7,
            }),
            ..limits
        }
    }

    #[test]
    fn scopes_share_requests_at_the_parent_scope() {
        // 50 scopes × 4 items, interleaved as a release lists them: 200 items, one request.
        let items: Vec<Item> = (0..4)
            .flat_map(|p| (0..50).map(move |h| item(&format!("h{h}"), &format!("/{p}"), false, 1)))
            .collect();
        let limits = shared(limits(200, None, true, true), true);
        let (batches, _) = pack(&items, &limits, 0).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches.at(0).scope, "AG");
        assert_eq!(batches.at(0).len(), 200);
        // Without sharing: one request per scope.
        let (alone, _) = pack(&items, &self::limits(200, None, true, true), 0).unwrap();
        assert_eq!(alone.len(), 50);
        // One more item: a second request, of one scope, which keeps its own scope.
        let mut more = items.clone();
        more.push(item("h7", "/extra", false, 1));
        let (batches, _) = pack(&more, &limits, 0).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches.at(1).scope, "h7");
    }

    #[test]
    fn a_shared_wildcard_is_alone_in_its_scope() {
        let items = vec![
            item("a", "/1", false, 1),
            item("a", "/*", true, 1),
            item("b", "/*", true, 1),
            item("b", "/2", false, 1),
            item("c", "/*", true, 1),
            item("a", "/3", false, 1),
        ];
        let values = |limits: &Limits| {
            let (batches, _) = pack(&items, limits, 0).unwrap();
            batches
                .iter()
                .map(|b| {
                    let its: Vec<String> = items_of(b, &items)
                        .iter()
                        .map(|i| format!("{}{}", i.scope, i.value))
                        .collect();
                    (b.scope.to_owned(), its)
                })
                .collect::<Vec<_>>()
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            values(&shared(limits(200, None, true, true), true)),
            [
                ("AG".into(), s(&["a/1", "b/*", "c/*", "a/3"])),
                ("AG".into(), s(&["a/*", "b/2"])),
            ]
        );
        // A wildcard alone in its request: the others still share.
        assert_eq!(
            values(&shared(limits(200, None, true, true), false)),
            [
                ("AG".into(), s(&["a/1", "b/2", "a/3"])),
                ("a".into(), s(&["a/*"])),
                ("b".into(), s(&["b/*"])),
                ("c".into(), s(&["c/*"])),
            ]
        );
    }

    #[test]
    fn a_shared_request_counts_its_envelope_and_each_scope() {
        // Scopes `a` and `bb`: 1-byte items; shared: +10, +7+1 for a, +7+2 for bb.
        let items = vec![
            item("a", "/1", false, 1),
            item("bb", "/1", false, 1),
            item("a", "/2", false, 1),
        ];
        let (batches, _) = pack(&items, &shared(limits(200, None, true, true), true), 5).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches.at(0).bytes, 5 + 3 + 10 + 8 + 9);
        // One byte less and `bb` no longer fits beside `a`: it gets its own request.
        let tight = shared(limits(200, Some(5 + 2 + 10 + 8 + 9 - 1), true, true), true);
        let (batches, _) = pack(&items, &tight, 5).unwrap();
        let scopes: Vec<(&str, usize)> = batches.iter().map(|b| (b.scope, b.bytes)).collect();
        assert_eq!(scopes, [("a", 5 + 2), ("bb", 5 + 1)]);
    }

    /// Every key hashes alike: every lookup probes through every earlier item.
    #[derive(Default)]
    struct Colliding;

    impl Hasher for Colliding {
        fn finish(&self) -> u64 {
            0x1234_5678_9abc_def0
        }
        fn write(&mut self, _: &[u8]) {}
    }

    #[test]
    fn a_hash_collision_never_merges_different_items() {
        let items = [
            item("a", "/x", false, 1),
            item("a", "/y", false, 1),
            item("b", "/x", false, 1),
            item("a", "/x", true, 1),
            item("a", "/y", false, 1),
            item("a", "/x", false, 1),
        ];
        let mut seen = Seen {
            hasher: BuildHasherDefault::<Colliding>::default(),
            slots: vec![0; items.len() + 1],
        };
        let mut asked = Vec::new();
        let firsts: Vec<Option<u32>> = items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                seen.first_or_insert(it, i as u32, &mut |j| {
                    asked.push(j);
                    Ok(items[j as usize].clone())
                })
                .unwrap()
            })
            .collect();
        assert_eq!(firsts, [None, None, None, None, Some(1), Some(0)]);
        // Each colliding earlier item was compared, not trusted.
        assert_eq!(asked, [0, 0, 1, 0, 1, 2, 0, 1, 0]);
    }

    #[test]
    fn a_failing_comparison_is_the_error() {
        let items = [item("a", "/x", false, 1), item("a", "/x", false, 1)];
        let mut seen = Seen::with_capacity(2);
        seen.first_or_insert(&items[0], 0, &mut |_| unreachable!())
            .unwrap();
        let err = seen
            .first_or_insert(&items[1], 1, &mut |_| Err(Error::protocol("gone")))
            .unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
    }

    fn arb_items() -> impl Strategy<Value = Vec<Item>> {
        prop::collection::vec((0..3usize, 0..40usize, prop::bool::weighted(0.1)), 0..400).prop_map(
            |v| {
                v.into_iter()
                    .map(|(scope, value, wildcard)| {
                        // Sizes 1 to 59, one per item: a mapping's size follows from the item.
                        let bytes = 1 + (value * 7 + scope * 13 + usize::from(wildcard)) % 59;
                        item(&format!("s{scope}"), &format!("/{value}"), wildcard, bytes)
                    })
                    .collect()
            },
        )
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
            let (batches, placements) = pack(&items, &limits, 20).unwrap();
            prop_assert_eq!(placements.len(), items.len());
            // Every distinct item sits in exactly one slot, and every slot holds an input item.
            let slots: usize = batches.iter().map(|b| b.len()).sum();
            let distinct = placements.iter().filter(|p| p.duplicate_of.is_none()).count();
            prop_assert_eq!(slots, distinct);
            let mut keys = std::collections::HashSet::new();
            for (i, p) in placements.iter().enumerate() {
                let first = batches.at(p.batch as usize).targets[p.slot as usize] as usize;
                prop_assert_eq!(key(&items[first]), key(&items[i]));
                match p.duplicate_of {
                    None => {
                        prop_assert_eq!(first, i);
                        prop_assert!(keys.insert(key(&items[i])), "a distinct item twice");
                    }
                    Some(j) => {
                        prop_assert!((j as usize) < i);
                        prop_assert_eq!(j as usize, first);
                    }
                }
            }
        }

        #[test]
        fn no_batch_breaks_a_limit(items in arb_items(), limits in arb_limits()) {
            let (batches, _) = pack(&items, &limits, 20).unwrap();
            for b in &batches {
                let its = items_of(b, &items);
                prop_assert!(!its.is_empty());
                prop_assert!(its.len() <= limits.max_items);
                let bytes = 20 + its.iter().map(|i| i.bytes).sum::<usize>();
                prop_assert_eq!(b.bytes, bytes);
                if let Some(max) = limits.max_body_bytes { prop_assert!(b.bytes <= max); }
                if limits.wildcard_alone && its.iter().any(|i| i.wildcard) {
                    prop_assert_eq!(its.len(), 1);
                }
                if limits.group_by_scope {
                    prop_assert!(its.iter().all(|i| i.scope == b.scope));
                }
            }
        }

        #[test]
        fn shared_batches_keep_every_rule(
            items in arb_items(),
            limits in arb_limits(),
            in_scope in any::<bool>(),
        ) {
            let unshared = limits.clone();
            let limits = shared(unshared.clone(), in_scope);
            let (batches, placements) = pack(&items, &limits, 20).unwrap();
            let slots: usize = batches.iter().map(|b| b.len()).sum();
            prop_assert_eq!(slots, placements.iter().filter(|p| p.duplicate_of.is_none()).count());
            for b in &batches {
                let its = items_of(b, &items);
                prop_assert!(!its.is_empty() && its.len() <= limits.max_items);
                let scopes: std::collections::HashSet<&str> =
                    its.iter().map(|i| i.scope.as_str()).collect();
                let mut bytes = 20 + its.iter().map(|i| i.bytes).sum::<usize>();
                if scopes.len() == 1 {
                    prop_assert_eq!(&b.scope, &its[0].scope);
                } else {
                    prop_assert_eq!(b.scope, "AG");
                    bytes += 10 + scopes.iter().map(|s| 7 + s.len()).sum::<usize>();
                }
                prop_assert_eq!(b.bytes, bytes);
                if let Some(max) = limits.max_body_bytes { prop_assert!(b.bytes <= max); }
                if limits.wildcard_alone {
                    for w in its.iter().filter(|i| i.wildcard) {
                        let same = its.iter().filter(|i| i.scope == w.scope).count();
                        prop_assert_eq!(same, 1, "a wildcard shares its scope");
                        if !in_scope { prop_assert_eq!(its.len(), 1); }
                    }
                }
            }
            // Without a byte limit (where each scope's envelope costs nothing that counts),
            // never more requests than one scope per request would take.
            if unshared.max_body_bytes.is_none() {
                let (alone, _) =
                    pack(&items, &Limits { group_by_scope: true, ..unshared }, 20).unwrap();
                prop_assert!(batches.len() <= alone.len(), "{} > {}", batches.len(), alone.len());
            }
        }

        #[test]
        fn deterministic_and_order_preserving(items in arb_items(), limits in arb_limits()) {
            let first = pack(&items, &limits, 20).unwrap();
            let again = pack(&items, &limits, 20).unwrap();
            prop_assert_eq!(&first, &again);
            // Within a scope, (batch, slot) grows with input position.
            let (batches, placements) = first;
            let mut last: HashMap<&str, (u32, u32)> = HashMap::new();
            for (i, p) in placements.iter().enumerate().filter(|(_, p)| p.duplicate_of.is_none()) {
                let scope = batches.at(p.batch as usize).scope;
                if items[i].wildcard && limits.wildcard_alone { continue; }
                if let Some(prev) = last.insert(scope, (p.batch, p.slot)) {
                    prop_assert!(prev < (p.batch, p.slot));
                }
            }
        }

        #[test]
        fn batches_are_as_few_as_greedy_packing_allows(items in arb_items(), limits in arb_limits()) {
            let (batches, _) = pack(&items, &limits, 20).unwrap();
            let max_bytes = limits.max_body_bytes.unwrap_or(usize::MAX);
            // No two successive multi-item-capable batches of one scope could have been one:
            // the next batch's first item did not fit in the previous open batch.
            let mut prev_open: HashMap<&str, usize> = HashMap::new();
            for (b, batch) in batches.iter().enumerate() {
                let first = &items[batch.targets[0] as usize];
                let alone = limits.wildcard_alone && first.wildcard;
                if alone { continue; }
                if let Some(&p) = prev_open.get(batch.scope) {
                    let prev = &batches.at(p);
                    prop_assert!(prev.len() == limits.max_items
                        || prev.bytes + first.bytes > max_bytes);
                }
                prev_open.insert(batch.scope, b);
            }
            // With no byte limit and no wildcards alone, the count is the minimum: ceil(n / max).
            if limits.max_body_bytes.is_none() && !limits.wildcard_alone {
                let mut per_scope: HashMap<&str, usize> = HashMap::new();
                for b in &batches { *per_scope.entry(b.scope).or_default() += b.len(); }
                let minimum: usize = per_scope.values().map(|n| n.div_ceil(limits.max_items)).sum();
                prop_assert_eq!(batches.len(), minimum);
            }
        }
    }
}
