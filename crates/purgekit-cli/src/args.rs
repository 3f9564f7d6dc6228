//! The command-line interface. Its names are a contract with release pipelines: keep them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

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
    Purge(PurgeCommand),
    /// Show the batches and the exact HTTP requests a purge would send (secrets redacted); sends
    /// nothing
    Plan(PurgeArgs),
    /// Ask a provider where earlier purges stand, by the handles `purge` printed
    Status(StatusArgs),
    /// Continue an interrupted purge run from the journal (default: the latest unfinished run)
    Resume(ResumeArgs),
    /// List the purge runs in the journal: id, start, state, batch counts
    Runs(RunsArgs),
    /// Print a purge run's report from the journal
    Report(ReportArgs),
    /// List the configured providers: kind, endpoint, limits and what each supports
    Providers(ProvidersArgs),
    /// Run every provider emulator until interrupted, printing a ready config
    Emulate(EmulateArgs),
    /// Run the purge service: an HTTP API that queues purges in the journal, and workers that
    /// run them (several instances may share one PostgreSQL journal)
    Serve(ServeArgs),
    /// Submit a purge to a `purgekit serve` (it is queued there and run by its workers)
    Submit(SubmitArgs),
    /// Write a config file to start from, or check one
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script (e.g. `purgekit completions bash >
    /// /etc/bash_completion.d/purgekit`)
    Completions(CompletionsArgs),
}

/// `config` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented config template (every provider kind, or those given), secrets as
    /// `${VAR}`
    Init(ConfigInitArgs),
    /// Load the config and check every provider's table, offline: nothing is sent (with
    /// `--auth`, one read-only authenticated call per provider checks its credentials)
    Check(ConfigCheckArgs),
}

/// `config check` arguments.
#[derive(Debug, Clone, Args)]
pub struct ConfigCheckArgs {
    /// Also check each provider's credentials with one read-only authenticated call (a list or
    /// status query), where its API has one; exit 1 if any is refused or cannot be reached
    #[arg(long)]
    pub auth: bool,
}

/// `config init` arguments.
#[derive(Debug, Clone, Args)]
pub struct ConfigInitArgs {
    /// A provider kind to include (repeatable) [default: every kind built in]
    #[arg(long, value_name = "KIND")]
    pub kind: Vec<String>,
}

/// `completions` arguments.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_name = "SHELL", value_enum)]
    pub shell: clap_complete::Shell,
}

/// `purge`: the targets and options (shared with `plan`), and how the run reports.
#[derive(Debug, Clone, Default, Args)]
pub struct PurgeCommand {
    /// Targets and options.
    #[command(flatten)]
    pub request: PurgeArgs,

    /// Which rows make the exit code 1: `failed`, `unsupported`, `timeout` (waiting did not
    /// confirm completion), comma-separated, or `none` [default: failed,unsupported,timeout]
    #[arg(long, value_name = "LIST", value_enum, value_delimiter = ',')]
    pub fail_on: Option<Vec<FailOn>>,

    /// The report on stdout: `table` (one line per row), `summary` (counts per provider,
    /// failures listed), `json` (one document) or `jsonl` (one row per line, then the summary)
    /// [default: table up to 50 rows, summary above]
    #[arg(long, value_name = "FORMAT", value_enum, conflicts_with = "json")]
    pub output: Option<Output>,

    /// Progress on stderr: `bar`, `lines` (a line per accepted request and a heartbeat every
    /// 30s with counts and an ETA), `none`, or `auto` (bar on a terminal, else lines)
    #[arg(long, value_name = "MODE", value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,

    /// Where the run is journaled.
    #[command(flatten)]
    pub journal: JournalArgs,

    /// Keep the run in memory only: nothing to resume after a crash
    #[arg(long, conflicts_with = "journal")]
    pub no_journal: bool,
}

/// `--journal`.
#[derive(Debug, Clone, Default, Args)]
pub struct JournalArgs {
    /// The journal: `postgres://…`, `sqlite://PATH` or a file path [default: the config's
    /// `[journal] url`, else journal.sqlite3 in $PURGEKIT_STATE_DIR, $XDG_STATE_HOME/purgekit or
    /// ~/.local/state/purgekit]
    #[arg(long, env = "PURGEKIT_JOURNAL", value_name = "URL")]
    pub journal: Option<String>,
}

/// `resume` arguments.
#[derive(Debug, Clone, Args)]
pub struct ResumeArgs {
    /// The run (its id, as `purge` printed it) [default: the latest unfinished run]
    #[arg(value_name = "RUN_ID")]
    pub run: Option<String>,

    /// Where the run is journaled.
    #[command(flatten)]
    pub journal: JournalArgs,

    /// Wait until every provider reports the purge complete (accepted batches are polled)
    #[arg(long)]
    pub wait: bool,

