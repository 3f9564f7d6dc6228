//! [`Journal`]: where it lives, opening it (migrations, the version check), and its runs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use purgekit_core::{
    BatchRecord, Error, Options, PurgeRequest, RecordedPart, Report, Result, RunId, RunRecord,
    SharedRunLog, State, report_of,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Row};
use tokio::sync::{mpsc, watch};

use crate::bulk::Insert;
use crate::codec;
use crate::log::RunJournal;
use crate::queue::Waiting;
use crate::units::ProviderAccount;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a run's lease lasts without renewal: after it, another process may resume the run
/// (at once, on the same machine, when the process that held it is gone).
pub const LEASE: Duration = Duration::from_secs(15);

/// Which database a journal is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (the embedded default).
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// A durable log of purge runs, in SQLite or PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    /// Where it is, for messages (no password).
    location: String,
    /// `host:pid:token`, this process's name as a run's owner.
    owner: String,
    /// Runs started here, by whether they are written yet (`None`: not yet).
    writing: Mutex<HashMap<RunId, Written>>,
    /// Runs started here whose writing is left to their first plan (see [`Journal::start_run`]).
    pending: Mutex<HashMap<RunId, Pending>>,
    /// Submissions waiting for their group's commit (`crate::queue`), once one was made.
    submissions: OnceLock<mpsc::Sender<Waiting>>,
}

/// A run started here, not written yet: the first provider's plan writes it in its own
/// transaction ([`Journal::take_pending`]), or [`Journal::written`] does.
pub(crate) struct Pending {
    pub(crate) request: PurgeRequest,
    pub(crate) providers: Vec<String>,
    /// Told the outcome once it is written.
    pub(crate) done: watch::Sender<Option<std::result::Result<(), String>>>,
}

/// A run to write ([`Journal::insert_runs`]).
pub(crate) struct NewRun<'a> {
    pub(crate) id: RunId,
    pub(crate) request: &'a PurgeRequest,
    /// The providers' names, as the run lists them.
    pub(crate) providers: Vec<&'a str>,
    /// Its units of work: one per provider for a submitted run, none for a run its own
    /// process drives (`crate::units`).
    pub(crate) units: &'a [ProviderAccount],
    /// Who holds it, and until when (`""` and 0: nobody, any worker may take it).
    pub(crate) owner: &'a str,
    pub(crate) lease_until_ms: i64,
}

/// Up to this many targets, a new run is written with its first plan (one durable commit
/// before the first request); above, in the background while the planner runs, since writing
/// the targets then takes longer than the commit it saves.
const WRITTEN_WITH_PLAN: usize = 100_000;

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("location", &self.inner.location)
            .finish()
    }
}

/// A [`Journal`] that does not keep it open: the tasks writing submissions hold one, so the
/// journal closes (and the tasks end) once every [`Journal`] is dropped.
#[derive(Clone)]
pub(crate) struct WeakJournal(Weak<Inner>);

impl WeakJournal {
    /// The journal, if it is still open.
    pub(crate) fn upgrade(&self) -> Option<Journal> {
        self.0.upgrade().map(|inner| Journal { inner })
    }
}

/// Whether a run started here is written: `None` while it is being written, then the outcome.
type Written = watch::Receiver<Option<std::result::Result<(), String>>>;

/// A run as `purgekit runs` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunInfo {
    /// The run id.
    pub id: String,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_ms: i64,
    /// `running` (a live process drives it, or one of its units), `interrupted` (unfinished,
    /// nobody drives it: `purgekit resume` continues it) or `finished`.
    pub state: String,
    /// Targets in its request.
    pub targets: i64,
    /// The providers it runs on.
    pub providers: Vec<String>,
    /// Its batches by state: queued, sending, accepted, completed, failed.
    pub batches: BatchCounts,
}

/// Batches by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchCounts {
    /// Not sent yet (or planned by no provider yet).
    pub queued: i64,
    /// Being sent, or being sent when the run stopped.
    pub sending: i64,
    /// Accepted, not seen complete.
    pub accepted: i64,
    /// Seen complete.
    pub completed: i64,
    /// Failed for good.
    pub failed: i64,
}

