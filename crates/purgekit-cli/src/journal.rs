//! The journal in the CLI: where `purge` journals its run, and `resume`, `runs` and `report`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use purgekit::journal::{Journal, JournaledPurger, RunInfo, RunPurger, default_url, parse_run_id};
use purgekit::{PurgeRequest, Purger, RateRegistry, Reports};

use crate::Failure;
use crate::args::{JournalArgs, PurgeCommand};
use crate::run::{self, EXIT_OK};
use crate::setup;

/// The journal's URL: `--journal` (or `$PURGEKIT_JOURNAL`), else the config's `[journal] url`,
/// else the default SQLite file.
fn url(args: &JournalArgs, config: Option<&Path>) -> Result<String, Failure> {
    if let Some(url) = &args.journal {
        return Ok(url.clone());
    }
    if purgekit::Config::locate(config).exists()
        && let Some(url) = setup::load(config)?.journal
    {
        return Ok(url);
    }
    Ok(default_url()?)
}

/// Opens the journal `args` and the config point to.
pub async fn open(args: &JournalArgs, config: Option<&Path>) -> Result<Journal, Failure> {
    Ok(Journal::open(&url(args, config)?).await?)
}

/// The journal a `purge` writes its run to: none with `--no-journal`, nor for `--sandbox`
/// without `--journal` (the sandbox's emulators end with the process: nothing to resume).
pub async fn for_purge(
    command: &PurgeCommand,
    config: Option<&Path>,
) -> Result<Option<Journal>, Failure> {
    if command.no_journal || (command.request.sandbox && command.journal.journal.is_none()) {
        return Ok(None);
    }
    Ok(Some(open(&command.journal, config).await?))
}

/// Rate limiters whose schedules live in `journal`, shared with every process using it.
pub fn shared_rates(journal: &Journal) -> Arc<RateRegistry> {
    Arc::new(RateRegistry::with_store(Arc::new(journal.clone())))
}

/// Starts a journaled run of `request` through `purger` and says so on stderr: the purger
/// that runs it, and its id.
pub async fn start(
    purger: Arc<dyn Purger>,
    journal: Journal,
    request: &PurgeRequest,
    quiet: bool,
) -> Result<(Arc<dyn Purger>, String), Failure> {
    let location = journal.location().to_owned();
    let purger = Arc::new(JournaledPurger::new(purger, journal));
    let run = RunPurger::start(purger, request).await?;
    let id = run.run().to_string();
    if !quiet {
        eprintln!(
            "purgekit: run {id} (journal {location}; if interrupted, `purgekit resume {id}` \
             continues it)"
        );
    }
    Ok((Arc::new(run), id))
}

/// `runs`: every run in the journal, latest first.
pub async fn runs(journal: &Journal, json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    let runs = journal.runs().await?;
    let text = if json {
        let mut text = serde_json::to_string_pretty(&serde_json::json!({ "runs": runs }))
            .map_err(|e| Failure::Failed(e.to_string()))?;
        text.push('\n');
        text
    } else {
        runs_text(&runs)
    };
    run::write_out(out, &text)?;
    Ok(EXIT_OK)
}

/// The `runs` table.
fn runs_text(runs: &[RunInfo]) -> String {
    if runs.is_empty() {
        return "no runs in the journal\n".to_owned();
    }
    let mut text = format!(
        "{:<32}  {:<20}  {:<11}  {:>8}  {}\n",
        "RUN", "STARTED (UTC)", "STATE", "TARGETS", "BATCHES"
    );
    for r in runs {
        let b = &r.batches;
        text.push_str(&format!(
            "{:<32}  {:<20}  {:<11}  {:>8}  {} queued, {} sending, {} accepted, {} completed, {} \
             failed ({})\n",
            r.id,
            started(r.started_ms),
            r.state,
            r.targets,
            b.queued,
            b.sending,
            b.accepted,
            b.completed,
            b.failed,
            r.providers.join(", ")
        ));
    }
    text
}

/// `2026-11-30 17:04:19`.
fn started(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    let t = purgekit::UtcTime::from(at);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// `report RUN_ID`: the run's report from the journal alone.
pub async fn report(
    journal: &Journal,
    run: &str,
    output: Option<crate::args::Output>,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let id = parse_run_id(run)?;
    let report = journal.report(id).await?;
    run::write_report(Reports::ready(report), output, Some(run), |_| {}, out)?;
    Ok(EXIT_OK)
}

/// Takes over the run `run` (default: the latest unfinished one) for `resume`: its purger
/// over the providers it ran on, its request, its id.
pub async fn resume(
    journal: Journal,
    run: Option<&str>,
    open_session: impl AsyncFnOnce(&[String], Arc<RateRegistry>) -> Result<setup::Session, Failure>,
    quiet: bool,
) -> Result<(Arc<dyn Purger>, PurgeRequest, String, setup::Session), Failure> {
    let run = run.map(parse_run_id).transpose()?;
    let claimed = journal.claim(run).await?;
    let session = open_session(&claimed.providers, shared_rates(&journal)).await?;
    let location = journal.location().to_owned();
    let purger = Arc::new(JournaledPurger::new(session.purger.clone(), journal));
    let id = claimed.id.to_string();
    if !quiet {
        eprintln!("purgekit: resuming run {id} (journal {location})");
    }
    Ok((
        Arc::new(RunPurger::resumed(purger, claimed.id)),
        claimed.request,
        id,
        session,
    ))
}
