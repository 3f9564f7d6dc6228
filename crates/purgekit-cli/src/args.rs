//! The command-line interface. Its names are a contract with release pipelines: keep them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

/// How long a purge may take, waiting included, without `--timeout`.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(600);

/// How long `status` may take without `--timeout`.
pub const DEFAULT_STATUS_TIMEOUT: Duration = Duration::from_secs(60);

/// Purge CDN caches through one interface, on one CDN or several at once (`purgekit providers`
/// lists the configured ones, `purgekit emulate` runs every emulator)
#[derive(Debug, Parser)]
#[command(name = "purgekit", version, about, max_term_width = 100)]
pub struct Cli {
    /// The config file [default: $PURGEKIT_CONFIG, else ./purgekit.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug, -vvv everything)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr, and no progress bar
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// The HTTP proxy: an http:// or https:// URL, `none`, or `env` (HTTPS_PROXY, HTTP_PROXY,
    /// ALL_PROXY and NO_PROXY, as curl reads them); loopback is never proxied [default: env]
    #[arg(
        long,
        global = true,
        env = "PURGEKIT_PROXY",
        value_name = "URL|none|env"
    )]
    pub proxy: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Purge targets on the configured providers
    Purge(PurgeArgs),
    /// Show the batches and the exact HTTP requests a purge would send (secrets redacted); sends
    /// nothing
    Plan(PurgeArgs),
    /// Ask a provider where earlier purges stand, by the handles `purge` printed
    Status(StatusArgs),
    /// List the configured providers: kind, endpoint, limits and what each supports
    Providers(ProvidersArgs),
    /// Run every provider emulator until interrupted, printing a ready config
    Emulate(EmulateArgs),
}

/// Targets and options, shared by `purge` and `plan`.
#[derive(Debug, Clone, Default, Args)]
pub struct PurgeArgs {
    /// URLs (exact), URLs with `*` (patterns), `tag:NAME` (cache tags), `prefix:URL/` (everything
    /// under a directory), `host:NAME` (everything on a host) or `everything`
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Read targets from a file, one per line (`-` for stdin); blank lines and `#` comments are
    /// skipped
    #[arg(long, value_name = "PATH|-")]
    pub file: Vec<PathBuf>,

    /// A wildcard pattern (an absolute URL containing `*`)
    #[arg(long, value_name = "GLOB")]
    pub pattern: Vec<String>,

    /// A cache tag (surrogate key)
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,

    /// Everything under a URL prefix (an absolute URL ending with `/`)
    #[arg(long, value_name = "URL")]
    pub prefix: Vec<String>,

    /// Everything on a host name
    #[arg(long, value_name = "NAME")]
    pub host: Vec<String>,

    /// Everything the account's property, service or zone serves (destructive: needs --yes)
    #[arg(long)]
    pub everything: bool,

    /// Confirm a destructive purge (`everything`)
    #[arg(long)]
    pub yes: bool,

    /// Only these configured providers [default: all]
    #[arg(long, value_name = "NAME")]
    pub provider: Vec<String>,

    /// Delete from cache instead of invalidating (revalidating)
    #[arg(long)]
    pub delete: bool,

    /// Match case-insensitively
    #[arg(long)]
    pub ignore_case: bool,

    /// Include the query string in matching
    #[arg(long)]
    pub include_query: bool,

    /// Email address to notify on completion (repeatable)
    #[arg(long, value_name = "EMAIL")]
    pub notify: Vec<String>,

    /// A note stored with the purge
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,

    /// A URL the provider calls on completion
    #[arg(long, value_name = "URL")]
    pub callback: Option<String>,

    /// Wait until every provider reports the purge complete
    #[arg(long)]
    pub wait: bool,

    /// The longest the whole purge may take, sending, retries and --wait included (e.g. 90s,
    /// 5m); a wait that would end past it is not started [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Validate and plan; purge nothing (natively where the provider supports it)
    #[arg(long)]
    pub dry_run: bool,

    /// Print one JSON document on stdout instead of a table
    #[arg(long)]
    pub json: bool,

    /// Ignore the config: run against the provider emulators, in-process on loopback
    #[arg(long)]
    pub sandbox: bool,
}

impl PurgeArgs {
    /// The wait for completion the request carries.
    pub fn wait_timeout(&self) -> Option<Duration> {
        self.wait.then(|| self.deadline())
    }

    /// The run's deadline: `--timeout`, or [`DEFAULT_WAIT_TIMEOUT`].
    pub fn deadline(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT)
    }
}

/// `status` arguments.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The configured provider that accepted the purges
    #[arg(long, value_name = "NAME")]
    pub provider: String,

    /// Handles, as `purge` printed them
    #[arg(value_name = "HANDLE", required = true)]
    pub handles: Vec<String>,

    /// The longest the queries may take, all handles together (e.g. 30s) [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Print JSON on stdout instead of a table
    #[arg(long)]
    pub json: bool,
}

impl StatusArgs {
    /// `--timeout`, or [`DEFAULT_STATUS_TIMEOUT`].
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_STATUS_TIMEOUT)
    }
}

/// `providers` arguments.
#[derive(Debug, Clone, Args)]
pub struct ProvidersArgs {
    /// Print JSON on stdout instead of text
    #[arg(long)]
    pub json: bool,
}