    /// The longest the resumed run may take [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// The report on stdout, as for `purge`
    #[arg(long, value_name = "FORMAT", value_enum, conflicts_with = "json")]
    pub output: Option<Output>,

    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

impl ResumeArgs {
    /// The run's deadline: `--timeout`, or [`DEFAULT_WAIT_TIMEOUT`].
    pub fn deadline(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT)
    }
}

/// `runs` arguments.
#[derive(Debug, Clone, Args)]
pub struct RunsArgs {
    /// Where the runs are journaled.
    #[command(flatten)]
    pub journal: JournalArgs,

    /// Print JSON on stdout instead of a table
    #[arg(long)]
    pub json: bool,
}

/// `report` arguments.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The run, as `purge` printed it
    #[arg(value_name = "RUN_ID")]
    pub run: String,

    /// Where the run is journaled.
    #[command(flatten)]
    pub journal: JournalArgs,

    /// The report on stdout, as for `purge`
    #[arg(long, value_name = "FORMAT", value_enum, conflicts_with = "json")]
    pub output: Option<Output>,

    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

impl PurgeCommand {
    /// The rows that fail the run: `--fail-on`, or every kind.
    pub fn fail_on(&self) -> Vec<FailOn> {
        match &self.fail_on {
            Some(list) => list.clone(),
            None => vec![FailOn::Failed, FailOn::Unsupported, FailOn::Timeout],
        }
    }
}

/// A kind of row `--fail-on` can make fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// A row failed.
    Failed,
    /// A provider cannot purge a target.
    Unsupported,
    /// `--wait` did not confirm completion (timed out, no status call, status error).
    Timeout,
    /// No row fails the run (only usage errors and signals do).
    None,
}

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// One line per row.
    Table,
    /// Counts per provider and state, failures listed.
    Summary,
    /// One JSON document.
    Json,
    /// One JSON object per row and line, then one with the summary.
    Jsonl,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, lines otherwise.
    #[default]
    Auto,
    /// A progress bar.
    Bar,
    /// Lines: each accepted request, and a heartbeat every 30s.
    Lines,
    /// Nothing.
    None,
}

/// `--dry-run`: where the dry run happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// Validated and planned here, for every provider; nothing sent.
    Client,
    /// The provider's native dry run where it has one (a request is sent); here otherwise.
    Server,
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

    #[command(flatten)]
    pub options: OptionArgs,

    /// Wait until every provider reports the purge complete
    #[arg(long)]
    pub wait: bool,

    /// The longest the whole purge may take, sending, retries and --wait included (e.g. 90s,
    /// 5m); a wait that would end past it is not started [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Validate and plan; purge nothing. `--dry-run` (= `client`) sends nothing to any
    /// provider; `--dry-run=server` uses a provider's native dry run where it has one
    #[arg(
        long,
        value_name = "WHERE",
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "client"
    )]
    pub dry_run: Option<DryRun>,

    /// Print one JSON document on stdout (`purge`: the `json` output)
    #[arg(long)]
    pub json: bool,

    /// An input without any target is an error (exit 2) instead of "nothing to purge" (exit 0)
    #[arg(long)]
    pub require_targets: bool,

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

/// How to purge: the options `purge` and `submit` share.
#[derive(Debug, Clone, Default, Args)]
pub struct OptionArgs {
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
}

/// Where a `purgekit serve` is, and the token it takes.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// A `purgekit serve` to ask instead of the providers (e.g. http://127.0.0.1:8470)
    #[arg(long, env = "PURGEKIT_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// The service's API token (better from $PURGEKIT_API_TOKEN: a flag shows in `ps`)
    #[arg(
        long,
        env = "PURGEKIT_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// `submit` arguments.
#[derive(Debug, Clone, Args)]
pub struct SubmitArgs {
    /// Targets, in `purge`'s forms (URL, pattern, `tag:NAME`, `prefix:URL/`, `host:NAME`,
    /// `everything`)
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Read targets from a file, one per line (`-` for stdin); blank lines and `#` comments are
    /// skipped
    #[arg(long, value_name = "PATH|-")]
    pub file: Vec<PathBuf>,

    #[command(flatten)]
    pub server: ServerArgs,

    /// Only these providers of the service [default: all]
    #[arg(long, value_name = "NAME")]
    pub provider: Vec<String>,

    #[command(flatten)]
    pub options: OptionArgs,

    /// Confirm a destructive purge (`everything`)
    #[arg(long)]
    pub yes: bool,

    /// Make the same submission return the same run (an `Idempotency-Key`)
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    /// Wait until the service has run the purge (and until the providers report it complete),
    /// then print its rows
    #[arg(long)]
    pub wait: bool,

    /// With --wait: the longest to wait [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Print JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// `serve` arguments.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The address the API listens on; without `[server] tokens` in the config, only a
    /// loopback address is accepted
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8470")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub journal: JournalArgs,

