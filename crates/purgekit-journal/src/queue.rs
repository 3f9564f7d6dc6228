//! Runs queued for a service (`purgekit serve`): submitted without being run, each written
//! with its units of work, one per provider (`crate::units`), which workers of any instance
//! lease one by one ([`Journal::next_unit`]), oldest first.
//!
//! A queued run is an ordinary unfinished run that nobody holds (no owner, lease expired), so
//! reports, listings and `purgekit resume` ([`Journal::claim`]) are the journal's own.
//!
//! Submissions are written by group commit: a writer task takes every submission waiting
//! and writes them in one transaction ([`Journal::submit`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use purgekit_core::{PurgeRequest, Result, RunId};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Connection};
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

use crate::bulk::{self, Insert};
use crate::codec;
use crate::journal::{Backend, Claimed, Journal, NewRun, WeakJournal, get, now_ms, parse_run_id};
use crate::units::ProviderAccount;

/// At most this many submissions are written in one transaction.
const MAX_GROUP: usize = 128;

/// Groups written at once on PostgreSQL.
const POSTGRES_WRITERS: usize = 4;

/// Submissions waiting for the writer at most: beyond, [`Journal::submit`] waits.
const QUEUE: usize = 1024;

/// A submission waiting for its group's commit, and where its answer goes.
pub(crate) struct Waiting {
    submission: Submission,
    answer: oneshot::Sender<Result<(RunId, bool)>>,
}

/// What one submission writes.
struct Submission {
    request: PurgeRequest,
    providers: Vec<ProviderAccount>,
    key: Option<String>,
}

impl Journal {
    /// Writes a run of `request` on `providers` without running it: one unit of work per
    /// provider, on its account, each queued until a worker takes it ([`Journal::next_unit`]).
    /// With `key`, a run submitted before with the same key is returned instead of a new one
    /// (by any process sharing the journal). Returns the run and whether it is new, once it is
    /// committed.
    ///
    /// Group commit: submissions made at once (from any task of this process) are written
    /// by a writer task, as many as are waiting in one transaction, so a burst of submissions
    /// costs one durable commit rather than one each; each caller is answered after its
    /// group's commit.
    pub async fn submit(
        &self,
        request: &PurgeRequest,
        providers: &[ProviderAccount],
        key: Option<&str>,
    ) -> Result<(RunId, bool)> {
        codec::check_lines(request.targets())?;
        let (answer, answered) = oneshot::channel();
        let pending = Waiting {
            submission: Submission {
                request: request.clone(),
                providers: providers.to_vec(),
                key: key.map(str::to_owned),
            },
            answer,
        };
        let writers = match self.backend() {
            // SQLite has one writer at a time: a second group would only wait for the lock.
            Backend::Sqlite => 1,
            // PostgreSQL commits transactions side by side: a group is written while the one
            // before it waits for its commit.
            Backend::Postgres => POSTGRES_WRITERS,
        };
        let queue = self.submissions(|journal| {
            let (queue, waiting) = mpsc::channel(QUEUE);
            let waiting = Arc::new(AsyncMutex::new(waiting));
            for _ in 0..writers {
                tokio::spawn(write_groups(journal.clone(), waiting.clone()));
            }
            queue
        });
        let gone = || self.error("the task writing submissions ended");
        queue.send(pending).await.map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }

    /// Writes `group` in one transaction and answers each submission; when that fails, each
    /// one alone, so one submission's failure (or a conflict with another process) is only
    /// its own.
    async fn write_group(&self, held: &mut Held, group: Vec<Waiting>) {
        if group.len() > 1 {
            let submissions: Vec<&Submission> = group.iter().map(|p| &p.submission).collect();
            match self.commit_group(held, &submissions).await {
                Ok(runs) => {
                    for (pending, run) in group.into_iter().zip(runs) {
                        let _ = pending.answer.send(Ok(run));
                    }
                    return;
                }
                Err(e) => tracing::debug!("a group of submissions, retried one by one: {e}"),
            }
        }
        for pending in group {
            let result = self
                .commit_group(held, &[&pending.submission])
                .await
                .map(|runs| runs[0]);
            let _ = pending.answer.send(result);
        }
    }

    /// One transaction writing every submission of `group`, a few statements for the whole
    /// group ([`Journal::insert_runs`]): each new run held by nobody, so any worker may take
    /// it, and its key. A key stored before (by any process), or given earlier in the group,
    /// names the run to answer instead. Returns each submission's run, and whether it is new.
    async fn commit_group(
        &self,
        held: &mut Held,
        group: &[&Submission],
    ) -> Result<Vec<(RunId, bool)>> {
        let conn = match held {
            Some(conn) => conn,
            None => held.insert(self.pool().acquire().await.map_err(|e| self.error(e))?),
        };
        let written = self.commit_on(conn, group).await;
        if written.is_err() {
            // Back to the pool, which tests it before anyone uses it again.
            *held = None;
        }
        written
    }

