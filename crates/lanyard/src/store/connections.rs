//! The store's own small pool of sqlx connections.
//!
//! sqlx's pool tests every connection when it is handed back (`ping`): one more round trip per
//! statement, a hop to SQLite's worker thread or a network round trip to PostgreSQL, which
//! doubled the database cost of a sign-in. This pool hands a connection back as it is, and
//! instead never reuses one whose operation did not finish: a request dropped mid-statement
//! discards its connection, and a transaction dropped without commit is rolled back (on a task,
//! holding SQLite's write lock until it is done) before its connection is reused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyConnectOptions, AnyRow};
use sqlx::{AnyConnection, Connection};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use super::Dialect;

/// How long a request waits for a free connection before failing (sqlx's default too).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub(crate) struct Connections {
    inner: Arc<Inner>,
}

struct Inner {
    options: AnyConnectOptions,
    dialect: Dialect,
    /// Most recently used last: the next request takes the warmest connection.
    idle: std::sync::Mutex<Vec<AnyConnection>>,
    slots: Arc<Semaphore>,
    closed: AtomicBool,
}

impl Inner {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<AnyConnection>> {
        // The list stays consistent even if a holder panicked: pushes and pops are atomic.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put_back(&self, conn: AnyConnection) {
        if !self.closed.load(Ordering::Acquire) {
            self.idle().push(conn);
        }
    }
}

impl Connections {
    pub(crate) async fn open(url: &str, dialect: Dialect, max: usize) -> anyhow::Result<Self> {
        let options: AnyConnectOptions = url.parse()?;
        let pool = Connections {
            inner: Arc::new(Inner {
                options,
                dialect,
                idle: std::sync::Mutex::new(Vec::new()),
                slots: Arc::new(Semaphore::new(max)),
                closed: AtomicBool::new(false),
            }),
        };
        // Fail at start, not on the first request, when the database cannot be opened.
        pool.acquire().await?;
        Ok(pool)
    }

    pub(crate) async fn acquire(&self) -> Result<Conn, sqlx::Error> {
        let slot = tokio::time::timeout(ACQUIRE_TIMEOUT, self.inner.slots.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let idle = self.inner.idle().pop();
        let conn = match idle {
            Some(c) => c,
            None => self.connect().await?,
        };
        Ok(Conn {
            conn: Some(conn),
            inner: self.inner.clone(),
            slot: Some(slot),
            clean: true,
            in_tx: false,
            write_guard: None,
        })
    }

    async fn connect(&self) -> Result<AnyConnection, sqlx::Error> {
        let mut conn = AnyConnection::connect_with(&self.inner.options).await?;
        if self.inner.dialect == Dialect::Sqlite {
            // synchronous=NORMAL is durable in WAL mode; wait for other processes' writers.
            let pragmas = sqlx::raw_sql("PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000");
            sqlx::Executor::execute(&mut conn, pragmas).await?;
        }
        Ok(conn)
    }

    /// Closes the idle connections; those in use close when they are handed back.
    pub(crate) async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.slots.close();
        let idle: Vec<AnyConnection> = std::mem::take(&mut *self.inner.idle());
        for c in idle {
            let _ = c.close().await;
        }
    }
}

/// One connection, lent out until dropped.
pub(crate) struct Conn {
    conn: Option<AnyConnection>,
    inner: Arc<Inner>,
    slot: Option<OwnedSemaphorePermit>,
    /// False while an operation is in flight, and after one failed other than in the database.
    clean: bool,
    in_tx: bool,
    /// SQLite's in-process writer lock, held until the transaction ends (rollback included).
    write_guard: Option<OwnedMutexGuard<()>>,
}

impl Conn {
    /// The connection for one operation; it counts as unfit for reuse until `settle`.
    fn start(&mut self) -> Result<&mut AnyConnection, sqlx::Error> {
        self.clean = false;
        self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    fn settle<T>(&mut self, r: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        // A database error (a constraint, a serialisation failure) leaves the connection usable;
        // anything else (I/O, protocol, decoding mid-stream) may not.
        self.clean = match &r {
            Ok(_) => true,
            Err(e) => matches!(e, sqlx::Error::Database(_)),
        };
        r
    }

    pub(crate) async fn execute(
        &mut self,
        sql: &str,
        args: AnyArguments<'static>,
    ) -> Result<u64, sqlx::Error> {
        let c = self.start()?;
        let r = sqlx::query_with(sql, args).execute(c).await;
        self.settle(r.map(|d| d.rows_affected()))
    }

    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &str,
        args: AnyArguments<'static>,
    ) -> Result<Option<AnyRow>, sqlx::Error> {
        let c = self.start()?;
        let r = sqlx::query_with(sql, args).fetch_optional(c).await;
        self.settle(r)
    }

    pub(crate) async fn fetch_one(
        &mut self,
        sql: &str,
        args: AnyArguments<'static>,
    ) -> Result<AnyRow, sqlx::Error> {
        let c = self.start()?;
        let r = sqlx::query_with(sql, args).fetch_one(c).await;
        self.settle(r)
    }

    pub(crate) async fn fetch_all(
        &mut self,
        sql: &str,
        args: AnyArguments<'static>,
    ) -> Result<Vec<AnyRow>, sqlx::Error> {
        let c = self.start()?;
        let r = sqlx::query_with(sql, args).fetch_all(c).await;
        self.settle(r)
    }

    /// A statement without parameters, not prepared (transaction control, schema changes).
    pub(crate) async fn execute_raw(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let c = self.start()?;
        let r = sqlx::Executor::execute(c, sqlx::raw_sql(sql)).await;
        self.settle(r.map(|_| ()))
    }

    /// Starts a transaction; SQLite takes its write lock now (BEGIN IMMEDIATE), so that a
    /// transaction that reads and then writes never fails on a stale snapshot.
    pub(crate) async fn begin(
        &mut self,
        write_guard: Option<OwnedMutexGuard<()>>,
    ) -> Result<(), sqlx::Error> {
        self.write_guard = write_guard;
        let sql = match self.inner.dialect {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        self.execute_raw(sql).await?;
        self.in_tx = true;
        Ok(())
    }

    pub(crate) async fn commit(&mut self) -> Result<(), sqlx::Error> {
        self.execute_raw("COMMIT").await?;
        self.in_tx = false;
        self.write_guard = None;
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !self.clean {
            // Closing it rolls back whatever it was doing.
            return;
        }
        if !self.in_tx {
            self.inner.put_back(conn);
            return;
        }
        let (inner, slot, guard) = (
            self.inner.clone(),
            self.slot.take(),
            self.write_guard.take(),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                // (`RawSql::execute` would trip the compiler's Send inference; the trait's
                // method returns a boxed future.)
                if sqlx::Executor::execute(&mut conn, sqlx::raw_sql("ROLLBACK"))
                    .await
                    .is_ok()
                {
                    inner.put_back(conn);
                }
                drop((slot, guard));
            });
        }
    }
}