/// A run taken over to be resumed: its id and its request.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The run.
    pub id: RunId,
    /// Its request, as journaled.
    pub request: PurgeRequest,
    /// The providers it runs on.
    pub providers: Vec<String>,
}

/// The request's parts besides its targets, as stored (`runs.request`).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRequest {
    options: Options,
    wait_ms: Option<u64>,
    local_dry_run: bool,
}

pub(crate) fn db_error(location: &str, e: impl std::fmt::Display) -> Error {
    Error::Journal {
        message: format!("{location}: {e}"),
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The directory the default journal lives in: `$PURGEKIT_STATE_DIR`, else
/// `$XDG_STATE_HOME/purgekit`, else `~/.local/state/purgekit`.
pub fn state_dir() -> Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("PURGEKIT_STATE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return Ok(PathBuf::from(dir).join("purgekit"));
    }
    if let Some(home) = var("HOME") {
        return Ok(PathBuf::from(home).join(".local/state/purgekit"));
    }
    Err(Error::config(
        "journal.url",
        "no journal location: set PURGEKIT_STATE_DIR, XDG_STATE_HOME or HOME, or give --journal",
    ))
}

/// The default journal's URL: `journal.sqlite3` in [`state_dir`].
pub fn default_url() -> Result<String> {
    Ok(format!(
        "sqlite://{}",
        state_dir()?.join("journal.sqlite3").display()
    ))
}

/// `url` with any password replaced by `***`.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The backend and the sqlx URL for a journal URL: `postgres://…`/`postgresql://…`,
/// `sqlite://PATH`, `sqlite:PATH`, or a plain file path (SQLite).
fn classify(url: &str) -> Result<(Backend, String, Option<PathBuf>)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned(), None));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.contains("://") {
        return Err(Error::config(
            "journal.url",
            format!(
                "`{}` is not a journal: give postgres://…, sqlite://PATH or a file path",
                shown(url)
            ),
        ));
    }
    Ok((
        Backend::Sqlite,
        format!("sqlite://{path}?mode=rwc"),
        Some(PathBuf::from(path)),
    ))
}

