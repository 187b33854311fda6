//! The MULTI_FACTOR_AUTHENTICATION action. With a known user it picks the user's usable
//! devices under the action's device authentication policy (and its legacy per-method
//! toggles): one device (or the first, with `DEFAULT_TO_FIRST`) gets a passcode and the flow
//! waits in `OTP_REQUIRED`; otherwise `DEVICE_SELECTION_REQUIRED` lists the devices, masked.
//! `otp.check` counts failures on the device (its lock holds across processes); `device.select`
//! switches device or sends a new code. Without a known user (an MFA action first, as in a
//! passwordless policy) the flow starts at `SIGN_ON_REQUIRED` with `user.lookup`.
//!
//! A user without MFA enabled or without a usable device is handled by `noDevicesMode`:
//! `BYPASS` skips the action, `BLOCK` fails the sign-on. A bypass never completes a sign-on
//! that has no other factor: with nothing proven, the flow fails.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionType, Flow, FlowCtx, SHOWN_EMBEDDED, SHOWN_ERROR, SHOWN_FIELDS, Step, identify};
use crate::clock;
use crate::engine::mfa::{self, Notice};
use crate::engine::otp::Challenge;
use crate::error::{ApiError, ApiResult, Detail};
use crate::resources::mfa_policies;
use crate::store::Doc;

pub const DEVICE_SELECTION_REQUIRED: &str = "DEVICE_SELECTION_REQUIRED";
pub const OTP_REQUIRED: &str = "OTP_REQUIRED";
const SCRATCH: &str = "mfa";

pub struct Mfa;

/// What the action keeps in the flow between calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MfaState {
    /// Ids of the devices offered (the only ones `device.select` accepts).
    #[serde(default)]
    offered: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    challenge: Option<Challenge>,
    /// Why the last passcode could not be delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery_error: Option<String>,
}

impl MfaState {
    /// Offering `devices`, none selected yet.
    fn offering(devices: &[Doc]) -> MfaState {
        MfaState {
            offered: devices.iter().map(|d| d.id.clone()).collect(),
            ..Default::default()
        }
    }
}

