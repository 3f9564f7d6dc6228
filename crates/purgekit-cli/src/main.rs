//! `purgekit`: purge CDN caches from a release pipeline. See `docs/cli.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod client;
mod input;
mod journal;
mod progress;
mod render;
mod run;
mod serve;
mod setup;
mod signals;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use purgekit::{EngineConfig, ProxyPolicy, PurgeContext};
use tokio_util::sync::CancellationToken;

use crate::args::{Cli, Command, ConfigCommand, FailOn, Output, ProgressMode};
use crate::progress::ProgressDisplay;
use crate::run::{EXIT_FAILED, EXIT_USAGE};
use crate::signals::Interrupts;

/// Why a command could not run to its report.
#[derive(Debug)]
pub enum Failure {
    /// Usage, config or input error: nothing was sent (exit 2).
    Usage(String),
    /// Something failed after starting (exit 1).
    Failed(String),
}

impl From<purgekit::Error> for Failure {
    fn from(e: purgekit::Error) -> Self {
        if e.is_usage() {
            Failure::Usage(e.to_string())
        } else {
            Failure::Failed(e.to_string())
        }
    }
}

/// `--version`: the version and the provider kinds built in.
fn version() -> String {
    format!(
        "{} (providers: {})",
        env!("CARGO_PKG_VERSION"),
        purgekit::Registry::builtin().kinds().join(", ")
    )
}

fn main() -> ExitCode {
    // Computed once per process, so leaking it costs nothing.
    let version: &'static str = Box::leak(version().into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_tracing(cli.verbose, cli.quiet);
    // One thread: a CLI run waits on the network, not the CPU, and one thread keeps every
    // allocation in one malloc arena (worker threads each grow their own, which a run over a
    // million targets pays for in peak memory; docs/performance.md). `serve` is the
    // exception: it validates and plans each submission on the CPU, so it takes every core
    // (on one thread it could not pass ~1,200 submissions/s; docs/performance.md).
    let mut builder = if matches!(cli.command, Command::Serve(_)) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("purgekit: error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(Failure::Usage(message)) => {
            eprintln!("purgekit: error: {message}");
            EXIT_USAGE
        }
        Err(Failure::Failed(message)) => {
            eprintln!("purgekit: error: {message}");
            EXIT_FAILED
        }
    };
    ExitCode::from(code)
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    let mut stdout = std::io::stdout().lock();
    let config = cli.config.as_deref();
    // `--proxy` (or `$PURGEKIT_PROXY`) wins over the config file's `proxy`.
    let proxy = match &cli.proxy {
        Some(text) => Some(ProxyPolicy::parse("--proxy", text)?),
        None => None,
    };
    let proxy = proxy.as_ref();
    match cli.command {
        Command::Purge(command) => {
            let args = &command.request;
            let fail_on = command.fail_on();
            if fail_on.contains(&FailOn::None) && fail_on.len() > 1 {
                return Err(Failure::Usage(
                    "--fail-on none cannot be combined with other kinds".to_owned(),
                ));
            }
            let output = command.output.or(args.json.then_some(Output::Json));
            let Some(request) = input::build_request(args, std::io::stdin().lock())? else {
                return run::nothing_to_purge(output, &mut stdout);
            };
            input::confirm_destructive(args, &request)?;
            let engine = EngineConfig {
                deadline: args.deadline(),
                ..EngineConfig::default()
            };
            let journal = journal::for_purge(&command, config).await?;
            let session = setup::Session::open_with_rates(
                config,
                args.sandbox,
                &args.provider,
                &engine,
                proxy,
                journal.as_ref().map(journal::shared_rates),
            )
            .await?;
            tracing::info!(
                "purging {} targets on {}",
                request.targets().len(),
                session
                    .purger
                    .providers()
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let (purger, run) = match journal {
                Some(journal) => {
                    let (purger, run) =
                        journal::start(session.purger.clone(), journal, &request, cli.quiet)
                            .await?;
                    (purger, Some(run))
                }
                None => (session.purger.clone(), None),
            };
            let reporting = run::Reporting {
                output,
                fail_on: &fail_on,
                run,
            };
            drive(
                &*purger,
                &request,
                &reporting,
                command.progress,
                cli.quiet,
                &mut stdout,
            )
            .await
        }
        Command::Resume(args) => {
            let journal = journal::open(&args.journal, config).await?;
            let engine = EngineConfig {
                deadline: args.deadline(),
                ..EngineConfig::default()
            };
            let (purger, request, run, _session) = journal::resume(
                journal,
                args.run.as_deref(),
                async |providers: &[String], rates| {
                    setup::Session::open_with_rates(
                        config,
                        false,
                        providers,
                        &engine,
                        proxy,
                        Some(rates),
                    )
                    .await
                },
                cli.quiet,
            )
            .await?;
            let request = request.with_wait(args.wait.then(|| args.deadline()));
            let fail_on = [FailOn::Failed, FailOn::Unsupported, FailOn::Timeout];
            let reporting = run::Reporting {
                output: args.output.or(args.json.then_some(Output::Json)),
                fail_on: &fail_on,
                run: Some(run),
            };
            drive(
                &*purger,
                &request,
                &reporting,
                ProgressMode::Auto,
                cli.quiet,
                &mut stdout,
            )
            .await
        }
        Command::Runs(args) => {
            let journal = journal::open(&args.journal, config).await?;
            journal::runs(&journal, args.json, &mut stdout).await
        }
        Command::Report(args) => {
            let journal = journal::open(&args.journal, config).await?;
            let output = args.output.or(args.json.then_some(Output::Json));
            journal::report(&journal, &args.run, output, &mut stdout).await
        }
        Command::Plan(args) => {
            let Some(request) = input::build_request(&args, std::io::stdin().lock())? else {
                return run::nothing_to_purge(None, &mut stdout);
            };
            let session = setup::Session::open(
                config,
                args.sandbox,
                &args.provider,
                &EngineConfig::default(),
                proxy,
            )
            .await?;
            run::plan(&*session.purger, &request, args.json, &mut stdout)
        }
        Command::Status(args) if args.server.server.is_some() => {
            client::status(&args.server, &args.handles, args.json, &mut stdout).await
        }
        Command::Status(args) => {
            let only: Vec<String> = args.provider.iter().cloned().collect();
            let engine = EngineConfig {
                deadline: args.timeout(),
                ..EngineConfig::default()
            };
            let session = setup::Session::open(config, false, &only, &engine, proxy).await?;
            run::status(
                &*session.purger,
                args.provider.as_deref(),
                &args.handles,
                args.timeout(),
                args.wait,
                args.json,
                &mut stdout,
            )
            .await
        }
        Command::Providers(args) => {
            let session =
                setup::Session::open(config, false, &[], &EngineConfig::default(), proxy).await?;
            run::providers(&*session.purger, args.json, &mut stdout)
        }
        Command::Emulate(args) => {
            // `emulate` reads no config (it prints one) and sends nothing through a proxy.
            if let Some(path) = config {
                return Err(Failure::Usage(format!(
                    "--config {}: `emulate` reads no config, it prints one (save its output \
                     and pass that to the other commands)",
                    path.display()
                )));
            }
            if cli.proxy.is_some() && std::env::var("PURGEKIT_PROXY").ok() != cli.proxy {
                return Err(Failure::Usage(
                    "--proxy: `emulate` sends no request, so it takes no proxy".to_owned(),
                ));
            }
            setup::emulate(&args, &mut stdout).await
        }
        Command::Serve(args) => serve::serve(&args, config, proxy).await,
        Command::Submit(args) => client::submit(&args, std::io::stdin().lock(), &mut stdout).await,
        Command::Config(ConfigCommand::Init(args)) => {
            let text = setup::config_template(&args.kind)?;
            run::write_out(&mut stdout, &text)?;
            Ok(run::EXIT_OK)
        }
        Command::Config(ConfigCommand::Check(args)) if args.auth => {
            let (text, code) = setup::config_check_auth(config, proxy).await?;
            run::write_out(&mut stdout, &text)?;
            Ok(code)
        }
        Command::Config(ConfigCommand::Check(_)) => {
            let text = setup::config_check(config)?;
            run::write_out(&mut stdout, &text)?;
            Ok(run::EXIT_OK)
        }
        Command::Completions(args) => {
            let mut command = Cli::command();
            clap_complete::generate(args.shell, &mut command, "purgekit", &mut stdout);
            Ok(run::EXIT_OK)
        }
    }
}

