//! A submitted run's units of work (`run_units`): one per provider — "this run's work on this
//! provider account" — each leased on its own by a service's worker, so a worker moves between
//! accounts instead of one slow account holding every worker (docs/service.md).
//!
//! A unit is written with its run by [`Journal::submit`] (`queued`: never taken), taken by
//! [`Journal::next_unit`] (`running`, held by a renewed lease; a lease that runs out lets
//! another worker take it), and ended by [`Journal::finish_unit`] (`finished` once every batch
//! of its provider is settled) or [`Journal::give_up_unit`]. A run with units is finished when
//! its last unit is. Runs started by `purgekit purge` have no units: their process drives them
//! whole under the run's own lease ([`Journal::claim`] takes every unit of a run with units).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use purgekit_core::{PurgeRequest, Result, RunId};
use sqlx::AnyConnection;

use crate::bulk::Insert;
use crate::journal::{Backend, Journal, LEASE, NewRun, get, now_ms, parse_run_id};

/// One provider's work in a run, taken by this process ([`Journal::next_unit`]).
#[derive(Debug, Clone)]
pub struct Unit {
    /// The run.
    pub run: RunId,
    /// The provider (its configured name).
    pub provider: String,
    /// Its account (`kind/account`), as rate limits key it.
    pub account: String,
    /// The run's request, as journaled.
    pub request: PurgeRequest,
}

/// A provider a run is submitted to ([`Journal::submit`]): its configured name, and its
/// account (`kind/account`, as rate limits key it), which the run's unit on it is taken by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAccount {
    /// The provider's configured name.
    pub provider: String,
    /// Its account, `kind/account` ([`purgekit_core::ProviderInfo::account`]).
    pub account: String,
}

impl From<&purgekit_core::ProviderInfo> for ProviderAccount {
    fn from(info: &purgekit_core::ProviderInfo) -> Self {
        ProviderAccount {
            provider: info.name.clone(),
            account: info.account.clone(),
        }
    }
}

/// Queued work on one account: units nobody holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Runs with work waiting for a worker on the account.
    pub runs: i64,
    /// When the oldest of them was submitted, in milliseconds since the Unix epoch.
    pub oldest_ms: Option<i64>,
}

/// The fairness rule: an instance of `workers` workers holds at most
/// `ceil(workers / accounts)` units of one account while `accounts` accounts have work (units
/// free, or held by the instance), so one slow account cannot take every worker.
pub fn fair_share(workers: usize, accounts: usize) -> usize {
    workers.div_ceil(accounts.max(1)).max(1)
}

