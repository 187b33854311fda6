//! `/{envId}/as/authorize`, `/{envId}/flows/{flowId}` and `/{envId}/as/resume`: the browser
//! (or pi.flow client) side of sign-on.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use super::extract::{media_type, read_bytes};
use super::html;
use crate::engine::flows::{self, Flow, FlowApp, FlowCtx, FlowPolicy};
use crate::engine::oauth::authorize::{self, AuthorizeError, AuthorizeRequest, ResponseMode};
use crate::engine::oauth::{code_flow, grants, issue::SignOn};
use crate::engine::sessions::{self, Session};
use crate::error::{ApiError, ApiResult};
use crate::resources::{applications, policies};
use crate::state::{App, AppState};
use crate::store::Doc;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

async fn env_doc(app: &App, env_id: &str) -> ApiResult<Doc> {
    super::oauth::known_env(app, env_id).await
}

pub(crate) fn remote_ip(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|s| s.trim().to_string())
}

pub async fn authorize_get(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    authorize(&app, &env_id, params, &headers)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn authorize_post(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let form = super::oauth::read_form(&headers, body).await?;
        authorize(&app, &env_id, form, &headers).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// Picks the sign-on policy: the first `acr_values` name assigned to the application, else the
/// application's assignments by priority, else the environment default. `acr_values` only ever
/// chooses among the application's assigned policies (PingOne's rule); an application without
/// assignments has just the environment default, so a request cannot name a weaker policy of
/// the environment (`Single_Factor` where the default asks for MFA).
async fn choose_policy(
    app: &App,
    env_id: &str,
    client: &Doc,
    acr_values: &[String],
) -> ApiResult<Option<Doc>> {
    let mut assigned: Vec<Doc> = app
        .cached_children(applications::ASSIGNMENT_KIND, env_id, &client.id)
        .await?
        .to_vec();
    assigned.sort_by_key(|a| a.data["priority"].as_i64().unwrap_or(i64::MAX));
    let mut candidates = Vec::new();
    for a in &assigned {
        let id = a.data["signOnPolicy"]["id"].as_str().unwrap_or_default();
        if let Some(p) = app.cached_doc(policies::KIND, env_id, id).await? {
            candidates.push(p);
        }
    }
    if candidates.is_empty() {
        candidates = app
            .cached_children(policies::KIND, env_id, "")
            .await?
            .to_vec();
        candidates.retain(|p| p.data["default"] == true);
    }
    if !acr_values.is_empty() {
        for name in acr_values {
            if let Some(p) = candidates
                .iter()
                .find(|p| p.data["name"].as_str() == Some(name.as_str()))
            {
                return Ok(Some(p.clone()));
            }
        }
        return Ok(None);
    }
    Ok(candidates.into_iter().next())
}

fn redirect_error(
    redirect_uri: &str,
    mode: ResponseMode,
    state: Option<String>,
    error: &str,
    description: &str,
) -> Response {
    let mut params = vec![
        ("error".to_string(), error.to_string()),
        ("error_description".to_string(), description.to_string()),
    ];
    if let Some(s) = state {
        params.push(("state".into(), s));
    }
    deliver(redirect_uri, mode, &params, None)
}

/// Sends authorization response parameters to the client in the requested mode.
fn deliver(
    redirect_uri: &str,
    mode: ResponseMode,
    params: &[(String, String)],
    pi_flow: Option<Value>,
) -> Response {
    let qs = serde_urlencoded::to_string(params).unwrap_or_default();
    match mode {
        ResponseMode::Query => {
            let sep = if redirect_uri.contains('?') { '&' } else { '?' };
            found(&format!("{redirect_uri}{sep}{qs}"))
        }
        ResponseMode::Fragment => found(&format!("{redirect_uri}#{qs}")),
        ResponseMode::FormPost => form_post(redirect_uri, params),
        ResponseMode::PiFlow => {
            let mut body = pi_flow.unwrap_or_else(|| json!({}));
            let mut resp = serde_json::Map::new();
            for (k, v) in params {
                let v = if k == "expires_in" {
                    v.parse::<i64>()
                        .map(Value::from)
                        .unwrap_or_else(|_| json!(v))
                } else {
                    json!(v)
                };
                resp.insert(k.clone(), v);
            }
            body["authorizeResponse"] = Value::Object(resp);
            let mut r = Json(body).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
    }
}

/// The form_post response (OAuth 2.0 Form Post Response Mode): a page that posts the
/// parameters to the redirect URI. Its one script runs by nonce; the form may go only to the
/// redirect URI's origin, and the page cannot be framed.
fn form_post(redirect_uri: &str, params: &[(String, String)]) -> Response {
    let inputs: String = params
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\"/>",
                html::escape(k),
                html::escape(v)
            )
        })
        .collect();
    let nonce = URL_SAFE_NO_PAD.encode(crate::engine::secrets::random_bytes(18));
    let page = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Submit</title></head>\
         <body><form method=\"post\" action=\"{}\">{inputs}\
         <noscript><button type=\"submit\">Continue</button></noscript></form>\
         <script nonce=\"{nonce}\">document.forms[0].submit()</script></body></html>",
        html::escape(redirect_uri)
    );
    // A native app's custom scheme is its own source (`com.example.app:`).
    let form_action = html::origin(redirect_uri)
        .or_else(|| {
            let scheme = redirect_uri.split_once(':')?.0;
            let plain = scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            (plain && !scheme.is_empty()).then(|| format!("{scheme}:"))
        })
        .unwrap_or_else(|| "'none'".into());
    let mut r = Html(page).into_response();
    html::security_headers(
        &mut r,
        &format!(
            "default-src 'none'; script-src 'nonce-{nonce}'; form-action {form_action}; \
             frame-ancestors 'none'; base-uri 'none'"
        ),
    );
    r
}

