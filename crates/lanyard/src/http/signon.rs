//! The hosted sign-on pages: `/{envId}/signon/?flowId=…`. Server-side rendered HTML that works
//! without JavaScript: each form posts back here (form-encoded) with the flow id, the flow
//! action and a CSRF token; the handler drives the same engine as the JSON flows API
//! (`owned_flow`: the flow, its `ST` ownership check and the session, `flows::act`, `flows::save`) and then shows the
//! new state, or sends the browser to the flow's `resumeUrl` once it is COMPLETED or FAILED.
//!
//! Each flow status the page knows is one small screen function (see [`SCREENS`]); any other
//! status gets a generic screen that offers to start over.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::authorize::{OwnedFlow, owned_flow, remote_ip};
use super::extract::read_bytes;
use super::html::{escape as esc, origin, security_headers};
use crate::engine::flows::{self, Flow, FlowCtx, identifier_first, identify, login, mfa, recovery};
use crate::engine::secrets;
use crate::error::{ApiError, ApiResult};
use crate::state::{App, AppState};

/// Where the page keeps its CSRF token: in the flow, which is itself bound to the `ST` cookie.
const CSRF_KEY: &str = "signOnPage.csrf";
/// Form fields the page itself uses; every other field goes to the flow action's body.
const FIELD_FLOW: &str = "flowId";
const FIELD_ACTION: &str = "action";
pub(super) const FIELD_CSRF: &str = "csrfToken";
/// Page-only field: the repeated new password, compared here and never sent to the engine.
const FIELD_CONFIRM: &str = "confirmNewPassword";
/// Fields filled in again when the page shows a refused form (never passwords or codes).
const ECHOED: &[&str] = &["username"];

#[derive(serde::Deserialize)]
pub struct PageQuery {
    #[serde(rename = "flowId")]
    flow_id: Option<String>,
    /// A page-only screen of the current status (`forgot`: the password recovery form).
    view: Option<String>,
}

/// The page-only screen where the user asks for a recovery code (status
/// `USERNAME_PASSWORD_REQUIRED`, action `password.forgot`).
const VIEW_FORGOT: &str = "forgot";

pub async fn page_get(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(flow_id) = q.flow_id.filter(|f| !f.is_empty()) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "This sign-on link is incomplete",
            "Go back to the application and sign on again.",
        );
    };
    show(&app, &env_id, &flow_id, q.view.as_deref(), &headers)
        .await
        .unwrap_or_else(error_page)
}

pub async fn page_post(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    submit(&app, &env_id, q.flow_id, &headers, body)
        .await
        .unwrap_or_else(error_page)
}

