//! Where the purger comes from: the config file, or the sandbox of in-process emulators.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use purgekit::emulator;
use purgekit::registry::{Drive, Registry};
use purgekit::sandbox::Sandbox;
use purgekit::{
    AuthOutcome, Config, EngineConfig, ProxyPolicy, Purger, ReqwestTransport, Transport,
};

use crate::Failure;
use crate::args::EmulateArgs;

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
        proxy: Option<&ProxyPolicy>,
    ) -> Result<Session, Failure> {
        Self::open_with_rates(config, sandbox, only, engine, proxy, None).await
    }

    /// [`Session::open`], the accounts' rate limiters kept in `rates` (a journal's shared
    /// schedules) instead of the process-wide registry.
    pub async fn open_with_rates(
        config: Option<&Path>,
        sandbox: bool,
        only: &[String],
        engine: &EngineConfig,
        proxy: Option<&ProxyPolicy>,
        rates: Option<Arc<purgekit::RateRegistry>>,
    ) -> Result<Session, Failure> {
        let (config, sandbox) = if sandbox {
            let sandbox = Sandbox::start()
                .await
                .map_err(|e| Failure::Failed(format!("cannot start the sandbox: {e}")))?;
            tracing::info!("sandbox: emulators on {}", sandbox.endpoints().join(", "));
            (sandbox.config().clone(), Some(sandbox))
        } else {
            (load(config)?, None)
        };
        // The proxy: `--proxy` if given, else the config file's `proxy`, else the environment.
        let proxy = proxy
            .or(config.proxy.as_ref())
            .unwrap_or(&ProxyPolicy::Environment);
        let transport: Arc<dyn Transport> = Arc::new(ReqwestTransport::with_proxy(proxy)?);
        let drive = Drive {
            rates,
            engine: Some(engine.clone()),
            transport: Some(transport),
        };
        let purger = config.select(only)?.build_with(&drive)?;
        Ok(Session {
            purger,
            _sandbox: sandbox,
        })
    }
}

/// Loads the config file (`--config`, `$PURGEKIT_CONFIG`, `./purgekit.toml`); a missing one is
/// a usage failure saying where it looked and how to get one.
pub fn load(config: Option<&Path>) -> Result<Config, Failure> {
    let path = Config::locate(config);
    if !path.exists() {
        return Err(Failure::Usage(format!(
            "no config file at {} (the path is --config, else $PURGEKIT_CONFIG, else \
             ./purgekit.toml): write one with `purgekit config init > purgekit.toml`, or try \
             the built-in emulators with --sandbox",
            path.display()
        )));
    }
    Ok(Config::load(path)?)
}

/// `config init`: a commented template for each kind in `kinds` (every kind built in when
/// empty), as its provider's crate writes it (`Registry::template`): placeholder values, each
/// secret read from an environment variable, the endpoint left to the vendor's default.
pub fn config_template(kinds: &[String]) -> Result<String, Failure> {
    let registry = Registry::builtin();
    let known = registry.kinds();
    if let Some(unknown) = kinds.iter().find(|k| !known.contains(&k.as_str())) {
        return Err(Failure::Usage(format!(
            "--kind {unknown}: not a provider kind of this build (kinds: {})",
            known.join(", ")
        )));
    }
    let mut out = String::from(
        "# purgekit.toml: one [providers.NAME] table per CDN account; several = a fan-out.\n\
         # The values are placeholders: replace them with your account's.\n\
         # Any string may read the environment as ${VAR}; secrets should.\n\
         # Check it offline with `purgekit config check`.\n",
    );
    for kind in known {
        if !kinds.is_empty() && !kinds.iter().any(|k| k == kind) {
            continue;
        }
        let Some(template) = registry.template(kind) else {
            continue;
        };
        out.push_str(&format!(
            "\n# {kind}: every key and rule in docs/providers/{kind}.md; `endpoint` and the rate \
             limits default to the vendor's.\n[providers.{kind}]\n{template}"
        ));
    }
    Ok(out)
}

