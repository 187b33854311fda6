//! MFA endpoints beyond the generic layer: a user's devices collection (create, reorder and
//! order removal by Content-Type, listed in the user's order), device actions by
//! Content-Type on `POST /devices/{id}` (activate, block, unblock, unlock), the nickname,
//! `/users/{id}/mfaEnabled`, and the read-only notification template catalog. The rules
//! live in `engine::mfa`; handlers parse, load, call it and persist in one transaction.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::extract::{Mgmt, read_json};
use super::mgmt::{JSON, collection, created_with, method_not_allowed, render_full};
use crate::engine::authz::Area;
use crate::engine::mfa;
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::schema::{Field, Mode, Ty, f, s, validate};
use crate::resources::devices::{self, DEVICES, KIND};
use crate::resources::{WriteCtx, ops, templates};
use crate::store::{Doc, ListQuery, Tx, sql_filter};

pub const REORDER: &str = "application/vnd.pingidentity.devices.reorder+json";
pub const ORDER_REMOVE: &str = "application/vnd.pingidentity.devices.order.remove+json";
pub const ACTIVATE: &str = "application/vnd.pingidentity.device.activate+json";
pub const BLOCK: &str = "application/vnd.pingidentity.device.block+json";
pub const UNBLOCK: &str = "application/vnd.pingidentity.device.unblock+json";
pub const UNLOCK: &str = "application/vnd.pingidentity.device.unlock+json";

const DEVICES_PATH: &str = "/v1/environments/{envId}/users/{parentId}/devices";
const DEVICE_PATH: &str = "/v1/environments/{envId}/users/{parentId}/devices/{id}";

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    // The generic layer adds the item GET/DELETE and the 405 fallbacks on these paths.
    r.route(
        DEVICES_PATH,
        get(list).post(create_or_reorder).delete(remove_order),
    )
    .route(DEVICE_PATH, post(device_action))
    .route(
        &format!("{DEVICE_PATH}/nickname"),
        axum::routing::put(nickname).fallback(method_not_allowed),
    )
    .route(
        "/v1/environments/{envId}/users/{id}/mfaEnabled",
        get(read_mfa_enabled)
            .put(update_mfa_enabled)
            .post(update_mfa_enabled)
            .fallback(method_not_allowed),
    )
    .route(
        "/v1/environments/{envId}/templates",
        get(list_templates).fallback(method_not_allowed),
    )
    .route(
        "/v1/environments/{envId}/templates/{name}",
        get(read_template).fallback(method_not_allowed),
    )
}

use crate::state::AppState;

async fn device_in(mg: &Mgmt, tx: &mut Tx) -> ApiResult<Doc> {
    tx.lock(&mg.env()?.id, mg.param("id")).await?;
    tx.get(KIND, &mg.env()?.id, mg.param("id"))
        .await?
        .filter(|d| d.parent_id == mg.param("parentId"))
        .ok_or_else(ApiError::not_found)
}

fn body_of(fields: &[Field], input: &Value) -> ApiResult<serde_json::Map<String, Value>> {
    validate(fields, input, None, Mode::Create).map_err(ApiError::invalid)
}

// ---- the collection ----

async fn list(mg: Mgmt, Query(q): Query<HashMap<String, String>>) -> ApiResult<Response> {
    mg.require(Area::Identity, false)?;
    let user = super::users::user_in_path(&mg, "parentId").await?;
    // SCIM `filter` on the device attributes (`type eq "SMS"`, `status eq "ACTIVE"`), in SQL.
    let condition = match q.get("filter") {
        Some(f) => Some(sql_filter::compile(
            &crate::model::filter::parse(f)?,
            devices::SPEC.filters,
            mg.app.store.dialect,
        )?),
        None => None,
    };
    let all = mg
        .app
        .store
        .read()
        .list(&ListQuery {
            kind: KIND,
            env_id: &user.env_id,
            parent_id: Some(&user.id),
            condition,
            limit: devices::MAX_PER_USER * 2,
            after: None,
        })
        .await?;
    let mut items = Vec::new();
    for d in devices::in_order(all) {
        items.push(render_full(&mg.app, &DEVICES, &d).await?);
    }
    let href = mg
        .app
        .env_href(&user.env_id, &format!("/users/{}/devices", user.id));
    let links = json!({ "self": { "href": href }, "devices.reorder": { "href": href } });
    let count = items.len() as i64;
    Ok(Json(collection(links, "devices", items, count)).into_response())
}

