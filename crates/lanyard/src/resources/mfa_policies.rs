//! Device authentication policies (`/deviceAuthenticationPolicies`): which MFA methods a
//! sign-on may use, and per method the OTP length, lifetime, failure count and cool-down;
//! how a device is chosen. Each environment has one default policy ("Default MFA Policy").

use serde_json::{Value, json};

use super::{CRUD, Resource, Spec, Unique, UniqueScope, WriteCtx};
use crate::engine::authz::Area;
use crate::error::ApiResult;
use crate::model::schema::{Field, Ty, f, int, s};
use crate::store::Doc;
use crate::store::sql_filter::{AttrType, EQ_OPS, STR_OPS, attr, column};

pub const KIND: &str = "deviceAuthenticationPolicy";

pub const DEVICE_SELECTION: &[&str] = &[
    "DEFAULT_TO_FIRST",
    "PROMPT_TO_SELECT",
    "ALWAYS_DISPLAY_DEVICES",
];
const TIME_UNIT: Ty = Ty::Enum(&["MINUTES", "SECONDS"]);

const DURATION: &[Field] = &[
    f("duration", int(1, 7200)).req(),
    f("timeUnit", TIME_UNIT).req(),
];
const COOL_DOWN: &[Field] = &[
    f("duration", int(0, 7200)).req(),
    f("timeUnit", TIME_UNIT).req(),
];
const FAILURE: &[Field] = &[
    f("count", int(1, 7)).req(),
    f("coolDown", Ty::Obj(COOL_DOWN)).req(),
];
const OFFLINE_OTP: &[Field] = &[
    f("lifeTime", Ty::Obj(DURATION)).req(),
    f("failure", Ty::Obj(FAILURE)).req(),
    f("otpLength", int(6, 10)).def_int(6),
];
/// SMS, voice, email (and WhatsApp): codes the server sends.
const OFFLINE: &[Field] = &[
    f("enabled", Ty::Bool).req(),
    f("pairingDisabled", Ty::Bool).def_bool(false),
    f("otp", Ty::Obj(OFFLINE_OTP)).req(),
    f("promptForNicknameOnPairing", Ty::Bool),
];
const TOTP_OTP: &[Field] = &[f("failure", Ty::Obj(FAILURE)).req()];
const TOTP: &[Field] = &[
    f("enabled", Ty::Bool).req(),
    f("pairingDisabled", Ty::Bool).def_bool(false),
    f("otp", Ty::Obj(TOTP_OTP)).req(),
    f("promptForNicknameOnPairing", Ty::Bool),
    f("uriParameters", Ty::Any),
];

const FIELDS: &[Field] = &[
    f("name", s(256)).req(),
    f("default", Ty::Bool),
    f("forSignOnPolicy", Ty::Bool).def_bool(false),
    f(
        "authentication",
        Ty::Obj(&[f("deviceSelection", Ty::Enum(DEVICE_SELECTION)).req()]),
    ),
    f(
        "newDeviceNotification",
        Ty::Enum(&["NONE", "EMAIL_THEN_SMS", "SMS_THEN_EMAIL"]),
    )
    .def_str("EMAIL_THEN_SMS"),
    f("sms", Ty::Obj(OFFLINE)).req(),
    f("voice", Ty::Obj(OFFLINE)).req(),
    f("email", Ty::Obj(OFFLINE)).req(),
    f("whatsApp", Ty::Obj(OFFLINE)),
    f("totp", Ty::Obj(TOTP)).req(),
    // Push, FIDO2 and OATH tokens are kept as given; Lanyard signs on with none of them yet.
    f("mobile", Ty::Any),
    f("fido2", Ty::Any),
    f("oathToken", Ty::Any),
    f("rememberMe", Ty::Any),
    f("ignoreUserLock", Ty::Bool),
    f("notificationsPolicy", Ty::Any),
];

pub static SPEC: Spec = Spec {
    kind: KIND,
    collection: "deviceAuthenticationPolicies",
    parent: None,
    fields: FIELDS,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("name", "name", AttrType::Str, STR_OPS),
        attr("default", "default", AttrType::Bool, EQ_OPS),
    ],
    unique: &[Unique {
        key: "name",
        path: "name",
        scope: UniqueScope::Environment,
    }],
    area: Area::Config,
    methods: CRUD,
};

pub struct MfaPolicies;
pub static MFA_POLICIES: MfaPolicies = MfaPolicies;

const WHAT: &str = "device authentication policy";

#[async_trait::async_trait]
impl Resource for MfaPolicies {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        existing: Option<&Doc>,
    ) -> ApiResult<()> {
        if doc.data.get("authentication").is_none() {
            doc.data["authentication"] = json!({ "deviceSelection": "DEFAULT_TO_FIRST" });
        }
        super::single_default::prepare(ctx, doc, existing, WHAT).await
    }

    /// Sign-on actions that named a deleted policy fall back to the default one.
    async fn before_delete(&self, _ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        super::single_default::before_delete(doc, WHAT)
    }
}

fn offline_defaults() -> Value {
    json!({
        "enabled": true,
        "pairingDisabled": false,
        "otp": {
            "lifeTime": { "duration": 30, "timeUnit": "MINUTES" },
            "failure": { "count": 3, "coolDown": { "duration": 2, "timeUnit": "MINUTES" } },
            "otpLength": 6
        }
    })
}

/// The environment's "Default MFA Policy": SMS, voice, email and TOTP enabled.
pub async fn create_default(ctx: &mut WriteCtx<'_>) -> ApiResult<Doc> {
    super::ops::create(
        ctx,
        &MFA_POLICIES,
        &json!({
            "name": "Default MFA Policy",
            "default": true,
            "authentication": { "deviceSelection": "DEFAULT_TO_FIRST" },
            "newDeviceNotification": "NONE",
            "sms": offline_defaults(),
            "voice": offline_defaults(),
            "email": offline_defaults(),
            "totp": {
                "enabled": true,
                "pairingDisabled": false,
                "otp": { "failure": { "count": 3, "coolDown": { "duration": 2, "timeUnit": "MINUTES" } } }
            },
            "mobile": { "enabled": false },
            "fido2": { "enabled": false }
        }),
        "",
    )
    .await
}

/// The device authentication policy named by `id` (an MFA action's
/// `deviceAuthenticationPolicy`, a device's `policy`), else the environment default; through
/// the sign-on configuration cache.
pub async fn resolve(
    app: &crate::state::App,
    env_id: &str,
    id: Option<&str>,
) -> ApiResult<Option<Doc>> {
    if let Some(id) = id
        && let Some(p) = app.cached_doc(KIND, env_id, id).await?
    {
        return Ok(Some(p));
    }
    Ok(app
        .cached_children(KIND, env_id, "")
        .await?
        .iter()
        .find(|p| p.data["default"] == true)
        .cloned())
}

/// Seconds of a `{duration, timeUnit}` object.
pub fn seconds(v: &Value) -> Option<i64> {
    let d = v["duration"].as_i64()?;
    Some(match v["timeUnit"].as_str() {
        Some("SECONDS") => d,
        _ => d * 60,
    })
}