impl Journal {
    /// Writes the units of `runs` (one per provider of a submitted run), queued since
    /// `now`, on `conn` (inside the runs' transaction).
    pub(crate) async fn insert_units(
        &self,
        conn: &mut AnyConnection,
        runs: &[NewRun<'_>],
        now: i64,
    ) -> Result<()> {
        let mut units = Insert::new(
            "INSERT INTO run_units (run_id, provider, account, state, owner, lease_until_ms, \
             failures, queued_ms, updated_ms) VALUES",
            9,
            "",
        );
        for run in runs {
            let id = run.id.to_string();
            for unit in run.units {
                units.row([
                    id.as_str().into(),
                    unit.provider.as_str().into(),
                    unit.account.as_str().into(),
                    "queued".into(),
                    "".into(),
                    0.into(),
                    0.into(),
                    now.into(),
                    now.into(),
                ]);
                if units.is_full() {
                    units.execute(&mut *conn).await.map_err(|e| self.error(e))?;
                }
            }
        }
        units.execute(&mut *conn).await.map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Takes the oldest free unit (queued, or its lease run out) for this process, by the
    /// fairness rule ([`fair_share`]): `busy` is how many units of each account this
    /// instance's `workers` workers hold; among the accounts under their share, the least busy
    /// first, then the one whose free unit is oldest. `None` when there is none to take.
    pub async fn next_unit(
        &self,
        busy: &HashMap<String, usize>,
        workers: usize,
    ) -> Result<Option<Unit>> {
        let now = now_ms();
        // The accounts with free units, and since when the oldest of each waits.
        let mut free: Vec<(String, i64)> = self
            .queue_depth()
            .await?
            .into_iter()
            .map(|(account, depth)| (account, depth.oldest_ms.unwrap_or(now)))
            .collect();
        let held = |account: &str| busy.get(account).copied().unwrap_or(0);
        let with_work: HashSet<&str> = free
            .iter()
            .map(|(a, _)| a.as_str())
            .chain(
                busy.iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(a, _)| a.as_str()),
            )
            .collect();
        let share = fair_share(workers, with_work.len());
        free.retain(|(account, _)| held(account) < share);
        free.sort_by_key(|(account, oldest)| (held(account), *oldest));
        for (account, _) in free {
            if let Some((run, provider)) = self.take_unit(&account, now).await? {
                let (request, _) = self.request(run).await?;
                return Ok(Some(Unit {
                    run,
                    provider,
                    account,
                    request,
                }));
            }
        }
        Ok(None)
    }

    /// Takes the oldest free unit of `account` in one statement (on PostgreSQL its row locked
    /// with `FOR UPDATE SKIP LOCKED`, so workers of other instances skip it), or `None`.
    async fn take_unit(&self, account: &str, now: i64) -> Result<Option<(RunId, String)>> {
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE run_units SET owner = $1, lease_until_ms = $2, state = 'running', \
             updated_ms = $3 WHERE state IN ('queued', 'running') AND lease_until_ms < $3 \
             AND (run_id, provider) = (SELECT run_id, provider FROM run_units \
             WHERE account = $4 AND state IN ('queued', 'running') AND lease_until_ms < $3 \
             ORDER BY queued_ms LIMIT 1{lock}) RETURNING run_id, provider"
        );
        let row = sqlx::query(&sql)
            .bind(self.owner())
            .bind(now + LEASE.as_millis() as i64)
            .bind(now)
            .bind(account)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        row.map(|row| Ok((parse_run_id(&get::<String>(&row, 0)?)?, get(&row, 1)?)))
            .transpose()
    }

