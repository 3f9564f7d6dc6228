//! The planner's invariants over every target kind, the wide ones (`prefix:`, `host:`,
//! `everything`) included: each target ends in exactly one disposition, wide targets are
//! planned as wildcards (alone where the limits say so), and a kind the provider does not
//! declare is an unsupported row naming it — never sent, never widened.

use std::time::SystemTime;

use proptest::prelude::*;
use purgekit_core::{
    Accepted, Batch, Capabilities, Disposition, FollowGroup, Handle, HttpRequest, HttpResponse,
    Item, Limits, Mapped, Options, Provider, PurgeRequest, Result, Status, Target, TargetKind,
    plan_following, plan_provider,
};

/// A codec in the manner of Level 3: scope = host, prefix → `dir/*`, host → `/*`, everything
/// unsupported, tags not declared (with its own reason for them).
struct Paths {
    limits: Limits,
}

impl Provider for Paths {
    fn kind(&self) -> &'static str {
        "paths"
    }
    fn account(&self) -> String {
        "acct".into()
    }
    fn endpoint(&self) -> String {
        "https://api.example".into()
    }
    fn limits(&self) -> Limits {
        self.limits.clone()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![
                TargetKind::Url,
                TargetKind::Pattern,
                TargetKind::Prefix,
                TargetKind::Host,
                TargetKind::Everything,
            ],
            options: Vec::new(),
        }
    }
    fn unsupported_reason(&self, kind: TargetKind) -> Option<String> {
        (kind == TargetKind::Tag).then(|| TAGS_REASON.to_owned())
    }
    fn map(&self, target: &Target, _options: &Options) -> Result<Mapped> {
        let value = match target.kind() {
            TargetKind::Url | TargetKind::Pattern => target.path_and_query().unwrap().to_owned(),
            TargetKind::Prefix => format!("{}*", target.path_and_query().unwrap()),
            TargetKind::Host => "/*".to_owned(),
            TargetKind::Everything | TargetKind::Tag => {
                return Ok(Mapped::Unsupported("paths needs a host".into()));
            }
        };
        Ok(Mapped::Item(Item {
            kind: target.kind(),
            bytes: value.len() + 1,
            wildcard: target.is_wide(),
            value,
            scope: target.host().unwrap().to_owned(),
        }))
    }
    fn encode(&self, _: &Batch, _: &Options, _: SystemTime) -> Result<HttpRequest> {
        unreachable!("planning encodes nothing")
    }
    fn decode(&self, _: &Batch, _: HttpResponse) -> Result<Accepted> {
        unreachable!()
    }
    fn encode_status(&self, _: &Handle, _: SystemTime) -> Result<HttpRequest> {
        unreachable!()
    }
    fn decode_status(&self, _: &Handle, _: HttpResponse) -> Result<Status> {
        unreachable!()
    }
    fn redact(&self, _: &mut HttpRequest) {}
}

const TAGS_REASON: &str = "paths purges paths, not cache tags";

fn arb_target() -> impl Strategy<Value = Target> {
    let host = prop::sample::select(vec!["a.example", "b.example", "c.example"]);
    let dir = prop::sample::select(vec!["/", "/img/", "/css/", "/img/x/"]);
    (0..6u8, host, dir).prop_map(|(which, host, dir)| match which {
        0 => Target::url(format!("https://{host}{dir}f.js")).unwrap(),
        1 => Target::pattern(format!("https://{host}{dir}*")).unwrap(),
        2 => Target::tag(format!("t-{host}")).unwrap(),
        3 => Target::prefix(format!("https://{host}{dir}")).unwrap(),
        4 => Target::hostname(host).unwrap(),
        _ => Target::everything(),
    })
}

