//! [`RunJournal`]: the [`RunLog`] the engine writes one run's plans and batch transitions to.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use purgekit_core::{
    BatchRecord, Batches, Error, FollowGroup, ProviderPlan, PurgeRequest, RecordedPart, Replan,
    Result, RunId, RunLog, RunRecord, Text,
};
use sqlx::{Any, AnyConnection, Transaction};
use tokio::sync::oneshot;

use crate::Journal;
use crate::codec;
use crate::journal::{Pending, get, is_held, now_ms, parse_run_id};

/// How often a batch following another run's waits for it is looked at.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// Another run's batch that one of this run's follows.
#[derive(Debug, Clone)]
struct Followed {
    run: RunId,
    provider: String,
    batch: usize,
    /// Per slot of the following batch, its slot in the followed one.
    slots: Vec<u32>,
}

impl Followed {
    /// The followed batch's slots (per slot, its part) as the following batch's.
    fn map_slots(&self, theirs: &[u32]) -> Vec<u32> {
        if theirs.is_empty() {
            return Vec::new();
        }
        self.slots
            .iter()
            .map(|&s| theirs.get(s as usize).copied().unwrap_or(0))
            .collect()
    }
}

/// A batch's new state and what comes with it.
struct Transition<'a> {
    state: &'a str,
    attempts: u32,
    /// The handles (JSON), when accepted.
    parts: Option<String>,
    /// Per slot its part, for a shared-scope batch.
    slots: Option<Vec<u8>>,
    /// The row's error, when failed.
    error: Option<&'a str>,
}

impl<'a> Transition<'a> {
    fn to(state: &'a str, attempts: u32) -> Self {
        Transition {
            state,
            attempts,
            parts: None,
            slots: None,
            error: None,
        }
    }
}

/// A `sending` waiting to be written: (provider, batch, attempt, told once it is durable).
type Waiting = (
    String,
    usize,
    u32,
    oneshot::Sender<std::result::Result<(), String>>,
);

/// One run's log in a [`Journal`].
pub(crate) struct RunJournal {
    journal: Journal,
    run: RunId,
    id: String,
    /// (provider, batch) → the other run's batch it follows.
    follows: Mutex<HashMap<(String, usize), Followed>>,
    /// `sending` transitions not written yet: whoever holds `writer` next writes them all in
    /// one transaction (group commit), so batches starting together cost one durable commit.
    waiting: Mutex<Vec<Waiting>>,
    writer: tokio::sync::Mutex<()>,
}

impl RunJournal {
    pub(crate) fn new(journal: Journal, run: RunId) -> Self {
        RunJournal {
            journal,
            run,
            id: run.to_string(),
            follows: Mutex::new(HashMap::new()),
            waiting: Mutex::new(Vec::new()),
            writer: tokio::sync::Mutex::new(()),
        }
    }

    /// Writes every waiting `sending` in one transaction, and tells each.
    async fn write_waiting(&self) {
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        if waiting.is_empty() {
            return;
        }
        let journal = &self.journal;
        let written: Result<()> = async {
            let mut tx = journal.pool().begin().await.map_err(|e| journal.error(e))?;
            for (provider, batch, attempt, _) in &waiting {
                self.set_in(
                    &mut tx,
                    provider,
                    *batch,
                    Transition::to("sending", *attempt),
                )
                .await?;
            }
            tx.commit().await.map_err(|e| journal.error(e))
        }
        .await;
        let written = written.map_err(|e| e.to_string());
        for (.., told) in waiting {
            let _ = told.send(written.clone());
        }
    }