    /// Keeps this process's hold on run `run`'s unit on `provider` for another [`LEASE`].
    pub async fn renew_unit(&self, run: RunId, provider: &str) -> Result<()> {
        sqlx::query(
            "UPDATE run_units SET lease_until_ms = $1 \
             WHERE run_id = $2 AND provider = $3 AND owner = $4",
        )
        .bind(now_ms() + LEASE.as_millis() as i64)
        .bind(run.to_string())
        .bind(provider)
        .bind(self.owner())
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Ends this process's hold on run `run`'s unit on `provider`: finished when every batch
    /// of the provider is settled (and the run with it when it was its last unit), else given
    /// back as it is (lease released at once). Returns whether the unit is finished.
    pub async fn finish_unit(&self, run: RunId, provider: &str) -> Result<bool> {
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        self.lock_run(&mut tx, run).await?;
        let settled = self.unit_settled(&mut tx, run, provider).await?;
        sqlx::query(
            "UPDATE run_units SET state = $1, owner = '', lease_until_ms = 0, updated_ms = $2 \
             WHERE run_id = $3 AND provider = $4 AND owner = $5 AND state = 'running'",
        )
        .bind(if settled { "finished" } else { "running" })
        .bind(now_ms())
        .bind(run.to_string())
        .bind(provider)
        .bind(self.owner())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        self.finish_if_done(&mut tx, run).await?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(settled)
    }

    /// A write to run `run`'s row first in a transaction: the ends of its units are serialized
    /// (SQLite: the write lock; PostgreSQL: the row's), so the last one sees every other.
    async fn lock_run(&self, conn: &mut AnyConnection, run: RunId) -> Result<()> {
        sqlx::query("UPDATE runs SET updated_ms = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(run.to_string())
            .execute(&mut *conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Whether provider `provider` of run `run` is planned and every batch of it settled.
    async fn unit_settled(
        &self,
        conn: &mut AnyConnection,
        run: RunId,
        provider: &str,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT p.batch_count, (SELECT COUNT(*) FROM batch_states b WHERE b.run_id = \
             p.run_id AND b.provider = p.provider AND b.state <> 'sending') \
             FROM run_plans p WHERE p.run_id = $1 AND p.provider = $2",
        )
        .bind(run.to_string())
        .bind(provider)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| self.error(e))?;
        match row {
            Some(row) => Ok(get::<i64>(&row, 0)? == get::<i64>(&row, 1)?),
            None => Ok(false),
        }
    }

    /// Marks run `run` finished if it has units and every one is finished.
    async fn finish_if_done(&self, conn: &mut AnyConnection, run: RunId) -> Result<()> {
        sqlx::query(
            "UPDATE runs SET state = 'finished', updated_ms = $1 WHERE id = $2 \
             AND state = 'running' AND EXISTS (SELECT 1 FROM run_units WHERE run_id = $2) \
             AND NOT EXISTS (SELECT 1 FROM run_units WHERE run_id = $2 AND state <> 'finished')",
        )
        .bind(now_ms())
        .bind(run.to_string())
        .execute(&mut *conn)
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The failed attempts at run `run`'s unit on `provider` recorded by
    /// [`Journal::give_back_unit`].
    pub async fn unit_failures(&self, run: RunId, provider: &str) -> Result<u32> {
        let row = sqlx::query("SELECT failures FROM run_units WHERE run_id = $1 AND provider = $2")
            .bind(run.to_string())
            .bind(provider)
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        Ok(get::<i64>(&row, 0)? as u32)
    }

    /// Gives run `run`'s unit on `provider`, whose attempt here failed, back: `failures` failed
    /// attempts recorded, held by nobody, taken by no worker for `after`. Only while this
    /// process holds it (or held it last); returns whether it did.
    pub async fn give_back_unit(
        &self,
        run: RunId,
        provider: &str,
        failures: u32,
        after: Duration,
    ) -> Result<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE run_units SET failures = $1, owner = '', lease_until_ms = $2, updated_ms = $3 \
             WHERE run_id = $4 AND provider = $5 AND owner = $6 AND state = 'running'",
        )
        .bind(i64::from(failures))
        .bind(now + after.as_millis() as i64)
        .bind(now)
        .bind(run.to_string())
        .bind(provider)
        .bind(self.owner())
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up on run `run`'s unit on `provider` for good, with `error`, in one transaction:
    /// every batch of the provider not settled is failed with it (never planned: its report
    /// rows are, [`Journal::report`]), the unit is finished, and the run too when it was its
    /// last unit. Only while this process holds it (or held it last); returns whether it did.
    pub async fn give_up_unit(&self, run: RunId, provider: &str, error: &str) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        self.lock_run(&mut tx, run).await?;
        let ours = sqlx::query(
            "UPDATE run_units SET state = 'finished', error = $1, owner = '', lease_until_ms = 0, \
             updated_ms = $2 WHERE run_id = $3 AND provider = $4 AND owner = $5 \
             AND state = 'running'",
        )
        .bind(error)
        .bind(now)
        .bind(run.to_string())
        .bind(provider)
        .bind(self.owner())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        if ours.rows_affected() == 0 {
            return Ok(false);
        }
        let count =
            sqlx::query("SELECT batch_count FROM run_plans WHERE run_id = $1 AND provider = $2")
                .bind(run.to_string())
                .bind(provider)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.error(e))?;
        if let Some(count) = count {
            let count = get::<i64>(&count, 0)?;
            self.fail_unsettled(&mut tx, run, provider, count, error, now)
                .await?;
        }
        self.finish_if_done(&mut tx, run).await?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(true)
    }

