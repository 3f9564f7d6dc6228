//! Where the purger comes from: the config file, or the sandbox of in-process emulators.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use purgekit::registry::Drive;
use purgekit::sandbox::Sandbox;
use purgekit::{Config, EngineConfig, Purger, Transport};

use crate::Failure;

/// The purger a command runs against, and whatever must stay alive while it runs.
pub struct Session {
    /// One provider's purger, or a fan-out over several.
    pub purger: Arc<dyn Purger>,
    /// With `--sandbox`: the emulators, serving until the session ends.
    _sandbox: Option<Sandbox>,
}

impl Session {
    /// Loads the config (`--config`, `$PURGEKIT_CONFIG`, `./purgekit.toml`) and keeps the
    /// providers named in `only` (all when empty). With `sandbox`, ignores the config and
    /// starts every emulator on loopback with its demo account instead; their config goes
    /// through the same loader as a file would. The purgers run with `engine` and send through
    /// `transport`.
    pub async fn open(
        config: Option<&Path>,
        sandbox: bool,
        only: &[String],
        engine: &EngineConfig,
        transport: &Arc<dyn Transport>,
    ) -> Result<Session, Failure> {
        let (config, sandbox) = if sandbox {
            let sandbox = Sandbox::start()
                .await
                .map_err(|e| Failure::Failed(format!("cannot start the sandbox: {e}")))?;
            tracing::info!("sandbox: emulators on {}", sandbox.endpoints().join(", "));
            (sandbox.config().clone(), Some(sandbox))
        } else {
            (Config::load(Config::locate(config))?, None)
        };
        let drive = Drive {
            rates: None,
            engine: Some(engine.clone()),
            transport: Some(transport.clone()),
        };
        let purger = config.select(only)?.build_with(&drive)?;
        Ok(Session {
            purger,
            _sandbox: sandbox,
        })
    }
}

/// The line `emulate` ends its printed config with (a script reading the config stops there).
pub const END_OF_CONFIG: &str = "# end of config\n";

/// `emulate`: runs every emulator until Ctrl-C, printing their endpoints and a config for
/// their demo accounts.
pub async fn emulate(listen: SocketAddr, out: &mut dyn Write) -> Result<u8, Failure> {
    let sandbox = Sandbox::start_at(listen.ip(), listen.port())
        .await
        .map_err(|e| Failure::Failed(format!("cannot listen on {listen}: {e}")))?;
    if !listen.ip().is_loopback() {
        tracing::warn!(
            "listening on {}: purgekit accepts plain http:// endpoints on loopback only",
            listen.ip()
        );
    }
    let mut text = "# purgekit emulators, with demo accounts; Ctrl-C stops them.\n".to_owned();
    let width = sandbox
        .emulators()
        .iter()
        .map(|e| e.title().len() + 1)
        .max()
        .unwrap_or(0);
    for (emulator, endpoint) in sandbox.emulators().iter().zip(sandbox.endpoints()) {
        text.push_str(&format!(
            "# {:<width$}  {endpoint}\n",
            format!("{}:", emulator.title())
        ));
    }
    text.push_str("# Save what follows as purgekit.toml (or pass it with --config).\n\n");
    text.push_str(sandbox.config_toml());
    text.push_str(END_OF_CONFIG);
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Failed(format!("cannot write the output: {e}")))?;
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Failure::Failed(format!("cannot wait for Ctrl-C: {e}")))?;
    tracing::info!("stopping the emulators");
    sandbox.stop().await;
    Ok(crate::run::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open(
        config: Option<&Path>,
        sandbox: bool,
        only: &[String],
    ) -> Result<Session, Failure> {
        let transport: Arc<dyn Transport> = Arc::new(purgekit::ReqwestTransport::default());
        Session::open(config, sandbox, only, &EngineConfig::default(), &transport).await
    }

    #[tokio::test]
    async fn sandbox_session_serves_every_emulator_on_loopback() {
        let session = open(None, true, &[]).await.unwrap();
        let providers = session.purger.providers();
        let kinds: Vec<&str> = providers.iter().map(|p| p.kind.as_str()).collect();
        let emulated: Vec<&str> = purgekit::emulator::sandbox()
            .iter()
            .map(|e| e.kind())
            .collect();
        assert_eq!(kinds, emulated);
        for p in &providers {
            assert!(p.endpoint.starts_with("http://127.0.0.1:"), "{p:?}");
        }
        let only = open(None, true, &["limelight".to_owned()]).await.unwrap();
        let providers = only.purger.providers();
        assert_eq!(providers.len(), 1);
        assert_eq!(providers[0].kind, "limelight");
        assert!(matches!(
            open(None, true, &["fastly".to_owned()]).await,
            Err(Failure::Usage(m)) if m.contains("configured: cloudfront, dynamic-media, level3, limelight")
        ));
    }

    #[tokio::test]
    async fn a_missing_config_file_is_a_usage_error_naming_it() {
        let missing = Path::new("/nonexistent/purgekit-test.toml");
        assert!(matches!(
            open(Some(missing), false, &[]).await,
            Err(Failure::Usage(m)) if m.contains("/nonexistent/purgekit-test.toml")
        ));
    }
}
