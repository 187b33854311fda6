//! The store: every resource as a JSON document keyed by (kind, id) inside an environment, plus
//! the unique keys that the API enforces. One implementation serves SQLite (rusqlite, inline) and
//! PostgreSQL (sqlx) through one statement API (`conn`); `Dialect` holds the few places where
//! their SQL differs (JSON paths, upserts, write locking).

mod conn;
mod migrate;
mod pg;
mod row;
pub mod runtime;
pub mod sql_filter;
mod sqlite;

use std::sync::Arc;

use anyhow::Context;
use conn::{Conn, Connections};
use row::Row;
use serde_json::Value;

use crate::error::{ApiError, ApiResult, Detail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The SQL expression reading a dotted JSON path from `data` as text.
    pub fn json_text(self, path: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_extract(data, '$.{path}')"),
            Dialect::Postgres => format!("(data::jsonb #>> '{{{}}}')", path.replace('.', ",")),
        }
    }
}

/// One stored resource.
#[derive(Debug, Clone)]
pub struct Doc {
    pub kind: String,
    pub id: String,
    pub env_id: String,
    pub parent_id: String,
    pub data: Value,
    /// Encrypted private material (client secrets, private keys); never rendered.
    pub secrets: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Doc {
    pub fn new(kind: &str, id: &str, env_id: &str, parent_id: &str, data: Value) -> Self {
        let now = crate::clock::now();
        Doc {
            kind: kind.into(),
            id: id.into(),
            env_id: env_id.into(),
            parent_id: parent_id.into(),
            data,
            secrets: None,
            created_at: now.clone(),
            updated_at: now,
        }
    }
    pub fn str(&self, path: &str) -> Option<&str> {
        json_path(&self.data, path).and_then(Value::as_str)
    }
}

pub fn json_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// A unique key of a document: `value` must be unique among documents of `kind` in `scope_id`.
#[derive(Debug, Clone)]
pub struct UniqueKey {
    pub scope_id: String,
    pub key: &'static str,
    pub value: String,
}

#[derive(Debug, Clone)]
pub enum Param {
    Str(String),
    Num(f64),
    Int(i64),
    Null,
}

impl Param {
    fn opt(v: &Option<String>) -> Param {
        v.clone().map_or(Param::Null, Param::Str)
    }
}

/// A compiled SQL condition with its parameters (numbered from `first_param`).
#[derive(Debug, Clone, Default)]
pub struct Condition {
    pub sql: String,
    pub params: Vec<Param>,
}

#[derive(Debug, Clone)]
pub struct ListQuery<'a> {
    pub kind: &'a str,
    /// Empty for queries across environments (the environments themselves).
    pub env_id: &'a str,
    pub parent_id: Option<&'a str>,
    pub condition: Option<Condition>,
    pub limit: usize,
    /// Keyset cursor: (created_at, id) of the last item already returned.
    pub after: Option<(String, String)>,
}

/// The database file an SQLite URL names (None for other databases).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    sqlite::file_of(url).ok()
}

#[derive(Clone)]
pub struct Store {
    conns: Connections,
    pub dialect: Dialect,
    /// SQLite allows one writer; serialising writers in process avoids busy errors on upgrade.
    write_lock: Option<Arc<tokio::sync::Mutex<()>>>,
}

pub struct Tx {
    /// Dropped first: an unfinished transaction is rolled back before the write lock goes.
    conn: Conn,
    pub dialect: Dialect,
    /// SQLite allows one writer; serialising writers in process avoids busy errors on upgrade.
    _write_lock: Option<tokio::sync::OwnedMutexGuard<()>>,
}

const COLUMNS: &str = "kind, id, env_id, parent_id, data, secrets, created_at, updated_at";

fn row_to_doc(r: &Row) -> Result<Doc, sqlx::Error> {
    let data = r.text("data")?;
    Ok(Doc {
        kind: r.text("kind")?,
        id: r.text("id")?,
        env_id: r.text("env_id")?,
        parent_id: r.text("parent_id")?,
        data: serde_json::from_str(&data).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        secrets: r.opt_text("secrets")?,
        created_at: r.text("created_at")?,
        updated_at: r.text("updated_at")?,
    })
}

fn strs(v: &[&str]) -> Vec<Param> {
    v.iter().map(|s| Param::Str((*s).to_string())).collect()
}

