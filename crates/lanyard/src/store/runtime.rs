//! Runtime state with expiry (flows, sessions, authorization codes, refresh-token families,
//! OTP challenges): one row per item, read by any process, changed with compare-and-swap on a
//! version so concurrent requests cannot both consume a single-use item.

use super::{Param, Store, strs};
use crate::error::ApiResult;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Item {
    pub kind: String,
    pub id: String,
    pub env_id: String,
    pub data: Value,
    /// Unix seconds.
    pub expires_at: i64,
    pub version: i64,
}

/// An item to insert with `runtime_put_many`.
pub struct NewItem<'a> {
    pub kind: &'a str,
    pub id: &'a str,
    pub env_id: &'a str,
    pub data: &'a Value,
    /// Unix seconds.
    pub expires_at: i64,
}

const COLUMNS: &str = "kind, id, env_id, data, expires_at, version";

fn item_of(r: &super::row::Row) -> ApiResult<Item> {
    let data = r.text("data")?;
    Ok(Item {
        kind: r.text("kind")?,
        id: r.text("id")?,
        env_id: r.text("env_id")?,
        data: serde_json::from_str(&data).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        expires_at: r.int("expires_at")?,
        version: r.int("version")?,
    })
}

impl Store {
    pub async fn runtime_put(
        &self,
        kind: &str,
        id: &str,
        env_id: &str,
        data: &Value,
        expires_at: i64,
    ) -> ApiResult<()> {
        let item = NewItem {
            kind,
            id,
            env_id,
            data,
            expires_at,
        };
        self.insert_items(&[item], "").await
    }

    /// Inserts several new items in one statement (one round trip); all or none.
    pub async fn runtime_put_many(&self, items: &[NewItem<'_>]) -> ApiResult<()> {
        self.insert_items(items, "").await
    }

    /// Inserts the item, or replaces it when one with this kind and id exists (markers that
    /// concurrent requests may both write: revoked token ids).
    pub async fn runtime_upsert(
        &self,
        kind: &str,
        id: &str,
        env_id: &str,
        data: &Value,
        expires_at: i64,
    ) -> ApiResult<()> {
        let item = NewItem {
            kind,
            id,
            env_id,
            data,
            expires_at,
        };
        self.insert_items(
            &[item],
            " ON CONFLICT (kind, id) DO UPDATE SET env_id = excluded.env_id, data = excluded.data, \
             expires_at = excluded.expires_at, version = runtime.version + 1",
        )
        .await
    }

    async fn insert_items(&self, items: &[NewItem<'_>], on_conflict: &str) -> ApiResult<()> {
        let mut params = Vec::with_capacity(items.len() * 5);
        let mut rows = Vec::with_capacity(items.len());
        for it in items {
            let n = params.len();
            rows.push(format!(
                "(${}, ${}, ${}, ${}, ${}, 0)",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5
            ));
            params.extend(strs(&[it.kind, it.id, it.env_id, &it.data.to_string()]));
            params.push(Param::Int(it.expires_at));
        }
        let sql = format!(
            "INSERT INTO runtime (kind, id, env_id, data, expires_at, version) VALUES {}{on_conflict}",
            rows.join(", ")
        );
        self.conn().await?.execute(&sql, &params).await?;
        Ok(())
    }

    /// The item if it exists and has not expired.
    pub async fn runtime_get(&self, kind: &str, id: &str) -> ApiResult<Option<Item>> {
        Ok(self.runtime_get_many(&[(kind, id)]).await?.pop().flatten())
    }

    /// Several items in one statement (one round trip), in the order asked; `None` for those
    /// missing or expired.
    pub async fn runtime_get_many(&self, keys: &[(&str, &str)]) -> ApiResult<Vec<Option<Item>>> {
        let mut params = Vec::with_capacity(keys.len() * 2 + 1);
        let mut which = Vec::with_capacity(keys.len());
        for (kind, id) in keys {
            which.push(format!(
                "(kind = ${} AND id = ${})",
                params.len() + 1,
                params.len() + 2
            ));
            params.push(Param::Str((*kind).to_string()));
            params.push(Param::Str((*id).to_string()));
        }
        params.push(Param::Int(crate::clock::unix()));
        let sql = format!(
            "SELECT {COLUMNS} FROM runtime WHERE ({}) AND expires_at > ${}",
            which.join(" OR "),
            params.len()
        );
        let rows = self.conn().await?.fetch_all(&sql, &params).await?;
        let mut found = rows.iter().map(item_of).collect::<ApiResult<Vec<Item>>>()?;
        Ok(keys
            .iter()
            .map(|(kind, id)| {
                let at = found.iter().position(|i| i.kind == *kind && i.id == *id)?;
                Some(found.swap_remove(at))
            })
            .collect())
    }

    /// Replaces an item's data if nobody changed it since `item` was read. False when it lost.
    pub async fn runtime_swap(
        &self,
        item: &Item,
        data: &Value,
        expires_at: i64,
    ) -> ApiResult<bool> {
        self.runtime_swap_as(item, &item.id, data, expires_at).await
    }

    /// `runtime_swap` that also moves the item to a new id (a session whose cookie is replaced),
    /// in the same statement.
    pub async fn runtime_swap_as(
        &self,
        item: &Item,
        new_id: &str,
        data: &Value,
        expires_at: i64,
    ) -> ApiResult<bool> {
        let mut params = strs(&[&data.to_string()]);
        params.push(Param::Int(expires_at));
        for s in [&item.kind, &item.id] {
            params.push(Param::Str(s.clone()));
        }
        params.push(Param::Int(item.version));
        let sql = if new_id == item.id {
            "UPDATE runtime SET data = $1, expires_at = $2, version = version + 1 WHERE kind = $3 AND id = $4 AND version = $5"
        } else {
            params.push(Param::Str(new_id.to_string()));
            "UPDATE runtime SET data = $1, expires_at = $2, version = version + 1, id = $6 WHERE kind = $3 AND id = $4 AND version = $5"
        };
        let changed = self.conn().await?.execute(sql, &params).await?;
        Ok(changed == 1)
    }

    pub async fn runtime_delete(&self, kind: &str, id: &str) -> ApiResult<bool> {
        let deleted = self
            .conn()
            .await?
            .execute(
                "DELETE FROM runtime WHERE kind = $1 AND id = $2",
                &strs(&[kind, id]),
            )
            .await?;
        Ok(deleted == 1)
    }

    /// Removes expired items; returns how many.
    pub async fn runtime_sweep(&self) -> ApiResult<u64> {
        let mut params: Vec<Param> = Vec::new();
        params.push(Param::Int(crate::clock::unix()));
        Ok(self
            .conn()
            .await?
            .execute_bulk("DELETE FROM runtime WHERE expires_at <= $1", &params)
            .await?)
    }
}
