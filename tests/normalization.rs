//! Core's one URL normalisation, seen through every provider: two spellings of one URL are one
//! item everywhere, purged once.

mod common;

use purgekit::{Disposition, Mapped, Options, PurgeRequest, plan_provider};

#[test]
fn every_provider_maps_and_dedups_equivalent_spellings_alike() {
    let spellings = [
        "https://images.example.com/is/image/PurgekitDemo/caf%c3%a9.jpg?v=%7e",
        "https://IMAGES.example.com/is/image/PurgekitDemo/café.jpg?v=%7E",
        "https://images.example.com/is/image/PurgekitDemo/caf%C3%A9.jpg?v=%7E",
    ];
    let request = spellings
        .iter()
        .fold(PurgeRequest::builder(), |b, u| b.url(*u))
        .build()
        .unwrap();
    for case in common::decoders::cases() {
        let items: Vec<_> = request
            .targets()
            .iter()
            .map(
                |t| match case.provider().map(t, &Options::default()).unwrap() {
                    Mapped::Item(item) => item,
                    Mapped::Unsupported(why) => panic!("{}: {why}", case.name),
                },
            )
            .collect();
        assert!(
            items.windows(2).all(|w| w[0] == w[1]),
            "{}: {items:?}",
            case.name
        );
        assert!(
            items[0].value.contains("caf%C3%A9.jpg?v=%7E"),
            "{:?}",
            items[0]
        );
        let plan = plan_provider(case.name, case.provider(), &request).unwrap();
        assert_eq!(plan.items(), 1, "{}", case.name);
        assert!(matches!(
            plan.disposition(2).unwrap(),
            Disposition::Planned {
                merged_with: Some(0),
                ..
            }
        ));
    }
}
