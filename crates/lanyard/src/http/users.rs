//! User endpoints beyond the generic layer: creation in both media types (create and import).

use axum::Router;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;

use super::extract::{Mgmt, read_json};
use super::mgmt::{JSON, created};
use crate::engine::authz::Area;
use crate::error::ApiResult;
use crate::resources::users::{USER_IMPORT, USERS};
use crate::resources::{Resource, WriteCtx, ops};
use crate::state::AppState;

pub const IMPORT: &str = "application/vnd.pingidentity.user.import+json";

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/v1/environments/{envId}/users", post(create))
}

async fn create(mg: Mgmt, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    mg.require(Area::Identity, true)?;
    let (media, input) = read_json(&headers, body, &[JSON, IMPORT]).await?;
    let r: &dyn Resource = if media == IMPORT {
        &USER_IMPORT
    } else {
        &USERS
    };
    let env = mg.env()?.clone();
    let mut tx = mg.app.store.begin().await?;
    let mut ctx = WriteCtx {
        app: &mg.app,
        tx: &mut tx,
        env: &env,
        org_id: &mg.org_id,
    };
    let doc = ops::create(&mut ctx, r, &input, "").await?;
    tx.commit().await?;
    created(&mg.app, &USERS, &doc).await
}