fn load(flow: &Flow) -> MfaState {
    flow.scratch
        .get(SCRATCH)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// Keeps the state and what the flow object shows: the devices (masked), the selected one,
/// and a delivery failure.
fn store(flow: &mut Flow, s: &MfaState, devices: &[Doc]) {
    flow.scratch.insert(SCRATCH.into(), json!(s));
    match &s.device_id {
        Some(id) => flow.scratch.insert(
            SHOWN_FIELDS.into(),
            json!({ "selectedDevice": { "id": id } }),
        ),
        None => flow.scratch.remove(SHOWN_FIELDS),
    };
    let shown: Vec<Value> = devices.iter().map(mfa::flow_view).collect();
    flow.scratch
        .insert(SHOWN_EMBEDDED.into(), json!({ "devices": shown }));
    match &s.delivery_error {
        Some(e) => flow.scratch.insert(
            SHOWN_ERROR.into(),
            json!({ "code": "NOTIFICATION_FAILED", "message": format!("The passcode could not be delivered: {e}") }),
        ),
        None => flow.scratch.remove(SHOWN_ERROR),
    };
}

fn clear(flow: &mut Flow) {
    for k in [SCRATCH, SHOWN_FIELDS, SHOWN_EMBEDDED, SHOWN_ERROR] {
        flow.scratch.remove(k);
    }
}

/// The passcode message: the request object's `pi.template`, else strong authentication.
fn notice_of(flow: &Flow) -> Notice {
    match flow.request.as_ref().and_then(|r| r.pi_template.as_ref()) {
        Some(t) => Notice {
            template: t["name"]
                .as_str()
                .unwrap_or("strong_authentication")
                .to_string(),
            variant: t["variant"].as_str().map(str::to_string),
            variables: t["variables"].as_object().cloned().unwrap_or_default(),
        },
        None => Notice::template("strong_authentication"),
    }
}

/// No usable device: what `noDevicesMode` says.
fn without_devices(flow: &Flow, cfg: &Value) -> Step {
    if cfg["noDevicesMode"] == "BYPASS" && !flow.amr.is_empty() {
        return Step::Next;
    }
    Step::Fail(
        "access_denied",
        "The user has no multi-factor authentication device that this sign-on accepts.".into(),
    )
}

async fn policy(ctx: &FlowCtx<'_>, flow: &Flow, cfg: &Value) -> ApiResult<Option<Doc>> {
    let named = cfg["deviceAuthenticationPolicy"]["id"].as_str();
    mfa_policies::resolve(ctx.app, &flow.env_id, named).await
}

/// Selects `device`: sends it a passcode (unless it is a TOTP device or locked) and waits.
async fn select(
    ctx: &FlowCtx<'_>,
    flow: &mut Flow,
    user: &Doc,
    policy: Option<&Doc>,
    devices: &[Doc],
    device_id: &str,
) -> ApiResult<Step> {
    let app = ctx.app;
    let device = devices
        .iter()
        .find(|d| d.id == device_id)
        .ok_or_else(|| ApiError::one(Detail::invalid("device.id", "The device was not found.")))?;
    let ty = device.data["type"].as_str().unwrap_or_default().to_string();
    let rules = mfa::rules(policy, &ty);
    let mut state = MfaState {
        device_id: Some(device.id.clone()),
        ..MfaState::offering(devices)
    };
    let sent = if mfa::locked_for(device, clock::unix()).is_some() {
        None
    } else {
        // A refused send (its limit) leaves the flow as it was: an earlier code still works.
        mfa::send_code(app, user, device_id, &rules, &notice_of(flow)).await?
    };
    if let Some((challenge, delivered)) = sent {
        state.challenge = Some(challenge);
        state.delivery_error = delivered.err();
    }
    store(flow, &state, devices);
    Ok(Step::Wait(OTP_REQUIRED))
}

#[async_trait::async_trait]
impl ActionType for Mfa {
    fn type_name(&self) -> &'static str {
        "MULTI_FACTOR_AUTHENTICATION"
    }

    async fn enter(&self, ctx: &FlowCtx<'_>, flow: &mut Flow, cfg: &Value) -> ApiResult<Step> {
        if flow.user_id.is_none() && !identify::from_session(ctx, flow).await? {
            return Ok(Step::Wait(identify::SIGN_ON_REQUIRED));
        }
        let user_id = flow.user_id.clone().unwrap_or_default();
        let user = mfa::user(ctx.app, &flow.env_id, &user_id).await?;
        if user.data["enabled"] != true {
            return Ok(Step::Fail(
                "access_denied",
                "The account is disabled.".into(),
            ));
        }
        if user.data["mfaEnabled"] != true {
            return Ok(without_devices(flow, cfg));
        }
        let policy = policy(ctx, flow, cfg).await?;
        let devices =
            mfa::usable_devices(ctx.app, &flow.env_id, &user_id, policy.as_ref(), cfg).await?;
        let Some(first) = devices.first() else {
            return Ok(without_devices(flow, cfg));
        };
        let selection = policy
            .as_ref()
            .and_then(|p| p.data["authentication"]["deviceSelection"].as_str())
            .unwrap_or("DEFAULT_TO_FIRST");
        let prompt = selection == "ALWAYS_DISPLAY_DEVICES"
            || (selection == "PROMPT_TO_SELECT" && devices.len() > 1);
        if prompt {
            store(flow, &MfaState::offering(&devices), &devices);
            return Ok(Step::Wait(DEVICE_SELECTION_REQUIRED));
        }
        let first = first.id.clone();
        match select(ctx, flow, &user, policy.as_ref(), &devices, &first).await {
            Ok(step) => Ok(step),
            // The first device cannot get a code now (e.g. its send limit): the earlier
            // factors stand; the user picks another device or asks again later.
            Err(ApiError::InvalidData(details)) => {
                let several = devices.len() > 1;
                let state = MfaState {
                    device_id: (!several).then_some(first),
                    ..MfaState::offering(&devices)
                };
                store(flow, &state, &devices);
                if let Some(d) = details.first() {
                    flow.scratch.insert(
                        SHOWN_ERROR.into(),
                        json!({ "code": d.code, "message": d.message }),
                    );
                }
                Ok(Step::Wait(if several {
                    DEVICE_SELECTION_REQUIRED
                } else {
                    OTP_REQUIRED
                }))
            }
            Err(e) => Err(e),
        }
    }

    fn actions(&self, flow: &Flow, _cfg: &Value) -> Vec<&'static str> {
        match flow.status.as_str() {
            identify::SIGN_ON_REQUIRED => vec!["user.lookup"],
            DEVICE_SELECTION_REQUIRED => vec!["device.select"],
            OTP_REQUIRED => vec!["otp.check", "device.select"],
            _ => vec![],
        }
    }

    async fn act(
        &self,
        ctx: &FlowCtx<'_>,
        flow: &mut Flow,
        cfg: &Value,
        action: &str,
        body: &Value,
    ) -> ApiResult<Step> {
        match action {
            "user.lookup" => {
                identify::lookup(ctx, flow, body).await?;
                self.enter(ctx, flow, cfg).await
            }
            "device.select" => {
                let id = body["device"]["id"]
                    .as_str()
                    .ok_or_else(|| ApiError::one(Detail::required("device.id")))?;
                let state = load(flow);
                if !state.offered.iter().any(|d| d == id) {
                    return Err(ApiError::one(Detail::invalid(
                        "device.id",
                        "The device is not one offered by this sign-on.",
                    )));
                }
                let user_id = flow.user_id.clone().unwrap_or_default();
                let user = mfa::user(ctx.app, &flow.env_id, &user_id).await?;
                let policy = policy(ctx, flow, cfg).await?;
                let devices =
                    mfa::usable_devices(ctx.app, &flow.env_id, &user_id, policy.as_ref(), cfg)
                        .await?;
                if !devices.iter().any(|d| d.id == id) {
                    return Err(ApiError::one(Detail::invalid(
                        "device.id",
                        "The device can no longer be used.",
                    )));
                }
                select(ctx, flow, &user, policy.as_ref(), &devices, id).await
            }
            "otp.check" => {
                let input = super::required_str(body, "otp")?;
                let mut state = load(flow);
                let device_id = state
                    .device_id
                    .clone()
                    .ok_or_else(|| ApiError::InvalidRequest("No device is selected.".into()))?;
                let user_id = flow.user_id.clone().unwrap_or_default();
                let policy = policy(ctx, flow, cfg).await?;
                let app = ctx.app;
                let mut tx = app.store.begin().await?;
                let mut device =
                    mfa::device_for_update(&mut tx, &flow.env_id, &user_id, &device_id).await?;
                let ty = device.data["type"].as_str().unwrap_or_default().to_string();
                let rules = mfa::rules(policy.as_ref(), &ty);
                let result = mfa::check_code(
                    app,
                    &mut tx,
                    &mut device,
                    state.challenge.as_ref(),
                    &rules,
                    input,
                )
                .await;
                tx.commit().await?;
                if let Err(e) = result {
                    // A code that too many wrong guesses killed is gone for good.
                    if mfa::code_dead(&device) {
                        state.challenge = None;
                        flow.scratch.insert(SCRATCH.into(), json!(state));
                    }
                    return Err(e);
                }
                flow.add_amr(mfa::amr_of(&ty));
                if flow.auth_time.is_none() {
                    flow.auth_time = Some(clock::unix());
                }
                clear(flow);
                Ok(Step::Next)
            }
            _ => Err(ApiError::InvalidRequest(format!(
                "The action '{action}' is not supported here."
            ))),
        }
    }
}