    /// The targets of `plan` queued in another live unfinished run (for a run with units: its
    /// unit on that provider live) on the same account with
    /// the same options, in a batch not settled yet (queued, or `sending`: waiting for its turn
    /// under the rate limits, or in flight) that the other run sends itself: one group per such
    /// batch, the oldest run first. Read in `tx`, which holds the account's planning lock.
    ///
    /// O(n + m): this plan's slots by their text in one map, probed with each other run's
    /// queued slots (m: the targets of the live runs on the account).
    async fn queued_elsewhere(
        &self,
        tx: &mut Transaction<'_, Any>,
        plan: &ProviderPlan,
        key: &PlanKey<'_>,
        request: &PurgeRequest,
    ) -> Result<Vec<(FollowGroup, Followed)>> {
        let journal = &self.journal;
        let others = sqlx::query(
            "SELECT p.run_id, p.provider, p.plan, r.target_count, COALESCE(u.owner, r.owner), \
             COALESCE(u.lease_until_ms, r.lease_until_ms) FROM run_plans p \
             JOIN runs r ON r.id = p.run_id \
             LEFT JOIN run_units u ON u.run_id = p.run_id AND u.provider = p.provider \
             WHERE r.state = 'running' AND (u.state IS NULL OR u.state = 'running') \
             AND p.kind = $1 AND p.account = $2 AND p.options_key = $3 AND p.run_id <> $4 \
             ORDER BY r.started_ms",
        )
        .bind(&plan.kind)
        .bind(key.account)
        .bind(key.options)
        .bind(&self.id)
        .fetch_all(&mut **tx)
        .await
        .map_err(|e| journal.error(e))?;
        let now = now_ms();
        let mut groups: Vec<(FollowGroup, Followed)> = Vec::new();
        if others.is_empty() {
            return Ok(groups);
        }
        let targets = request.targets();
        // This plan's slots by text (each slot's target is the first of its duplicates).
        let mut mine: HashMap<Text, u32> = HashMap::new();
        for batch in plan.batches() {
            for &t in batch.targets {
                mine.insert(targets[t as usize].shared_text(), t);
            }
        }
        let mut taken: HashSet<u32> = HashSet::new();
        for row in others {
            let holder: String = get(&row, 4)?;
            let until: i64 = get(&row, 5)?;
            if !is_held(&holder, until, now) {
                continue;
            }
            let run = parse_run_id(&get::<String>(&row, 0)?)?;
            let provider: String = get(&row, 1)?;
            let blob: Vec<u8> = get(&row, 2)?;
            let count = get::<i64>(&row, 3)? as usize;
            let theirs = codec::decode_plan(&blob, &provider, &plan.kind, count)?;
            // Their batches settled, or following a third run's: not followed.
            let mut closed = journal.settled(tx, run, &provider).await?;
            let follows =
                sqlx::query("SELECT idx FROM batch_follows WHERE run_id = $1 AND provider = $2")
                    .bind(run.to_string())
                    .bind(&provider)
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(|e| journal.error(e))?;
            for row in follows {
                closed.insert(get::<i64>(&row, 0)? as usize);
            }
            let chunks = journal.chunks(tx, run).await?;
            let mut texts: Vec<&[u8]> = Vec::with_capacity(count);
            for chunk in &chunks {
                texts.extend(chunk.split(|&b| b == b'\n'));
            }
            for (batch, planned) in theirs.batches().iter().enumerate() {
                if closed.contains(&batch) {
                    continue;
                }
                let mut group: Option<usize> = None;
                for (slot, &t) in planned.targets.iter().enumerate() {
                    let text = texts
                        .get(t as usize)
                        .and_then(|text| std::str::from_utf8(text).ok());
                    let Some(&mine) = text.and_then(|text| mine.get(text)) else {
                        continue;
                    };
                    if !taken.insert(mine) {
                        continue;
                    }
                    let at = *group.get_or_insert_with(|| {
                        groups.push((
                            FollowGroup {
                                scope: planned.scope.to_owned(),
                                targets: Vec::new(),
                            },
                            Followed {
                                run,
                                provider: provider.clone(),
                                batch,
                                slots: Vec::new(),
                            },
                        ));
                        groups.len() - 1
                    });
                    groups[at].0.targets.push(mine);
                    groups[at].1.slots.push(slot as u32);
                }
            }
        }
        Ok(groups)
    }

