//! The compact forms a run is stored in: a request's target texts as a few large chunks, and a
//! provider's plan as one blob (every batch's scope, sizes and target indices, then the targets
//! it sends in no batch of their own). Little-endian, length-prefixed, versioned.

use std::sync::Arc;

use purgekit_core::{Disposition, Error, PlanBuilder, ProviderPlan, Result, Target};

/// The version byte of [`encode_plan`]'s format.
const PLAN_FORMAT: u8 = 1;

/// Target texts per chunk, at most (bytes): big enough that a million URLs are a few dozen
/// rows, small enough that one chunk is a modest allocation.
pub(crate) const CHUNK_BYTES: usize = 4 << 20;

fn corrupt(what: &str) -> Error {
    Error::Journal {
        message: format!("the stored {what} is damaged (written by another program?)"),
    }
}

/// Refuses a target whose text holds a line break (no valid target has one): the stored form
/// is one target per line.
pub(crate) fn check_lines(targets: &[Target]) -> Result<()> {
    match targets.iter().find(|t| t.shared_text().contains('\n')) {
        Some(target) => Err(Error::invalid(
            &*target.shared_text(),
            "a journaled target cannot hold a line break",
        )),
        None => Ok(()),
    }
}

/// The target texts of a request, `'\n'`-separated, in chunks of at most about
/// [`CHUNK_BYTES`], formed one at a time (each written and dropped before the next).
pub(crate) struct TargetChunks<'a> {
    targets: &'a [Target],
    next: usize,
    /// [`CHUNK_BYTES`], smaller in tests.
    limit: usize,
}

impl<'a> TargetChunks<'a> {
    pub(crate) fn new(targets: &'a [Target]) -> Self {
        TargetChunks {
            targets,
            next: 0,
            limit: CHUNK_BYTES,
        }
    }
}

impl Iterator for TargetChunks<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.next >= self.targets.len() {
            return None;
        }
        // The chunk's targets and length first, so that it is allocated once at its size (a
        // request of 100 URLs is a few kB, not a chunk's 4 MB).
        let (mut end, mut len) = (self.next, 0);
        for target in &self.targets[self.next..] {
            let text = target.shared_text().len();
            if end > self.next && len + 1 + text > self.limit {
                break;
            }
            len += usize::from(end > self.next) + text;
            end += 1;
        }
        let mut chunk: Vec<u8> = Vec::with_capacity(len);
        for target in &self.targets[self.next..end] {
            if !chunk.is_empty() {
                chunk.push(b'\n');
            }
            chunk.extend_from_slice(target.shared_text().as_bytes());
        }
        self.next = end;
        Some(chunk)
    }
}

