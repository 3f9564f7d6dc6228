//! One purge, three CDNs at once: Level 3, Limelight and Adobe Dynamic Media, from one config.
//! The report has one row per (target, provider); a provider that cannot purge a target says
//! why, and one slow or failing provider does not hold up the others.
//!
//! Runs offline against the three emulators' demo accounts, in-process on 127.0.0.1:
//!
//! ```sh
//! cargo run --example fanout
//! ```

use std::time::Duration;

use purgekit::sandbox::Sandbox;
use purgekit::{Config, PurgeRequest, State};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start().await?;
    // The same TOML a purgekit.toml holds (`purgekit emulate` prints it): three providers.
    let toml = sandbox.config_toml();
    println!("{toml}");
    let purger = Config::parse(toml)?.build()?; // several providers: a fan-out

    let request = PurgeRequest::builder()
        .url("https://images.example.com/is/image/PurgekitDemo/hero.jpg")
        .url("https://images.example.com/is/image/PurgekitDemo/logo.png")
        .pattern("https://images.example.com/static/*") // Adobe takes exact URLs only
        .build()?
        .with_wait(Some(Duration::from_secs(60)));
    let report = purger.purge(&request).await?;

    for provider in purger.providers() {
        let rows: Vec<_> = report
            .results
            .iter()
            .filter(|r| r.provider == provider.name)
            .collect();
        let done = rows.iter().filter(|r| r.state == State::Completed).count();
        println!(
            "{} ({}): {done} of {} completed",
            provider.name,
            provider.kind,
            rows.len()
        );
        for row in rows {
            println!(
                "  {:<60} {:<12} {}",
                row.target,
                row.state.to_string(),
                row.error.as_deref().unwrap_or("")
            );
        }
    }
    println!("summary: {:?}", report.summary);
    sandbox.stop().await;
    Ok(())
}
