//! `/v1/environments/{envId}/ssoCookieSettings`: the environment's SSO session settings, one
//! object per environment (no collection, no id), so a small custom route rather than the
//! generic resource layer. GET reads it (the defaults until it is first set), POST sets it;
//! both answer 200. PingOne's field `useNonPersistentSessionTokenCookie` makes the `ST` cookie
//! a browser-session cookie; Lanyard adds the session's `idleTimeoutInMinutes` and
//! `maxLifetimeInMinutes` (enforced by `engine::sessions::Limits`).
//!
//! Stored as the document of kind `sessions::SETTINGS_KIND` whose id is the environment's, read
//! on the sign-on path through the configuration cache.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::extract::{Mgmt, read_json};
use super::mgmt::{JSON, method_not_allowed};
use crate::engine::authz::Area;
use crate::engine::sessions::{DEFAULT_MINUTES, SETTINGS_KIND};
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::schema::{Field, Mode, Ty, f, int, validate};
use crate::resources::ops::merge_patch;
use crate::state::{App, AppState};
use crate::store::Doc;

/// One year, the longest idle timeout or lifetime.
const MAX_MINUTES: i64 = 525_600;
const MINUTES: Ty = int(1, MAX_MINUTES);
const FIELDS: &[Field] = &[
    f("useNonPersistentSessionTokenCookie", Ty::Bool).def_bool(false),
    f("idleTimeoutInMinutes", MINUTES).def_int(DEFAULT_MINUTES),
    f("maxLifetimeInMinutes", MINUTES).def_int(DEFAULT_MINUTES),
];

const PATH: &str = "/v1/environments/{envId}/ssoCookieSettings";

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route(PATH, get(read).post(set).fallback(method_not_allowed))
}

/// GET: PingOne's `authn:read:ssoCookieSettings`, here the configuration area.
async fn read(mg: Mgmt) -> ApiResult<Response> {
    mg.require(Area::Config, false)?;
    let env_id = &mg.env()?.id;
    let doc = mg
        .app
        .store
        .read()
        .get(SETTINGS_KIND, env_id, env_id)
        .await?;
    Ok(Json(body(&mg.app, env_id, doc.as_ref())).into_response())
}

/// POST: the fields given replace the stored ones and the others keep their values (PingOne's
/// clients send only `useNonPersistentSessionTokenCookie`, which must not reset Lanyard's
/// limits; `null` restores a default).
async fn set(mg: Mgmt, headers: HeaderMap, body_in: Body) -> ApiResult<Response> {
    mg.require(Area::Config, true)?;
    let (_, input) = read_json(&headers, body_in, &[JSON]).await?;
    let env = mg.env()?.clone();
    let mut tx = mg.app.store.begin().await?;
    // Concurrent first POSTs take turns on the environment's row (PostgreSQL), so the second
    // updates the document the first inserted.
    tx.lock(&env.env_id, &env.id).await?;
    let existing = tx.get(SETTINGS_KIND, &env.id, &env.id).await?;
    let data = settings(&input, existing.as_ref())?;
    let doc = match existing {
        Some(mut doc) => {
            doc.data = data;
            tx.update_data(&mut doc).await?;
            doc
        }
        None => {
            let doc = Doc::new(SETTINGS_KIND, &env.id, &env.id, "", data);
            tx.insert(&doc, &[]).await?;
            doc
        }
    };
    tx.commit().await?;
    // Sign-ons on this process use the new settings at once (others within the cache's TTL).
    mg.app.changed();
    Ok(Json(body(&mg.app, &env.id, Some(&doc))).into_response())
}

/// The settings a POST of `input` makes over the `existing` ones, validated as a whole.
fn settings(input: &Value, existing: Option<&Doc>) -> ApiResult<Value> {
    let merged = match existing {
        Some(doc) if input.is_object() => {
            let mut merged = doc.data.clone();
            merge_patch(&mut merged, input);
            merged
        }
        _ => input.clone(),
    };
    let data = validate(FIELDS, &merged, None, Mode::Create).map_err(ApiError::invalid)?;
    let minutes = |k: &str| data[k].as_i64().unwrap_or(DEFAULT_MINUTES);
    let idle = minutes("idleTimeoutInMinutes");
    if minutes("maxLifetimeInMinutes") < idle {
        // An idle timeout beyond the lifetime would never apply: most likely a mistake.
        return Err(ApiError::one(
            Detail::new(
                "OUT_OF_RANGE",
                Some("maxLifetimeInMinutes".into()),
                "maxLifetimeInMinutes must be at least idleTimeoutInMinutes",
            )
            .with_inner(json!({ "rangeMinimumValue": idle, "rangeMaximumValue": MAX_MINUTES })),
        ));
    }
    Ok(Value::Object(data))
}

fn body(app: &App, env_id: &str, doc: Option<&Doc>) -> Value {
    let mut out = Map::new();
    out.insert(
        "_links".into(),
        json!({
            "self": { "href": app.env_href(env_id, "/ssoCookieSettings") },
            "environment": { "href": app.env_href(env_id, "") },
        }),
    );
    out.insert("environment".into(), json!({ "id": env_id }));
    // Never set: the defaults, which the schema knows.
    let data = match doc {
        Some(d) => d.data.as_object().cloned().unwrap_or_default(),
        None => validate(FIELDS, &json!({}), None, Mode::Create).unwrap_or_default(),
    };
    out.extend(data.into_iter().filter(|(k, _)| !k.starts_with('_')));
    if let Some(d) = doc {
        out.insert("updatedAt".into(), json!(d.updated_at));
    }
    Value::Object(out)
}