proptest! {
    #[test]
    fn every_target_one_disposition_and_wide_ones_stay_exact(
        targets in prop::collection::vec(arb_target(), 1..60),
        max_items in 1..20usize,
        alone in any::<bool>(),
    ) {
        let provider = Paths {
            limits: Limits { max_items, wildcard_alone: alone, group_by_scope: true, ..Limits::default() },
        };
        let request = PurgeRequest::new(targets.clone(), Options::default()).unwrap();
        let plan = plan_provider("p", &provider, &request).unwrap();
        prop_assert_eq!(plan.target_count(), targets.len());
        for (t, (target, disposition)) in targets.iter().zip(plan.dispositions()).enumerate() {
            match (target.kind(), disposition) {
                (TargetKind::Tag, Disposition::Unsupported { reason }) => {
                    // The provider's own reason for a kind it does not declare.
                    prop_assert_eq!(&*reason, TAGS_REASON);
                }
                (TargetKind::Everything, Disposition::Unsupported { reason }) => {
                    prop_assert_eq!(&*reason, "paths needs a host");
                }
                (kind, Disposition::Planned { batch, slot, merged_with }) => {
                    prop_assert!(!matches!(kind, TargetKind::Tag | TargetKind::Everything));
                    let b = plan.batches().at(batch as usize);
                    let first = merged_with.map_or(t, |m| m as usize);
                    prop_assert_eq!(b.targets[slot as usize] as usize, first);
                    // Same scope and an item that covers exactly the target, nothing wider.
                    prop_assert_eq!(b.scope, target.host().unwrap());
                    let item = match provider.map(target, request.options()).unwrap() {
                        Mapped::Item(item) => item,
                        Mapped::Unsupported(r) => return Err(TestCaseError::fail(r)),
                    };
                    match kind {
                        TargetKind::Prefix => prop_assert_eq!(
                            item.value.clone(),
                            format!("{}*", target.path_and_query().unwrap())
                        ),
                        TargetKind::Host => prop_assert_eq!(item.value.as_str(), "/*"),
                        _ => {}
                    }
                    if alone && target.is_wide() {
                        prop_assert_eq!(b.targets.len(), 1);
                    }
                    prop_assert!(b.targets.len() <= max_items);
                }
                (kind, other) => {
                    return Err(TestCaseError::fail(format!("{kind:?}: {other:?}")));
                }
            }
        }
    }
}

proptest! {
    /// Taking some planned targets out of the packing ([`plan_following`], for targets queued
    /// in other runs' batches): every target still ends in one disposition; the followed ones
    /// (and their merged duplicates) are in the batches after the packed ones, in their groups'
    /// order; the rest are packed within the limits; every batch maps again to its bytes.
    #[test]
    fn followed_targets_leave_the_packing(
        targets in prop::collection::vec(arb_target(), 1..60),
        max_items in 1..8usize,
        picks in prop::collection::vec(any::<bool>(), 60),
    ) {
        let provider = Paths {
            limits: Limits { max_items, group_by_scope: true, ..Limits::default() },
        };
        let request = PurgeRequest::new(targets.clone(), Options::default()).unwrap();
        let base = plan_provider("p", &provider, &request).unwrap();
        // Groups: the picked slots of each batch of the base plan, as another run's batch
        // holding them would give them.
        let groups: Vec<FollowGroup> = base
            .batches()
            .iter()
            .map(|b| FollowGroup {
                scope: b.scope.to_owned(),
                targets: b.targets.iter().copied().filter(|&t| picks[t as usize]).collect(),
            })
            .filter(|g| !g.targets.is_empty())
            .collect();
        let plan = plan_following(&provider, &request, &base, &groups).unwrap();
        let packed = plan.batches().len() - groups.len();
        for (g, group) in groups.iter().enumerate() {
            prop_assert_eq!(plan.batches().at(packed + g).targets, &group.targets[..]);
        }
        prop_assert_eq!(plan.target_count(), targets.len());
        for (t, (old, new)) in base.dispositions().zip(plan.dispositions()).enumerate() {
            match (old, new) {
                (Disposition::Unsupported { .. }, Disposition::Unsupported { .. }) => {}
                (
                    Disposition::Planned { merged_with: m1, .. },
                    Disposition::Planned { batch, slot, merged_with },
                ) => {
                    prop_assert_eq!(m1, merged_with);
                    let first = merged_with.map_or(t, |m| m as usize);
                    prop_assert_eq!(plan.batches().at(batch as usize).targets[slot as usize] as usize, first);
                    prop_assert_eq!((batch as usize) >= packed, picks[first]);
                }
                (old, new) => return Err(TestCaseError::fail(format!("{old:?} → {new:?}"))),
            }
        }
        for (index, batch) in plan.batches().iter().enumerate() {
            prop_assert!(index >= packed || batch.targets.len() <= max_items);
            prop_assert!(plan.batch(index, &provider, &request).is_ok());
        }
    }
}
