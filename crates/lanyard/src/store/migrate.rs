//! Embedded schema migrations for both backends, applied in order at start.

use super::{Dialect, Param, Store};

struct Migration {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: include_str!("../../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        sqlite: include_str!("../../migrations/sqlite/0002_runtime.sql"),
        postgres: include_str!("../../migrations/postgres/0002_runtime.sql"),
    },
];

pub async fn run(store: &Store) -> anyhow::Result<()> {
    let mut tx = store.begin().await?;
    if store.dialect == Dialect::Postgres {
        // Two processes starting together must not both migrate: lock before touching the schema.
        tx.conn
            .execute_raw("SELECT pg_advisory_xact_lock(727274)")
            .await?;
    }
    tx.conn
        .execute_raw("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)")
        .await?;
    let applied: Vec<i64> = tx
        .conn
        .fetch_all("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.int("version"))
        .collect::<Result<_, _>>()?;
    for m in MIGRATIONS {
        if applied.contains(&m.version) {
            continue;
        }
        let sql = match store.dialect {
            Dialect::Sqlite => m.sqlite,
            Dialect::Postgres => m.postgres,
        };
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            tx.conn.execute_raw(stmt).await?;
        }
        let params = [Param::Int(m.version), Param::Str(crate::clock::now())];
        tx.conn
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &params,
            )
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
