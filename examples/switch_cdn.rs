//! Switching CDNs changes a config entry, not code: the same `release` function purges through
//! Limelight with one config and through Level 3 with the next.
//!
//! Runs offline against the emulators' demo accounts, in-process on 127.0.0.1:
//!
//! ```sh
//! cargo run --example switch_cdn
//! ```

use std::time::Duration;

use purgekit::sandbox::Sandbox;
use purgekit::{Config, PurgeRequest, Purger, Report};

/// What a deploy tool does after shipping: purge what changed, whatever the CDN.
async fn release(purger: &dyn Purger, changed: &[&str]) -> purgekit::Result<Report> {
    let request = changed
        .iter()
        .fold(PurgeRequest::builder(), |b, target| b.parse(target))
        .wait(Duration::from_secs(60))
        .build()?;
    purger.purge(&request).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start().await?;
    let ll = sandbox
        .account("limelight")
        .expect("the sandbox runs Limelight");
    let l3 = sandbox.account("level3").expect("the sandbox runs Level 3");
    let (ll, l3) = (
        |key: &str| ll[key].as_str().unwrap_or_default().to_owned(),
        |key: &str| l3[key].as_str().unwrap_or_default().to_owned(),
    );

    // Secrets come from the environment in real configs (`shared_key = "${LLNW_SHARED_KEY}"`);
    // here a closure stands in for it.
    let before = format!(
        "[providers.cdn]\nkind = \"limelight\"\nendpoint = \"{}\"\nshortname = \"{}\"\n\
         username = \"{}\"\nshared_key = \"${{CDN_SECRET}}\"\n",
        ll("endpoint"),
        ll("shortname"),
        ll("username")
    );
    let after = format!(
        "[providers.cdn]\nkind = \"level3\"\nendpoint = \"{}\"\nkey_id = \"{}\"\n\
         secret = \"${{CDN_SECRET}}\"\naccess_group = \"{}\"\nscid = \"{}\"\n",
        l3("endpoint"),
        l3("key_id"),
        l3("access_group"),
        l3("scid")
    );

    let changed = [
        "https://www.example.com/app.js",
        "https://www.example.com/css/*",
    ];
    for (label, toml, secret) in [
        ("before the switch", before, ll("shared_key")),
        ("after the switch", after, l3("secret")),
    ] {
        let config =
            Config::parse_with_env(&toml, |name| (name == "CDN_SECRET").then(|| secret.clone()))?;
        let purger = config.build()?;
        let report = release(&*purger, &changed).await?;
        println!("{label}: provider `cdn` is {}", purger.providers()[0].kind);
        for row in &report.results {
            println!("  {:<34} {}", row.target, row.state);
        }
    }
    sandbox.stop().await;
    Ok(())
}