fn found(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Adds a `Set-Cookie`, unless the response sets one already (a sign-on that replaced the
/// session cookie decides over the cookie the request started with).
fn with_cookie(mut r: Response, cookies: Option<Vec<String>>) -> Response {
    if r.headers().contains_key(header::SET_COOKIE) {
        return r;
    }
    for c in cookies.into_iter().flatten() {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

async fn authorize(
    app: &App,
    env_id: &str,
    params: Vec<(String, String)>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    env_doc(app, env_id).await?;
    let client_id = params
        .iter()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let client = applications::find_by_client_id(app, env_id, &client_id)
        .await?
        .ok_or_else(|| {
            ApiError::one(crate::error::Detail::invalid(
                "client_id",
                "The client_id does not name an application of this environment.",
            ))
        })?;
    let params = crate::engine::oauth::request_object::merge(app, &client, params).await?;
    let req = match authorize::validate(&client, &params) {
        Ok(r) => r,
        Err(AuthorizeError::Direct(e)) => return Err(e),
        Err(AuthorizeError::Redirect {
            redirect_uri,
            mode,
            state,
            error,
            description,
        }) => {
            return Ok(redirect_error(
                &redirect_uri,
                mode,
                state,
                error,
                &description,
            ));
        }
    };
    let fail = |error: &str, description: &str| {
        redirect_error(
            req.redirect_uri.as_deref().unwrap_or_default(),
            req.response_mode,
            req.state.clone(),
            error,
            description,
        )
    };
    let pi_flow_error = |e: ApiError| -> ApiResult<Response> { Err(e) };
    if let Err(e) = grants::resolve(app, &client, &req.scopes).await {
        return match (e, req.response_mode) {
            (ApiError::OAuth(o), ResponseMode::PiFlow) => pi_flow_error(ApiError::OAuth(o)),
            (ApiError::OAuth(o), _) => Ok(fail(o.error, &o.description)),
            (other, _) => Err(other),
        };
    }
    // login_hint_token: the application vouches for the user; the flow starts past identification.
    let hinted_user = match params.iter().find(|(k, _)| k == "login_hint_token") {
        Some((_, token)) => {
            match crate::engine::oauth::login_hint::user_of(app, &client, token).await {
                Ok(u) => Some(u.id),
                Err(e) if req.response_mode == ResponseMode::PiFlow => return Err(e),
                Err(ApiError::InvalidData(details)) => {
                    let why = details
                        .first()
                        .map(|d| d.message.clone())
                        .unwrap_or_default();
                    return Ok(fail("invalid_request", &why));
                }
                Err(e) => return Err(e),
            }
        }
        None => None,
    };
    let Some(policy) = choose_policy(app, env_id, &client, &req.acr_values).await? else {
        return Ok(fail(
            "invalid_request",
            "No sign-on policy named in acr_values is assigned to the application.",
        ));
    };
    let mut actions = app
        .cached_children(policies::ACTION_KIND, env_id, &policy.id)
        .await?
        .to_vec();
    actions.sort_by_key(|a| a.data["priority"].as_i64().unwrap_or(i64::MAX));

    // The browser session: reuse a live one, else start one (stored with the flow).
    let cookie = sessions::cookie_of(headers);
    let (cookie, existing, fresh) = match sessions::find(app, env_id, cookie.as_deref()).await? {
        Some(live) => (cookie.unwrap_or_default(), Some(live), None),
        None => {
            let (c, s) = sessions::start(env_id);
            (c, None, Some(s))
        }
    };
    let session = existing
        .as_ref()
        .map(|(_, s)| s)
        .or(fresh.as_ref())
        .cloned()
        .unwrap_or_default();
    let set_cookie = fresh
        .is_some()
        .then(|| sessions::set_cookie(app, env_id, &cookie));
    let mut flow = Flow {
        id: uuid::Uuid::new_v4().to_string(),
        env_id: env_id.to_string(),
        status: String::new(),
        created_at: crate::clock::now(),
        binding: sessions::hash(&cookie),
        application: FlowApp {
            id: client.id.clone(),
            name: client.data["name"].as_str().unwrap_or_default().to_string(),
        },
        request: Some(req.clone()),
        policy: FlowPolicy {
            id: policy.id.clone(),
            name: policy.data["name"].as_str().unwrap_or_default().to_string(),
            actions: actions.iter().map(|a| a.data.clone()).collect(),
        },
        step: 0,
        user_id: hinted_user,
        amr: vec![],
        auth_time: None,
        error: None,
        scratch: Default::default(),
    };
    let ctx = FlowCtx {
        app,
        session: &session,
        remote_ip: remote_ip(headers),
    };
    flows::run(&ctx, &mut flow).await?;
    let prompt_none = req.prompt.iter().any(|p| p == "none");
    if prompt_none && !flow.is_done() {
        // Nothing is stored, not even a new session: no cookie either.
        return Ok(fail("login_required", "The user must sign on."));
    }
    if flow.is_done() && req.response_mode != ResponseMode::PiFlow {
        // Single sign-on completed the flow at once: answer the client directly (the flow is
        // never stored).
        return Ok(with_cookie(
            finish(app, &cookie, existing, flow, false).await?,
            set_cookie,
        ));
    }
    flows::save_new(app, &flow, fresh.as_ref().map(|s| (cookie.as_str(), s))).await?;
    if req.response_mode == ResponseMode::PiFlow {
        let body = flows::render(app, &flow, crate::clock::unix() + flows::IDLE_SECONDS).await?;
        return Ok(with_cookie(Json(body).into_response(), set_cookie));
    }
    let location = match client.data["loginPageUrl"].as_str() {
        Some(page) => {
            let sep = if page.contains('?') { '&' } else { '?' };
            format!("{page}{sep}environmentId={env_id}&flowId={}", flow.id)
        }
        None => format!("{}/{env_id}/signon/?flowId={}", app.public_url(), flow.id),
    };
    Ok(with_cookie(found(&location), set_cookie))
}

/// Turns a finished flow into the client's response (single use: a stored flow is consumed).
/// `session` is the browser's session as read with the flow.
async fn finish(
    app: &App,
    cookie: &str,
    session: Option<(crate::store::runtime::Item, Session)>,
    flow: Flow,
    stored: bool,
) -> ApiResult<Response> {
    let req: AuthorizeRequest = flow.request.clone().ok_or_else(|| {
        ApiError::InvalidRequest("This flow has no authorization request.".into())
    })?;
    if stored && !app.store.runtime_delete(flows::KIND, &flow.id).await? {
        return Err(ApiError::NotFound(
            "The flow was not found or has expired.".into(),
        ));
    }
    let redirect_uri = req.redirect_uri.clone().unwrap_or_default();
    if flow.status == flows::FAILED {
        let e = flow.error.clone().unwrap_or(flows::FlowError {
            error: "access_denied".into(),
            description: "The sign-on failed.".into(),
        });
        let body = if req.response_mode == ResponseMode::PiFlow {
            Some(flows::render(app, &flow, crate::clock::unix()).await?)
        } else {
            None
        };
        let mut params = vec![
            ("error".to_string(), e.error),
            ("error_description".to_string(), e.description),
        ];
        if let Some(s) = &req.state {
            params.push(("state".into(), s.clone()));
        }
        return Ok(deliver(&redirect_uri, req.response_mode, &params, body));
    }
    let user_id = flow
        .user_id
        .clone()
        .ok_or_else(|| ApiError::internal("completed flow without a user"))?;
    let auth_time = flow.auth_time.unwrap_or_else(crate::clock::unix);
    let signed = sessions::sign_on(
        app,
        &flow.env_id,
        cookie,
        session,
        &user_id,
        &flow.amr,
        auth_time,
    )
    .await?;
    let client = applications::cached(app, &flow.env_id, &flow.application.id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let scopes = grants::resolve(app, &client, &req.scopes).await?;
    let sign_on = SignOn {
        user_id,
        session_id: signed.session.id.clone(),
        session_key: signed.key.clone(),
        auth_time,
        amr: flow.amr.clone(),
        acr: flow.policy.name.clone(),
        nonce: req.nonce.clone(),
    };
    let params =
        code_flow::authorization_response(app, &flow.env_id, &client, &req, &scopes, &sign_on)
            .await?;
    let body = if req.response_mode == ResponseMode::PiFlow {
        Some(flows::render(app, &flow, crate::clock::unix()).await?)
    } else {
        None
    };
    let set_cookie = signed
        .new_cookie
        .map(|c| sessions::set_cookie(app, &flow.env_id, &c));
    Ok(with_cookie(
        deliver(&redirect_uri, req.response_mode, &params, body),
        set_cookie,
    ))
}

/// A flow that belongs to the calling browser, with the browser's session.
pub(crate) struct OwnedFlow {
    pub item: crate::store::runtime::Item,
    pub flow: Flow,
    pub cookie: String,
    /// The live session of the cookie in this environment, read with the flow.
    pub session: Option<(crate::store::runtime::Item, Session)>,
}

impl OwnedFlow {
    /// The session as the flow actions see it (empty when it has ended): single sign-on,
    /// conditions on the last sign-on.
    pub fn session_view(&self) -> Session {
        self.session
            .as_ref()
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }
}

/// Loads a flow (and the session, in the same statement) and checks it belongs to the calling
/// browser (its `ST` cookie). Shared with the hosted sign-on pages (`signon.rs`).
pub(crate) async fn owned_flow(
    app: &App,
    env_id: &str,
    flow_id: &str,
    headers: &HeaderMap,
) -> ApiResult<OwnedFlow> {
    env_doc(app, env_id).await?;
    let cookie = sessions::cookie_of(headers).unwrap_or_default();
    let key = sessions::key_of(Some(&cookie));
    let (item, flow, session) = flows::load(app, env_id, flow_id, key.as_deref()).await?;
    let session = sessions::of_item(session, env_id)?;
    // The flow's cookie, or the one that replaced it when this browser signed on meanwhile.
    let bound = |k: &str| crate::engine::secrets::secret_eq(k, &flow.binding);
    let previous = session
        .as_ref()
        .and_then(|(_, s)| s.rotated_from.as_deref());
    if !(key.as_deref().is_some_and(bound) || previous.is_some_and(bound)) {
        return Err(ApiError::Forbidden(
            "The flow belongs to another session.".into(),
        ));
    }
    Ok(OwnedFlow {
        item,
        flow,
        cookie,
        session,
    })
}

#[derive(serde::Deserialize)]
pub struct ResumeQuery {
    #[serde(rename = "flowId")]
    flow_id: Option<String>,
}

pub async fn resume(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
    Query(q): Query<ResumeQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let flow_id = q
        .flow_id
        .ok_or_else(|| ApiError::InvalidRequest("flowId is required.".into()))?;
    let owned = owned_flow(&app, &env_id, &flow_id, &headers).await?;
    let flow = &owned.flow;
    if !flow.is_done() {
        let pi = flow
            .request
            .as_ref()
            .is_some_and(|r| r.response_mode == ResponseMode::PiFlow);
        if pi {
            return Err(ApiError::InvalidRequest(format!(
                "The flow is not complete: it is {}.",
                flow.status
            )));
        }
        return Ok(found(&format!(
            "{}/{env_id}/signon/?flowId={flow_id}",
            app.public_url()
        )));
    }
    finish(&app, &owned.cookie, owned.session, owned.flow, true).await
}

pub async fn get_flow(
    State(app): State<AppState>,
    Path((env_id, flow_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let OwnedFlow { item, flow, .. } = owned_flow(&app, &env_id, &flow_id, &headers).await?;
    // Reading a flow keeps it alive.
    flows::save(&app, &item, &flow).await?;
    Ok(
        Json(flows::render(&app, &flow, crate::clock::unix() + flows::IDLE_SECONDS).await?)
            .into_response(),
    )
}

const ACTION_PREFIX: &str = "application/vnd.pingidentity.";

pub async fn post_flow(
    State(app): State<AppState>,
    Path((env_id, flow_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let mt = media_type(&headers);
    let action = mt
        .strip_prefix(ACTION_PREFIX)
        .map(|a| a.strip_suffix("+json").unwrap_or(a).to_string())
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(
                "Flow actions use Content-Type application/vnd.pingidentity.<action>+json.".into(),
            )
        })?;
    let owned = owned_flow(&app, &env_id, &flow_id, &headers).await?;
    let session = owned.session_view();
    let OwnedFlow { item, mut flow, .. } = owned;
    let bytes = read_bytes(body).await?;
    let input = super::extract::parse_json(&bytes)?;
    if !input.is_object() {
        return Err(ApiError::InvalidRequest(
            "The request body must be a JSON object.".into(),
        ));
    }
    // Match the action name case-insensitively against what the flow offers.
    let offered = flows::allowed_actions(&flow);
    let Some(name) = offered
        .iter()
        .find(|a| a.eq_ignore_ascii_case(&action))
        .copied()
    else {
        return Err(ApiError::InvalidRequest(format!(
            "The action '{action}' is not allowed while the flow is {}.",
            flow.status
        )));
    };
    let ctx = FlowCtx {
        app: &app,
        session: &session,
        remote_ip: remote_ip(&headers),
    };
    let result = flows::act(&ctx, &mut flow, name, &input).await;
    // Failed attempts still count (lockout) and keep the flow alive.
    flows::save(&app, &item, &flow).await?;
    result?;
    Ok(
        Json(flows::render(&app, &flow, crate::clock::unix() + flows::IDLE_SECONDS).await?)
            .into_response(),
    )
}
