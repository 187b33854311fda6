//! The flow engine: a persisted state machine that walks a sign-on policy's actions in priority
//! order. Each action type (LOGIN, and later MFA, identifier-first, progressive profiling…) is
//! one `ActionType` implementation: the status it waits in, the flow actions (media types) it
//! accepts there, and what each does. OIDC authorize, pi.flow and the hosted pages all drive
//! the same flows.

pub mod access;
pub mod identifier_first;
pub mod identify;
pub mod login;
pub mod mfa;
pub mod recovery;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clock;
use crate::engine::oauth::authorize::AuthorizeRequest;
use crate::engine::sessions::Session;
use crate::error::{ApiError, ApiResult, Detail};
use crate::state::App;
use crate::store::runtime::{Item, NewItem};

pub const KIND: &str = "flow";
/// Flows expire after 15 minutes without activity.
pub const IDLE_SECONDS: i64 = 15 * 60;

/// Flow scratch keys that the flow object shows: extra `_embedded` entries (an action's
/// devices), extra top-level fields (`selectedDevice`) and a flow-level `error` (a passcode
/// that could not be sent).
pub const SHOWN_EMBEDDED: &str = "embedded";
pub const SHOWN_FIELDS: &str = "view";
pub const SHOWN_ERROR: &str = "flowError";
/// The flow's user as `_embedded.user` shows them (set with the user, see `Flow::set_user`).
const SHOWN_USER: &str = "embeddedUser";