/// Runs a purge with progress on stderr and Ctrl-C handling, prints its report; the exit code.
async fn drive(
    purger: &dyn purgekit::Purger,
    request: &purgekit::PurgeRequest,
    reporting: &run::Reporting<'_>,
    progress: ProgressMode,
    quiet: bool,
    out: &mut dyn std::io::Write,
) -> Result<u8, Failure> {
    let mut display = ProgressDisplay::new(progress::Shown::resolve(progress, quiet));
    // Without a terminal on stdout (CI), each handle is logged as it comes, so even a
    // killed run leaves them in the log.
    let log_handles = !quiet && !std::io::stdout().is_terminal();
    let context = PurgeContext {
        progress: Some(display.callback(request.wait().is_some(), log_handles)),
        cancel: CancellationToken::new(),
        journal: None,
    };
    display.start_heartbeat(progress::HEARTBEAT);
    let interrupts = Interrupts::listen(context.cancel.clone());
    let code = run::purge(
        purger,
        request,
        &context,
        reporting,
        || display.finish(),
        out,
    )
    .await?;
    Ok(interrupts.exit_code(code))
}

/// The log filter for `-v…`/`--quiet`; `RUST_LOG` wins when set and neither is given.
fn log_filter(verbose: u8, quiet: bool) -> String {
    // A directive's target matches by prefix: `purgekit` covers every crate of the workspace
    // (`purgekit_core`, each provider's, the emulators', the CLI's), present and future.
    let ours = |level: &str| format!("warn,purgekit={level}");
    match (quiet, verbose) {
        (true, _) => "error".to_owned(),
        (false, 0) => "warn".to_owned(),
        (false, 1) => ours("info"),
        (false, 2) => ours("debug"),
        (false, 3) => "debug".to_owned(),
        (false, _) => "trace".to_owned(),
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if verbose == 0 && !quiet && !from_env.is_empty() => EnvFilter::new(from_env),
        _ => EnvFilter::new(log_filter(verbose, quiet)),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_follow_the_flags() {
        assert_eq!(log_filter(0, true), "error");
        assert_eq!(log_filter(0, false), "warn");
        assert_eq!(log_filter(1, false), "warn,purgekit=info");
        assert_eq!(log_filter(2, false), "warn,purgekit=debug");
        assert_eq!(log_filter(3, false), "debug");
        assert_eq!(log_filter(9, false), "trace");
    }

    #[test]
    fn core_errors_map_to_exit_classes() {
        assert!(matches!(
            Failure::from(purgekit::Error::config("x", "y")),
            Failure::Usage(_)
        ));
        assert!(matches!(
            Failure::from(purgekit::Error::transient("reset")),
            Failure::Failed(_)
        ));
    }
}