/// Builds the WHERE clause and parameters of a list query.
fn list_where(q: &ListQuery<'_>) -> (String, Vec<Param>) {
    let mut params = strs(&[q.kind]);
    let mut sql = String::from("kind = $1");
    if !q.env_id.is_empty() {
        params.push(Param::Str(q.env_id.into()));
        sql.push_str(&format!(" AND env_id = ${}", params.len()));
    }
    if let Some(p) = q.parent_id {
        params.push(Param::Str(p.into()));
        sql.push_str(&format!(" AND parent_id = ${}", params.len()));
    }
    if let Some(c) = &q.condition {
        sql.push_str(" AND (");
        sql.push_str(&renumber(&c.sql, params.len()));
        sql.push(')');
        params.extend(c.params.iter().cloned());
    }
    (sql, params)
}

/// Conditions are compiled with parameters `$1..`; shift them after the ones already bound.
pub fn renumber(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            in_str = !in_str;
        }
        if c == '$' && !in_str && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            let mut n = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(*d);
                chars.next();
            }
            let n: usize = n.parse().unwrap_or(0);
            out.push_str(&format!("${}", n + offset));
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! reads {
    () => {
        pub async fn get(&mut self, kind: &str, env_id: &str, id: &str) -> ApiResult<Option<Doc>> {
            let sql = format!("SELECT {COLUMNS} FROM resources WHERE kind = $1 AND id = $2 AND env_id = $3");
            let row = self.lease().await?.fetch_optional(&sql, &strs(&[kind, id, env_id])).await?;
            Ok(row.as_ref().map(row_to_doc).transpose()?)
        }

        /// Looks a document up by one of its unique keys (value compared case-insensitively).
        pub async fn find_unique(&mut self, scope_id: &str, kind: &str, key: &str, value: &str) -> ApiResult<Option<Doc>> {
            let sql = format!(
                "SELECT r.{} FROM unique_keys u JOIN resources r ON r.kind = u.kind AND r.id = u.id \
                 WHERE u.scope_id = $1 AND u.kind = $2 AND u.key = $3 AND u.value = $4",
                COLUMNS.replace(", ", ", r.")
            );
            let row = self.lease().await?.fetch_optional(&sql, &strs(&[scope_id, kind, key, &value.to_lowercase()]))
                .await?;
            Ok(row.as_ref().map(row_to_doc).transpose()?)
        }

        pub async fn list(&mut self, q: &ListQuery<'_>) -> ApiResult<Vec<Doc>> {
            self.list_ordered(q, false).await
        }

        /// Lists in creation order, or newest first; the cursor continues in the same order.
        pub async fn list_ordered(&mut self, q: &ListQuery<'_>, newest_first: bool) -> ApiResult<Vec<Doc>> {
            let (mut sql, mut params) = list_where(q);
            let (cmp, dir) = if newest_first { ("<", "DESC") } else { (">", "ASC") };
            if let Some((at, id)) = &q.after {
                params.push(Param::Str(at.clone()));
                let a = params.len();
                params.push(Param::Str(id.clone()));
                let b = params.len();
                sql.push_str(&format!(" AND (created_at {cmp} ${a} OR (created_at = ${a} AND id {cmp} ${b}))"));
            }
            let sql = format!("SELECT {COLUMNS} FROM resources WHERE {sql} ORDER BY created_at {dir}, id {dir} LIMIT {}", q.limit);
            let rows = self.lease().await?.fetch_scan(&sql, &params).await?;
            Ok(rows.iter().map(row_to_doc).collect::<Result<_, _>>()?)
        }

        pub async fn count(&mut self, q: &ListQuery<'_>) -> ApiResult<i64> {
            let (sql, params) = list_where(q);
            let sql = format!("SELECT COUNT(*) AS n FROM resources WHERE {sql}");
            let rows = self.lease().await?.fetch_scan(&sql, &params).await?;
            Ok(rows.first().ok_or(sqlx::Error::RowNotFound)?.int("n")?)
        }

        /// Every document of a kind under a parent (small child collections: actions, grants).
        pub async fn children(&mut self, kind: &str, env_id: &str, parent_id: &str) -> ApiResult<Vec<Doc>> {
            self.list(&ListQuery { kind, env_id, parent_id: Some(parent_id), condition: None, limit: 10_000, after: None }).await
        }

        pub async fn setting(&mut self, key: &str) -> ApiResult<Option<String>> {
            let row = self.lease().await?.fetch_optional("SELECT value FROM settings WHERE key = $1", &strs(&[key]))
                .await?;
            Ok(row.map(|r| r.text("value")).transpose()?)
        }
    };
}