    /// [`Journal::commit_group`] on `conn`.
    async fn commit_on(
        &self,
        conn: &mut AnyConnection,
        group: &[&Submission],
    ) -> Result<Vec<(RunId, bool)>> {
        let mut tx = match self.backend() {
            // Taking the write lock first: a transaction that reads first and writes later can
            // fail at once when another process wrote in between.
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => conn.begin().await,
        }
        .map_err(|e| self.error(e))?;
        let keys: Vec<&str> = group.iter().filter_map(|s| s.key.as_deref()).collect();
        let mut keyed = self.runs_of_keys(&mut tx, &keys).await?;
        let mut runs = Vec::with_capacity(group.len());
        let mut new = Vec::with_capacity(group.len());
        let mut inserted = Vec::new();
        let mut new_keys = Insert::new(
            "INSERT INTO run_keys (key, run_id) VALUES",
            2,
            "ON CONFLICT (key) DO NOTHING RETURNING key",
        );
        for submission in group {
            let key = submission.key.as_deref();
            if let Some(&run) = key.and_then(|key| keyed.get(key)) {
                runs.push((run, false));
                continue;
            }
            let run = RunId::random();
            if let Some(key) = key {
                keyed.insert(key.to_owned(), run);
                inserted.push(key);
                new_keys.row([key.into(), run.to_string().into()]);
            }
            runs.push((run, true));
            new.push(NewRun {
                id: run,
                request: &submission.request,
                providers: submission
                    .providers
                    .iter()
                    .map(|p| p.provider.as_str())
                    .collect(),
                units: &submission.providers,
                owner: "",
                lease_until_ms: 0,
            });
        }
        self.insert_runs(&mut tx, &new).await?;
        // At most MAX_GROUP keys: one statement.
        let stored: HashSet<String> = new_keys
            .fetch_all(&mut tx)
            .await
            .map_err(|e| self.error(e))?
            .iter()
            .map(|row| get::<String>(row, 0))
            .collect::<Result<_>>()?;
        let lost: Vec<&str> = inserted
            .into_iter()
            .filter(|key| !stored.contains(*key))
            .collect();
        if !lost.is_empty() {
            self.yield_keys(&mut tx, &lost, &keyed, &mut runs).await?;
        }
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(runs)
    }

    /// Keys `lost`, which another process committed since this group read them (PostgreSQL:
    /// our insert waited for its commit): its runs win, ours (in `keyed`) go, and the
    /// submissions answered with ours are answered with its.
    async fn yield_keys(
        &self,
        conn: &mut AnyConnection,
        lost: &[&str],
        keyed: &HashMap<String, RunId>,
        runs: &mut [(RunId, bool)],
    ) -> Result<()> {
        let ours: Vec<RunId> = lost.iter().map(|key| keyed[*key]).collect();
        let sql = format!(
            "DELETE FROM runs WHERE id IN ({})",
            bulk::list(1, ours.len())
        );
        let ids = ours.iter().map(|run| run.to_string().into()).collect();
        bulk::bind(&sql, ids)
            .execute(&mut *conn)
            .await
            .map_err(|e| self.error(e))?;
        let winners = self.runs_of_keys(conn, lost).await?;
        for (key, our) in lost.iter().zip(ours) {
            let winner = *winners
                .get(*key)
                .ok_or_else(|| self.error("an Idempotency-Key vanished"))?;
            for run in runs.iter_mut().filter(|run| run.0 == our) {
                *run = (winner, false);
            }
        }
        Ok(())
    }