    /// Workers in this instance, each running one queued purge's work on one provider account
    /// at a time (0: the API only)
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16))]
    pub workers: u16,

    /// Ignore the config's providers: run against the provider emulators, in-process on
    /// loopback (the config's `[server]` table still applies)
    #[arg(long)]
    pub sandbox: bool,
}

/// `status` arguments.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The configured provider that accepted the purges [default: the only one configured]
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// Ask again until every purge is completed or failed, within --timeout [default: 10m]
    #[arg(long)]
    pub wait: bool,

    /// Handles, as `purge` printed them; with --server, one run id, as `submit` printed it
    #[arg(value_name = "HANDLE|RUN_ID", required = true)]
    pub handles: Vec<String>,

    #[command(flatten)]
    pub server: ServerArgs,

    /// The longest the queries may take, all handles together (e.g. 30s) [default: 60s, 10m
    /// with --wait]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Print JSON on stdout instead of a table
    #[arg(long)]
    pub json: bool,
}

impl StatusArgs {
    /// `--timeout`, or [`DEFAULT_STATUS_TIMEOUT`] ([`DEFAULT_WAIT_TIMEOUT`] with `--wait`).
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(if self.wait {
            DEFAULT_WAIT_TIMEOUT
        } else {
            DEFAULT_STATUS_TIMEOUT
        })
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
            "--fail-on",
            "failed,timeout",
            "--progress",
            "lines",
            "--require-targets",
        ])
        .unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("pk.toml")));
        assert_eq!(cli.verbose, 2);
        let Command::Purge(c) = cli.command else {
            panic!()
        };
        assert_eq!(c.fail_on(), [FailOn::Failed, FailOn::Timeout]);
        assert_eq!(c.progress, ProgressMode::Lines);
        let a = c.request;
        assert!(a.require_targets);
        assert_eq!(a.targets, ["https://a.example/x", "tag:t"]);
        assert_eq!(a.file, [PathBuf::from("-")]);
        assert_eq!(a.provider, ["eu", "us"]);
        assert_eq!(a.options.notify, ["a@x.com", "b@x.com"]);
        let o = &a.options;
        assert!(o.delete && o.ignore_case && o.include_query && a.json && a.sandbox);
        assert_eq!(a.dry_run, Some(DryRun::Client));
        assert_eq!(a.wait_timeout(), Some(Duration::from_secs(90)));
    }

    #[test]
    fn purge_reporting_flags() {
        let purge = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Purge(c)) => Ok(c),
            Ok(_) => panic!(),
            Err(e) => Err(e),
        };
        let c = purge(&["purge"]).unwrap();
        assert_eq!(
            c.fail_on(),
            [FailOn::Failed, FailOn::Unsupported, FailOn::Timeout]
        );
        assert_eq!((c.output, c.progress), (None, ProgressMode::Auto));
        assert_eq!(c.request.dry_run, None);
        let c = purge(&["purge", "--output", "jsonl", "--dry-run=server", "x"]).unwrap();
        assert_eq!(c.output, Some(Output::Jsonl));
        assert_eq!(c.request.dry_run, Some(DryRun::Server));
        // `--dry-run` takes its value only after `=`: a following TARGET stays a target.
        let c = purge(&["purge", "--dry-run", "https://a.example/"]).unwrap();
        assert_eq!(c.request.dry_run, Some(DryRun::Client));
        assert_eq!(c.request.targets, ["https://a.example/"]);
        assert!(purge(&["purge", "--output", "json", "--json"]).is_err());
        assert!(purge(&["purge", "--fail-on", "sometimes"]).is_err());
        assert!(purge(&["purge", "--progress", "loud"]).is_err());
        // `plan` has no purge-only flags.
        assert!(parse(&["plan", "--fail-on", "none", "x"]).is_err());
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
        let purge = |args: &[&str]| match parse(args).unwrap().command {
            Command::Purge(c) => c.request,
            _ => panic!(),
        };
        let a = purge(&["purge", "--wait"]);
        assert_eq!(a.wait_timeout(), Some(DEFAULT_WAIT_TIMEOUT));
        let a = purge(&["purge"]);
        assert_eq!(a.wait_timeout(), None);
        assert_eq!(a.deadline(), DEFAULT_WAIT_TIMEOUT);
        // --timeout bounds the whole purge, with or without --wait.
        let a = purge(&["purge", "--timeout", "5m"]);
        assert_eq!(
            (a.wait_timeout(), a.deadline()),
            (None, Duration::from_secs(300))
        );
        let e = parse(&["purge", "--wait", "--timeout", "soon"]).unwrap_err();
        assert!(e.to_string().contains("not a duration"), "{e}");
        assert!(parse(&["purge", "--wait", "--timeout", "0s"]).is_err());
    }

    #[test]
    fn status_needs_handles() {
        assert!(parse(&["status", "h1"]).is_ok());
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