/// `config check`: loads the config and builds every provider, offline; one line each.
pub fn config_check(config: Option<&Path>) -> Result<String, Failure> {
    let config = load(config)?;
    let purger = config.select(&[] as &[String])?.build()?;
    let providers = purger.providers();
    let mut out = String::new();
    for p in &providers {
        out.push_str(&format!("ok: {} ({}) at {}\n", p.name, p.kind, p.endpoint));
    }
    out.push_str(&format!(
        "{} {} checked offline; nothing was sent (credentials are not verified)\n",
        providers.len(),
        if providers.len() == 1 {
            "provider"
        } else {
            "providers"
        }
    ));
    Ok(out)
}

/// How long `config check --auth` waits for all its checks.
const AUTH_CHECK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// `config check --auth`: loads the config and sends each provider's read-only authenticated
/// call (`Provider::auth_probe`) through the proxy `purge` would use, under one deadline; one line per
/// provider, and the exit code (1 when any was refused or could not be checked for a reason
/// other than its API having no such call). No line shows a secret: the messages are the
/// providers' decoders', which never carry one.
pub async fn config_check_auth(
    config: Option<&Path>,
    proxy: Option<&ProxyPolicy>,
) -> Result<(String, u8), Failure> {
    let engine = EngineConfig {
        deadline: AUTH_CHECK_DEADLINE,
        ..EngineConfig::default()
    };
    let session = Session::open(config, false, &[], &engine, proxy).await?;
    let checks = session.purger.check_auth().await;
    let mut out = String::new();
    let (mut accepted, mut refused, mut failed, mut unavailable) = (0, 0, 0, 0);
    for c in &checks {
        let (name, kind, endpoint) = (&c.name, &c.kind, &c.endpoint);
        out.push_str(&match &c.outcome {
            AuthOutcome::Accepted => {
                accepted += 1;
                format!("ok: {name} ({kind}) credentials accepted at {endpoint}\n")
            }
            AuthOutcome::Refused(why) => {
                refused += 1;
                format!("refused: {name} ({kind}) at {endpoint}: {why}\n")
            }
            AuthOutcome::Failed(why) => {
                failed += 1;
                format!("failed: {name} ({kind}) at {endpoint}: {why}\n")
            }
            AuthOutcome::Unavailable(why) => {
                unavailable += 1;
                format!("cannot check: {name} ({kind}) ({why})\n")
            }
        });
    }
    out.push_str(&format!(
        "{} checked: {accepted} accepted, {refused} refused, {failed} failed, {unavailable} \
         cannot be checked\n",
        checks.len()
    ));
    let code = if refused + failed > 0 {
        crate::run::EXIT_FAILED
    } else {
        crate::run::EXIT_OK
    };
    Ok((out, code))
}

/// The line `emulate` ends its printed config with (a script reading the config stops there).
pub const END_OF_CONFIG: &str = "# end of config\n";

/// `emulate`: runs every emulator until Ctrl-C, printing their endpoints, their effective
/// limits and a config for their demo accounts.
pub async fn emulate(args: &EmulateArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let sandbox = start_emulators(args).await?;
    out.write_all(emulate_header(&sandbox, args.speed).as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Failed(format!("cannot write the output: {e}")))?;
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Failure::Failed(format!("cannot wait for Ctrl-C: {e}")))?;
    tracing::info!("stopping the emulators");
    sandbox.stop().await;
    Ok(crate::run::EXIT_OK)
}

/// Every emulator, adjusted by `--speed` and `--limit`, serving at `--listen`.
async fn start_emulators(args: &EmulateArgs) -> Result<Sandbox, Failure> {
    let listen = args.listen;
    let emulators = emulator::adjust_all(emulator::sandbox(), args.speed, &args.limits)
        .map_err(Failure::Usage)?;
    let sandbox = Sandbox::start_with(emulators, listen.ip(), listen.port(), &Registry::builtin())
        .await
        .map_err(|e| Failure::Failed(format!("cannot listen on {listen}: {e}")))?;
    if !listen.ip().is_loopback() {
        tracing::warn!(
            "listening on {}: purgekit accepts plain http:// endpoints on loopback only",
            listen.ip()
        );
    }
    Ok(sandbox)
}