/// GET: the current state of the flow (or the resume URL once it is finished).
async fn show(
    app: &App,
    env_id: &str,
    flow_id: &str,
    view: Option<&str>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    // Showing the page keeps the flow alive (as reading it does) and makes sure it has a CSRF
    // token; a concurrent change (another tab) is simply read again.
    let mut attempt = 0;
    loop {
        let OwnedFlow { item, mut flow, .. } = owned_flow(app, env_id, flow_id, headers).await?;
        if flow.is_done() {
            return Ok(see_other(&resume_url(app, &flow)));
        }
        ensure_csrf(&mut flow);
        match flows::save(app, &item, &flow).await {
            Ok(()) => return page(app, &flow, view, StatusCode::OK, None, &[]).await,
            Err(ApiError::RequestFailed(..)) if attempt < 3 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// POST: one flow action from one of the page's forms.
async fn submit(
    app: &App,
    env_id: &str,
    query_flow: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let form = read_form(headers, body).await?;
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let flow_id = field(FIELD_FLOW)
        .or(query_flow.as_deref())
        .unwrap_or_default()
        .to_string();
    if query_flow.as_deref().is_some_and(|q| q != flow_id) {
        return Err(ApiError::InvalidRequest(
            "The form does not belong to this page.".into(),
        ));
    }
    let owned = owned_flow(app, env_id, &flow_id, headers).await?;
    let session = owned.session_view();
    let OwnedFlow { item, mut flow, .. } = owned;
    let expected = flow
        .scratch
        .get(CSRF_KEY)
        .and_then(Value::as_str)
        .unwrap_or_default();
    let sent = field(FIELD_CSRF).unwrap_or_default();
    if !csrf_matches(expected, sent) {
        return Ok(problem_with(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form was not sent from the current sign-on page. Reload the page and try again.",
            Some(&page_url(app, &flow)),
        ));
    }
    if flow.is_done() {
        return Ok(see_other(&resume_url(app, &flow)));
    }
    let action = field(FIELD_ACTION).unwrap_or_default().to_string();
    let echo: Vec<(String, String)> = form
        .iter()
        .filter(|(k, _)| ECHOED.contains(&k.as_str()))
        .cloned()
        .collect();
    // A refused form is shown again on its own screen.
    let view = (action == "password.forgot").then_some(VIEW_FORGOT);

    // A page-level check before the engine sees anything: the new password typed twice.
    if let (Some(new), Some(confirm)) = (field("newPassword"), field(FIELD_CONFIRM))
        && !secrets::secret_eq(new, confirm)
    {
        let shown = Shown {
            messages: vec!["The new passwords do not match.".into()],
            targets: vec![FIELD_CONFIRM.into()],
            ..Default::default()
        };
        return page(
            app,
            &flow,
            view,
            StatusCode::BAD_REQUEST,
            Some(&shown),
            &echo,
        )
        .await;
    }

    let ctx = FlowCtx {
        app,
        session: &session,
        remote_ip: remote_ip(headers),
    };
    let result = flows::act(&ctx, &mut flow, &action, &action_body(&form)).await;
    // session.reset clears the flow's scratch: the page keeps a token all the same.
    ensure_csrf(&mut flow);
    // Failed attempts still count (lockout) and keep the flow alive.
    flows::save(app, &item, &flow).await?;
    match result {
        Ok(()) if flow.is_done() => Ok(see_other(&resume_url(app, &flow))),
        // Post/redirect/get: reloading the next page does not repeat the action.
        Ok(()) => Ok(see_other(&page_url(app, &flow))),
        Err(e) => match Shown::from_error(&e) {
            Some(shown) => {
                page(
                    app,
                    &flow,
                    view,
                    StatusCode::BAD_REQUEST,
                    Some(&shown),
                    &echo,
                )
                .await
            }
            None => Err(e),
        },
    }
}

async fn read_form(headers: &HeaderMap, body: Body) -> ApiResult<Vec<(String, String)>> {
    if super::extract::media_type(headers) != "application/x-www-form-urlencoded" {
        return Err(ApiError::UnsupportedMediaType(
            "The sign-on page accepts form posts only.".into(),
        ));
    }
    let bytes = read_bytes(body).await?;
    serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| ApiError::InvalidRequest("The form could not be read.".into()))
}

fn is_reserved(name: &str) -> bool {
    [FIELD_FLOW, FIELD_ACTION, FIELD_CSRF, FIELD_CONFIRM].contains(&name)
}

/// The flow action's JSON body from the form: every non-page field, `a.b` names nesting
/// (`device.id` → `{"device":{"id":…}}`); the first of repeated fields wins.
fn action_body(form: &[(String, String)]) -> Value {
    let mut out = Map::new();
    for (k, v) in form.iter().filter(|(k, _)| !is_reserved(k)) {
        let mut parts: Vec<&str> = k.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut obj = &mut out;
        for p in parts {
            let entry = obj
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            obj = entry.as_object_mut().expect("just made an object");
        }
        obj.entry(last.to_string())
            .or_insert_with(|| Value::String(v.clone()));
    }
    Value::Object(out)
}

fn ensure_csrf(flow: &mut Flow) {
    if !flow.scratch.get(CSRF_KEY).is_some_and(Value::is_string) {
        flow.scratch
            .insert(CSRF_KEY.into(), Value::String(new_csrf_token()));
    }
}

/// A new CSRF token for a form, kept server-side with what the form acts on (here the flow;
/// the signoff confirmation keeps its token in the session).
pub(super) fn new_csrf_token() -> String {
    URL_SAFE_NO_PAD.encode(secrets::random_bytes(32))
}

/// Whether a form came with the token its page was given (compared in constant time; no
/// token expected means no form can match).
pub(super) fn csrf_matches(expected: &str, sent: &str) -> bool {
    !expected.is_empty() && secrets::secret_eq(expected, sent)
}

fn page_url(app: &App, flow: &Flow) -> String {
    format!(
        "{}/{}/signon/?flowId={}",
        app.public_url(),
        flow.env_id,
        flow.id
    )
}

fn resume_url(app: &App, flow: &Flow) -> String {
    format!(
        "{}/{}/as/resume?flowId={}",
        app.public_url(),
        flow.env_id,
        flow.id
    )
}

// ---- errors shown in the page ----

/// An engine error as the page shows it: the PingOne message(s) plus what the details add.
#[derive(Default)]
struct Shown {
    messages: Vec<String>,
    notes: Vec<String>,
    /// The fields the error is about (`details[].target`), marked invalid.
    targets: Vec<String>,
}

impl Shown {
    /// User-facing errors (validation, refused action); others become an error page.
    fn from_error(e: &ApiError) -> Option<Shown> {
        let (message, details) = match e {
            ApiError::InvalidData(d) => (None, d.as_slice()),
            ApiError::RequestFailed(m, d) => (Some(m.as_str()), d.as_slice()),
            ApiError::InvalidRequest(m) => (Some(m.as_str()), &[][..]),
            _ => return None,
        };
        let mut s = Shown::default();
        if details.is_empty() || !matches!(e, ApiError::RequestFailed(..)) {
            s.messages.extend(message.map(str::to_string));
        }
        for d in details {
            s.messages.push(d.message.clone());
            s.targets.extend(d.target.clone());
            let inner = d.inner_error.clone().unwrap_or(Value::Null);
            if let Some(n) = inner["failuresRemaining"].as_i64() {
                s.notes.push(match n {
                    0 => "No attempts remaining.".into(),
                    1 => "1 attempt remaining.".into(),
                    n => format!("{n} attempts remaining."),
                });
            }
            if let Some(secs) = inner["secondsUntilUnlock"].as_i64() {
                let mins = (secs + 59) / 60;
                s.notes.push(if mins <= 1 {
                    "Try again in a minute.".into()
                } else {
                    format!("Try again in {mins} minutes.")
                });
            }
            for r in inner["unsatisfiedRequirements"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                s.notes.push(requirement_text(r));
            }
            for m in inner["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["message"].as_str().or(x.as_str()))
            {
                s.notes.push(m.to_string());
            }
        }
        s.messages.dedup();
        Some(s)
    }

    fn html(&self) -> String {
        let mut out = String::from("<div class=\"alert\" role=\"alert\" id=\"form-error\">");
        for m in &self.messages {
            out += &format!("<p>{}</p>", esc(m));
        }
        if !self.notes.is_empty() {
            out += "<ul>";
            for n in &self.notes {
                out += &format!("<li>{}</li>", esc(n));
            }
            out += "</ul>";
        }
        out + "</div>"
    }
}

/// Password policy requirement keys (`innerError.unsatisfiedRequirements`) in words.
fn requirement_text(key: &str) -> String {
    match key {
        "length" => "The password is too short or too long.".into(),
        "minCharacters" => "The password needs more kinds of characters.".into(),
        "maxRepeatedCharacters" => "The password repeats a character too often.".into(),
        "minUniqueCharacters" => "The password needs more different characters.".into(),
        "minComplexity" => "The password is too simple.".into(),
        "history" => "The password was used recently.".into(),
        "excludesProfileData" => "The password must not contain your profile data.".into(),
        "notSimilarToCurrent" => "The password is too similar to the current one.".into(),
        "excludesCommonlyUsed" => "The password is too common.".into(),
        other => format!("Unmet requirement: {other}."),
    }
}

// ---- screens: one small function per flow status ----

/// What a screen function sees.
struct View<'a> {
    flow: &'a Flow,
    /// The flow object exactly as the flows API renders it (`_embedded.user`, devices…).
    data: &'a Value,
    csrf: &'a str,
    error: Option<&'a Shown>,
    /// Non-secret fields of the form that was just refused, to fill in again.
    echo: &'a [(String, String)],
}

struct Screen {
    title: String,
    /// One sentence under the title; errors are shown below it.
    lead: String,
    body: String,
}

type ScreenFn = fn(&View) -> Screen;

/// The statuses the page knows. New ones (device selection, OTP, recovery code,
/// identifier-first…) are one line here and one screen function below.
const SCREENS: &[(&str, ScreenFn)] = &[
    (login::USERNAME_PASSWORD_REQUIRED, username_password),
    (login::MUST_CHANGE_PASSWORD, change_password),
    (login::PASSWORD_EXPIRED, change_password),
    (recovery::RECOVERY_CODE_REQUIRED, recovery_code),
    (identify::SIGN_ON_REQUIRED, identifier),
    (identifier_first::PASSWORD_REQUIRED, password_only),
    (mfa::DEVICE_SELECTION_REQUIRED, device_selection),
    (mfa::OTP_REQUIRED, otp_entry),
];

/// Identifier first, and passwordless sign-ons: the username alone.
fn identifier(v: &View) -> Screen {
    let username = v
        .echoed("username")
        .or_else(|| v.flow.request.as_ref().and_then(|r| r.login_hint.clone()))
        .unwrap_or_default();
    let fields = v.input("username", "Username", "text", "username", &username, true);
    Screen {
        title: "Sign on".into(),
        lead: format!("Sign on to continue to {}.", v.app_name()),
        body: v.form("user.lookup", &fields, "Next") + &v.start_over("Start over"),
    }
}

/// Identifier first: the password for the username given.
fn password_only(v: &View) -> Screen {
    let who = v
        .flow
        .scratch
        .get("identifier")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let fields = v.input(
        "password",
        "Password",
        "password",
        "current-password",
        "",
        true,
    );
    Screen {
        title: "Enter your password".into(),
        lead: format!("Sign on to continue to {}.", v.app_name()),
        body: format!(
            "<p class=\"user\">Signing on as <strong>{}</strong></p>",
            esc(who)
        ) + &v.form("usernamePassword.check", &fields, "Sign on")
            + &v.forgot_link()
            + &v.start_over("Not you? Start over"),
    }
}

/// How a device is named to its owner: its nickname, else its kind and masked address.
fn device_label(d: &Value) -> String {
    let kind = match d["type"].as_str() {
        Some("SMS") => "Text message",
        Some("VOICE") => "Voice call",
        Some("EMAIL") => "Email",
        Some("TOTP") => "Authenticator app",
        _ => "Device",
    };
    let to = d["phone"]
        .as_str()
        .or(d["email"].as_str())
        .unwrap_or_default();
    let what = if to.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} to {to}")
    };
    match d["nickname"].as_str() {
        Some(n) if !n.is_empty() => format!("{n} ({what})"),
        _ => what,
    }
}