    /// Writes batch `batch`'s state (one statement: it is one durable commit).
    async fn set(&self, provider: &str, batch: usize, to: Transition<'_>) -> Result<()> {
        let mut conn = self
            .journal
            .pool()
            .acquire()
            .await
            .map_err(|e| self.journal.error(e))?;
        self.set_in(&mut conn, provider, batch, to).await
    }

    /// Writes batch `batch`'s state on `conn` (a connection, or a transaction's).
    async fn set_in(
        &self,
        conn: &mut AnyConnection,
        provider: &str,
        batch: usize,
        to: Transition<'_>,
    ) -> Result<()> {
        let Transition {
            state,
            attempts,
            parts,
            slots,
            error,
        } = to;
        sqlx::query(
            "INSERT INTO batch_states (run_id, provider, idx, state, attempts, parts, slots, \
             error, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (run_id, provider, idx) DO UPDATE SET state = excluded.state, \
             attempts = excluded.attempts, parts = COALESCE(excluded.parts, batch_states.parts), \
             slots = COALESCE(excluded.slots, batch_states.slots), error = excluded.error, \
             updated_ms = excluded.updated_ms",
        )
        .bind(&self.id)
        .bind(provider)
        .bind(batch as i64)
        .bind(state)
        .bind(i64::from(attempts))
        .bind(parts)
        .bind(slots)
        .bind(error)
        .bind(now_ms())
        .execute(&mut *conn)
        .await
        .map_err(|e| self.journal.error(e))?;
        Ok(())
    }
}

/// Whether two plans send the same batches.
fn same_batches(a: &Batches, b: &Batches) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|(a, b)| a.scope == b.scope && a.targets == b.targets)
}

/// What runs are compared by to follow each other's batches.
struct PlanKey<'a> {
    account: &'a str,
    options: &'a str,
}

/// The note on the rows of a batch following another run's.
fn follow_note(followed: &Followed) -> String {
    format!(
        "queued first in run {} (its request {}): purged once, with it",
        followed.run,
        followed.batch + 1
    )
}

impl RunJournal {
    /// A fresh plan: written with the run when the run is not written yet (one transaction),
    /// after taking the account's planning lock, so two runs planning on one account at once
    /// are serialized and the later one follows what the earlier one queued.
    async fn plan_fresh(
        &self,
        plan: &ProviderPlan,
        account: &str,
        request: &PurgeRequest,
        replan: &Replan<'_>,
        pending: Option<Pending>,
    ) -> Result<RunRecord> {
        let journal = &self.journal;
        let options = serde_json::to_string(request.options()).map_err(|e| journal.error(e))?;
        let key = PlanKey {
            account,
            options: &options,
        };
        let result: Result<RunRecord> = async {
            let mut tx = journal.pool().begin().await.map_err(|e| journal.error(e))?;
            // A write first: SQLite takes the database's write lock here, PostgreSQL the row's
            // lock, both until the commit.
            sqlx::query(
                "INSERT INTO plan_locks (account, planned_ms) VALUES ($1, $2) \
                 ON CONFLICT (account) DO UPDATE SET planned_ms = excluded.planned_ms",
            )
            .bind(format!("{}/{account}", plan.kind))
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(|e| journal.error(e))?;
            if let Some(pending) = &pending {
                journal
                    .write_run(&mut tx, self.run, &pending.request, &pending.providers)
                    .await?;
            }
            let found = self.queued_elsewhere(&mut tx, plan, &key, request).await?;
            let (groups, followed): (Vec<FollowGroup>, Vec<Followed>) = found.into_iter().unzip();
            let replanned = if groups.is_empty() {
                None
            } else {
                Some(replan(&groups)?)
            };
            let sent = replanned.as_ref().unwrap_or(plan);
            sqlx::query(
                "INSERT INTO run_plans (run_id, provider, kind, account, options_key, \
                 batch_count, plan) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&self.id)
            .bind(&plan.provider)
            .bind(&plan.kind)
            .bind(account)
            .bind(&options)
            .bind(sent.batches().len() as i64)
            .bind(codec::encode_plan(sent))
            .execute(&mut *tx)
            .await
            .map_err(|e| journal.error(e))?;
            // The groups are the new plan's last batches.
            let first = sent.batches().len() - followed.len();
            for (n, followed) in followed.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO batch_follows (run_id, provider, idx, followed_run, \
                     followed_provider, followed_idx, slots) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&self.id)
                .bind(&plan.provider)
                .bind((first + n) as i64)
                .bind(followed.run.to_string())
                .bind(&followed.provider)
                .bind(followed.batch as i64)
                .bind(codec::encode_u32s(&followed.slots))
                .execute(&mut *tx)
                .await
                .map_err(|e| journal.error(e))?;
            }
            tx.commit().await.map_err(|e| journal.error(e))?;
            let mut record = RunRecord {
                id: self.run,
                batches: vec![BatchRecord::Queued; sent.batches().len()],
                notes: vec![None; sent.batches().len()],
                plan: None,
            };
            let mut following = self.follows.lock().unwrap_or_else(|e| e.into_inner());
            for (n, followed) in followed.into_iter().enumerate() {
                record.batches[first + n] = BatchRecord::Follows;
                record.notes[first + n] = Some(follow_note(&followed));
                following.insert((plan.provider.clone(), first + n), followed);
            }
            record.plan = replanned;
            Ok(record)
        }
        .await;
        if let Some(pending) = pending {
            let written = match &result {
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            let _ = pending.done.send(Some(written));
        }
        result
    }

