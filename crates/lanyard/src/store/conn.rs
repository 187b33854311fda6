//! A connection of either backend behind one statement API: SQLite inline through rusqlite,
//! PostgreSQL through sqlx. SQL text and `$n` parameters are shared; `Dialect` covers the rest.

use std::sync::Arc;

use super::row::Row;
use super::{Dialect, Param, pg, sqlite};

#[derive(Clone)]
pub(crate) enum Connections {
    Sqlite(Arc<sqlite::Pool>),
    Postgres(pg::Connections),
}

impl Connections {
    pub(crate) async fn open(url: &str, dialect: Dialect) -> anyhow::Result<Connections> {
        Ok(match dialect {
            Dialect::Sqlite => Connections::Sqlite(sqlite::Pool::open(url)?),
            Dialect::Postgres => Connections::Postgres(pg::Connections::open(url, 16).await?),
        })
    }

    pub(crate) async fn acquire(&self) -> Result<Conn, sqlx::Error> {
        Ok(match self {
            Connections::Sqlite(p) => Conn::Sqlite(p.acquire()?),
            Connections::Postgres(p) => Conn::Postgres(p.acquire().await?),
        })
    }

    pub(crate) async fn close(&self) {
        match self {
            Connections::Sqlite(p) => p.close(),
            Connections::Postgres(p) => p.close().await,
        }
    }
}

pub(crate) enum Conn {
    Sqlite(sqlite::Conn),
    Postgres(pg::Conn),
}

impl Conn {
    pub(crate) async fn execute(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<u64, sqlx::Error> {
        match self {
            Conn::Sqlite(c) => c.execute(sql, params),
            Conn::Postgres(c) => c.execute(sql, params).await,
        }
    }

    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Option<Row>, sqlx::Error> {
        match self {
            Conn::Sqlite(c) => c.fetch_optional(sql, params),
            Conn::Postgres(c) => c.fetch_optional(sql, params).await,
        }
    }

    pub(crate) async fn fetch_all(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<Row>, sqlx::Error> {
        match self {
            Conn::Sqlite(c) => c.fetch_all(sql, params),
            Conn::Postgres(c) => c.fetch_all(sql, params).await,
        }
    }

    /// A read that may scan many rows (lists, counts).
    pub(crate) async fn fetch_scan(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<Row>, sqlx::Error> {
        match self {
            Conn::Sqlite(c) => off_runtime(|| c.fetch_all(sql, params)),
            Conn::Postgres(c) => c.fetch_all(sql, params).await,
        }
    }

    /// A write that may touch many rows (deleting an environment, sweeping expired items).
    pub(crate) async fn execute_bulk(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<u64, sqlx::Error> {
        match self {
            Conn::Sqlite(c) => off_runtime(|| c.execute(sql, params)),
            Conn::Postgres(c) => c.execute(sql, params).await,
        }
    }

    /// Statements without parameters (transaction control, schema changes).
    pub(crate) async fn execute_raw(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Conn::Sqlite(c) => off_runtime(|| c.execute_raw(sql)),
            Conn::Postgres(c) => c.execute_raw(sql).await,
        }
    }

    pub(crate) async fn begin(&mut self) -> Result<(), sqlx::Error> {
        match self {
            Conn::Sqlite(c) => c.begin(),
            Conn::Postgres(c) => c.begin().await,
        }
    }

    pub(crate) async fn commit(&mut self) -> Result<(), sqlx::Error> {
        match self {
            Conn::Sqlite(c) => c.commit(),
            Conn::Postgres(c) => c.commit().await,
        }
    }
}

/// Runs an SQLite statement that may take long (a scan, a bulk write) without stalling the other
/// tasks of this async thread: on the multi-threaded runtime they move to another thread
/// meanwhile. Point reads and writes (microseconds) run inline.
fn off_runtime<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