/// What the passcode screen says was sent, and where.
fn sent_to(d: &Value) -> String {
    let to = d["phone"]
        .as_str()
        .or(d["email"].as_str())
        .unwrap_or_default();
    match d["type"].as_str() {
        Some("SMS") => format!("We texted a passcode to {to}."),
        Some("VOICE") => format!("We are calling {to} with your passcode."),
        Some("EMAIL") => format!("We emailed a passcode to {to}."),
        _ => "Enter your one-time passcode.".to_string(),
    }
}

/// One button that selects a device.
fn device_button(v: &View, d: &Value, class: &str, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"?flowId={}\">{}<input type=\"hidden\" name=\"device.id\" value=\"{}\">\
         <button class=\"{class}\" type=\"submit\">{}</button></form>",
        esc(&v.flow.id),
        v.hidden("device.select"),
        esc(d["id"].as_str().unwrap_or_default()),
        esc(label)
    )
}

fn devices_of<'a>(v: &'a View) -> Vec<&'a Value> {
    v.data["_embedded"]["devices"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn device_selection(v: &View) -> Screen {
    let buttons: String = devices_of(v)
        .into_iter()
        .map(|d| device_button(v, d, "primary", &device_label(d)))
        .collect();
    Screen {
        title: "Verify it's you".into(),
        lead: "Choose how to receive a one-time passcode.".into(),
        body: v.signed_in_as() + &flow_notice(v) + &buttons + &v.start_over("Start over"),
    }
}

/// What the flow itself reports (a passcode that could not be sent), unless the page already
/// shows the error of the last action.
fn flow_notice(v: &View) -> String {
    match v.data["error"]["message"].as_str() {
        Some(m) if v.error.is_none() => {
            format!("<p class=\"status\" role=\"alert\">{}</p>", esc(m))
        }
        _ => String::new(),
    }
}

fn otp_entry(v: &View) -> Screen {
    let selected = v.data["selectedDevice"]["id"].as_str().unwrap_or_default();
    let devices = devices_of(v);
    let current = devices.iter().find(|d| d["id"] == selected);
    let totp = current.is_some_and(|d| d["type"] == "TOTP");
    let lead = match current {
        Some(_) if totp => "Enter the code your authenticator app shows.".to_string(),
        Some(d) => sent_to(d),
        None => "Enter your one-time passcode.".to_string(),
    };
    let notice = flow_notice(v);
    let fields = v.input("otp", "Passcode", "text", "one-time-code", "", true);
    let resend = match current {
        Some(d) if !totp => device_button(v, d, "link", "Send a new code"),
        _ => String::new(),
    };
    let others: String = devices
        .iter()
        .filter(|d| d["id"] != selected)
        .map(|d| device_button(v, d, "link", &format!("Use {} instead", device_label(d))))
        .collect();
    Screen {
        title: "Enter your passcode".into(),
        lead,
        body: v.signed_in_as()
            + &notice
            + &v.form("otp.check", &fields, "Verify")
            + &format!("<div class=\"aside\">{resend}{others}</div>")
            + &v.start_over("Start over"),
    }
}

fn username_password(v: &View) -> Screen {
    // What the user typed last, else the client's `login_hint`.
    let username = v
        .echoed("username")
        .or_else(|| v.flow.request.as_ref().and_then(|r| r.login_hint.clone()))
        .unwrap_or_default();
    // After a refused attempt the password is what to type again.
    let focus_password = !username.is_empty();
    let fields = v.input(
        "username",
        "Username",
        "text",
        "username",
        &username,
        !focus_password,
    ) + &v.input(
        "password",
        "Password",
        "password",
        "current-password",
        "",
        focus_password,
    );
    Screen {
        title: "Sign on".into(),
        lead: format!("Sign on to continue to {}.", v.app_name()),
        body: v.form("usernamePassword.check", &fields, "Sign on")
            + &v.forgot_link()
            + &v.start_over("Start over"),
    }
}

/// Page-only: the username to send a recovery code for.
fn forgot_password(v: &View) -> Screen {
    let username = v.echoed("username").unwrap_or_default();
    let fields = v.input("username", "Username", "text", "username", &username, true);
    Screen {
        title: "Reset your password".into(),
        lead: "Enter your username. We will email you a code to reset your password.".into(),
        body: v.form("password.forgot", &fields, "Send code")
            + &format!(
                "<div class=\"secondary\"><a class=\"link\" href=\"?flowId={}\">Back to sign on</a></div>",
                esc(&v.flow.id)
            ),
    }
}

fn recovery_code(v: &View) -> Screen {
    let fields = v.input(
        "recoveryCode",
        "Recovery code",
        "text",
        "one-time-code",
        "",
        true,
    ) + &v.input(
        "newPassword",
        "New password",
        "password",
        "new-password",
        "",
        false,
    ) + &v.input(
        FIELD_CONFIRM,
        "Confirm new password",
        "password",
        "new-password",
        "",
        false,
    );
    let resent = v.flow.scratch[recovery::SCRATCH_KEY]["sends"]
        .as_i64()
        .is_some_and(|n| n > 1);
    let note = if resent {
        "<p class=\"status\">A new code was sent. Only the newest code works.</p>"
    } else {
        ""
    };
    let resend = if v.allows("password.sendRecoveryCode") {
        format!(
            "<form class=\"aside\" method=\"post\" action=\"?flowId={}\">{}<button class=\"link\" type=\"submit\">Send a new code</button></form>",
            esc(&v.flow.id),
            v.hidden("password.sendRecoveryCode"),
        )
    } else {
        String::new()
    };
    Screen {
        title: "Enter your recovery code".into(),
        lead: format!(
            "If the username belongs to an account with an email address, we sent it a code. \
             It is valid for {} minutes.",
            recovery::CODE_SECONDS / 60
        ),
        body: note.to_string()
            + &v.form("password.recover", &fields, "Reset password")
            + &resend
            + &v.start_over("Back to sign on"),
    }
}

fn change_password(v: &View) -> Screen {
    let lead = if v.flow.status == login::PASSWORD_EXPIRED {
        "Your password has expired. Choose a new one to continue."
    } else {
        "You must change your password before you continue."
    };
    let fields = v.input(
        "currentPassword",
        "Current password",
        "password",
        "current-password",
        "",
        true,
    ) + &v.input(
        "newPassword",
        "New password",
        "password",
        "new-password",
        "",
        false,
    ) + &v.input(
        FIELD_CONFIRM,
        "Confirm new password",
        "password",
        "new-password",
        "",
        false,
    );
    Screen {
        title: "Change your password".into(),
        lead: lead.into(),
        body: v.signed_in_as()
            + &v.form("password.reset", &fields, "Change password")
            + &v.start_over("Sign on as someone else"),
    }
}

/// Any status this page does not know yet: say so, and offer to start over.
fn unknown_status(v: &View) -> Screen {
    Screen {
        title: "This step is not available here".into(),
        lead: "The sign-on is waiting for a step this page cannot show yet.".into(),
        body: format!(
            "<p class=\"status\">Step: <code>{}</code></p>",
            esc(&v.flow.status)
        ) + &v.start_over("Start over"),
    }
}

impl View<'_> {
    fn app_name(&self) -> &str {
        self.data["_embedded"]["application"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or("the application")
    }

    fn echoed(&self, name: &str) -> Option<String> {
        self.echo
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn allows(&self, action: &str) -> bool {
        flows::allowed_actions(self.flow).contains(&action)
    }

    fn signed_in_as(&self) -> String {
        match self.data["_embedded"]["user"]["username"].as_str() {
            Some(u) => format!(
                "<p class=\"user\">Signed on as <strong>{}</strong></p>",
                esc(u)
            ),
            None => String::new(),
        }
    }

    /// A labelled input; marked invalid (and tied to the error text) when the error names it.
    fn input(
        &self,
        name: &str,
        label: &str,
        ty: &str,
        autocomplete: &str,
        value: &str,
        autofocus: bool,
    ) -> String {
        let invalid = self
            .error
            .is_some_and(|e| e.targets.iter().any(|t| t == name));
        let mut attrs = String::new();
        if !value.is_empty() {
            attrs += &format!(" value=\"{}\"", esc(value));
        }
        if autofocus {
            attrs += " autofocus";
        }
        if self.error.is_some() {
            attrs += " aria-describedby=\"form-error\"";
        }
        if invalid {
            attrs += " aria-invalid=\"true\"";
        }
        if ty == "text" {
            attrs += " autocapitalize=\"none\" spellcheck=\"false\"";
        }
        if name == "otp" {
            // Passcodes are digits: phones show the number pad.
            attrs += " inputmode=\"numeric\"";
        }
        format!(
            "<div class=\"field\"><label for=\"{n}\">{l}</label>\
             <input id=\"{n}\" name=\"{n}\" type=\"{t}\" autocomplete=\"{a}\" required{attrs}></div>",
            n = esc(name),
            l = esc(label),
            t = esc(ty),
            a = esc(autocomplete),
        )
    }

    /// The hidden fields every form carries.
    fn hidden(&self, action: &str) -> String {
        format!(
            "<input type=\"hidden\" name=\"{FIELD_FLOW}\" value=\"{}\">\
             <input type=\"hidden\" name=\"{FIELD_ACTION}\" value=\"{}\">\
             <input type=\"hidden\" name=\"{FIELD_CSRF}\" value=\"{}\">",
            esc(&self.flow.id),
            esc(action),
            esc(self.csrf)
        )
    }

    fn form(&self, action: &str, fields: &str, submit: &str) -> String {
        format!(
            "<form method=\"post\" action=\"?flowId={}\">{}{fields}<button class=\"primary\" type=\"submit\">{}</button></form>",
            esc(&self.flow.id),
            self.hidden(action),
            esc(submit)
        )
    }

    /// A "Forgot password?" button (to the page-only recovery screen), when the flow offers
    /// `password.forgot`.
    fn forgot_link(&self) -> String {
        if !self.allows("password.forgot") {
            return String::new();
        }
        format!(
            "<form class=\"aside\" method=\"get\"><input type=\"hidden\" name=\"{FIELD_FLOW}\" value=\"{}\">\
             <input type=\"hidden\" name=\"view\" value=\"{VIEW_FORGOT}\">\
             <button class=\"link\" type=\"submit\">Forgot password?</button></form>",
            esc(&self.flow.id)
        )
    }

    /// A `session.reset` button, when the flow offers it.
    fn start_over(&self, label: &str) -> String {
        if !self.allows("session.reset") {
            return String::new();
        }
        format!(
            "<div class=\"secondary\"><form method=\"post\" action=\"?flowId={}\">{}<button class=\"link\" type=\"submit\">{}</button></form></div>",
            esc(&self.flow.id),
            self.hidden("session.reset"),
            esc(label)
        )
    }
}

async fn page(
    app: &App,
    flow: &Flow,
    view: Option<&str>,
    status: StatusCode,
    error: Option<&Shown>,
    echo: &[(String, String)],
) -> ApiResult<Response> {
    let data = flows::render(app, flow, crate::clock::unix() + flows::IDLE_SECONDS).await?;
    let csrf = flow
        .scratch
        .get(CSRF_KEY)
        .and_then(Value::as_str)
        .unwrap_or_default();
    let v = View {
        flow,
        data: &data,
        csrf,
        error,
        echo,
    };
    let screen = match view {
        Some(VIEW_FORGOT) if v.allows("password.forgot") => forgot_password,
        _ => SCREENS
            .iter()
            .find(|(s, _)| *s == flow.status)
            .map(|(_, f)| *f)
            .unwrap_or(unknown_status),
    };
    let Screen { title, lead, body } = screen(&v);
    let app_name = v.app_name();
    let initial = app_name
        .chars()
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default();
    let content = format!(
        "<p class=\"app\"><span class=\"badge\" aria-hidden=\"true\">{}</span><span>{}</span></p>\
         <h1 id=\"title\">{}</h1><p class=\"lead\">{}</p>{}{body}",
        esc(&initial),
        esc(app_name),
        esc(&title),
        esc(&lead),
        error.map(Shown::html).unwrap_or_default(),
    );
    Ok(html_response(
        status,
        &format!("{title} · {app_name}"),
        &content,
        form_targets(flow),
    ))
}

/// Where the page's forms may lead. Browsers check `form-action` on every redirect that
/// follows a form post, and a finished flow's post ends at the client's redirect URI (via
/// the resume URL): that one origin, besides the page's own.
fn form_targets(flow: &Flow) -> Vec<String> {
    let uri = flow
        .request
        .as_ref()
        .and_then(|r| r.redirect_uri.as_deref())
        .unwrap_or_default();
    origin(uri).into_iter().collect()
}

// ---- responses ----

fn html_response(
    status: StatusCode,
    title: &str,
    content: &str,
    extra_form_targets: Vec<String>,
) -> Response {
    let nonce = URL_SAFE_NO_PAD.encode(secrets::random_bytes(18));
    let doc = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\">\
         <title>{}</title><style nonce=\"{nonce}\">{CSS}</style></head>\
         <body><main class=\"card\" aria-labelledby=\"title\">{content}</main>\
         <footer>Secured by Lanyard</footer></body></html>",
        esc(title)
    );
    let mut form_action = String::from("'self'");
    for t in extra_form_targets {
        form_action += " ";
        form_action += &t;
    }
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self' data:; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        doc,
    )
        .into_response();
    security_headers(&mut r, &csp);
    r
}

fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    security_headers(&mut r, "default-src 'none'; frame-ancestors 'none'");
    r
}

/// A page that only explains what went wrong.
fn problem(status: StatusCode, title: &str, message: &str) -> Response {
    problem_with(status, title, message, None)
}

fn problem_with(status: StatusCode, title: &str, message: &str, reload: Option<&str>) -> Response {
    let mut content = format!(
        "<h1 id=\"title\">{}</h1><div class=\"alert\" role=\"alert\"><p>{}</p></div>",
        esc(title),
        esc(message)
    );
    if let Some(url) = reload {
        content += &format!(
            "<p><a class=\"button\" href=\"{}\">Reload the sign-on page</a></p>",
            esc(url)
        );
    }
    html_response(status, title, &content, vec![])
}

fn error_page(e: ApiError) -> Response {
    match e {
        ApiError::NotFound(_) => problem(
            StatusCode::NOT_FOUND,
            "This sign-on has expired",
            "The sign-on link is no longer valid: it has expired or was already used. Go back to the application and sign on again.",
        ),
        ApiError::Forbidden(_) => problem(
            StatusCode::FORBIDDEN,
            "This sign-on belongs to another session",
            "It was started in another browser or the session has ended. Go back to the application and sign on again.",
        ),
        ApiError::UnsupportedMediaType(_)
        | ApiError::InvalidRequest(_)
        | ApiError::InvalidData(_)
        | ApiError::PayloadTooLarge => problem(
            StatusCode::BAD_REQUEST,
            "Something is wrong with this request",
            "Go back to the application and sign on again.",
        ),
        ApiError::RequestFailed(..) => problem(
            StatusCode::CONFLICT,
            "The sign-on changed meanwhile",
            "It was changed in another tab or window. Reload the page and try again.",
        ),
        other => {
            let id = uuid::Uuid::new_v4();
            tracing::error!(error_id = %id, error = %other, "sign-on page failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                &format!("An unexpected error occurred. Try again later. (Reference: {id})"),
            )
        }
    }
}