impl Journal {
    /// Opens (creating it if needed) the journal at `url`: `postgres://…`, `sqlite://PATH` or a
    /// file path; brings its schema up to date; refuses one written by a newer purgekit.
    pub async fn open(url: &str) -> Result<Journal> {
        sqlx::any::install_default_drivers();
        let (backend, sqlx_url, path) = classify(url)?;
        let location = shown(url);
        if let Some(parent) = path.as_deref().and_then(Path::parent)
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                db_error(
                    &location,
                    format!("cannot create {}: {e}", parent.display()),
                )
            })?;
        }
        let options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer, several processes share the
                        // file; FULL: each commit is on disk before it returns.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA busy_timeout = 30000",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            });
        let pool = options.connect(&sqlx_url).await.map_err(|e| {
            let hint = if backend == Backend::Postgres {
                " (is the server running and the database there?)"
            } else {
                ""
            };
            db_error(&location, format!("cannot open: {e}{hint}"))
        })?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        };
        check_version(&pool, migrator, &location).await?;
        // Two processes opening a new journal at once may race to create it: the loser sees
        // the winner's schema on a second try.
        if let Err(first) = migrator.run(&pool).await {
            tokio::time::sleep(Duration::from_millis(200)).await;
            migrator.run(&pool).await.map_err(|e| {
                db_error(
                    &location,
                    format!("cannot bring the schema up to date: {e} (first try: {first})"),
                )
            })?;
        }
        Ok(Journal {
            inner: Arc::new(Inner {
                pool,
                backend,
                location,
                owner: owner(),
                writing: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
                submissions: OnceLock::new(),
            }),
        })
    }

    /// Where the journal is (a URL without its password, or a file).
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// This process's name as a run's holder.
    pub(crate) fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// Its backend.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// The queue of submissions to be written in groups, started by `start` on first use.
    pub(crate) fn submissions(
        &self,
        start: impl FnOnce(WeakJournal) -> mpsc::Sender<Waiting>,
    ) -> &mpsc::Sender<Waiting> {
        self.inner
            .submissions
            .get_or_init(|| start(WeakJournal(Arc::downgrade(&self.inner))))
    }

    /// The error for a run id the journal does not hold.
    fn no_such_run(&self, run: RunId) -> Error {
        Error::invalid(
            run.to_string(),
            format!("no such run in the journal {}", self.location()),
        )
    }

    pub(crate) fn error(&self, e: impl std::fmt::Display) -> Error {
        db_error(&self.inner.location, e)
    }

    /// Starts a new run of `request` on `providers`, held by this process, and returns its
    /// id. The run and its targets are written in one transaction: for a request of up to
    /// 100,000 targets, together with the first provider's plan (one commit before anything is
    /// sent); for a larger one, in the background while the caller plans. Either way every
    /// provider's [`purgekit_core::RunLog::planned`] waits for it, so it is durable before
    /// anything is sent. A target that cannot be stored is refused here.
    pub async fn start_run(&self, request: &PurgeRequest, providers: &[String]) -> Result<RunId> {
        codec::check_lines(request.targets())?;
        let id = RunId::random();
        let (done, written) = watch::channel(None);
        self.inner
            .writing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, written);
        let pending = Pending {
            request: request.clone(),
            providers: providers.to_vec(),
            done,
        };
        if request.targets().len() <= WRITTEN_WITH_PLAN {
            self.inner
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, pending);
            return Ok(id);
        }
        let journal = self.clone();
        tokio::spawn(async move { journal.write_pending(id, pending).await });
        Ok(id)
    }

    /// Run `run`, started here, if it is not written yet: the caller writes it (with
    /// [`Journal::write_run`], in its own transaction) and tells `done`.
    pub(crate) fn take_pending(&self, run: RunId) -> Option<Pending> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&run)
    }

    /// Writes a pending run in a transaction of its own.
    async fn write_pending(&self, id: RunId, pending: Pending) {
        let result = async {
            let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
            self.write_run(&mut tx, id, &pending.request, &pending.providers)
                .await?;
            tx.commit().await.map_err(|e| self.error(e))
        }
        .await;
        let _ = pending.done.send(Some(result.map_err(|e| e.to_string())));
    }

    /// Waits until run `run`, started by [`Journal::start_run`] in this process, is written
    /// (writing it now if its first plan has not).
    pub(crate) async fn written(&self, run: RunId) -> Result<()> {
        if let Some(pending) = self.take_pending(run) {
            self.write_pending(run, pending).await;
        }
        let written = self
            .inner
            .writing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&run)
            .cloned();
        let Some(mut written) = written else {
            return Ok(());
        };
        let outcome = written
            .wait_for(Option::is_some)
            .await
            .map(|v| v.clone())
            .map_err(|_| self.error("the task writing the run ended abnormally"))?;
        match outcome {
            Some(Err(message)) => Err(Error::Journal { message }),
            _ => Ok(()),
        }
    }

    /// Waits until every run started in this process is written.
    async fn all_written(&self) -> Result<()> {
        let runs: Vec<RunId> = self
            .inner
            .writing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        for run in runs {
            self.written(run).await?;
        }
        Ok(())
    }

    /// Writes the run row and its targets in transaction `tx`, streaming the targets in chunks.
    pub(crate) async fn write_run(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: RunId,
        request: &PurgeRequest,
        providers: &[String],
    ) -> Result<()> {
        let run = NewRun {
            id,
            request,
            providers: providers.iter().map(String::as_str).collect(),
            units: &[],
            owner: &self.inner.owner,
            lease_until_ms: now_ms() + LEASE.as_millis() as i64,
        };
        self.insert_runs(tx, &[run]).await
    }

    /// Inserts `runs` (rows, targets, units) on `conn`, inside the caller's transaction, in as
    /// few statements as the limits of one allow ([`bulk::Insert`]). The targets go in chunks
    /// made one at a time, sent once a statement's worth is made, so a large request is never
    /// copied whole.
    pub(crate) async fn insert_runs(
        &self,
        conn: &mut AnyConnection,
        runs: &[NewRun<'_>],
    ) -> Result<()> {
        let now = now_ms();
        let mut rows = Insert::new(
            "INSERT INTO runs (id, started_ms, updated_ms, state, request, target_count, \
             providers, owner, lease_until_ms) VALUES",
            9,
            "",
        );
        for run in runs {
            let request = run.request;
            let stored = StoredRequest {
                options: request.options().clone(),
                wait_ms: request.wait().map(|w| w.as_millis() as u64),
                local_dry_run: request.local_dry_run(),
            };
            rows.row([
                run.id.to_string().into(),
                now.into(),
                now.into(),
                "running".into(),
                serde_json::to_string(&stored)
                    .map_err(|e| self.error(e))?
                    .into(),
                (request.targets().len() as i64).into(),
                serde_json::to_string(&run.providers)
                    .map_err(|e| self.error(e))?
                    .into(),
                run.owner.into(),
                run.lease_until_ms.into(),
            ]);
            if rows.is_full() {
                rows.execute(&mut *conn).await.map_err(|e| self.error(e))?;
            }
        }
        rows.execute(&mut *conn).await.map_err(|e| self.error(e))?;
        let mut targets = Insert::new(
            "INSERT INTO run_targets (run_id, chunk, texts) VALUES",
            3,
            "",
        );
        for run in runs {
            let id = run.id.to_string();
            for (n, chunk) in codec::TargetChunks::new(run.request.targets()).enumerate() {
                targets.row([id.as_str().into(), (n as i64).into(), chunk.into()]);
                if targets.is_full() {
                    targets
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| self.error(e))?;
                }
            }
        }
        targets
            .execute(&mut *conn)
            .await
            .map_err(|e| self.error(e))?;
        self.insert_units(conn, runs, now).await
    }

    /// The run log the engine writes a run's plan and transitions to.
    pub fn log(&self, run: RunId) -> SharedRunLog {
        Arc::new(RunJournal::new(self.clone(), run))
    }

    /// Keeps this process's hold on `run` (and on the units of it it holds) for another
    /// [`LEASE`].
    pub async fn renew(&self, run: RunId) -> Result<()> {
        let lease = now_ms() + LEASE.as_millis() as i64;
        for table in [
            "runs SET lease_until_ms = $1 WHERE id",
            "run_units SET lease_until_ms = $1 WHERE run_id",
        ] {
            sqlx::query(&format!("UPDATE {table} = $2 AND owner = $3"))
                .bind(lease)
                .bind(run.to_string())
                .bind(&self.inner.owner)
                .execute(self.pool())
                .await
                .map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    /// Takes over run `run` (or, with `None`, the latest unfinished run nobody holds) to resume
    /// it. A run still held by a live process is refused; so is a submitted run (with units,
    /// `crate::units`) one of whose units is: otherwise every unfinished unit of it is taken
    /// too, and the run is driven whole here.
    pub async fn claim(&self, run: Option<RunId>) -> Result<Claimed> {
        self.all_written().await?;
        let now = now_ms();
        let lease = now + LEASE.as_millis() as i64;
        // Candidates: unfinished runs whose lease ran out or whose holder on this machine is
        // gone. The claim itself is one conditional UPDATE, so two resumers never both win.
        let rows = match run {
            Some(id) => {
                sqlx::query("SELECT id, owner, lease_until_ms, state FROM runs WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_all(self.pool())
                    .await
                    .map_err(|e| self.error(e))?
            }
            None => sqlx::query(
                "SELECT id, owner, lease_until_ms, state FROM runs WHERE state = 'running' \
                 ORDER BY started_ms DESC",
            )
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.error(e))?,
        };
        if let (Some(id), true) = (run, rows.is_empty()) {
            return Err(self.no_such_run(id));
        }
        let mut held = None;
        for row in rows {
            let (id, holder, until, state): (String, String, i64, String) =
                (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?, get(&row, 3)?);
            if state == "finished" {
                return Err(Error::invalid(
                    id,
                    "that run is finished: every batch was sent (`purgekit report` shows it)",
                ));
            }
            if is_held(&holder, until, now) {
                held = Some(id);
                continue;
            }
            let units = self.open_units(parse_run_id(&id)?).await?;
            if units
                .iter()
                .any(|(_, owner, until)| is_held(owner, *until, now))
            {
                held = Some(id);
                continue;
            }
            let claimed = match self.inner.backend {
                // Row locks: a resumer on another machine skips a run being claimed.
                Backend::Postgres => sqlx::query(
                    "UPDATE runs SET owner = $1, lease_until_ms = $2, updated_ms = $3 WHERE id = \
                     (SELECT id FROM runs WHERE id = $4 AND owner = $5 AND state = 'running' \
                     FOR UPDATE SKIP LOCKED)",
                ),
                Backend::Sqlite => sqlx::query(
                    "UPDATE runs SET owner = $1, lease_until_ms = $2, updated_ms = $3 \
                     WHERE id = $4 AND owner = $5 AND state = 'running'",
                ),
            }
            .bind(&self.inner.owner)
            .bind(lease)
            .bind(now)
            .bind(&id)
            .bind(&holder)
            .execute(self.pool())
            .await
            .map_err(|e| self.error(e))?;
            if claimed.rows_affected() == 1 {
                let id = parse_run_id(&id)?;
                if !self.take_units(id, &units, lease).await? {
                    // A worker took one of its units meanwhile: the run goes back as it was.
                    self.finish(id).await?;
                    held = Some(id.to_string());
                    continue;
                }
                let (request, providers) = self.request(id).await?;
                return Ok(Claimed {
                    id,
                    request,
                    providers,
                });
            }
        }
        Err(match held {
            Some(id) => Error::invalid(
                id,
                "that run is being driven by a live process; wait for it, or for its lease to \
                 run out",
            ),
            None => Error::invalid(
                "resume",
                format!("no unfinished run in the journal {}", self.location()),
            ),
        })
    }

    /// The request of run `run`, and its providers.
    pub async fn request(&self, run: RunId) -> Result<(PurgeRequest, Vec<String>)> {
        self.written(run).await?;
        let row = sqlx::query("SELECT request, target_count, providers FROM runs WHERE id = $1")
            .bind(run.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.error(e))?
            .ok_or_else(|| self.no_such_run(run))?;
        let stored: StoredRequest =
            serde_json::from_str(&get::<String>(&row, 0)?).map_err(|e| self.error(e))?;
        let count = get::<i64>(&row, 1)? as usize;
        let providers: Vec<String> =
            serde_json::from_str(&get::<String>(&row, 2)?).map_err(|e| self.error(e))?;
        let mut conn = self.pool().acquire().await.map_err(|e| self.error(e))?;
        let targets = codec::targets_of(&self.chunks(&mut conn, run).await?, count)?;
        let request = PurgeRequest::new(targets, stored.options)?
            .with_wait(stored.wait_ms.map(Duration::from_millis))
            .with_local_dry_run(stored.local_dry_run);
        Ok((request, providers))
    }

    /// Where each batch of provider `provider` in run `run` stands, and its plan, if planned.
    pub(crate) async fn load(
        &self,
        run: RunId,
        provider: &str,
        targets: usize,
    ) -> Result<Option<(purgekit_core::ProviderPlan, RunRecord)>> {
        let Some(row) =
            sqlx::query("SELECT kind, plan FROM run_plans WHERE run_id = $1 AND provider = $2")
                .bind(run.to_string())
                .bind(provider)
                .fetch_optional(self.pool())
                .await
                .map_err(|e| self.error(e))?
        else {
            return Ok(None);
        };
        let kind: String = get(&row, 0)?;
        let blob: Vec<u8> = get(&row, 1)?;
        let plan = codec::decode_plan(&blob, provider, &kind, targets)?;
        let mut batches = vec![BatchRecord::Queued; plan.batches().len()];
        let states = sqlx::query(
            "SELECT idx, state, attempts, parts, slots, error FROM batch_states \
             WHERE run_id = $1 AND provider = $2",
        )
        .bind(run.to_string())
        .bind(provider)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        for row in states {
            let index = get::<i64>(&row, 0)? as usize;
            let record = self.record_of(&row, 1)?;
            if let Some(slot) = batches.get_mut(index) {
                *slot = record;
            }
        }
        Ok(Some((
            plan,
            RunRecord {
                id: run,
                batches,
                notes: Vec::new(),
                plan: None,
            },
        )))
    }

    /// A batch's record from the columns `state, attempts, parts, slots, error` of `row`,
    /// starting at column `at`.
    fn record_of(&self, row: &AnyRow, at: usize) -> Result<BatchRecord> {
        let state: String = get(row, at)?;
        let attempts = get::<i64>(row, at + 1)? as u32;
        let parts: Option<String> = get(row, at + 2)?;
        let slots: Option<Vec<u8>> = get(row, at + 3)?;
        let error: Option<String> = get(row, at + 4)?;
        let parts = || -> Result<Vec<RecordedPart>> {
            serde_json::from_str(parts.as_deref().unwrap_or("[]")).map_err(|e| self.error(e))
        };
        let slots = || codec::decode_u32s(slots.as_deref().unwrap_or_default());
        Ok(match state.as_str() {
            "sending" => BatchRecord::Sending,
            "accepted" => BatchRecord::Accepted {
                parts: parts()?,
                slots: slots()?,
                attempts,
            },
            "completed" => BatchRecord::Completed {
                parts: parts()?,
                slots: slots()?,
                attempts,
            },
            "failed" => BatchRecord::Failed {
                error: error.unwrap_or_default(),
                attempts,
            },
            other => return Err(self.error(format!("unknown batch state `{other}`"))),
        })
    }

    /// Where batch `batch` of provider `provider` in run `run` stands.
    pub(crate) async fn batch_record(
        &self,
        run: RunId,
        provider: &str,
        batch: usize,
    ) -> Result<BatchRecord> {
        let row = sqlx::query(
            "SELECT state, attempts, parts, slots, error FROM batch_states \
             WHERE run_id = $1 AND provider = $2 AND idx = $3",
        )
        .bind(run.to_string())
        .bind(provider)
        .bind(batch as i64)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        match row {
            Some(row) => self.record_of(&row, 0),
            None => Ok(BatchRecord::Queued),
        }
    }

    /// Run `run`'s target texts as stored, read on `conn` (a connection, or a transaction's):
    /// `'\n'`-separated chunks, in order.
    pub(crate) async fn chunks(
        &self,
        conn: &mut AnyConnection,
        run: RunId,
    ) -> Result<Vec<Vec<u8>>> {
        sqlx::query("SELECT texts FROM run_targets WHERE run_id = $1 ORDER BY chunk")
            .bind(run.to_string())
            .fetch_all(conn)
            .await
            .map_err(|e| self.error(e))?
            .iter()
            .map(|row| get(row, 0))
            .collect()
    }

    /// The batches of provider `provider` in run `run` that are settled (accepted, completed
    /// or failed: every state but `sending`; a queued batch has no row), read on `conn`.
    pub(crate) async fn settled(
        &self,
        conn: &mut AnyConnection,
        run: RunId,
        provider: &str,
    ) -> Result<HashSet<usize>> {
        sqlx::query(
            "SELECT idx FROM batch_states WHERE run_id = $1 AND provider = $2 \
             AND state <> 'sending'",
        )
        .bind(run.to_string())
        .bind(provider)
        .fetch_all(conn)
        .await
        .map_err(|e| self.error(e))?
        .iter()
        .map(|row| Ok(get::<i64>(row, 0)? as usize))
        .collect()
    }

    /// Whether provider `provider`'s work in run `run` is unfinished and held by a live
    /// process: the run's unit on it, for a run with units; else the run.
    pub(crate) async fn is_live(&self, run: RunId, provider: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COALESCE(u.state, r.state), COALESCE(u.owner, r.owner), \
             COALESCE(u.lease_until_ms, r.lease_until_ms) FROM runs r LEFT JOIN run_units u \
             ON u.run_id = r.id AND u.provider = $2 WHERE r.id = $1",
        )
        .bind(run.to_string())
        .bind(provider)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        let Some(row) = row else {
            return Ok(false);
        };
        let state: String = get(&row, 0)?;
        let holder: String = get(&row, 1)?;
        let until: i64 = get(&row, 2)?;
        Ok(state == "running" && is_held(&holder, until, now_ms()))
    }

    /// Run `run`'s report, from the journal alone: one row per (target, provider) planned so
    /// far; batches not sent yet are failed rows saying so.
    pub async fn report(&self, run: RunId) -> Result<Report> {
        let (request, providers) = self.request(run).await?;
        let given_up = self.given_up(run).await?;
        let units_given_up = self.units_given_up(run).await?;
        let mut report = Report::new(Vec::new());
        for provider in providers {
            if let Some((plan, record)) = self.load(run, &provider, request.targets().len()).await?
            {
                let part = report_of(&plan, &request, &record);
                report = merge(report, part);
            } else if let Some(error) = units_given_up.get(&provider).or(given_up.as_ref()) {
                // Never planned, and never will be: every target failed with the run's error.
                let (provider, error): (Arc<str>, Arc<str>) =
                    (provider.into(), error.as_str().into());
                let rows = request.targets().iter().map(|target| purgekit_core::Row {
                    target: target.shared_text(),
                    provider: provider.clone(),
                    state: State::Failed,
                    handle: None,
                    attempts: 0,
                    error: Some(error.clone()),
                    unfinished: None,
                    warnings: Arc::from([]),
                });
                report = merge(report, Report::new(rows.collect()));
            }
        }
        Ok(report)
    }

    /// Marks run `run` finished when every batch of every provider is settled (accepted,
    /// completed or failed), and gives up this process's hold on it (and on the units of it
    /// it holds: [`Journal::finish_unit`]). Returns whether it is.
    pub async fn finish(&self, run: RunId) -> Result<bool> {
        self.written(run).await?;
        self.finish_units(run).await?;
        let info = self.run_info(run).await?;
        let finished = info.batches.queued == 0 && info.batches.sending == 0;
        sqlx::query(
            "UPDATE runs SET state = $1, updated_ms = $2, lease_until_ms = 0 \
             WHERE id = $3 AND owner = $4",
        )
        .bind(if finished { "finished" } else { "running" })
        .bind(now_ms())
        .bind(run.to_string())
        .bind(&self.inner.owner)
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(finished)
    }

    /// Deletes run `run` if none of its batches was ever sent (a purge refused for its input).
    pub async fn discard_unsent(&self, run: RunId) -> Result<()> {
        self.written(run).await?;
        sqlx::query(
            "DELETE FROM runs WHERE id = $1 AND NOT EXISTS \
             (SELECT 1 FROM batch_states WHERE run_id = $1)",
        )
        .bind(run.to_string())
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Every run, latest first.
    pub async fn runs(&self) -> Result<Vec<RunInfo>> {
        self.all_written().await?;
        let ids: Vec<String> = sqlx::query("SELECT id FROM runs ORDER BY started_ms DESC")
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.error(e))?
            .iter()
            .map(|row| get(row, 0))
            .collect::<Result<_>>()?;
        let mut runs = Vec::with_capacity(ids.len());
        for id in ids {
            runs.push(self.run_info(parse_run_id(&id)?).await?);
        }
        Ok(runs)
    }

    /// One run's listing.
    pub async fn run_info(&self, run: RunId) -> Result<RunInfo> {
        self.written(run).await?;
        let row = sqlx::query(
            "SELECT started_ms, state, target_count, providers, owner, lease_until_ms, error \
             FROM runs WHERE id = $1",
        )
        .bind(run.to_string())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .ok_or_else(|| self.no_such_run(run))?;
        let providers: Vec<String> =
            serde_json::from_str(&get::<String>(&row, 3)?).map_err(|e| self.error(e))?;
        let mut state: String = get(&row, 1)?;
        let holder: String = get(&row, 4)?;
        let until: i64 = get(&row, 5)?;
        let now = now_ms();
        if state == "running" && !is_held(&holder, until, now) {
            // Or one of its units is held.
            let units = self.open_units(run).await?;
            if !units
                .iter()
                .any(|(_, owner, until)| is_held(owner, *until, now))
            {
                state = "interrupted".to_owned();
            }
        }
        let planned = sqlx::query(
            "SELECT CAST(COALESCE(SUM(batch_count), 0) AS BIGINT), COUNT(*) FROM run_plans \
             WHERE run_id = $1",
        )
        .bind(run.to_string())
        .fetch_one(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        let mut batches = BatchCounts {
            queued: get::<i64>(&planned, 0)?,
            ..BatchCounts::default()
        };
        let given_up = get::<Option<String>>(&row, 6)?.is_some();
        // Units given up on before their provider was planned: their targets fail in the
        // report, nothing is left to do.
        let unplanned_given_up = sqlx::query(
            "SELECT COUNT(*) FROM run_units u WHERE u.run_id = $1 AND u.error IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM run_plans p WHERE p.run_id = u.run_id \
             AND p.provider = u.provider)",
        )
        .bind(run.to_string())
        .fetch_one(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        let unplanned_given_up = get::<i64>(&unplanned_given_up, 0)?;
        if get::<i64>(&planned, 1)? + unplanned_given_up < providers.len() as i64 && !given_up {
            // A provider not planned yet: its batches are unknown, but it is not finished.
            batches.queued += 1;
        }
        let states = sqlx::query(
            "SELECT state, COUNT(*) FROM batch_states WHERE run_id = $1 GROUP BY state",
        )
        .bind(run.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        for row in states {
            let state: String = get(&row, 0)?;
            let n = get::<i64>(&row, 1)?;
            batches.queued -= n;
            match state.as_str() {
                "sending" => batches.sending += n,
                "accepted" => batches.accepted += n,
                "completed" => batches.completed += n,
                _ => batches.failed += n,
            }
        }
        Ok(RunInfo {
            id: run.to_string(),
            started_ms: get(&row, 0)?,
            state,
            targets: get(&row, 2)?,
            providers,
            batches,
        })
    }
}

/// Two providers' reports as one (rows in provider order).
fn merge(mut a: Report, b: Report) -> Report {
    a.results.extend(b.results);
    Report::new(a.results)
}

/// A column as `T`.
pub(crate) fn get<T>(row: &AnyRow, index: usize) -> Result<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(index).map_err(|e| Error::Journal {
        message: format!("unexpected column {index}: {e}"),
    })
}

/// A run id from its 32 hex digits.
pub fn parse_run_id(text: &str) -> Result<RunId> {
    if text.len() != 32 {
        return Err(Error::invalid(text, "a run id is 32 hex digits"));
    }
    u128::from_str_radix(text, 16)
        .map(RunId)
        .map_err(|_| Error::invalid(text, "a run id is 32 hex digits"))
}

/// This process as a run's holder: `host:pid:token`.
fn owner() -> String {
    format!(
        "{}:{}:{:016x}",
        host(),
        std::process::id(),
        fastrand_token()
    )
}

fn fastrand_token() -> u64 {
    (RunId::random().0 >> 64) as u64
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Whether a run or unit held by `owner` until `until` (milliseconds since the Unix epoch) is
/// still held at `now`: its lease not run out, and its holder alive ([`holder_alive`]).
pub(crate) fn is_held(owner: &str, until: i64, now: i64) -> bool {
    until > now && holder_alive(owner)
}

/// Whether the holder named `owner` may still be alive: on this machine, whether its process
/// exists; elsewhere, yes (its lease decides).
fn holder_alive(owner: &str) -> bool {
    let mut parts = owner.rsplitn(3, ':');
    let (_token, pid, holder_host) = (parts.next(), parts.next(), parts.next());
    match (pid.and_then(|p| p.parse::<u32>().ok()), holder_host) {
        (Some(pid), Some(h)) if h == host() && Path::new("/proc/self").exists() => {
            pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => true,
    }
}

/// The schema version the journal at `pool` was written with, refused when newer than ours.
async fn check_version(pool: &AnyPool, migrator: &Migrator, location: &str) -> Result<()> {
    let ours = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    // No table yet: a new journal.
    let Ok(row) = sqlx::query("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
    else {
        return Ok(());
    };
    let theirs: Option<i64> = row.try_get(0).unwrap_or(None);
    match theirs {
        Some(theirs) if theirs > ours => Err(Error::Journal {
            message: format!(
                "{location} was written by a newer purgekit (schema version {theirs}; this one \
                 knows up to {ours}): upgrade purgekit, or use another journal"
            ),
        }),
        _ => Ok(()),
    }
}
