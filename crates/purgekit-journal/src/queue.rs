//! Runs queued for a service (`purgekit serve`): submitted without being run, each written
//! with its units of work, one per provider (`crate::units`), which workers of any instance
//! lease one by one ([`Journal::next_unit`]), oldest first.
//!
//! A queued run is an ordinary unfinished run that nobody holds (no owner, lease expired), so
//! reports, listings and `purgekit resume` ([`Journal::claim`]) are the journal's own.
//!
//! Submissions are written by group commit: a writer task takes every submission waiting
//! and writes them in one transaction ([`Journal::submit`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use purgekit_core::{PurgeRequest, Result, RunId};
use sqlx::AnyConnection;
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

use crate::codec;
use crate::journal::{Backend, Claimed, Journal, WeakJournal, get, now_ms, parse_run_id};
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
    async fn write_group(&self, group: Vec<Waiting>) {
        if group.len() > 1 {
            let submissions: Vec<&Submission> = group.iter().map(|p| &p.submission).collect();
            match self.commit_group(&submissions).await {
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
                .commit_group(&[&pending.submission])
                .await
                .map(|runs| runs[0]);
            let _ = pending.answer.send(result);
        }
    }

    /// One transaction writing every submission of `group`; their runs, in order.
    async fn commit_group(&self, group: &[&Submission]) -> Result<Vec<(RunId, bool)>> {
        let mut tx = match self.backend() {
            // Taking the write lock first: a transaction that reads first and writes later can
            // fail at once when another process wrote in between.
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool().begin().await,
        }
        .map_err(|e| self.error(e))?;
        // Keys given a run earlier in this group: not in the table until the commit.
        let mut keyed: HashMap<&str, RunId> = HashMap::new();
        let mut runs = Vec::with_capacity(group.len());
        for submission in group {
            let key = submission.key.as_deref();
            if let Some(&run) = key.and_then(|key| keyed.get(key)) {
                runs.push((run, false));
                continue;
            }
            let run = self.write_submission(&mut tx, submission).await?;
            if let Some(key) = key {
                keyed.insert(key, run.0);
            }
            runs.push(run);
        }
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(runs)
    }

    /// Everything one submission writes, on `conn` (inside its group's transaction): the run
    /// held by nobody, so any worker may take it, and its key. A key already stored names the
    /// run to answer instead.
    async fn write_submission(
        &self,
        conn: &mut AnyConnection,
        submission: &Submission,
    ) -> Result<(RunId, bool)> {
        let key = submission.key.as_deref();
        if let Some(key) = key
            && let Some(run) = self.run_of_key(&mut *conn, key).await?
        {
            return Ok((run, false));
        }
        let run = RunId::random();
        let (request, providers) = (&submission.request, &submission.providers);
        let names: Vec<String> = providers.iter().map(|p| p.provider.clone()).collect();
        self.insert_run(&mut *conn, run, request, &names, "", 0)
            .await?;
        self.insert_units(&mut *conn, run, providers).await?;
        let Some(key) = key else {
            return Ok((run, true));
        };
        let stored = sqlx::query(
            "INSERT INTO run_keys (key, run_id) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(run.to_string())
        .execute(&mut *conn)
        .await
        .map_err(|e| self.error(e))?;
        if stored.rows_affected() == 1 {
            return Ok((run, true));
        }
        // Another process committed the key since we looked (PostgreSQL: our insert waited
        // for its commit): its run wins, ours goes.
        sqlx::query("DELETE FROM runs WHERE id = $1")
            .bind(run.to_string())
            .execute(&mut *conn)
            .await
            .map_err(|e| self.error(e))?;
        let winner = self.run_of_key(&mut *conn, key).await?;
        Ok((
            winner.ok_or_else(|| self.error("an Idempotency-Key vanished"))?,
            false,
        ))
    }

    async fn run_of_key(&self, conn: &mut AnyConnection, key: &str) -> Result<Option<RunId>> {
        let row = sqlx::query("SELECT run_id FROM run_keys WHERE key = $1")
            .bind(key)
            .fetch_optional(conn)
            .await
            .map_err(|e| self.error(e))?;
        row.map(|row| parse_run_id(&get::<String>(&row, 0)?))
            .transpose()
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

/// A task writing one journal's submissions: takes what is waiting (at least one, at most
/// [`MAX_GROUP`]) and writes it as one group; ends when the journal is closed. Several such
/// tasks take turns at the queue.
async fn write_groups(journal: WeakJournal, waiting: Arc<AsyncMutex<mpsc::Receiver<Waiting>>>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        if waiting.lock().await.recv_many(&mut group, MAX_GROUP).await == 0 {
            return;
        }
        let Some(journal) = journal.upgrade() else {
            return;
        };
        journal.write_group(std::mem::take(&mut group)).await;
    }
}
