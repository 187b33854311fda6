//! The generic management API handlers, mounted once per resource of the resource layer.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::extract::{Mgmt, read_json};
use crate::engine::authz;
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::filter;
use crate::resources::{Resource, WriteCtx, environments, ops};
use crate::state::{App, AppState};
use crate::store::sql_filter;
use crate::store::{Doc, ListQuery};

pub const JSON: &str = "application/json";
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Mounts the collection and item routes of `r`.
pub fn mount(router: Router<AppState>, r: &'static dyn Resource) -> Router<AppState> {
    let spec = r.spec();
    let m = spec.methods;
    let (collection, item) = if spec.kind == environments::KIND {
        (
            "/v1/environments".to_string(),
            "/v1/environments/{envId}".to_string(),
        )
    } else {
        let rest = spec.collection_rest("{parentId}");
        let c = format!("/v1/environments/{{envId}}{rest}");
        let i = format!("{c}/{{id}}");
        (c, i)
    };
    let mut coll: MethodRouter<AppState> = MethodRouter::new();
    if m.list {
        coll = coll.get(move |mg: Mgmt, q: Query<HashMap<String, String>>| list(r, mg, q));
    }
    if m.create {
        coll = coll.post(move |mg: Mgmt, h: HeaderMap, b: Body| create(r, mg, h, b));
    }
    let mut one: MethodRouter<AppState> = MethodRouter::new();
    if m.read {
        one = one.get(move |mg: Mgmt| read(r, mg));
    }
    if m.replace {
        one = one.put(move |mg: Mgmt, h: HeaderMap, b: Body| update(r, mg, h, b, false));
    }
    if m.patch {
        one = one.patch(move |mg: Mgmt, h: HeaderMap, b: Body| update(r, mg, h, b, true));
    }
    if m.delete {
        one = one.delete(move |mg: Mgmt| remove(r, mg));
    }
    router
        .route(&collection, coll.fallback(method_not_allowed))
        .route(&item, one.fallback(method_not_allowed))
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

pub fn render(app: &App, r: &dyn Resource, doc: &Doc) -> serde_json::Map<String, Value> {
    r.spec().render(app, doc)
}

pub async fn render_full(app: &App, r: &dyn Resource, doc: &Doc) -> ApiResult<Value> {
    let mut m = render(app, r, doc);
    r.decorate(app, doc, &mut m).await?;
    Ok(Value::Object(m))
}

/// Loads the parent named in the path (404 when it does not exist in this environment).
async fn parent_of(mg: &Mgmt, r: &dyn Resource) -> ApiResult<String> {
    match r.spec().parent {
        Some(_) => {
            let id = mg.param("parentId");
            if !r.parent_exists(&mg.app, &mg.env()?.id, id).await? {
                return Err(ApiError::not_found());
            }
            Ok(id.to_string())
        }
        None => Ok(String::new()),
    }
}

async fn load(mg: &Mgmt, r: &dyn Resource) -> ApiResult<Doc> {
    let spec = r.spec();
    if spec.kind == environments::KIND {
        return mg.env.clone().ok_or_else(ApiError::not_found);
    }
    let parent = parent_of(mg, r).await?;
    let doc = mg
        .app
        .store
        .read()
        .get(spec.kind, &mg.env()?.id, mg.param("id"))
        .await?
        .ok_or_else(ApiError::not_found)?;
    if doc.parent_id != parent {
        return Err(ApiError::not_found());
    }
    Ok(doc)
}

fn bad_param(name: &str, message: &str) -> ApiError {
    ApiError::one(Detail::new("INVALID_VALUE", Some(name.into()), message))
}

/// Reads `limit` and `cursor` from the query string.
pub fn paging(q: &HashMap<String, String>) -> ApiResult<(usize, Option<(String, String)>)> {
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::one(
                    Detail::new(
                        "OUT_OF_RANGE",
                        Some("limit".into()),
                        format!("limit must be an integer from 1 to {MAX_LIMIT}"),
                    )
                    .with_inner(json!({ "rangeMinimumValue": 1, "rangeMaximumValue": MAX_LIMIT })),
                ));
            }
        },
    };
    let after = match q.get("cursor") {
        None => None,
        Some(c) => {
            let raw = URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let pair = raw
                .as_deref()
                .and_then(|s| s.split_once('|'))
                .map(|(a, b)| (a.to_string(), b.to_string()));
            Some(pair.ok_or_else(|| bad_param("cursor", "The cursor is not valid."))?)
        }
    };
    Ok((limit, after))
}