    /// A resumed plan: checked against the one written (with the same targets following the
    /// same batches), and where each batch stands. A batch following another run's and not
    /// settled follows it again (or, when that run stopped, is sent here).
    async fn plan_resumed(
        &self,
        plan: &ProviderPlan,
        replan: &Replan<'_>,
        stored: ProviderPlan,
        mut record: RunRecord,
    ) -> Result<RunRecord> {
        let journal = &self.journal;
        let rows = sqlx::query(
            "SELECT idx, followed_run, followed_provider, followed_idx, slots FROM batch_follows \
             WHERE run_id = $1 AND provider = $2 ORDER BY idx",
        )
        .bind(&self.id)
        .bind(&plan.provider)
        .fetch_all(journal.pool())
        .await
        .map_err(|e| journal.error(e))?;
        let mut groups = Vec::with_capacity(rows.len());
        let mut followed = Vec::with_capacity(rows.len());
        for row in rows {
            let index = get::<i64>(&row, 0)? as usize;
            let batch = stored
                .batches()
                .get(index)
                .ok_or_else(|| journal.error(format!("no batch {index} in the plan written")))?;
            groups.push(FollowGroup {
                scope: batch.scope.to_owned(),
                targets: batch.targets.to_vec(),
            });
            followed.push((
                index,
                Followed {
                    run: parse_run_id(&get::<String>(&row, 1)?)?,
                    provider: get(&row, 2)?,
                    batch: get::<i64>(&row, 3)? as usize,
                    slots: codec::decode_u32s(&get::<Vec<u8>>(&row, 4)?)?,
                },
            ));
        }
        let expected = if groups.is_empty() {
            None
        } else {
            Some(replan(&groups)?)
        };
        if !same_batches(
            stored.batches(),
            expected.as_ref().unwrap_or(plan).batches(),
        ) {
            return Err(Error::config(
                format!("providers.{}", plan.provider),
                format!(
                    "run {} was planned into other batches than this config plans now \
                     (its limits or mapping changed): resume it with the config it started \
                     with",
                    self.run
                ),
            ));
        }
        record.notes = vec![None; stored.batches().len()];
        let mut following = self.follows.lock().unwrap_or_else(|e| e.into_inner());
        for (index, followed) in followed {
            record.notes[index] = Some(follow_note(&followed));
            if !record.batches[index].is_sent() {
                record.batches[index] = BatchRecord::Follows;
                following.insert((plan.provider.clone(), index), followed);
            }
        }
        record.plan = expected;
        Ok(record)
    }
}

