//! PostgreSQL: the store's own small pool of sqlx connections.
//!
//! sqlx's pool tests every connection when it is handed back (`ping`): one more network round
//! trip per statement, which doubled the database cost of a sign-in. This pool hands a connection back as it is, and
//! instead never reuses one whose operation did not finish: a request dropped mid-statement
//! discards its connection, and a transaction dropped without commit is rolled back (on a task)
//! before its connection is reused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyConnectOptions, AnyRow, AnyTypeInfoKind};
use sqlx::{AnyConnection, Arguments, Column, Connection, Row as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Param;
use super::row::{Cell, Row};

/// How long a request waits for a free connection before failing (sqlx's default too).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub(crate) struct Connections {
    inner: Arc<Inner>,
}

struct Inner {
    options: AnyConnectOptions,
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
    pub(crate) async fn open(url: &str, max: usize) -> anyhow::Result<Self> {
        let options: AnyConnectOptions = url.parse()?;
        let pool = Connections {
            inner: Arc::new(Inner {
                options,
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
        })
    }

    async fn connect(&self) -> Result<AnyConnection, sqlx::Error> {
        AnyConnection::connect_with(&self.inner.options).await
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
        params: &[Param],
    ) -> Result<u64, sqlx::Error> {
        let args = arguments(params)?;
        let c = self.start()?;
        let r = sqlx::query_with(sql, args).execute(c).await;
        self.settle(r.map(|d| d.rows_affected()))
    }

    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Option<Row>, sqlx::Error> {
        let args = arguments(params)?;
        let c = self.start()?;
        let r = sqlx::query_with(sql, args).fetch_optional(c).await;
        self.settle(r)?.map(|r| convert(&r)).transpose()
    }

    pub(crate) async fn fetch_all(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<Row>, sqlx::Error> {
        let args = arguments(params)?;
        let c = self.start()?;
        let r = sqlx::query_with(sql, args).fetch_all(c).await;
        self.settle(r)?.iter().map(convert).collect()
    }

    /// A statement without parameters, not prepared (transaction control, schema changes).
    pub(crate) async fn execute_raw(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let c = self.start()?;
        let r = sqlx::Executor::execute(c, sqlx::raw_sql(sql)).await;
        self.settle(r.map(|_| ()))
    }

    pub(crate) async fn begin(&mut self) -> Result<(), sqlx::Error> {
        self.execute_raw("BEGIN").await?;
        self.in_tx = true;
        Ok(())
    }

    pub(crate) async fn commit(&mut self) -> Result<(), sqlx::Error> {
        self.execute_raw("COMMIT").await?;
        self.in_tx = false;
        Ok(())
    }
}

fn arguments(params: &[Param]) -> Result<AnyArguments<'static>, sqlx::Error> {
    let mut args = AnyArguments::default();
    for p in params {
        match p {
            Param::Str(s) => args.add(s.clone()),
            Param::Num(n) => args.add(*n),
            Param::Int(n) => args.add(*n),
            Param::Null => args.add(None::<String>),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

fn convert(r: &AnyRow) -> Result<Row, sqlx::Error> {
    let names: Arc<[String]> = r.columns().iter().map(|c| c.name().to_string()).collect();
    let mut cells = Vec::with_capacity(names.len());
    for (i, c) in r.columns().iter().enumerate() {
        let cell = match c.type_info().kind() {
            AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
                r.try_get::<Option<i64>, _>(i)?.map(Cell::Int)
            }
            AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => {
                r.try_get::<Option<f64>, _>(i)?.map(Cell::Real)
            }
            AnyTypeInfoKind::Null => None,
            _ => r.try_get::<Option<String>, _>(i)?.map(Cell::Text),
        };
        cells.push(cell.unwrap_or(Cell::Null));
    }
    Ok(Row::new(names, cells))
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
        let (inner, slot) = (self.inner.clone(), self.slot.take());
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
                drop(slot);
            });
        }
    }
}