pub const COMPLETED: &str = "COMPLETED";
pub const FAILED: &str = "FAILED";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowApp {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowPolicy {
    pub id: String,
    pub name: String,
    /// The policy's actions, sorted by priority, as they were when the flow started.
    pub actions: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowError {
    /// The OAuth error the client receives (`access_denied`, `login_required`, …).
    pub error: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    pub id: String,
    pub env_id: String,
    pub status: String,
    pub created_at: String,
    /// SHA-256 of the `ST` cookie that owns this flow.
    pub binding: String,
    pub application: FlowApp,
    pub request: Option<AuthorizeRequest>,
    pub policy: FlowPolicy,
    pub step: usize,
    pub user_id: Option<String>,
    #[serde(default)]
    pub amr: Vec<String>,
    pub auth_time: Option<i64>,
    pub error: Option<FlowError>,
    /// Per-action scratch state (recovery codes, counters), keyed by the action's purpose.
    #[serde(default)]
    pub scratch: Map<String, Value>,
}

impl Flow {
    pub fn is_done(&self) -> bool {
        self.status == COMPLETED || self.status == FAILED
    }
    fn current(&self) -> Option<&Value> {
        self.policy.actions.get(self.step)
    }
    /// Records an authentication method (`pwd`, `sms`, …) once.
    pub fn add_amr(&mut self, method: &str) {
        if !self.amr.iter().any(|a| a == method) {
            self.amr.push(method.into());
        }
    }
    /// The flow's user from here on; what the flow object shows of them is kept with the flow,
    /// so that showing the flow needs no read of the user.
    pub fn set_user(&mut self, user: &crate::store::Doc) {
        self.user_id = Some(user.id.clone());
        self.scratch.insert(SHOWN_USER.into(), user_view(user));
    }
    pub fn fail(&mut self, error: &str, description: &str) {
        self.status = FAILED.into();
        self.error = Some(FlowError {
            error: error.into(),
            description: description.into(),
        });
    }
}

/// What an action decided.
pub enum Step {
    /// Wait for the user in this status.
    Wait(&'static str),
    /// This action is satisfied: go on with the next one.
    Next,
    /// End the flow with an OAuth error for the client.
    Fail(&'static str, String),
}

/// What the engine knows about the request driving the flow.
pub struct FlowCtx<'a> {
    pub app: &'a App,
    /// The browser session this flow belongs to.
    pub session: &'a Session,
    pub remote_ip: Option<String>,
}

#[async_trait::async_trait]
pub trait ActionType: Send + Sync {
    fn type_name(&self) -> &'static str;
    /// Called when the flow reaches this action.
    async fn enter(&self, ctx: &FlowCtx<'_>, flow: &mut Flow, cfg: &Value) -> ApiResult<Step>;
    /// The flow actions accepted in the flow's current status.
    fn actions(&self, flow: &Flow, cfg: &Value) -> Vec<&'static str>;
    async fn act(
        &self,
        ctx: &FlowCtx<'_>,
        flow: &mut Flow,
        cfg: &Value,
        action: &str,
        body: &Value,
    ) -> ApiResult<Step>;
}

static LOGIN: login::Login = login::Login;
static MFA: mfa::Mfa = mfa::Mfa;
static IDENTIFIER_FIRST: identifier_first::IdentifierFirst = identifier_first::IdentifierFirst;

fn action_type(name: &str) -> Option<&'static dyn ActionType> {
    match name {
        "LOGIN" => Some(&LOGIN),
        "MULTI_FACTOR_AUTHENTICATION" => Some(&MFA),
        "IDENTIFIER_FIRST" => Some(&IDENTIFIER_FIRST),
        _ => None,
    }
}

/// Actions accepted in any waiting status.
const ALWAYS: &[&str] = &["session.reset"];

pub fn allowed_actions(flow: &Flow) -> Vec<&'static str> {
    if flow.is_done() {
        return vec![];
    }
    let mut out = match flow
        .current()
        .and_then(|cfg| Some((action_type(cfg["type"].as_str()?)?, cfg)))
    {
        Some((t, cfg)) => t.actions(flow, cfg),
        None => vec![],
    };
    out.extend_from_slice(ALWAYS);
    out
}

/// Runs the policy from the current step until an action waits for the user, or the end.
pub async fn run(ctx: &FlowCtx<'_>, flow: &mut Flow) -> ApiResult<()> {
    while !flow.is_done() {
        let Some(cfg) = flow.current().cloned() else {
            match access::refusal(ctx.app, flow).await? {
                Some(why) => flow.fail("access_denied", why),
                None => flow.status = COMPLETED.into(),
            }
            break;
        };
        if !condition_holds(ctx, flow, &cfg).await? {
            flow.step += 1;
            continue;
        }
        let t = cfg["type"].as_str().and_then(action_type);
        let Some(t) = t else {
            flow.fail(
                "server_error",
                &format!(
                    "The sign-on action type {} is not supported yet.",
                    cfg["type"]
                ),
            );
            break;
        };
        match t.enter(ctx, flow, &cfg).await? {
            Step::Wait(status) => {
                flow.status = status.into();
                break;
            }
            Step::Next => flow.step += 1,
            Step::Fail(e, d) => flow.fail(e, &d),
        }
    }
    Ok(())
}

/// Performs a flow action (selected by media type) and runs the flow on.
pub async fn act(ctx: &FlowCtx<'_>, flow: &mut Flow, action: &str, body: &Value) -> ApiResult<()> {
    if !allowed_actions(flow).contains(&action) {
        return Err(ApiError::InvalidRequest(format!(
            "The action '{action}' is not allowed while the flow is {}.",
            flow.status
        )));
    }
    if action == "session.reset" {
        flow.user_id = None;
        flow.amr.clear();
        flow.auth_time = None;
        flow.step = 0;
        flow.scratch.clear();
        return run(ctx, flow).await;
    }
    let cfg = flow
        .current()
        .cloned()
        .ok_or_else(|| ApiError::InvalidRequest("The flow has no pending action.".into()))?;
    let t = cfg["type"]
        .as_str()
        .and_then(action_type)
        .ok_or_else(|| ApiError::internal("unknown action type"))?;
    let before = flow.clone();
    match t.act(ctx, flow, &cfg, action, body).await? {
        Step::Wait(status) => flow.status = status.into(),
        Step::Next => {
            flow.step += 1;
            // A next action that cannot start leaves the flow as it was, not half-advanced.
            if let Err(e) = run(ctx, flow).await {
                *flow = before;
                return Err(e);
            }
        }
        Step::Fail(e, d) => flow.fail(e, &d),
    }
    Ok(())
}

/// Evaluates an action's `condition`; anything not understood makes the action run.
async fn condition_holds(ctx: &FlowCtx<'_>, flow: &Flow, cfg: &Value) -> ApiResult<bool> {
    let Some(c) = cfg.get("condition").filter(|c| !c.is_null()) else {
        return Ok(true);
    };
    // User attributes (`${user.population.id}` …) need the flow's user; before the user is
    // known such a leaf is not understood, and the action runs.
    let user = match &flow.user_id {
        Some(uid) if crate::resources::policies::uses_user_attribute(c) => {
            ctx.app
                .store
                .read()
                .get(crate::resources::users::KIND, &flow.env_id, uid)
                .await?
        }
        _ => None,
    };
    // `${session.lastSignOn…}` speaks of the flow's user only: the session's times count when
    // it signs that very user on (another user of the browser, or a session ended by a
    // password reset or its limits, proves nothing for this sign-on).
    let session_counts = match (&flow.user_id, &ctx.session.user_id) {
        (Some(f), Some(s)) if f == s && c.to_string().contains("secondsSince") => {
            match crate::resources::users::enabled(ctx.app, &flow.env_id, f).await? {
                Some(u) => {
                    crate::engine::sessions::signs_on(ctx.app, &flow.env_id, ctx.session, &u)
                        .await?
                }
                None => false,
            }
        }
        _ => false,
    };
    Ok(eval(ctx, user.as_ref(), session_counts, c).unwrap_or(true))
}

fn eval(
    ctx: &FlowCtx<'_>,
    user: Option<&crate::store::Doc>,
    session_counts: bool,
    c: &Value,
) -> Option<bool> {
    if let Some(list) = c.get("and").and_then(Value::as_array) {
        return Some(
            list.iter()
                .all(|x| eval(ctx, user, session_counts, x).unwrap_or(true)),
        );
    }
    if let Some(list) = c.get("or").and_then(Value::as_array) {
        return Some(
            list.iter()
                .any(|x| eval(ctx, user, session_counts, x).unwrap_or(true)),
        );
    }
    if let Some(inner) = c.get("not") {
        return eval(ctx, user, session_counts, inner).map(|b| !b);
    }
    if let (Some(var), Some(greater)) = (
        c.get("secondsSince").and_then(Value::as_str),
        c.get("greater").and_then(Value::as_i64),
    ) {
        let at = match var {
            "${session.lastSignOn.withAuthenticator.pwd.at}" => ctx.session.pwd_at,
            "${session.lastSignOn.withAuthenticator.mfa.at}" => ctx.session.mfa_at,
            _ => return None,
        }
        .filter(|_| session_counts);
        // Never signed on with that authenticator: the action must run.
        return Some(at.is_none_or(|t| clock::unix() - t > greater));
    }
    if let (Some(var), Some(expected)) = (c.get("value").and_then(Value::as_str), c.get("equals")) {
        let path = var.strip_prefix("${user.")?.strip_suffix('}')?;
        if path.starts_with('_') {
            return None;
        }
        let actual = crate::store::json_path(&user?.data, path)
            .cloned()
            .unwrap_or(Value::Null);
        return Some(match (&actual, expected) {
            (Value::String(a), Value::String(e)) => a.eq_ignore_ascii_case(e),
            (a, e) => a == e,
        });
    }
    if let (Some(ip), Some(ranges)) = (
        c.get("contains").and_then(Value::as_str),
        c.get("ipRange").and_then(Value::as_array),
    ) {
        if ip != "${flow.request.http.remoteIp}" {
            return None;
        }
        let addr: std::net::IpAddr = ctx.remote_ip.as_deref()?.parse().ok()?;
        return Some(
            ranges
                .iter()
                .filter_map(Value::as_str)
                .any(|r| ip_in(addr, r)),
        );
    }
    None
}

fn ip_in(addr: std::net::IpAddr, range: &str) -> bool {
    let (net, bits) = match range.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().unwrap_or(128)),
        None => (range, 128),
    };
    match (addr, net.parse::<std::net::IpAddr>()) {
        (std::net::IpAddr::V4(a), Ok(std::net::IpAddr::V4(n))) => {
            let bits = bits.min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (std::net::IpAddr::V6(a), Ok(std::net::IpAddr::V6(n))) => {
            let bits = bits.min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

// ---- persistence ----

/// Stores a new flow, with the browser's new session if it has just started one (one
/// statement).
pub async fn save_new(
    app: &App,
    flow: &Flow,
    new_session: Option<(&str, &Session)>,
) -> ApiResult<()> {
    let data = json!(flow);
    let mut items = vec![NewItem {
        kind: KIND,
        id: &flow.id,
        env_id: &flow.env_id,
        data: &data,
        expires_at: clock::unix() + IDLE_SECONDS,
    }];
    let session = new_session.map(|(cookie, s)| crate::engine::sessions::new_item(cookie, s));
    if let Some((key, data, expires_at)) = &session {
        items.push(NewItem {
            kind: crate::engine::sessions::KIND,
            id: key,
            env_id: &flow.env_id,
            data,
            expires_at: *expires_at,
        });
    }
    app.store.runtime_put_many(&items).await
}

/// Loads a live flow of this environment, or 404, and in the same statement the session item
/// under `session_key` (the caller's cookie), if any.
pub async fn load(
    app: &App,
    env_id: &str,
    flow_id: &str,
    session_key: Option<&str>,
) -> ApiResult<(Item, Flow, Option<Item>)> {
    let not_found = || ApiError::NotFound("The flow was not found or has expired.".into());
    if uuid::Uuid::parse_str(flow_id).is_err() {
        return Err(not_found());
    }
    let mut keys = vec![(KIND, flow_id)];
    if let Some(k) = session_key {
        keys.push((crate::engine::sessions::KIND, k));
    }
    let mut found = app.store.runtime_get_many(&keys).await?.into_iter();
    let item = found
        .next()
        .flatten()
        .filter(|i| i.env_id == env_id)
        .ok_or_else(not_found)?;
    let flow: Flow = serde_json::from_value(item.data.clone()).map_err(ApiError::internal)?;
    Ok((item, flow, found.next().flatten()))
}

/// Saves a changed flow (sliding its expiry); a concurrent change wins and this one is refused.
pub async fn save(app: &App, item: &Item, flow: &Flow) -> ApiResult<()> {
    if !app
        .store
        .runtime_swap(item, &json!(flow), clock::unix() + IDLE_SECONDS)
        .await?
    {
        return Err(ApiError::RequestFailed(
            "The flow was changed by another request; read it again.".into(),
            vec![],
        ));
    }
    Ok(())
}

/// The flow object of the flows API.
pub async fn render(app: &App, flow: &Flow, expires_at: i64) -> ApiResult<Value> {
    let public = app.public_url();
    let self_href = format!("{public}/{}/flows/{}", flow.env_id, flow.id);
    let mut links = Map::new();
    links.insert("self".into(), json!({ "href": self_href }));
    for a in allowed_actions(flow) {
        links.insert(a.into(), json!({ "href": self_href }));
    }
    links.insert(
        "signOnPage".into(),
        json!({ "href": format!("{public}/{}/signon/?flowId={}", flow.env_id, flow.id) }),
    );
    let mut embedded = Map::new();
    embedded.insert(
        "application".into(),
        json!({ "name": flow.application.name }),
    );
    if let Some(uid) = &flow.user_id {
        let kept = flow
            .scratch
            .get(SHOWN_USER)
            .filter(|v| v["id"].as_str() == Some(uid))
            .cloned();
        let user = match kept {
            Some(v) => Some(v),
            None => app
                .store
                .read()
                .get(crate::resources::users::KIND, &flow.env_id, uid)
                .await?
                .as_ref()
                .map(user_view),
        };
        if let Some(user) = user {
            embedded.insert("user".into(), user);
        }
    }
    if let Some(extra) = flow.scratch.get(SHOWN_EMBEDDED).and_then(Value::as_object) {
        for (k, v) in extra {
            embedded.insert(k.clone(), v.clone());
        }
    }
    let mut out = json!({
        "_links": links,
        "_embedded": embedded,
        "id": flow.id,
        "environment": { "id": flow.env_id },
        "status": flow.status,
        "resumeUrl": format!("{public}/{}/as/resume?flowId={}", flow.env_id, flow.id),
        "createdAt": flow.created_at,
        "expiresAt": clock::format(time::OffsetDateTime::from_unix_timestamp(expires_at).unwrap_or(time::OffsetDateTime::now_utc())),
    });
    // Top-level fields an action adds (e.g. MFA's `selectedDevice`).
    if let Some(view) = flow.scratch.get(SHOWN_FIELDS).and_then(Value::as_object) {
        for (k, v) in view {
            out[k] = v.clone();
        }
    }
    if let Some(e) = &flow.error {
        out["error"] = json!({ "code": e.error, "message": e.description });
    } else if let Some(e) = flow.scratch.get(SHOWN_ERROR) {
        out["error"] = e.clone();
    }
    Ok(out)
}

/// `_embedded.user` of the flow object.
fn user_view(u: &crate::store::Doc) -> Value {
    let mut user = json!({ "id": u.id, "username": u.data["username"] });
    if u.data["name"].is_object() {
        user["name"] =
            json!({ "given": u.data["name"]["given"], "family": u.data["name"]["family"] });
    }
    user
}

/// A flow action's body field, or a PingOne REQUIRED_VALUE error.
pub fn required_str<'a>(body: &'a Value, field: &str) -> ApiResult<&'a str> {
    match body.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(ApiError::one(Detail::new(
            "EMPTY_VALUE",
            Some(field.into()),
            format!("{field} must not be empty"),
        ))),
        Some(_) => Err(ApiError::one(Detail::invalid(
            field,
            format!("{field} must be a string"),
        ))),
        None => Err(ApiError::one(Detail::required(field))),
    }
}