const CSS: &str = r#"
:root{color-scheme:light dark;--bg:#f3f4f8;--card:#fff;--text:#171a21;--muted:#5d6573;--border:#d5d9e1;--accent:#3056e8;--accent-text:#fff;--danger:#b42318;--danger-bg:#fef3f2;--focus:rgba(48,86,232,.35)}
@media (prefers-color-scheme:dark){:root{--bg:#0e1014;--card:#171a20;--text:#e8eaef;--muted:#9ba3b0;--border:#2b3039;--accent:#7491ff;--accent-text:#0b0d12;--danger:#ff9b91;--danger-bg:#2b1715;--focus:rgba(116,145,255,.45)}}
*{box-sizing:border-box}
html,body{margin:0}
body{min-height:100vh;display:flex;flex-direction:column;align-items:center;justify-content:center;padding:24px 16px;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;-webkit-font-smoothing:antialiased}
.card{width:100%;max-width:400px;background:var(--card);border:1px solid var(--border);border-radius:16px;padding:32px 28px;box-shadow:0 1px 2px rgba(16,24,40,.05),0 12px 32px rgba(16,24,40,.08)}
.app{display:flex;align-items:center;gap:10px;margin:0 0 22px;color:var(--muted);font-size:14px;font-weight:600;overflow-wrap:anywhere}
.badge{flex:none;width:34px;height:34px;border-radius:9px;background:var(--accent);color:var(--accent-text);display:grid;place-items:center;font-size:16px;font-weight:700}
h1{font-size:24px;line-height:1.25;margin:0 0 6px;letter-spacing:-.01em}
.lead{margin:0 0 22px;color:var(--muted);font-size:15px;overflow-wrap:anywhere}
.status{margin:0 0 8px;font-size:14px;color:var(--muted)}
.user{margin:0 0 18px;font-size:14px;color:var(--muted);overflow-wrap:anywhere}
.user strong{color:var(--text)}
.field{margin:0 0 16px}
label{display:block;margin:0 0 6px;font-size:14px;font-weight:600}
input[type=text],input[type=password],input[type=email],input[type=tel]{width:100%;padding:11px 12px;font:inherit;color:inherit;background:var(--card);border:1px solid var(--border);border-radius:10px;transition:border-color .15s,box-shadow .15s}
input:hover{border-color:var(--muted)}
input:focus{outline:none;border-color:var(--accent);box-shadow:0 0 0 4px var(--focus)}
input[aria-invalid=true]{border-color:var(--danger)}
button,.button{font:inherit;cursor:pointer}
.primary{display:block;width:100%;margin-top:8px;padding:11px 16px;border:0;border-radius:10px;background:var(--accent);color:var(--accent-text);font-weight:600}
.primary:hover{filter:brightness(1.08)}
.primary:focus-visible,.link:focus-visible,.button:focus-visible{outline:none;box-shadow:0 0 0 4px var(--focus)}
.link{padding:2px 4px;border:0;border-radius:6px;background:none;color:var(--accent);font-size:14px;text-decoration:underline;text-underline-offset:3px}
.button{display:inline-block;padding:10px 16px;border-radius:10px;background:var(--accent);color:var(--accent-text);text-decoration:none;font-weight:600}
.aside{margin-top:12px;text-align:center}
.secondary{margin-top:22px;padding-top:16px;border-top:1px solid var(--border);text-align:center}
.alert{margin:0 0 20px;padding:10px 14px;border:1px solid var(--danger);border-radius:10px;background:var(--danger-bg);color:var(--danger);font-size:14px;overflow-wrap:anywhere}
.alert p{margin:0}
.alert p+p{margin-top:4px}
.alert ul{margin:6px 0 0;padding-left:18px}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;padding:1px 5px;border-radius:5px;background:var(--bg)}
footer{margin-top:20px;font-size:12px;color:var(--muted)}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flow(status: &str) -> Flow {
        serde_json::from_value(json!({
            "id": "f", "env_id": "e", "status": status, "created_at": "", "binding": "",
            "application": { "id": "a", "name": "<b>App</b>" }, "request": null,
            "policy": { "id": "p", "name": "Single_Factor", "actions": [{ "type": "LOGIN" }] },
            "step": 0, "user_id": null, "auth_time": null, "error": null,
        }))
        .unwrap()
    }

    #[test]
    fn unknown_statuses_get_the_generic_screen() {
        let f = flow("OTP_REQUIRED<x>");
        let data = json!({ "_embedded": { "application": { "name": "<b>App</b>" } } });
        let v = View {
            flow: &f,
            data: &data,
            csrf: "tok",
            error: None,
            echo: &[],
        };
        assert!(!SCREENS.iter().any(|(s, _)| *s == f.status));
        let s = unknown_status(&v);
        assert!(
            s.body.contains("<code>OTP_REQUIRED&lt;x&gt;</code>"),
            "{}",
            s.body
        );
        assert!(
            s.body.contains("value=\"session.reset\""),
            "start over is offered: {}",
            s.body
        );
        assert!(
            s.body.contains("name=\"csrfToken\" value=\"tok\""),
            "{}",
            s.body
        );
    }

    #[test]
    fn form_fields_become_the_action_body() {
        let form: Vec<(String, String)> = [
            ("flowId", "f"),
            ("action", "device.select"),
            ("csrfToken", "t"),
            ("device.id", "d1"),
            ("x", "1"),
            ("x", "2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            action_body(&form),
            json!({ "device": { "id": "d1" }, "x": "1" })
        );
    }

    #[test]
    fn errors_show_message_and_remaining_attempts() {
        let e = ApiError::one(
            crate::error::Detail::invalid(
                "password",
                "The provided password did not match provisioned password",
            )
            .with_inner(json!({ "failuresRemaining": 2 })),
        );
        let s = Shown::from_error(&e).unwrap();
        assert_eq!(
            s.messages,
            vec!["The provided password did not match provisioned password"]
        );
        assert_eq!(s.notes, vec!["2 attempts remaining."]);
        assert_eq!(s.targets, vec!["password"]);
        assert!(Shown::from_error(&ApiError::internal("x")).is_none());
    }
}
