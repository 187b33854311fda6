//! SQLite through rusqlite, each statement run inline on the calling thread.
//!
//! A statement on the embedded database takes microseconds. sqlx's SQLite driver runs every one
//! on a worker thread of its connection and sends the rows back, two thread switches per
//! statement (about 45 per sign-in); on a busy core each switch also evicts the password hash's
//! working set. Running them inline costs the calling async thread those microseconds instead.
//! Writers are serialised in process (the store's write lock), so the only wait inside SQLite
//! is for a writer in another process (`busy_timeout`).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::Param;
use super::row::{Cell, Row};

/// Idle connections kept for reuse; more are opened while needed (one per concurrent statement
/// or open transaction).
const KEEP_IDLE: usize = 16;

pub(crate) struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    /// Opens (creating) the database file in WAL mode.
    pub(crate) fn open(url: &str) -> anyhow::Result<Arc<Pool>> {
        let path = file_of(url)?;
        let pool = Arc::new(Pool {
            path,
            idle: Mutex::new(Vec::new()),
        });
        let conn = pool.connect(true)?;
        // A property of the file, kept across opens.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        pool.put_back(conn);
        Ok(pool)
    }

    fn connect(&self, create: bool) -> Result<Connection, rusqlite::Error> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(&self.path, flags)?;
        // synchronous=NORMAL is durable in WAL mode; wait for other processes' writers.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(128);
        Ok(conn)
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // Pushes and pops are atomic: the list is consistent even after a panic elsewhere.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn acquire(self: &Arc<Self>) -> Result<Conn, sqlx::Error> {
        let idle = self.idle().pop();
        let conn = match idle {
            Some(c) => c,
            None => self.connect(false).map_err(failure)?,
        };
        Ok(Conn {
            conn: Some(conn),
            pool: self.clone(),
            in_tx: false,
        })
    }

    fn put_back(&self, conn: Connection) {
        let mut idle = self.idle();
        if idle.len() < KEEP_IDLE {
            idle.push(conn);
        }
    }

    pub(crate) fn close(&self) {
        self.idle().clear();
    }
}

/// `sqlite://path`, `sqlite:path` or `sqlite://path?mode=rwc` (the query is ignored: the file
/// is always created if missing).
pub(super) fn file_of(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| anyhow::anyhow!("an SQLite URL starts with sqlite://"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() {
        anyhow::bail!("the SQLite URL names no file");
    }
    Ok(PathBuf::from(path))
}

/// One connection, lent out until dropped; a transaction still open then is rolled back.
pub(crate) struct Conn {
    conn: Option<Connection>,
    pool: Arc<Pool>,
    in_tx: bool,
}

impl Conn {
    fn conn(&self) -> Result<&Connection, sqlx::Error> {
        self.conn.as_ref().ok_or(sqlx::Error::PoolClosed)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, sqlx::Error> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(sql).map_err(failure)?;
        bind(&mut stmt, params)?;
        Ok(stmt.raw_execute().map_err(failure)? as u64)
    }

    pub(crate) fn fetch_all(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<Row>, sqlx::Error> {
        self.fetch(sql, params, usize::MAX)
    }

    pub(crate) fn fetch_optional(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Option<Row>, sqlx::Error> {
        Ok(self.fetch(sql, params, 1)?.into_iter().next())
    }

    fn fetch(
        &mut self,
        sql: &str,
        params: &[Param],
        limit: usize,
    ) -> Result<Vec<Row>, sqlx::Error> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(sql).map_err(failure)?;
        bind(&mut stmt, params)?;
        let names: Arc<[String]> = stmt.column_names().iter().map(|n| n.to_string()).collect();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(r) = rows.next().map_err(failure)? else {
                break;
            };
            let mut cells = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                cells.push(match r.get_ref(i).map_err(failure)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(n) => Cell::Int(n),
                    ValueRef::Real(n) => Cell::Real(n),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Cell::Text(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            out.push(Row::new(names.clone(), cells));
        }
        Ok(out)
    }

    /// Statements without parameters (transaction control, schema changes).
    pub(crate) fn execute_raw(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        self.conn()?.execute_batch(sql).map_err(failure)
    }

    /// BEGIN IMMEDIATE takes the write lock now, so that a transaction that reads and then
    /// writes never fails on a stale snapshot.
    pub(crate) fn begin(&mut self) -> Result<(), sqlx::Error> {
        self.execute_raw("BEGIN IMMEDIATE")?;
        self.in_tx = true;
        Ok(())
    }

    pub(crate) fn commit(&mut self) -> Result<(), sqlx::Error> {
        self.execute_raw("COMMIT")?;
        self.in_tx = false;
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.in_tx && conn.execute_batch("ROLLBACK").is_err() {
            // Closing it rolls back.
            return;
        }
        self.pool.put_back(conn);
    }
}

fn bind(stmt: &mut rusqlite::Statement<'_>, params: &[Param]) -> Result<(), sqlx::Error> {
    // Parameters are written `$1`, `$2`, … (shared with PostgreSQL); SQLite numbers named
    // parameters by first appearance, so bind each by its name.
    let mut name = String::with_capacity(4);
    for (i, p) in params.iter().enumerate() {
        name.clear();
        name.push('$');
        name.push_str(&(i + 1).to_string());
        let Some(idx) = stmt.parameter_index(&name).map_err(failure)? else {
            continue;
        };
        match p {
            Param::Str(s) => stmt.raw_bind_parameter(idx, s),
            Param::Num(n) => stmt.raw_bind_parameter(idx, n),
            Param::Int(n) => stmt.raw_bind_parameter(idx, n),
            Param::Null => stmt.raw_bind_parameter(idx, rusqlite::types::Null),
        }
        .map_err(failure)?;
    }
    Ok(())
}

/// An SQLite failure, as the store's (sqlx) error type: uniqueness shows as a unique violation.
#[derive(Debug)]
struct Failure {
    message: String,
    unique: bool,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl sqlx::error::DatabaseError for Failure {
    fn message(&self) -> &str {
        &self.message
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        None
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        if self.unique {
            sqlx::error::ErrorKind::UniqueViolation
        } else {
            sqlx::error::ErrorKind::Other
        }
    }
}

fn failure(e: rusqlite::Error) -> sqlx::Error {
    let unique = matches!(
        &e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    );
    sqlx::Error::Database(Box::new(Failure {
        message: e.to_string(),
        unique,
    }))
}