async fn create_or_reorder(mg: Mgmt, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    mg.require(Area::Identity, true)?;
    let (media, input) = read_json(&headers, body, &[JSON, REORDER]).await?;
    if media.eq_ignore_ascii_case(REORDER) {
        return reorder(mg, input).await;
    }
    let user = super::users::user_in_path(&mg, "parentId").await?;
    let env = mg.env()?.clone();
    let mut tx = mg.app.store.begin().await?;
    let mut ctx = WriteCtx {
        app: &mg.app,
        tx: &mut tx,
        env: &env,
        org_id: &mg.org_id,
    };
    let doc = ops::create(&mut ctx, &DEVICES, &input, &user.id).await?;
    tx.commit().await?;
    mg.app.changed();
    let doc = mfa::start_pairing(&mg.app, &user, doc).await?;
    let mut body = render_full(&mg.app, &DEVICES, &doc).await?;
    // The secret is shown once, at creation, for the authenticator app to scan.
    if let Some((secret, key_uri)) = mfa::totp_enrollment(&mg.app, &env, &user, &doc) {
        body["secret"] = json!(secret);
        body["keyUri"] = json!(key_uri);
    }
    Ok(created_with(&mg.app, &DEVICES, &doc, body))
}

const ORDER_ITEM: &[Field] = &[f("id", Ty::Uuid).req()];
const REORDER_FIELDS: &[Field] = &[f(
    "order",
    Ty::Arr(&Ty::Obj(ORDER_ITEM), devices::MAX_PER_USER),
)
.req()];

/// `devices.reorder+json` `{ "order": [ { "id" } ... ] }`: the listed devices first, in that
/// order; the others after them.
async fn reorder(mg: Mgmt, input: Value) -> ApiResult<Response> {
    let b = body_of(REORDER_FIELDS, &input)?;
    let ids: Vec<String> = b["order"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["id"].as_str().map(str::to_string))
        .collect();
    let user = super::users::user_in_path(&mg, "parentId").await?;
    let mut tx = mg.app.store.begin().await?;
    let all = tx.children(KIND, &user.env_id, &user.id).await?;
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(ApiError::one(Detail::invalid(
                &format!("order[{i}].id"),
                "A device is listed twice.",
            )));
        }
        if !all.iter().any(|d| &d.id == id) {
            return Err(ApiError::one(Detail::invalid(
                &format!("order[{i}].id"),
                "The device is not one of this user's.",
            )));
        }
    }
    for mut d in all {
        let rank = ids.iter().position(|id| *id == d.id);
        d.data["_rank"] = match rank {
            Some(r) => json!(r),
            None => json!(ids.len() + 1),
        };
        tx.update_data(&mut d).await?;
    }
    tx.commit().await?;
    mg.app.changed();
    list(mg, Query(HashMap::new())).await
}

/// `DELETE /devices` with `devices.order.remove+json`: back to creation order.
async fn remove_order(mg: Mgmt, headers: HeaderMap, body: Body) -> ApiResult<StatusCode> {
    mg.require(Area::Identity, true)?;
    let mt = super::extract::media_type(&headers);
    if !mt.eq_ignore_ascii_case(ORDER_REMOVE) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Use Content-Type {ORDER_REMOVE}."
        )));
    }
    let _ = super::extract::read_bytes(body).await?;
    let user = super::users::user_in_path(&mg, "parentId").await?;
    let mut tx = mg.app.store.begin().await?;
    for mut d in tx.children(KIND, &user.env_id, &user.id).await? {
        if let Some(m) = d.data.as_object_mut()
            && m.remove("_rank").is_some()
        {
            tx.update_data(&mut d).await?;
        }
    }
    tx.commit().await?;
    mg.app.changed();
    Ok(StatusCode::NO_CONTENT)
}

// ---- one device ----

const ACTIVATE_FIELDS: &[Field] = &[f("otp", s(64)).req()];