/// What `emulate` prints: each emulator's endpoint and effective limits, then the config.
fn emulate_header(sandbox: &Sandbox, speed: f64) -> String {
    let mut text = "# purgekit emulators, with demo accounts; Ctrl-C stops them.\n".to_owned();
    if speed != 1.0 {
        text.push_str(&format!(
            "# --speed {speed}: every rate window and completion time {speed}× shorter.\n"
        ));
    }
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
        let limits = emulator::limits_line(&**emulator);
        if !limits.is_empty() {
            text.push_str(&format!(
                "#   limits ({}.NAME=VALUE): {limits}\n",
                emulator.kind()
            ));
        } else if speed != 1.0 {
            text.push_str("#   no adjustable limits or times: --speed does not apply\n");
        }
    }
    text.push_str("# Save what follows as purgekit.toml (or pass it with --config).\n\n");
    text.push_str(sandbox.config_toml());
    text.push_str(END_OF_CONFIG);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open(
        config: Option<&Path>,
        sandbox: bool,
        only: &[String],
    ) -> Result<Session, Failure> {
        Session::open(config, sandbox, only, &EngineConfig::default(), None).await
    }

    #[tokio::test]
    async fn sandbox_session_serves_every_provider_on_loopback() {
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
        let configured = format!("configured: {}", emulated.join(", "));
        assert!(matches!(
            open(None, true, &["fastly".to_owned()]).await,
            Err(Failure::Usage(m)) if m.contains(&configured)
        ));
    }

    fn emulate_args(speed: f64, limits: &[&str]) -> EmulateArgs {
        EmulateArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            speed,
            limits: limits.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn emulate_prints_the_effective_limits_and_declares_them() {
        let sandbox = start_emulators(&emulate_args(1.0, &[])).await.unwrap();
        let plain = emulate_header(&sandbox, 1.0);
        assert!(
            plain.contains(
                "#   limits (level3.NAME=VALUE): completion_time = \"2s\", rate_window = \"1m\", \
                 requests_per_window = 10\n"
            ),
            "{plain}"
        );
        sandbox.stop().await;
        let args = emulate_args(
            10.0,
            &[
                "level3.requests_per_window=20",
                "limelight.item_interval=500ms",
                "cloudfront.max_wildcards_in_progress=5",
            ],
        );
        let sandbox = start_emulators(&args).await.unwrap();
        let fast = emulate_header(&sandbox, 10.0);
        for line in [
            "# --speed 10: every rate window and completion time 10× shorter.",
            "#   limits (level3.NAME=VALUE): completion_time = \"200ms\", rate_window = \"6s\", \
             requests_per_window = 20",
            "item_interval = \"50ms\"",
            "completion_after = \"200ms\", estimated_seconds = 0, ping_after_seconds = 0",
            "#   limits (cloudfront.NAME=VALUE): completes_after = \"200ms\", \
             max_paths_in_progress = 3000, max_wildcards_in_progress = 5\n",
        ] {
            assert!(fast.contains(line), "{line}\n{fast}");
        }
        // The printed config declares the shortened limits, so clients pace to them.
        let config = sandbox.config_toml();
        assert!(config.contains("per = \"6s\"\nrequests = 20"), "{config}");
        assert!(config.contains("items = 1\nper = \"50ms\""), "{config}");
        sandbox.stop().await;
    }

    #[tokio::test]
    async fn emulate_refuses_a_limit_it_does_not_have() {
        let kinds: Vec<&str> = emulator::sandbox().iter().map(|e| e.kind()).collect();
        let no_fastly = format!("no emulator `fastly` (there are: {})", kinds.join(", "));
        for (limit, says) in [
            (
                "level3.max_paths=5",
                "level3.max_paths: the level3 emulator has no such limit (it has: completion_time, rate_window, requests_per_window)",
            ),
            ("fastly.rate=1", no_fastly.as_str()),
            ("level3", "expected KIND.NAME=VALUE"),
            (
                "level3.rate_window=soon",
                "level3.rate_window = \"soon\": not a duration",
            ),
            (
                "level3.requests_per_window=0",
                "must be a whole number of at least 1",
            ),
        ] {
            match start_emulators(&emulate_args(1.0, &[limit])).await {
                Err(Failure::Usage(m)) => assert!(m.contains(says), "{limit}: {m}"),
                Err(Failure::Failed(m)) => panic!("{limit}: {m}"),
                Ok(_) => panic!("{limit} accepted"),
            }
        }
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