    /// The runs `keys` name, of those stored (at most [`MAX_GROUP`] keys: one statement).
    async fn runs_of_keys(
        &self,
        conn: &mut AnyConnection,
        keys: &[&str],
    ) -> Result<HashMap<String, RunId>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT key, run_id FROM run_keys WHERE key IN ({})",
            bulk::list(1, keys.len())
        );
        let keys = keys.iter().map(|&key| key.into()).collect();
        bulk::bind(&sql, keys)
            .fetch_all(conn)
            .await
            .map_err(|e| self.error(e))?
            .iter()
            .map(|row| {
                Ok((
                    get::<String>(row, 0)?,
                    parse_run_id(&get::<String>(row, 1)?)?,
                ))
            })
            .collect()
    }

    /// Takes the oldest unfinished run without units (`crate::units`: an interrupted
    /// `purgekit purge`, or one submitted before units were) whose lease ran out for this
    /// process, as [`Journal::claim`] does; `None` when there is none to take.
    pub async fn next_queued(&self) -> Result<Option<Claimed>> {
        let rows = sqlx::query(
            "SELECT id FROM runs WHERE state = 'running' AND lease_until_ms < $1 \
             AND NOT EXISTS (SELECT 1 FROM run_units u WHERE u.run_id = runs.id) \
             ORDER BY started_ms LIMIT 16",
        )
        .bind(now_ms())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        for row in rows {
            let id = parse_run_id(&get::<String>(&row, 0)?)?;
            // Another worker may win it between the two statements: try the next one.
            if let Ok(claimed) = self.claim(Some(id)).await {
                return Ok(Some(claimed));
            }
        }
        Ok(None)
    }

    /// The failed attempts at run `run` recorded by [`Journal::give_back`].
    pub async fn failures(&self, run: RunId) -> Result<u32> {
        let row = sqlx::query("SELECT failures FROM runs WHERE id = $1")
            .bind(run.to_string())
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        Ok(get::<i64>(&row, 0)? as u32)
    }

    /// Gives run `run`, whose attempt here failed, back to the journal: `failures` failed
    /// attempts recorded, held by nobody, and taken by no worker for `after`. Only while this
    /// process holds it (or held it last); returns whether it did.
    pub async fn give_back(&self, run: RunId, failures: u32, after: Duration) -> Result<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE runs SET failures = $1, owner = '', lease_until_ms = $2, updated_ms = $3 \
             WHERE id = $4 AND owner = $5 AND state = 'running'",
        )
        .bind(i64::from(failures))
        .bind(now + after.as_millis() as i64)
        .bind(now)
        .bind(run.to_string())
        .bind(self.owner())
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up on run `run` for good, with `error`, in one transaction: every batch not
    /// settled (queued, or being sent when the attempt failed) is failed with it, a provider
    /// never planned reports every target failed with it ([`Journal::report`]), and the run is
    /// finished. Only while this process holds it (or held it last); returns whether it did.
    pub async fn give_up(&self, run: RunId, error: &str) -> Result<bool> {
        let id = run.to_string();
        let now = now_ms();
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        let ours = sqlx::query(
            "UPDATE runs SET state = 'finished', error = $1, owner = '', lease_until_ms = 0, \
             updated_ms = $2 WHERE id = $3 AND owner = $4 AND state = 'running'",
        )
        .bind(error)
        .bind(now)
        .bind(&id)
        .bind(self.owner())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        if ours.rows_affected() == 0 {
            return Ok(false);
        }
        let plans = sqlx::query("SELECT provider, batch_count FROM run_plans WHERE run_id = $1")
            .bind(&id)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        for plan in plans {
            let provider: String = get(&plan, 0)?;
            let count = get::<i64>(&plan, 1)?;
            self.fail_unsettled(&mut tx, run, &provider, count, error, now)
                .await?;
        }
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(true)
    }

    /// Fails every batch of provider `provider` in run `run` (of `count`) not settled with
    /// `error`, on `conn` (inside the caller's transaction).
    pub(crate) async fn fail_unsettled(
        &self,
        conn: &mut AnyConnection,
        run: RunId,
        provider: &str,
        count: i64,
        error: &str,
        now: i64,
    ) -> Result<()> {
        let settled = self.settled(&mut *conn, run, provider).await?;
        for batch in (0..count).filter(|&b| !settled.contains(&(b as usize))) {
            // A batch being sent keeps its attempts: the provider may have taken it.
            sqlx::query(
                "INSERT INTO batch_states (run_id, provider, idx, state, attempts, error, \
                 updated_ms) VALUES ($1, $2, $3, 'failed', 0, $4, $5) \
                 ON CONFLICT (run_id, provider, idx) DO UPDATE SET state = 'failed', \
                 error = excluded.error, updated_ms = excluded.updated_ms",
            )
            .bind(run.to_string())
            .bind(provider)
            .bind(batch)
            .bind(error)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    /// Why run `run` was given up on ([`Journal::give_up`]), if it was.
    pub(crate) async fn given_up(&self, run: RunId) -> Result<Option<String>> {
        let row = sqlx::query("SELECT error FROM runs WHERE id = $1")
            .bind(run.to_string())
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        get(&row, 0)
    }

    /// Whether the journal answers (for a readiness probe).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}

/// The connection a writer task writes its groups on, if it holds one: kept from one group to
/// the next while submissions keep coming (taking a connection from the pool and giving it
/// back cost more than a group's statements, docs/performance.md), given back after
/// [`KEEP_IDLE`] without a submission, or after a failure.
type Held = Option<PoolConnection<Any>>;

/// How long a writer keeps its connection with nothing to write.
const KEEP_IDLE: Duration = Duration::from_secs(1);

/// A task writing one journal's submissions: takes what is waiting (at least one, at most
/// [`MAX_GROUP`]) and writes it as one group; ends when the journal is closed. Several such
/// tasks take turns at the queue.
async fn write_groups(journal: WeakJournal, waiting: Arc<AsyncMutex<mpsc::Receiver<Waiting>>>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut held: Held = None;
    loop {
        let mut queue = waiting.lock().await;
        let received = if held.is_some() {
            let next = queue.recv_many(&mut group, MAX_GROUP);
            match tokio::time::timeout(KEEP_IDLE, next).await {
                Ok(received) => received,
                Err(_) => {
                    held = None;
                    continue;
                }
            }
        } else {
            queue.recv_many(&mut group, MAX_GROUP).await
        };
        drop(queue);
        if received == 0 {
            return;
        }
        let Some(journal) = journal.upgrade() else {
            return;
        };
        journal
            .write_group(&mut held, std::mem::take(&mut group))
            .await;
    }
}