/// `POST /devices/{id}` by Content-Type: `device.activate+json` `{otp}`, `device.block+json`,
/// `device.unblock+json`, `device.unlock+json`; 200 with the device.
async fn device_action(mg: Mgmt, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    mg.require(Area::Identity, true)?;
    let (media, input) = read_json(&headers, body, &[ACTIVATE, BLOCK, UNBLOCK, UNLOCK]).await?;
    let is = |t: &str| media.eq_ignore_ascii_case(t);
    let mut tx = mg.app.store.begin().await?;
    let mut device = device_in(&mg, &mut tx).await?;
    let mut result = Ok(());
    if is(ACTIVATE) {
        let b = body_of(ACTIVATE_FIELDS, &input)?;
        let otp = b["otp"].as_str().unwrap_or_default();
        match mfa::activate(&mg.app, &mut tx, &mut device, otp).await {
            // An already active device: refused, nothing written.
            Err(e @ ApiError::RequestFailed(..)) => return Err(e),
            r => result = r,
        }
    } else if is(BLOCK) {
        device.data["block"] = json!({ "status": "BLOCKED", "blockedAt": crate::clock::now() });
    } else if is(UNBLOCK) {
        device.data["block"] = json!({ "status": "UNBLOCKED" });
    } else {
        device.data["_otp"] = json!({ "failures": 0 });
    }
    tx.update_data(&mut device).await?;
    tx.commit().await?;
    mg.app.changed();
    result?;
    Ok(Json(render_full(&mg.app, &DEVICES, &device).await?).into_response())
}

const NICKNAME_FIELDS: &[Field] = &[f("nickname", s(100)).req()];

async fn nickname(mg: Mgmt, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    mg.require(Area::Identity, true)?;
    let (_, input) = read_json(&headers, body, &[JSON]).await?;
    let b = body_of(NICKNAME_FIELDS, &input)?;
    let mut tx = mg.app.store.begin().await?;
    let mut device = device_in(&mg, &mut tx).await?;
    device.data["nickname"] = b["nickname"].clone();
    tx.update_data(&mut device).await?;
    tx.commit().await?;
    mg.app.changed();
    let href = devices::SPEC.href(&mg.app, &device);
    Ok(Json(json!({
        "_links": { "self": { "href": format!("{href}/nickname") }, "device": { "href": href } },
        "nickname": device.data["nickname"],
    }))
    .into_response())
}

// ---- mfaEnabled ----

fn mfa_enabled_body(mg: &Mgmt, user: &Doc) -> Value {
    let user_href = mg
        .app
        .env_href(&user.env_id, &format!("/users/{}", user.id));
    json!({
        "_links": { "self": { "href": format!("{user_href}/mfaEnabled") }, "user": { "href": user_href } },
        "mfaEnabled": user.data["mfaEnabled"] == true,
    })
}

async fn read_mfa_enabled(mg: Mgmt) -> ApiResult<Response> {
    mg.require(Area::Identity, false)?;
    let user = super::users::user_in_path(&mg, "id").await?;
    Ok(Json(mfa_enabled_body(&mg, &user)).into_response())
}

const MFA_ENABLED_FIELDS: &[Field] = &[f("mfaEnabled", Ty::Bool).req()];

/// PUT (and POST, as the how-to guides write it) `{ "mfaEnabled": bool }`.
async fn update_mfa_enabled(mg: Mgmt, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let user = super::users::set_flag(&mg, headers, body, MFA_ENABLED_FIELDS).await?;
    Ok(Json(mfa_enabled_body(&mg, &user)).into_response())
}

// ---- templates ----

async fn list_templates(mg: Mgmt) -> ApiResult<Response> {
    mg.require(Area::Config, false)?;
    let env = mg.env()?;
    let items: Vec<Value> = templates::CATALOG
        .iter()
        .map(|t| templates::render_template(&mg.app, &env.id, t))
        .collect();
    let links = json!({ "self": { "href": mg.app.env_href(&env.id, "/templates") } });
    let count = items.len() as i64;
    Ok(Json(collection(links, "templates", items, count)).into_response())
}

async fn read_template(mg: Mgmt) -> ApiResult<Response> {
    mg.require(Area::Config, false)?;
    let env = mg.env()?;
    let t = templates::template(mg.param("name")).ok_or_else(ApiError::not_found)?;
    Ok(Json(templates::render_template(&mg.app, &env.id, t)).into_response())
}