    /// Why each unit of run `run` given up on was ([`Journal::give_up_unit`]), by provider.
    pub(crate) async fn units_given_up(&self, run: RunId) -> Result<HashMap<String, String>> {
        sqlx::query("SELECT provider, error FROM run_units WHERE run_id = $1 AND error IS NOT NULL")
            .bind(run.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.error(e))?
            .iter()
            .map(|row| Ok((get(row, 0)?, get(row, 1)?)))
            .collect()
    }

    /// Run `run`'s unfinished units: (provider, owner, lease until).
    pub(crate) async fn open_units(&self, run: RunId) -> Result<Vec<(String, String, i64)>> {
        sqlx::query(
            "SELECT provider, owner, lease_until_ms FROM run_units \
             WHERE run_id = $1 AND state <> 'finished'",
        )
        .bind(run.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .iter()
        .map(|row| Ok((get(row, 0)?, get(row, 1)?, get(row, 2)?)))
        .collect()
    }

    /// Takes each of `units` (run `run`'s unfinished ones, as [`Journal::open_units`] read
    /// them) for this process, until `lease`: each only if unchanged since. Returns whether it
    /// took them all; when not, gives back those it took.
    pub(crate) async fn take_units(
        &self,
        run: RunId,
        units: &[(String, String, i64)],
        lease: i64,
    ) -> Result<bool> {
        let mut taken = true;
        for (provider, owner, until) in units {
            let done = sqlx::query(
                "UPDATE run_units SET owner = $1, lease_until_ms = $2, state = 'running', \
                 updated_ms = $3 WHERE run_id = $4 AND provider = $5 AND owner = $6 \
                 AND lease_until_ms = $7 AND state <> 'finished'",
            )
            .bind(self.owner())
            .bind(lease)
            .bind(now_ms())
            .bind(run.to_string())
            .bind(provider)
            .bind(owner)
            .bind(until)
            .execute(self.pool())
            .await
            .map_err(|e| self.error(e))?;
            if done.rows_affected() == 0 {
                taken = false;
                break;
            }
        }
        if !taken {
            self.release_units(run).await?;
        }
        Ok(taken)
    }

    /// Ends this process's hold on every unit of run `run` it holds ([`Journal::finish_unit`]
    /// each).
    pub(crate) async fn finish_units(&self, run: RunId) -> Result<()> {
        for provider in self.held_units(run).await? {
            self.finish_unit(run, &provider).await?;
        }
        Ok(())
    }

    /// Gives back every unit of run `run` this process holds, as they are.
    async fn release_units(&self, run: RunId) -> Result<()> {
        sqlx::query(
            "UPDATE run_units SET owner = '', lease_until_ms = 0 WHERE run_id = $1 AND owner = $2",
        )
        .bind(run.to_string())
        .bind(self.owner())
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The providers of run `run` whose unit this process holds.
    async fn held_units(&self, run: RunId) -> Result<Vec<String>> {
        sqlx::query("SELECT provider FROM run_units WHERE run_id = $1 AND owner = $2")
            .bind(run.to_string())
            .bind(self.owner())
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.error(e))?
            .iter()
            .map(|row| get(row, 0))
            .collect()
    }

    /// Queued work (units nobody holds, their lease run out) by account.
    pub async fn queue_depth(&self) -> Result<BTreeMap<String, QueueDepth>> {
        let rows = sqlx::query(
            "SELECT account, COUNT(DISTINCT run_id), MIN(queued_ms) FROM run_units \
             WHERE state IN ('queued', 'running') AND lease_until_ms < $1 GROUP BY account",
        )
        .bind(now_ms())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        rows.iter()
            .map(|row| {
                Ok((
                    get(row, 0)?,
                    QueueDepth {
                        runs: get(row, 1)?,
                        oldest_ms: Some(get(row, 2)?),
                    },
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_gets_its_share_of_the_workers() {
        assert_eq!(fair_share(4, 2), 2);
        assert_eq!(fair_share(4, 3), 2);
        assert_eq!(fair_share(2, 2), 1);
        assert_eq!(fair_share(2, 5), 1);
        assert_eq!(fair_share(4, 1), 4);
        assert_eq!(fair_share(3, 0), 3);
    }
}
