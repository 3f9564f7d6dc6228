//! Where the purger comes from: the config file, or the in-process sandbox.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use purgekit::{Config, Purger};

use crate::Failure;

/// The purger a command runs against, and whatever must stay alive while it runs.
pub struct Session {
    /// One provider's purger, or a fan-out over several.
    pub purger: Arc<dyn Purger>,
}

impl Session {
    /// Loads the config (`--config`, `$PURGEKIT_CONFIG`, `./purgekit.toml`) and keeps the
    /// providers named in `only` (all when empty); with `sandbox`, ignores the config.
    pub async fn open(
        config: Option<&Path>,
        sandbox: bool,
        only: &[String],
    ) -> Result<Session, Failure> {
        if sandbox {
            return Err(Failure::Usage(
                "--sandbox needs the provider emulators (phase 2 of the CLI issue)".to_owned(),
            ));
        }
        let path = Config::locate(config);
        let config = Config::load(&path)?.select(only)?;
        Err(Failure::Usage(format!(
            "{}: {} providers parsed, but building them needs the provider crates (phase 2 of the CLI issue)",
            path.display(),
            config.providers.len()
        )))
    }
}

/// `emulate`: runs the three emulators until Ctrl-C.
pub async fn emulate(listen: SocketAddr, _out: &mut dyn Write) -> Result<u8, Failure> {
    Err(Failure::Usage(format!(
        "emulate on {listen} needs the provider emulators (phase 2 of the CLI issue)"
    )))
}