pub fn cursor_of(doc: &Doc) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", doc.created_at, doc.id))
}

async fn list(
    r: &'static dyn Resource,
    mg: Mgmt,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let spec = r.spec();
    let is_env = spec.kind == environments::KIND;
    if is_env {
        // Environment-scoped admins list the environments their roles cover (filtered below);
        // an actor whose roles read no environment at all is refused.
        if mg
            .actor
            .readable_environments()
            .is_some_and(|ids| ids.is_empty())
        {
            return Err(super::extract::forbidden_env());
        }
    } else {
        mg.require(spec.area, false)?;
    }
    let (limit, after) = paging(&q)?;
    let mut condition = match q.get("filter") {
        Some(f) => Some(sql_filter::compile(
            &filter::parse(f)?,
            spec.filters,
            mg.app.store.dialect,
        )?),
        None => None,
    };
    let parent = if is_env {
        None
    } else {
        Some(parent_of(&mg, r).await?)
    };
    // Environments are listed across the organization, limited to those the actor can see.
    let scope_env = if is_env {
        mg.org_id.clone()
    } else {
        mg.env()?.id.clone()
    };
    if is_env {
        condition = environments::visibility_condition(&mg.actor, condition);
    }
    let query = ListQuery {
        kind: spec.kind,
        env_id: if is_env { "" } else { &scope_env },
        parent_id: if is_env {
            Some(&scope_env)
        } else {
            parent.as_deref().filter(|p| !p.is_empty())
        },
        condition,
        limit: limit + 1,
        after,
    };
    let mut reader = mg.app.store.read();
    let newest_first = match q.get("order").map(String::as_str) {
        None => r.newest_first(),
        Some("createdAt") => false,
        Some("-createdAt") => true,
        Some(_) => {
            return Err(ApiError::one(
                Detail::new(
                    "INVALID_VALUE",
                    Some("order".into()),
                    "Lists can be ordered by createdAt or -createdAt.",
                )
                .with_inner(json!({ "allowedValues": ["createdAt", "-createdAt"] })),
            ));
        }
    };
    let mut docs = reader.list_ordered(&query, newest_first).await?;
    let total = reader.count(&query).await?;
    let more = docs.len() > limit;
    docs.truncate(limit);
    let mut items = Vec::with_capacity(docs.len());
    for d in &docs {
        items.push(render_full(&mg.app, r, d).await?);
    }
    let base = if is_env {
        format!("{}/v1/environments", mg.app.public_url())
    } else {
        mg.app.env_href(
            &scope_env,
            &spec.collection_rest(parent.as_deref().unwrap_or_default()),
        )
    };
    let mut self_q: Vec<(String, String)> = q.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    self_q.sort();
    let qs = |pairs: &[(String, String)]| {
        if pairs.is_empty() {
            String::new()
        } else {
            format!(
                "?{}",
                serde_urlencoded::to_string(pairs).unwrap_or_default()
            )
        }
    };
    let mut links = json!({ "self": { "href": format!("{base}{}", qs(&self_q)) } });
    if more && let Some(last) = docs.last() {
        let mut next_q: Vec<(String, String)> = self_q
            .iter()
            .filter(|(k, _)| k != "cursor" && k != "limit")
            .cloned()
            .collect();
        next_q.push(("limit".into(), limit.to_string()));
        next_q.push(("cursor".into(), cursor_of(last)));
        links["next"] = json!({ "href": format!("{base}{}", qs(&next_q)) });
    }
    Ok(axum::Json(collection(links, r.embedded_key(), items, total)).into_response())
}

async fn create(
    r: &'static dyn Resource,
    mg: Mgmt,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let spec = r.spec();
    mg.require(spec.area, true)?;
    let (_, input) = read_json(&headers, body, &[JSON]).await?;
    let doc = if spec.kind == environments::KIND {
        environments::create(&mg.app, &mg.actor, &input).await?
    } else {
        let parent = parent_of(&mg, r).await?;
        let env = mg.env()?.clone();
        let mut tx = mg.app.store.begin().await?;
        let mut ctx = WriteCtx {
            app: &mg.app,
            tx: &mut tx,
            env: &env,
            org_id: &mg.org_id,
        };
        let doc = ops::create(&mut ctx, r, &input, &parent).await?;
        r.created_by(&mut ctx, &doc, &input, &mg.actor).await?;
        tx.commit().await?;
        mg.app.changed();
        doc
    };
    created(&mg.app, r, &doc).await
}

