//! Dense, unique priorities among siblings (sign-on policy actions, policy assignments):
//! priorities are always 1..n; inserting at k shifts k.. down, deleting closes the gap.

use serde_json::json;

use crate::error::ApiResult;
use crate::store::{Doc, Tx};

/// Places `doc` at its requested priority among its siblings and renumbers them.
pub async fn place(tx: &mut Tx, doc: &mut Doc) -> ApiResult<()> {
    // Concurrent writers under one parent would renumber from the same snapshot.
    tx.lock(&doc.env_id, &doc.parent_id).await?;
    let mut siblings: Vec<Doc> = tx
        .children(&doc.kind, &doc.env_id, &doc.parent_id)
        .await?
        .into_iter()
        .filter(|d| d.id != doc.id)
        .collect();
    siblings.sort_by_key(|d| d.data["priority"].as_i64().unwrap_or(i64::MAX));
    let wanted = doc.data["priority"].as_i64().unwrap_or(i64::MAX).max(1) as usize;
    let at = (wanted - 1).min(siblings.len());
    doc.data["priority"] = json!(at + 1);
    for (i, mut s) in siblings.into_iter().enumerate() {
        let p = if i < at { i + 1 } else { i + 2 };
        if s.data["priority"].as_u64() != Some(p as u64) {
            s.data["priority"] = json!(p);
            tx.update_data(&mut s).await?;
        }
    }
    Ok(())
}

/// Closes the gap left by `removed`.
pub async fn compact(tx: &mut Tx, removed: &Doc) -> ApiResult<()> {
    tx.lock(&removed.env_id, &removed.parent_id).await?;
    let mut siblings: Vec<Doc> = tx
        .children(&removed.kind, &removed.env_id, &removed.parent_id)
        .await?
        .into_iter()
        .filter(|d| d.id != removed.id)
        .collect();
    siblings.sort_by_key(|d| d.data["priority"].as_i64().unwrap_or(i64::MAX));
    for (i, mut s) in siblings.into_iter().enumerate() {
        if s.data["priority"].as_u64() != Some(i as u64 + 1) {
            s.data["priority"] = json!(i + 1);
            tx.update_data(&mut s).await?;
        }
    }
    Ok(())
}