#[async_trait]
impl RunLog for RunJournal {
    async fn planned(
        &self,
        plan: &ProviderPlan,
        account: &str,
        request: &PurgeRequest,
        replan: &Replan<'_>,
    ) -> Result<RunRecord> {
        // A run started here and not written yet is new: written with this plan.
        if let Some(pending) = self.journal.take_pending(self.run) {
            return self
                .plan_fresh(plan, account, request, replan, Some(pending))
                .await;
        }
        // Nothing of this run is sent before it is durable.
        self.journal.written(self.run).await?;
        let targets = request.targets().len();
        match self.journal.load(self.run, &plan.provider, targets).await? {
            Some((stored, record)) => self.plan_resumed(plan, replan, stored, record).await,
            None => self.plan_fresh(plan, account, request, replan, None).await,
        }
    }

    async fn sending(&self, provider: &str, batch: usize, attempt: u32) -> Result<()> {
        let (told, written) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((provider.to_owned(), batch, attempt, told));
        // The writer writes what is waiting, this one's included unless an earlier writer
        // took it; either way it is durable once told.
        {
            let _writer = self.writer.lock().await;
            self.write_waiting().await;
        }
        match written.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(Error::Journal { message }),
            Err(_) => Err(self
                .journal
                .error("the write of a batch's `sending` was dropped")),
        }
    }

    async fn accepted(
        &self,
        provider: &str,
        batch: usize,
        parts: &[RecordedPart],
        slots: &[u32],
        attempts: u32,
    ) -> Result<()> {
        let parts = serde_json::to_string(parts).map_err(|e| self.journal.error(e))?;
        let slots = (!slots.is_empty()).then(|| codec::encode_u32s(slots));
        let to = Transition {
            parts: Some(parts),
            slots,
            ..Transition::to("accepted", attempts)
        };
        self.set(provider, batch, to).await
    }

    async fn failed(&self, provider: &str, batch: usize, error: &str, attempts: u32) -> Result<()> {
        let to = Transition {
            error: Some(error),
            ..Transition::to("failed", attempts)
        };
        self.set(provider, batch, to).await
    }

    async fn follow(&self, provider: &str, batch: usize) -> Result<BatchRecord> {
        let followed = self
            .follows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(provider.to_owned(), batch))
            .cloned();
        let Some(followed) = followed else {
            return Ok(BatchRecord::Queued);
        };
        loop {
            let record = self
                .journal
                .batch_record(followed.run, &followed.provider, followed.batch)
                .await?;
            match &record {
                BatchRecord::Accepted {
                    parts,
                    slots,
                    attempts,
                }
                | BatchRecord::Completed {
                    parts,
                    slots,
                    attempts,
                } => {
                    let slots = followed.map_slots(slots);
                    self.accepted(provider, batch, parts, &slots, *attempts)
                        .await?;
                    let done = matches!(record, BatchRecord::Completed { .. });
                    if done {
                        self.completed(provider, batch).await?;
                    }
                    let (parts, attempts) = (parts.clone(), *attempts);
                    return Ok(if done {
                        BatchRecord::Completed {
                            parts,
                            slots,
                            attempts,
                        }
                    } else {
                        BatchRecord::Accepted {
                            parts,
                            slots,
                            attempts,
                        }
                    });
                }
                BatchRecord::Failed { error, attempts } => {
                    self.failed(provider, batch, error, *attempts).await?;
                    return Ok(record);
                }
                _ if !self
                    .journal
                    .is_live(followed.run, &followed.provider)
                    .await? =>
                {
                    return Ok(BatchRecord::Queued);
                }
                _ => tokio::time::sleep(FOLLOW_POLL).await,
            }
        }
    }

    async fn completed(&self, provider: &str, batch: usize) -> Result<()> {
        sqlx::query(
            "UPDATE batch_states SET state = 'completed', updated_ms = $1 \
             WHERE run_id = $2 AND provider = $3 AND idx = $4",
        )
        .bind(now_ms())
        .bind(&self.id)
        .bind(provider)
        .bind(batch as i64)
        .execute(self.journal.pool())
        .await
        .map_err(|e| self.journal.error(e))?;
        Ok(())
    }
}