/// The targets back from their chunks, each parsed (and so validated) again.
pub(crate) fn targets_of(chunks: &[Vec<u8>], expected: usize) -> Result<Vec<Target>> {
    let mut targets = Vec::with_capacity(expected);
    for chunk in chunks {
        let text = std::str::from_utf8(chunk).map_err(|_| corrupt("request"))?;
        for line in text.split('\n') {
            targets.push(Target::parse(line)?);
        }
    }
    if targets.len() != expected {
        return Err(corrupt("request"));
    }
    Ok(targets)
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, n: usize) {
        self.0.extend_from_slice(&(n as u32).to_le_bytes());
    }
    fn u64(&mut self, n: usize) {
        self.0.extend_from_slice(&(n as u64).to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(corrupt("plan"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn str(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| corrupt("plan"))
    }
}

/// A provider's plan as one blob: the batches (scope, body bytes, wildcards, target indices)
/// and the targets in no batch of their own (unsupported with their reasons, merged
/// duplicates with the target they follow). The encoded requests and billing are not kept.
pub(crate) fn encode_plan(plan: &ProviderPlan) -> Vec<u8> {
    let batches = plan.batches();
    let mut w = Writer(Vec::with_capacity(
        64 + batches.items() * 4 + batches.len() * 32,
    ));
    w.0.push(PLAN_FORMAT);
    w.0.push(u8::from(plan.client_side_dry_run));
    w.u32(plan.warnings.len());
    for warning in &plan.warnings {
        w.str(warning);
    }
    w.u32(batches.len());
    for batch in batches {
        w.str(batch.scope);
        w.u64(batch.bytes);
        w.u32(batch.wildcards);
        w.u32(batch.targets.len());
        for &t in batch.targets {
            w.0.extend_from_slice(&t.to_le_bytes());
        }
    }
    // Reasons are shared strings: each distinct one written once.
    let (reasons, unsupported) = plan.unsupported();
    let merged: Vec<(usize, u32)> = plan
        .dispositions()
        .enumerate()
        .filter_map(|(index, disposition)| match disposition {
            Disposition::Planned {
                merged_with: Some(first),
                ..
            } => Some((index, first)),
            _ => None,
        })
        .collect();
    w.u32(reasons.len());
    for reason in reasons {
        w.str(reason);
    }
    w.u32(unsupported.len());
    for &(index, reason) in unsupported {
        w.u32(index as usize);
        w.u32(reason as usize);
    }
    w.u32(merged.len());
    for (index, first) in merged {
        w.u32(index);
        w.u32(first as usize);
    }
    w.0
}

/// The plan back from [`encode_plan`], for a request of `targets` targets.
pub(crate) fn decode_plan(
    bytes: &[u8],
    provider: &str,
    kind: &str,
    targets: usize,
) -> Result<ProviderPlan> {
    let mut r = Reader(bytes);
    if r.u8()? != PLAN_FORMAT {
        return Err(corrupt("plan"));
    }
    let client_side_dry_run = r.u8()? != 0;
    let warnings = (0..r.u32()?).map(|_| r.str()).collect::<Result<Vec<_>>>()?;
    let mut plan = PlanBuilder::new(provider, kind, targets);
    let mut list: Vec<u32> = Vec::new();
    for _ in 0..r.u32()? {
        let scope = r.str()?;
        let body = r.u64()? as usize;
        let wildcards = r.u32()? as usize;
        let n = r.u32()? as usize;
        let raw = r.take(n.checked_mul(4).ok_or_else(|| corrupt("plan"))?)?;
        list.clear();
        list.extend(
            raw.chunks_exact(4)
                .map(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]])),
        );
        plan.batch(&scope, &list, body, wildcards)
            .map_err(|_| corrupt("plan"))?;
    }
    let reasons: Vec<Arc<str>> = (0..r.u32()?)
        .map(|_| r.str().map(Arc::from))
        .collect::<Result<_>>()?;
    for _ in 0..r.u32()? {
        let (index, reason) = (r.u32()?, r.u32()? as usize);
        let reason = reasons.get(reason).ok_or_else(|| corrupt("plan"))?.clone();
        plan.unsupported(index, reason)
            .map_err(|_| corrupt("plan"))?;
    }
    for _ in 0..r.u32()? {
        let (index, first) = (r.u32()?, r.u32()?);
        plan.merged(index, first).map_err(|_| corrupt("plan"))?;
    }
    if !r.0.is_empty() {
        return Err(corrupt("plan"));
    }
    let mut plan = plan.build().map_err(|_| corrupt("plan"))?;
    plan.warnings = warnings;
    plan.client_side_dry_run = client_side_dry_run;
    Ok(plan)
}

