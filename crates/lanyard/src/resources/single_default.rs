//! "One default per environment" for resources with a `default` flag (sign-on policies,
//! device authentication policies): `default` can only be set to true, which moves it from
//! the previous default; the default cannot be unset or deleted.

use serde_json::json;

use super::WriteCtx;
use crate::error::{ApiError, ApiResult, Detail};
use crate::store::Doc;

/// Applies the rule to `doc` before it is stored; `what` names the resource in errors.
pub async fn prepare(
    ctx: &mut WriteCtx<'_>,
    doc: &mut Doc,
    existing: Option<&Doc>,
    what: &str,
) -> ApiResult<()> {
    let was_default = existing.is_some_and(|e| e.data["default"] == true);
    // A PUT that leaves `default` out, as clients that do not manage it do, keeps the value.
    if doc.data.get("default").is_none() {
        doc.data["default"] = json!(was_default);
    }
    if was_default && doc.data["default"] != true {
        return Err(ApiError::one(Detail::invalid(
            "default",
            format!("The default {what} cannot be unset; make another one the default instead."),
        )));
    }
    if doc.data["default"] == true && !was_default {
        // One default per environment, also when two writers set it at once.
        ctx.tx.lock(&doc.env_id, &doc.env_id).await?;
        for mut other in ctx.tx.children(&doc.kind, &doc.env_id, "").await? {
            if other.id != doc.id && other.data["default"] == true {
                other.data["default"] = json!(false);
                ctx.tx.update_data(&mut other).await?;
            }
        }
    }
    Ok(())
}

/// Refuses to delete the default.
pub fn before_delete(doc: &Doc, what: &str) -> ApiResult<()> {
    if doc.data["default"] == true {
        return Err(ApiError::RequestFailed(
            format!("The default {what} cannot be deleted."),
            vec![],
        ));
    }
    Ok(())
}
