//! Statements over many rows: a multi-row `INSERT` ([`Insert`]) and an `IN` list
//! ([`list`]), so that a group of submissions is a handful of statements — a handful of round
//! trips to PostgreSQL, of hops to sqlx's SQLite thread — rather than several per submission.
//!
//! Written here rather than with sqlx's `QueryBuilder` because, through the Any driver, that
//! writes `?` placeholders, which PostgreSQL does not take; `$n` works on both backends.

use std::fmt::Write as _;

use sqlx::AnyConnection;
use sqlx::any::{AnyQueryResult, AnyRow};

/// Values bound in one statement at most: under SQLite's limit (32,766) and PostgreSQL's
/// (65,535).
const MAX_BINDS: usize = 30_000;

/// Bytes of values in one statement, past which [`Insert::is_full`] says to send it: a large
/// row (a chunk of target texts, up to 4 MiB) goes alone, as it is made, so a large request is
/// never held twice.
const MAX_BYTES: usize = 1 << 20;

/// One value to bind.
pub(crate) enum Value {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Self {
        Value::Bytes(bytes)
    }
}

impl Value {
    fn len(&self) -> usize {
        match self {
            Value::Text(text) => text.len(),
            Value::Int(_) => 8,
            Value::Bytes(bytes) => bytes.len(),
        }
    }
}

/// `$first, $first+1, …` for `count` values: an `IN (…)` list or a row's placeholders.
pub(crate) fn list(first: usize, count: usize) -> String {
    let mut out = String::with_capacity(count * 5);
    for n in first..first + count {
        if n > first {
            out.push_str(", ");
        }
        let _ = write!(out, "${n}");
    }
    out
}

/// `INSERT INTO table (columns) VALUES (…), (…) tail`, built row by row; sent with
/// [`Insert::execute`] (or [`Insert::fetch_all`] for a `RETURNING` tail), after which it is
/// empty again, ready for the next rows.
pub(crate) struct Insert {
    /// `INSERT INTO table (a, b, …) VALUES`.
    head: &'static str,
    /// After the rows: `ON CONFLICT …`, `RETURNING …`, or nothing.
    tail: &'static str,
    columns: usize,
    values: Vec<Value>,
    bytes: usize,
}

impl Insert {
    /// An insert of rows of `columns` values into what `head` names.
    pub(crate) fn new(head: &'static str, columns: usize, tail: &'static str) -> Self {
        Insert {
            head,
            tail,
            columns,
            values: Vec::new(),
            bytes: 0,
        }
    }

    /// Adds a row: one value per column.
    pub(crate) fn row<const N: usize>(&mut self, row: [Value; N]) {
        assert_eq!(N, self.columns, "a row of {} holds {N} values", self.head);
        self.bytes += row.iter().map(Value::len).sum::<usize>();
        self.values.extend(row);
    }

    /// Rows added and not yet sent.
    pub(crate) fn rows(&self) -> usize {
        self.values.len() / self.columns
    }

    /// Whether the rows held are as many (or as large) as one statement should carry: send
    /// them before adding more.
    pub(crate) fn is_full(&self) -> bool {
        self.values.len() + self.columns > MAX_BINDS || self.bytes >= MAX_BYTES
    }

    fn sql(&self) -> String {
        let rows = self.rows();
        let mut sql = String::with_capacity(self.head.len() + rows * self.columns * 5);
        sql.push_str(self.head);
        for row in 0..rows {
            sql.push_str(if row == 0 { " (" } else { ", (" });
            sql.push_str(&list(1 + row * self.columns, self.columns));
            sql.push(')');
        }
        if !self.tail.is_empty() {
            sql.push(' ');
            sql.push_str(self.tail);
        }
        sql
    }

    /// Sends the rows held (none: nothing is sent) on `conn`.
    pub(crate) async fn execute(&mut self, conn: &mut AnyConnection) -> sqlx::Result<u64> {
        if self.values.is_empty() {
            return Ok(0);
        }
        let sql = self.sql();
        let done: AnyQueryResult = bind(&sql, self.take()).execute(conn).await?;
        Ok(done.rows_affected())
    }

    /// Sends the rows held (none: nothing is sent) on `conn`, returning what the `RETURNING`
    /// tail returns.
    pub(crate) async fn fetch_all(
        &mut self,
        conn: &mut AnyConnection,
    ) -> sqlx::Result<Vec<AnyRow>> {
        if self.values.is_empty() {
            return Ok(Vec::new());
        }
        let sql = self.sql();
        bind(&sql, self.take()).fetch_all(conn).await
    }

    fn take(&mut self) -> Vec<Value> {
        self.bytes = 0;
        std::mem::take(&mut self.values)
    }
}

/// `sql` with `values` bound in order.
pub(crate) fn bind(
    sql: &str,
    values: Vec<Value>,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    values
        .into_iter()
        .fold(sqlx::query(sql), |query, value| match value {
            Value::Text(text) => query.bind(text),
            Value::Int(n) => query.bind(n),
            Value::Bytes(bytes) => query.bind(bytes),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_numbered_in_order() {
        let mut insert = Insert::new("INSERT INTO t (a, b) VALUES", 2, "ON CONFLICT DO NOTHING");
        insert.row(["x".into(), 1.into()]);
        insert.row(["y".into(), 2.into()]);
        assert_eq!(insert.rows(), 2);
        assert_eq!(
            insert.sql(),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
        assert_eq!(list(3, 3), "$3, $4, $5");
    }

    #[test]
    fn a_statement_is_full_before_the_bind_limit_or_at_the_byte_limit() {
        let mut insert = Insert::new("INSERT INTO t (a) VALUES", 1, "");
        for n in 0..MAX_BINDS - 1 {
            insert.row([(n as i64).into()]);
        }
        assert!(!insert.is_full());
        insert.row([0.into()]);
        assert!(insert.is_full());
        insert.take();
        insert.row([vec![0u8; MAX_BYTES].into()]);
        assert!(insert.is_full());
    }
}