/// `emulate` arguments.
#[derive(Debug, Clone, Args)]
pub struct EmulateArgs {
    /// Where to listen: the emulators (in kind order, as `providers` lists them) on PORT,
    /// PORT+1, … (port 0: free ports)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Run N times faster: every rate window and completion time N times shorter (the printed
    /// config declares the shortened limits)
    #[arg(long, value_name = "N", default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,

    /// Change one emulator's limit or time, e.g. `level3.requests_per_window=20` or
    /// `limelight.item_interval=500ms` (repeatable; the header lists each emulator's)
    #[arg(long = "limit", value_name = "KIND.NAME=VALUE")]
    pub limits: Vec<String>,
}

fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!("`{text}` is not a number above 0")),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = purgekit::parse_duration(text)?;
    if d.is_zero() {
        return Err("the timeout must be longer than zero".to_owned());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("purgekit").chain(args.iter().copied()))
    }

    #[test]
    fn the_interface_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn purge_takes_every_documented_flag() {
        let cli = parse(&[
            "--config",
            "pk.toml",
            "-vv",
            "purge",
            "https://a.example/x",
            "tag:t",
            "--file",
            "-",
            "--pattern",
            "https://a.example/*",
            "--tag",
            "t2",
            "--provider",
            "eu",
            "--provider",
            "us",
            "--delete",
            "--ignore-case",
            "--include-query",
            "--notify",
            "a@x.com",
            "--notify",
            "b@x.com",
            "--note",
            "deploy 42",
            "--callback",
            "https://cb.example/",
            "--wait",
            "--timeout",
            "90s",
            "--dry-run",
            "--json",
            "--sandbox",
        ])
        .unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("pk.toml")));
        assert_eq!(cli.verbose, 2);
        let Command::Purge(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.targets, ["https://a.example/x", "tag:t"]);
        assert_eq!(a.file, [PathBuf::from("-")]);
        assert_eq!(a.provider, ["eu", "us"]);
        assert_eq!(a.notify, ["a@x.com", "b@x.com"]);
        assert!(a.delete && a.ignore_case && a.include_query && a.dry_run && a.json && a.sandbox);
        assert_eq!(a.wait_timeout(), Some(Duration::from_secs(90)));
    }

    #[test]
    fn global_flags_go_after_the_command_too() {
        let cli = parse(&[
            "plan",
            "https://a.example/",
            "--quiet",
            "--config",
            "x.toml",
        ])
        .unwrap();
        assert!(cli.quiet);
        assert!(matches!(cli.command, Command::Plan(_)));
        assert!(parse(&["-q", "-v", "providers"]).is_err());
    }

    #[test]
    fn wait_defaults_and_timeout_rules() {
        let Command::Purge(a) = parse(&["purge", "--wait"]).unwrap().command else {
            panic!()
        };
        assert_eq!(a.wait_timeout(), Some(DEFAULT_WAIT_TIMEOUT));
        let Command::Purge(a) = parse(&["purge"]).unwrap().command else {
            panic!()
        };
        assert_eq!(a.wait_timeout(), None);
        assert_eq!(a.deadline(), DEFAULT_WAIT_TIMEOUT);
        // --timeout bounds the whole purge, with or without --wait.
        let Command::Purge(a) = parse(&["purge", "--timeout", "5m"]).unwrap().command else {
            panic!()
        };
        assert_eq!(
            (a.wait_timeout(), a.deadline()),
            (None, Duration::from_secs(300))
        );
        let e = parse(&["purge", "--wait", "--timeout", "soon"]).unwrap_err();
        assert!(e.to_string().contains("not a duration"), "{e}");
        assert!(parse(&["purge", "--wait", "--timeout", "0s"]).is_err());
    }

    #[test]
    fn status_needs_a_provider_and_handles() {
        assert!(parse(&["status", "h1"]).is_err());
        assert!(parse(&["status", "--provider", "eu"]).is_err());
        let Command::Status(s) = parse(&["status", "--provider", "eu", "h1", "h2"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(s.handles, ["h1", "h2"]);
        assert_eq!(s.timeout(), DEFAULT_STATUS_TIMEOUT);
        let Command::Status(s) = parse(&["status", "--provider", "eu", "--timeout", "5s", "h1"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(s.timeout(), Duration::from_secs(5));
    }

    #[test]
    fn emulate_listen_address() {
        let Command::Emulate(e) = parse(&["emulate"]).unwrap().command else {
            panic!()
        };
        assert_eq!(e.listen, "127.0.0.1:0".parse().unwrap());
        let Command::Emulate(e) = parse(&["emulate", "--listen", "127.0.0.1:7000"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(e.listen.port(), 7000);
        assert!(parse(&["emulate", "--listen", "nowhere"]).is_err());
        let Command::Emulate(e) = parse(&[
            "emulate",
            "--speed",
            "10",
            "--limit",
            "level3.requests_per_window=20",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!((e.speed, e.limits.len()), (10.0, 1));
        for bad in ["0", "-2", "fast", "inf"] {
            assert!(parse(&["emulate", "--speed", bad]).is_err(), "{bad}");
        }
    }
}
