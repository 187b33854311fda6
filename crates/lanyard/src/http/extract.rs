//! Extractors of the management API: the authenticated actor with the target environment,
//! and JSON bodies read under a size limit with PingOne errors for every failure.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Path};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::engine::authz::{self, Actor, ActorKind, Area};
use crate::error::{ApiError, ApiResult};
use crate::resources::environments;
use crate::state::AppState;
use crate::store::Doc;

pub const MAX_BODY: usize = 1024 * 1024;

/// An authenticated management API call, with the environment named in the path (if any).
pub struct Mgmt {
    pub app: AppState,
    pub actor: Actor,
    pub env: Option<Doc>,
    pub org_id: String,
    pub params: HashMap<String, String>,
    /// Self-service calls: the user attributes the token's `p1:read:user` /
    /// `p1:update:user` scopes limit it to (their `schemaAttributes`); None = all.
    pub attributes: Option<Vec<String>>,
}

impl Mgmt {
    pub fn env(&self) -> ApiResult<&Doc> {
        self.env.as_ref().ok_or_else(ApiError::not_found)
    }
    pub fn param(&self, name: &str) -> &str {
        self.params
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }
    /// Refuses with 403 unless the actor's roles allow `area` (read, or write) here.
    pub fn require(&self, area: Area, write: bool) -> ApiResult<()> {
        // A user actor reached here only through the self-service check of the extractor.
        if self.actor.kind == ActorKind::User {
            return if area == Area::Identity {
                Ok(())
            } else {
                Err(ApiError::Forbidden(
                    "The access token does not allow this request.".into(),
                ))
            };
        }
        let allowed = match &self.env {
            Some(env) => self.actor.may(&env.id, &self.org_id, area, write),
            None => self.actor.may_in_org(area, write),
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "The actor does not have the permission for this request.".into(),
            ))
        }
    }
}

pub fn forbidden_env() -> ApiError {
    ApiError::Forbidden("The environment does not exist or is not visible to this actor.".into())
}

impl FromRequestParts<AppState> for Mgmt {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let params: HashMap<String, String> =
            Path::<HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map(|p| p.0)
                .unwrap_or_default();
        let authorization = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let actor = authenticate_cached(state, authorization).await?;
        for (name, value) in &params {
            // Ids are UUIDs; notification templates are named by path key instead.
            let template = crate::resources::templates::template(value).is_some();
            if uuid::Uuid::parse_str(value).is_err() && !template {
                return Err(if name == "envId" {
                    forbidden_env()
                } else {
                    ApiError::not_found()
                });
            }
        }
        if actor.kind == ActorKind::User {
            // Self-service: the user's own record, in the user's environment, with the scope.
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map(|m| m.as_str())
                .unwrap_or_default();
            let needed = authz::self_service_scope(parts.method.as_str(), route);
            let own =
                params.get("envId") == Some(&actor.env_id) && params.get("id") == Some(&actor.id);
            // The scope itself or one of its `{scope}:{suffix}` sub-scopes.
            let granted: Vec<String> = match needed {
                Some(n) => actor
                    .scopes
                    .iter()
                    .filter(|s| *s == n || s.strip_prefix(n).is_some_and(|r| r.starts_with(':')))
                    .cloned()
                    .collect(),
                None => vec![],
            };
            if !own || granted.is_empty() {
                return Err(ApiError::Forbidden(
                    "The access token does not allow this request.".into(),
                ));
            }
            let attributes =
                crate::resources::resources::schema_attributes(state, &actor.env_id, &granted)
                    .await?;
            let env_id = actor.env_id.clone();
            let env = state
                .store
                .read()
                .get(environments::KIND, &env_id, &env_id)
                .await?
                .ok_or_else(forbidden_env)?;
            let org_id = env.data["organization"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            return Ok(Mgmt {
                app: state.clone(),
                actor,
                env: Some(env),
                org_id,
                params,
                attributes,
            });
        }
        let mut org_id = actor.org_id.clone();
        let env = match params.get("envId") {
            Some(env_id) => {
                let env = environments::cached(state, env_id)
                    .await?
                    .ok_or_else(forbidden_env)?;
                org_id = env.data["organization"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if !actor.sees(&env.id, &org_id) {
                    return Err(forbidden_env());
                }
                Some(env)
            }
            None => None,
        };
        Ok(Mgmt {
            app: state.clone(),
            actor,
            env,
            org_id,
            params,
            attributes: None,
        })
    }
}

/// Verifies a bearer token, remembering the result for a moment (never past the token's
/// expiry): the signature check and the role lookups are then skipped on repeated calls.
async fn authenticate_cached(state: &AppState, authorization: Option<&str>) -> ApiResult<Actor> {
    let key = authorization.map(crate::engine::oauth::issue::sha256_b64);
    if let Some(a) = key.as_ref().and_then(|k| state.actors.get(k)) {
        return Ok(a);
    }
    let actor = crate::engine::tokens::authenticate(state, authorization).await?;
    if let Some(k) = key {
        let exp = authorization
            .and_then(|h| h.split_whitespace().nth(1))
            .and_then(crate::engine::keys::UnverifiedJwt::parse)
            .and_then(|j| j.claims["exp"].as_i64());
        let left = exp.map(|e| e - crate::clock::unix()).unwrap_or(0).max(0) as u64;
        let until = std::time::Instant::now() + std::time::Duration::from_secs(left);
        state.actors.put(k, actor.clone(), Some(until));
    }
    Ok(actor)
}

/// The media type of a request, lower-cased, without parameters.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

pub async fn read_bytes(body: Body) -> ApiResult<axum::body::Bytes> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::PayloadTooLarge)
        }
        Err(_) => Err(ApiError::InvalidRequest(
            "The request body could not be read.".into(),
        )),
    }
}

/// Reads a JSON body whose media type is one of `accepted`; returns the media type used.
pub async fn read_json(
    headers: &HeaderMap,
    body: Body,
    accepted: &[&str],
) -> ApiResult<(String, Value)> {
    let mt = media_type(headers);
    if !accepted.iter().any(|a| a.eq_ignore_ascii_case(&mt)) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "The Content-Type '{mt}' is not supported here. Use one of: {}.",
            accepted.join(", ")
        )));
    }
    let bytes = read_bytes(body).await?;
    let value = parse_json(&bytes)?;
    Ok((mt, value))
}

pub fn parse_json(bytes: &[u8]) -> ApiResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::InvalidRequest(format!(
            "The request body is not valid JSON (line {}, column {}).",
            e.line(),
            e.column()
        ))
    })
}
