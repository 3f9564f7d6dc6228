//! Purge on one CDN: a Limelight SmartPurge account, wired in code, no config file.
//!
//! Runs offline: the account is the Limelight emulator's demo account, served in-process on
//! 127.0.0.1 by [`purgekit::sandbox`].
//!
//! ```sh
//! cargo run --example purge_one
//! ```

use std::sync::Arc;
use std::time::Duration;

use purgekit::limelight::{Limelight, LimelightConfig};
use purgekit::sandbox::Sandbox;
use purgekit::{Handle, ProviderPurger, PurgeRequest, Purger};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start().await?;
    let demo = sandbox
        .account("limelight")
        .expect("the sandbox runs Limelight");
    let text = |key: &str| demo[key].as_str().unwrap_or_default().to_owned();

    // In production: the default endpoint (https://apis.llnw.com) and a key from the environment,
    // e.g. `LimelightConfig::new("example", "deploy-bot", std::env::var("LLNW_SHARED_KEY")?)`.
    let mut config = LimelightConfig::new(text("shortname"), text("username"), text("shared_key"));
    config.endpoint = text("endpoint");
    let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("llnw", Limelight::new(config)?));

    let request = PurgeRequest::builder()
        .url("https://www.example.com/app.js")
        .pattern("https://www.example.com/img/*")
        .tag("homepage")
        .build()?
        .with_wait(Some(Duration::from_secs(60)));
    let report = purger.purge(&request).await?;
    for row in &report.results {
        println!(
            "{:<32} {:<10} {}",
            row.target,
            row.state.to_string(),
            row.handle.as_deref().unwrap_or("-")
        );
    }
    println!("outcome: {:?}", report.outcome());

    // The handle is what `purgekit status --provider llnw HANDLE` takes, too.
    if let Some(handle) = &report.results[0].handle {
        let status = purger.status("llnw", &Handle(handle.clone())).await?;
        println!("status of {handle}: {}", status.detail);
    }
    sandbox.stop().await;
    Ok(())
}
