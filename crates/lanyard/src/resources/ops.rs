//! The generic write operations of the resource layer, inside a transaction: validate against
//! the schema, run the resource's hooks, claim unique keys, store.

use serde_json::{Map, Value};

use super::{Resource, WriteCtx};
use crate::error::{ApiError, ApiResult};
use crate::model::schema::{Mode, validate};
use crate::store::Doc;

pub async fn create(
    ctx: &mut WriteCtx<'_>,
    r: &dyn Resource,
    input: &Value,
    parent_id: &str,
) -> ApiResult<Doc> {
    let id = uuid::Uuid::new_v4().to_string();
    create_with_id(ctx, r, input, parent_id, &id).await
}

pub async fn create_with_id(
    ctx: &mut WriteCtx<'_>,
    r: &dyn Resource,
    input: &Value,
    parent_id: &str,
    id: &str,
) -> ApiResult<Doc> {
    let spec = r.spec();
    let data =
        validate(r.fields(input, None), input, None, Mode::Create).map_err(ApiError::invalid)?;
    let mut doc = Doc::new(
        spec.kind,
        id,
        &ctx.env.env_id,
        parent_id,
        Value::Object(data),
    );
    r.prepare(ctx, &mut doc, None).await?;
    let keys = spec.unique_keys(&doc, ctx.org_id);
    ctx.tx.insert(&doc, &keys).await?;
    r.after_create(ctx, &doc).await?;
    Ok(doc)
}

/// PUT: the body replaces every writable field; read-only and create-only fields are kept.
pub async fn replace(
    ctx: &mut WriteCtx<'_>,
    r: &dyn Resource,
    existing: &Doc,
    input: &Value,
) -> ApiResult<Doc> {
    let data = validate(
        r.fields(input, Some(existing)),
        input,
        Some(&existing.data),
        Mode::Replace,
    )
    .map_err(ApiError::invalid)?;
    store_update(ctx, r, existing, data).await
}

/// PATCH: RFC 7396 merge of the body onto the current document, then validated as a whole.
pub async fn patch(
    ctx: &mut WriteCtx<'_>,
    r: &dyn Resource,
    existing: &Doc,
    input: &Value,
) -> ApiResult<Doc> {
    let Some(changes) = input.as_object() else {
        return Err(ApiError::one(crate::error::Detail::new(
            "INVALID_VALUE",
            None,
            "The request body must be a JSON object.",
        )));
    };
    let mut merged = existing.data.clone();
    merge_patch(&mut merged, &Value::Object(changes.clone()));
    let data = validate(
        r.fields(&merged, Some(existing)),
        &merged,
        Some(&existing.data),
        Mode::Replace,
    )
    .map_err(ApiError::invalid)?;
    store_update(ctx, r, existing, data).await
}

async fn store_update(
    ctx: &mut WriteCtx<'_>,
    r: &dyn Resource,
    existing: &Doc,
    mut data: Map<String, Value>,
) -> ApiResult<Doc> {
    // Internal fields (`_…`) are never client-writable; carry them over.
    if let Some(old) = existing.data.as_object() {
        for (k, v) in old.iter().filter(|(k, _)| k.starts_with('_')) {
            data.insert(k.clone(), v.clone());
        }
    }
    let mut doc = existing.clone();
    doc.data = Value::Object(data);
    r.prepare(ctx, &mut doc, Some(existing)).await?;
    let keys = r.spec().unique_keys(&doc, ctx.org_id);
    ctx.tx.update(&mut doc, &keys).await?;
    r.after_update(ctx, &doc, existing).await?;
    Ok(doc)
}

pub async fn delete(ctx: &mut WriteCtx<'_>, r: &dyn Resource, doc: &Doc) -> ApiResult<()> {
    r.before_delete(ctx, doc).await?;
    ctx.tx.delete_children(&doc.env_id, &doc.id).await?;
    ctx.tx.delete(&doc.kind, &doc.id).await
}

pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}