/// A connection for one statement: a reader's own (handed back after it) or the transaction's.
enum Lease<'a> {
    Own(Conn),
    Tx(&'a mut Conn),
}

impl std::ops::Deref for Lease<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match self {
            Lease::Own(c) => c,
            Lease::Tx(c) => c,
        }
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        match self {
            Lease::Own(c) => c,
            Lease::Tx(c) => c,
        }
    }
}

/// Read access outside any transaction: each statement takes a connection and hands it back,
/// so a reader kept across other work never holds one.
pub struct Reader<'a> {
    conns: &'a Connections,
}

impl Reader<'_> {
    async fn lease(&mut self) -> ApiResult<Lease<'static>> {
        Ok(Lease::Own(self.conns.acquire().await?))
    }
    reads!();
}

impl Tx {
    async fn lease(&mut self) -> ApiResult<Lease<'_>> {
        Ok(Lease::Tx(&mut self.conn))
    }
    reads!();

    pub async fn insert(&mut self, doc: &Doc, keys: &[UniqueKey]) -> ApiResult<()> {
        self.claim_keys(&doc.kind, &doc.id, keys).await?;
        let sql =
            format!("INSERT INTO resources ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        let mut params = strs(&[
            &doc.kind,
            &doc.id,
            &doc.env_id,
            &doc.parent_id,
            &doc.data.to_string(),
        ]);
        params.push(Param::opt(&doc.secrets));
        params.push(Param::Str(doc.created_at.clone()));
        params.push(Param::Str(doc.updated_at.clone()));
        self.conn.execute(&sql, &params).await?;
        Ok(())
    }

    /// Replaces a document's data (and secrets) and re-claims its unique keys.
    pub async fn update(&mut self, doc: &mut Doc, keys: &[UniqueKey]) -> ApiResult<()> {
        self.release_keys(&doc.kind, &doc.id).await?;
        self.claim_keys(&doc.kind, &doc.id, keys).await?;
        self.update_data(doc).await
    }

    /// Replaces a document's data (and secrets) when no unique value changes.
    pub async fn update_data(&mut self, doc: &mut Doc) -> ApiResult<()> {
        doc.updated_at = crate::clock::now();
        let mut params = strs(&[&doc.data.to_string()]);
        params.push(Param::opt(&doc.secrets));
        for p in [&doc.updated_at, &doc.kind, &doc.id] {
            params.push(Param::Str(p.clone()));
        }
        self.conn.execute("UPDATE resources SET data = $1, secrets = $2, updated_at = $3 WHERE kind = $4 AND id = $5", &params)
            .await?;
        Ok(())
    }

    pub async fn delete(&mut self, kind: &str, id: &str) -> ApiResult<()> {
        self.release_keys(kind, id).await?;
        self.conn
            .execute(
                "DELETE FROM resources WHERE kind = $1 AND id = $2",
                &strs(&[kind, id]),
            )
            .await?;
        Ok(())
    }

    /// Deletes the documents under a parent, and theirs in turn (e.g. an application's grants).
    pub async fn delete_children(&mut self, env_id: &str, parent_id: &str) -> ApiResult<()> {
        let children = self
            .conn
            .fetch_all(
                "SELECT kind, id FROM resources WHERE env_id = $1 AND parent_id = $2",
                &strs(&[env_id, parent_id]),
            )
            .await?;
        for row in children {
            let kind = row.text("kind")?;
            let id = row.text("id")?;
            Box::pin(self.delete_children(env_id, &id)).await?;
            self.delete(&kind, &id).await?;
        }
        Ok(())
    }

    /// Deletes everything stored in an environment (its own row included).
    pub async fn delete_environment(&mut self, env_id: &str) -> ApiResult<()> {
        let a = strs(&[env_id]);
        self.conn.execute_bulk("DELETE FROM unique_keys WHERE id IN (SELECT id FROM resources WHERE env_id = $1) OR scope_id = $1",
            &a,)
        .await?;
        self.conn
            .execute_bulk("DELETE FROM resources WHERE env_id = $1", &a)
            .await?;
        Ok(())
    }

    /// Serialises writers that read siblings and then renumber or re-flag them (priorities,
    /// the one default of a kind) by locking a common row, e.g. the parent or the environment,
    /// until this transaction ends. SQLite writers are already serialised by the write lock.
    pub async fn lock(&mut self, env_id: &str, id: &str) -> ApiResult<()> {
        if self.dialect == Dialect::Postgres {
            self.conn
                .fetch_all(
                    "SELECT id FROM resources WHERE env_id = $1 AND id = $2 FOR UPDATE",
                    &strs(&[env_id, id]),
                )
                .await?;
        }
        Ok(())
    }

    /// Serialises first-start bootstrap between processes sharing a PostgreSQL database.
    pub async fn lock_bootstrap(&mut self) -> ApiResult<()> {
        if self.dialect == Dialect::Postgres {
            self.conn
                .execute_raw("SELECT pg_advisory_xact_lock(727275)")
                .await?;
        }
        Ok(())
    }

    pub async fn set_setting(&mut self, key: &str, value: &str) -> ApiResult<()> {
        self.conn.execute("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &strs(&[key, value]),)
        .await?;
        Ok(())
    }

    async fn claim_keys(&mut self, kind: &str, id: &str, keys: &[UniqueKey]) -> ApiResult<()> {
        for k in keys {
            let value = k.value.to_lowercase();
            let existing = self.conn.fetch_optional("SELECT id FROM unique_keys WHERE scope_id = $1 AND kind = $2 AND key = $3 AND value = $4",
                &strs(&[&k.scope_id, kind, k.key, &value]),)
            .await?;
            if let Some(row) = existing {
                let existing_id = row.text("id")?;
                return Err(uniqueness(k.key, &existing_id));
            }
            self.conn.execute("INSERT INTO unique_keys (scope_id, kind, key, value, id) VALUES ($1, $2, $3, $4, $5)",
                &strs(&[&k.scope_id, kind, k.key, &value, id]),)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => uniqueness(k.key, ""),
                _ => ApiError::from(e),
            })?;
        }
        Ok(())
    }

    async fn release_keys(&mut self, kind: &str, id: &str) -> ApiResult<()> {
        self.conn
            .execute(
                "DELETE FROM unique_keys WHERE kind = $1 AND id = $2",
                &strs(&[kind, id]),
            )
            .await?;
        Ok(())
    }

    pub async fn commit(self) -> ApiResult<()> {
        let mut this = self;
        this.conn.commit().await?;
        Ok(())
    }
}