/// Slots (`u32` each) as bytes.
pub(crate) fn encode_u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Slots back from [`encode_u32s`].
pub(crate) fn decode_u32s(bytes: &[u8]) -> Result<Vec<u32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(corrupt("batch"));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip_through_chunks() {
        let targets: Vec<Target> = [
            "https://a.example/x?y=1",
            "tag:home",
            "prefix:https://a.example/d/",
            "host:a.example",
            "everything",
            "https://a.example/*.css",
        ]
        .iter()
        .map(|t| Target::parse(t).unwrap())
        .collect();
        check_lines(&targets).unwrap();
        let chunks: Vec<Vec<u8>> = TargetChunks::new(&targets).collect();
        assert_eq!(targets_of(&chunks, targets.len()).unwrap(), targets);
        assert!(targets_of(&chunks, targets.len() + 1).is_err());
    }

    #[test]
    fn chunks_stay_under_the_limit_and_are_allocated_at_their_size() {
        let targets: Vec<Target> = (0..50)
            .map(|i| Target::parse(&format!("https://a.example/{}", "p".repeat(i))).unwrap())
            .chain([Target::parse(&format!("https://a.example/{}", "q".repeat(400))).unwrap()])
            .collect();
        let chunks: Vec<Vec<u8>> = TargetChunks {
            targets: &targets,
            next: 0,
            limit: 256,
        }
        .collect();
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        for chunk in &chunks {
            assert_eq!(chunk.capacity(), chunk.len());
            // Only a target longer than the limit makes a chunk over it, alone.
            assert!(
                chunk.len() <= 256 || !chunk.contains(&b'\n'),
                "{}",
                chunk.len()
            );
        }
        assert!(chunks.last().unwrap().len() > 256);
        assert_eq!(targets_of(&chunks, targets.len()).unwrap(), targets);
    }

    #[test]
    fn a_plan_round_trips_and_damage_is_an_error() {
        let build = |second_unsupported: bool| {
            let mut plan = PlanBuilder::new("p", "k", 3);
            plan.batch("s", &[0], 10, 0).unwrap();
            if second_unsupported {
                plan.unsupported(1, Arc::from("no")).unwrap();
            } else {
                plan.batch("", &[1], 12, 1).unwrap();
            }
            plan.merged(2, 0).unwrap();
            let mut plan = plan.build().unwrap();
            plan.warnings = vec!["w".into()];
            plan
        };
        let plan = build(false);
        let blob = encode_plan(&plan);
        assert_eq!(decode_plan(&blob, "p", "k", 3).unwrap(), plan);
        assert!(decode_plan(&blob[..blob.len() - 1], "p", "k", 3).is_err());
        assert!(decode_plan(&blob, "p", "k", 4).is_err());
        let plan = build(true);
        assert_eq!(decode_plan(&encode_plan(&plan), "p", "k", 3).unwrap(), plan);
    }

    /// The stored bytes of a plan, as format 1 has always written them: journals written
    /// before plans became compact read back unchanged.
    #[test]
    fn the_plan_format_is_unchanged() {
        let mut plan = PlanBuilder::new("p", "k", 3);
        plan.batch("s", &[0], 10, 0).unwrap();
        plan.unsupported(1, Arc::from("no")).unwrap();
        plan.merged(2, 0).unwrap();
        let mut plan = plan.build().unwrap();
        plan.warnings = vec!["w".into()];
        #[rustfmt::skip]
        let expected: &[u8] = &[
            1, 0, // format, not a client-side dry run
            1, 0, 0, 0, 1, 0, 0, 0, b'w', // one warning
            1, 0, 0, 0, // one batch:
            1, 0, 0, 0, b's', // its scope
            10, 0, 0, 0, 0, 0, 0, 0, // its bytes
            0, 0, 0, 0, // its wildcards
            1, 0, 0, 0, 0, 0, 0, 0, // its targets: [0]
            1, 0, 0, 0, 2, 0, 0, 0, b'n', b'o', // one reason
            1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, // target 1: reason 0
            1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, // target 2: merged with 0
        ];
        assert_eq!(encode_plan(&plan), expected);
        assert_eq!(decode_plan(expected, "p", "k", 3).unwrap(), plan);
    }

    #[test]
    fn a_target_placed_twice_is_damage() {
        let mut plan = PlanBuilder::new("p", "k", 2);
        plan.batch("", &[0, 1], 10, 0).unwrap();
        let mut blob = encode_plan(&plan.build().unwrap());
        // The second slot names target 0 again.
        let at = blob.len() - 12 - 4;
        blob[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
        assert!(decode_plan(&blob, "p", "k", 2).is_err());
    }
}
