//! `/applications/{id}/secret`: read, rotate (keeping the previous secret for a while), and
//! drop the previous secret.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::extract::{Mgmt, media_type, parse_json, read_bytes};
use crate::engine::authz::Area;
use crate::engine::secrets::random_secret;
use crate::error::{ApiError, ApiResult, Detail};
use crate::resources::applications::{self, KIND};
use crate::resources::roles;
use crate::store::Doc;

const MAX_PREVIOUS_SECONDS: i64 = 30 * 24 * 3600;

fn render(mg: &Mgmt, doc: &Doc, secrets: &Value) -> Value {
    let mut body = json!({
        "_links": { "self": { "href": mg.app.env_href(&doc.env_id, &format!("/applications/{}/secret", doc.id)) } },
        "environment": { "id": doc.env_id },
        "application": { "id": doc.id },
        "secret": secrets["secret"],
    });
    if secrets["previous"].is_object() {
        body["previous"] = json!({ "secret": secrets["previous"]["secret"], "expiresAt": secrets["previous"]["expiresAt"] });
    }
    body
}

async fn load(mg: &Mgmt) -> ApiResult<Doc> {
    let doc = mg
        .app
        .store
        .read()
        .get(KIND, &mg.env()?.id, mg.param("id"))
        .await?
        .ok_or_else(ApiError::not_found)?;
    if doc.secrets.is_none() {
        return Err(ApiError::RequestFailed(
            "This application has no client secret.".into(),
            vec![],
        ));
    }
    Ok(doc)
}

pub async fn read(mg: Mgmt) -> ApiResult<Response> {
    mg.require(Area::Applications, true)?;
    let doc = load(&mg).await?;
    let held = roles::assignments_of(&mg.app, &doc.env_id, &doc.id).await?;
    roles::require_authority(&mg.actor, &held, &doc.env_id, &mg.org_id)?;
    let secrets = applications::secrets_of(&mg.app, &doc)?;
    Ok(Json(render(&mg, &doc, &secrets)).into_response())
}

pub async fn rotate(mg: Mgmt, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    mg.require(Area::Applications, true)?;
    let bytes = read_bytes(body).await?;
    let input = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        if media_type(&headers) != "application/json" {
            return Err(ApiError::UnsupportedMediaType(
                "Use application/json.".into(),
            ));
        }
        parse_json(&bytes)?
    };
    let keep_until = match input.pointer("/previous/expiresAt") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let t = v.as_str().and_then(crate::clock::parse).ok_or_else(|| {
                ApiError::one(Detail::invalid(
                    "previous.expiresAt",
                    "previous.expiresAt must be an RFC 3339 date-time.",
                ))
            })?;
            let secs = (t - time::OffsetDateTime::now_utc()).whole_seconds();
            if !(60..=MAX_PREVIOUS_SECONDS).contains(&secs) {
                return Err(ApiError::one(
                    Detail::new("OUT_OF_RANGE", Some("previous.expiresAt".into()), "The previous secret may be kept from 1 minute to 30 days.")
                        .with_inner(json!({ "rangeMinimumValue": 60, "rangeMaximumValue": MAX_PREVIOUS_SECONDS })),
                ));
            }
            Some(crate::clock::format(t))
        }
    };
    let mut tx = mg.app.store.begin().await?;
    let mut doc = tx
        .get(KIND, &mg.env()?.id, mg.param("id"))
        .await?
        .ok_or_else(ApiError::not_found)?;
    roles::require_authority_over(&mut tx, &mg.actor, &doc.env_id, &doc.id, &mg.org_id).await?;
    if doc.secrets.is_none() {
        return Err(ApiError::RequestFailed(
            "This application has no client secret.".into(),
            vec![],
        ));
    }
    let old = applications::secrets_of(&mg.app, &doc)?;
    let mut new = json!({ "secret": random_secret() });
    if let Some(until) = keep_until {
        new["previous"] = json!({ "secret": old["secret"], "expiresAt": until });
    }
    doc.secrets = Some(mg.app.master.encrypt_json(&new));
    tx.update_data(&mut doc).await?;
    tx.commit().await?;
    mg.app.changed();
    Ok(Json(render(&mg, &doc, &new)).into_response())
}

pub async fn drop_previous(mg: Mgmt) -> ApiResult<StatusCode> {
    mg.require(Area::Applications, true)?;
    let mut tx = mg.app.store.begin().await?;
    let mut doc = tx
        .get(KIND, &mg.env()?.id, mg.param("id"))
        .await?
        .ok_or_else(ApiError::not_found)?;
    roles::require_authority_over(&mut tx, &mg.actor, &doc.env_id, &doc.id, &mg.org_id).await?;
    if doc.secrets.is_none() {
        // A public client has no secret; storing an empty one would make it look confidential.
        return Err(ApiError::RequestFailed(
            "This application has no client secret.".into(),
            vec![],
        ));
    }
    let mut secrets = applications::secrets_of(&mg.app, &doc)?;
    if let Some(m) = secrets.as_object_mut() {
        m.remove("previous");
    }
    doc.secrets = Some(mg.app.master.encrypt_json(&secrets));
    tx.update_data(&mut doc).await?;
    tx.commit().await?;
    mg.app.changed();
    Ok(StatusCode::NO_CONTENT)
}
