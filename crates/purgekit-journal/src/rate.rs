//! The journal as a [`RateStore`]: each account's rate schedule in `rate_states`, claimed in
//! one transaction per request start, so every process using the journal shares it.

use async_trait::async_trait;
use purgekit_core::{RateState, RateStore, Result};

use crate::Journal;
use crate::journal::{Backend, get, now_ms};

#[async_trait]
impl RateStore for Journal {
    async fn update(
        &self,
        account: &str,
        update: &mut (dyn for<'s> FnMut(&'s mut RateState) + Send),
    ) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        // A write first: SQLite takes the database's write lock here, so no other process
        // reads the schedule until this one commits; PostgreSQL locks the row below.
        sqlx::query(
            "INSERT INTO rate_states (account, state, updated_ms) VALUES ($1, '{}', $2) \
             ON CONFLICT (account) DO NOTHING",
        )
        .bind(account)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        let select = match self.backend() {
            Backend::Postgres => "SELECT state FROM rate_states WHERE account = $1 FOR UPDATE",
            Backend::Sqlite => "SELECT state FROM rate_states WHERE account = $1",
        };
        let row = sqlx::query(select)
            .bind(account)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        let text: String = get(&row, 0)?;
        let mut state: RateState = serde_json::from_str(&text).map_err(|e| self.error(e))?;
        update(&mut state);
        sqlx::query("UPDATE rate_states SET state = $1, updated_ms = $2 WHERE account = $3")
            .bind(serde_json::to_string(&state).map_err(|e| self.error(e))?)
            .bind(now_ms())
            .bind(account)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(())
    }
}