/// A HAL collection: `_links`, `_embedded.<key>`, `count` (all matches) and `size` (this page).
pub fn collection(links: Value, key: &str, items: Vec<Value>, count: i64) -> Value {
    let size = items.len();
    let mut embedded = serde_json::Map::new();
    embedded.insert(key.to_string(), Value::Array(items));
    json!({ "_links": links, "_embedded": embedded, "count": count, "size": size })
}

pub async fn created(app: &App, r: &dyn Resource, doc: &Doc) -> ApiResult<Response> {
    let body = render_full(app, r, doc).await?;
    Ok(created_with(app, r, doc, body))
}

/// 201 with `body` and the new document's `Location`.
pub fn created_with(app: &App, r: &dyn Resource, doc: &Doc, body: Value) -> Response {
    let location = r.spec().href(app, doc);
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = location.parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

async fn read(r: &'static dyn Resource, mg: Mgmt) -> ApiResult<Response> {
    mg.require(r.spec().area, false)?;
    let doc = load(&mg, r).await?;
    let body = render_full(&mg.app, r, &doc).await?;
    Ok(axum::Json(authz::visible_attributes(body, mg.attributes.as_deref())).into_response())
}

async fn update(
    r: &'static dyn Resource,
    mg: Mgmt,
    headers: HeaderMap,
    body: Body,
    partial: bool,
) -> ApiResult<Response> {
    let spec = r.spec();
    mg.require(
        if spec.kind == environments::KIND {
            crate::engine::authz::Area::Config
        } else {
            spec.area
        },
        true,
    )?;
    let (_, input) = read_json(&headers, body, &[JSON]).await?;
    let env = mg.env()?.clone();
    let mut tx = mg.app.store.begin().await?;
    // Re-read inside the transaction so concurrent writers cannot interleave.
    let existing = match spec.kind {
        environments::KIND => tx.get(spec.kind, &env.env_id, &env.id).await?,
        _ => {
            let parent = parent_of(&mg, r).await?;
            tx.get(spec.kind, &env.id, mg.param("id"))
                .await?
                .filter(|d| d.parent_id == parent)
        }
    }
    .ok_or_else(ApiError::not_found)?;
    let mut ctx = WriteCtx {
        app: &mg.app,
        tx: &mut tx,
        env: &env,
        org_id: &mg.org_id,
    };
    r.writable_by(&mut ctx, &existing, &mg.actor).await?;
    let doc = match &mg.attributes {
        // A PATCH names only what changes; a limited PUT replaces only the allowed paths.
        Some(attrs) => {
            let merged = if partial {
                let mut whole = existing.data.clone();
                ops::merge_patch(&mut whole, &input);
                authz::writable_attributes(&existing.data, &whole, attrs)
            } else {
                authz::writable_attributes(&existing.data, &input, attrs)
            };
            ops::replace(&mut ctx, r, &existing, &merged).await?
        }
        None if partial => ops::patch(&mut ctx, r, &existing, &input).await?,
        None => ops::replace(&mut ctx, r, &existing, &input).await?,
    };
    tx.commit().await?;
    mg.app.changed();
    if spec.kind == environments::KIND {
        mg.app.environments.remove(&doc.id);
    }
    let body = render_full(&mg.app, r, &doc).await?;
    Ok(axum::Json(authz::visible_attributes(body, mg.attributes.as_deref())).into_response())
}

async fn remove(r: &'static dyn Resource, mg: Mgmt) -> ApiResult<StatusCode> {
    let spec = r.spec();
    mg.require(spec.area, true)?;
    let doc = load(&mg, r).await?;
    r.deletable_by(&mg.actor, &mg.org_id, &doc)?;
    let env = mg.env()?.clone();
    let mut tx = mg.app.store.begin().await?;
    let mut ctx = WriteCtx {
        app: &mg.app,
        tx: &mut tx,
        env: &env,
        org_id: &mg.org_id,
    };
    r.writable_by(&mut ctx, &doc, &mg.actor).await?;
    ops::delete(&mut ctx, r, &doc).await?;
    tx.commit().await?;
    mg.app.changed();
    if spec.kind == environments::KIND {
        mg.app.keys.forget_env(&doc.id);
        mg.app.environments.remove(&doc.id);
    }
    Ok(StatusCode::NO_CONTENT)
}

pub fn get_route<H, T>(h: H) -> MethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    get(h).fallback(method_not_allowed)
}