fn uniqueness(key: &str, existing_id: &str) -> ApiError {
    let mut d = Detail::new(
        "UNIQUENESS_VIOLATION",
        Some(key.to_string()),
        format!("{key} must be unique"),
    );
    if !existing_id.is_empty() {
        d = d.with_inner(serde_json::json!({ "existingId": existing_id }));
    }
    ApiError::one(d)
}

impl Store {
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("postgres") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        };
        let what = match dialect {
            Dialect::Sqlite => "opening the SQLite database",
            Dialect::Postgres => "connecting to PostgreSQL",
        };
        let conns = Connections::open(url, dialect).await.context(what)?;
        let store = Store {
            conns,
            dialect,
            write_lock: (dialect == Dialect::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(()))),
        };
        migrate::run(&store).await?;
        Ok(store)
    }

    pub fn read(&self) -> Reader<'_> {
        Reader { conns: &self.conns }
    }

    pub async fn begin(&self) -> ApiResult<Tx> {
        let guard = match &self.write_lock {
            Some(l) => Some(l.clone().lock_owned().await),
            None => None,
        };
        let mut conn = self.conns.acquire().await?;
        conn.begin().await?;
        Ok(Tx {
            conn,
            dialect: self.dialect,
            _write_lock: guard,
        })
    }

    /// A connection for statements outside a transaction (runtime items).
    pub(crate) async fn conn(&self) -> ApiResult<Conn> {
        Ok(self.conns.acquire().await?)
    }

    pub fn dialect_name(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    pub async fn ping(&self) -> bool {
        match self.conns.acquire().await {
            Ok(mut c) => c.execute_raw("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }

    pub async fn close(&self) {
        self.conns.close().await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn renumbers_parameters_outside_strings() {
        assert_eq!(
            super::renumber("a = $1 AND b LIKE '$1' OR c = $2", 3),
            "a = $4 AND b LIKE '$1' OR c = $5"
        );
    }
}
