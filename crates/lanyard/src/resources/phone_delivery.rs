//! Phone delivery settings (`/notificationsSettings/phoneDeliverySettings`): the custom HTTP
//! provider that sends SMS and voice messages (PingOne's `CUSTOM_PROVIDER`): per delivery
//! method a URL, method, body template and headers, and the provider's credentials, which are
//! sealed at rest and never rendered. PingOne's own Twilio/Syniverse accounts do not exist
//! here, so only `CUSTOM_PROVIDER` is accepted.

use serde_json::{Value, json};

use super::{CRUD, Resource, Spec, WriteCtx};
use crate::engine::authz::Area;
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::schema::{Field, Ty, f, s};
use crate::store::Doc;
use crate::store::sql_filter::{AttrType, EQ_OPS, STR_OPS, attr, column};

pub const KIND: &str = "phoneDeliverySettings";
/// The credential fields kept only in the sealed secrets.
const SECRET_FIELDS: &[&str] = &["password", "authToken", "headerValue"];

const REQUEST: &[Field] = &[
    f("deliveryMethod", Ty::Enum(&["SMS", "VOICE"])).req(),
    f("url", Ty::Url).req(),
    f("method", Ty::Enum(&["GET", "POST"])).req(),
    f("body", s(10_000)),
    f("headers", Ty::Any),
    f("phoneNumberFormat", Ty::Enum(&["FULL", "NUMBER_ONLY"])).def_str("FULL"),
    f("beforeTag", s(256)),
    f("afterTag", s(256)),
];
const AUTHENTICATION: &[Field] = &[
    f("method", Ty::Enum(&["BASIC", "BEARER", "CUSTOM_HEADER"])).req(),
    f("username", s(256)),
    f("password", s(1024)),
    f("authToken", s(4096)),
    f("headerName", Ty::Pattern(r"^[A-Za-z0-9-]{1,256}$")),
    f("headerValue", s(4096)),
];
const FIELDS: &[Field] = &[
    f("provider", Ty::Enum(&["CUSTOM_PROVIDER"])).req(),
    f("name", s(256)).req(),
    f("requests", Ty::Arr(&Ty::Obj(REQUEST), 2)).req(),
    f("authentication", Ty::Obj(AUTHENTICATION)).req(),
    f("numbers", Ty::Any),
];

pub static SPEC: Spec = Spec {
    kind: KIND,
    collection: "notificationsSettings/phoneDeliverySettings",
    parent: None,
    fields: FIELDS,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("provider", "provider", AttrType::Str, EQ_OPS),
        attr("name", "name", AttrType::Str, STR_OPS),
    ],
    unique: &[],
    area: Area::Config,
    methods: CRUD,
};

pub struct PhoneDelivery;
pub static PHONE_DELIVERY: PhoneDelivery = PhoneDelivery;

fn invalid(target: &str, message: &str) -> ApiError {
    ApiError::one(Detail::invalid(target, message))
}

#[async_trait::async_trait]
impl Resource for PhoneDelivery {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn embedded_key(&self) -> &'static str {
        "phoneDeliverySettings"
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        existing: Option<&Doc>,
    ) -> ApiResult<()> {
        let requests = doc.data["requests"].as_array().cloned().unwrap_or_default();
        let mut methods = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            let m = r["deliveryMethod"].as_str().unwrap_or_default();
            if methods.contains(&m) {
                return Err(invalid(
                    &format!("requests[{i}].deliveryMethod"),
                    "Each delivery method has one request.",
                ));
            }
            methods.push(m);
            let template = format!(
                "{}{}",
                r["url"].as_str().unwrap_or_default(),
                r["body"].as_str().unwrap_or_default()
            );
            for var in ["${to}", "${message}"] {
                if !template.contains(var) {
                    return Err(invalid(
                        &format!("requests[{i}]"),
                        &format!("The request must contain {var} in its url or body."),
                    ));
                }
            }
            if let Some(h) = r.get("headers")
                && !h
                    .as_object()
                    .is_some_and(|m| m.values().all(Value::is_string))
            {
                return Err(invalid(
                    &format!("requests[{i}].headers"),
                    "headers must be an object of strings.",
                ));
            }
        }
        // Credentials: sealed; a write that leaves one out keeps the stored one.
        let mut sealed = existing
            .and_then(|e| e.secrets.as_deref())
            .and_then(|s| ctx.app.master.decrypt_json(s).ok())
            .unwrap_or_else(|| json!({}));
        if existing.is_some_and(|e| {
            e.data["authentication"]["method"] != doc.data["authentication"]["method"]
        }) {
            sealed = json!({});
        }
        for k in SECRET_FIELDS {
            if let Some(v) = doc.data["authentication"]
                .as_object_mut()
                .and_then(|a| a.remove(*k))
            {
                sealed[*k] = v;
            }
        }
        let auth = &doc.data["authentication"];
        let need: &[&str] = match auth["method"].as_str() {
            Some("BASIC") => &["username", "password"],
            Some("BEARER") => &["authToken"],
            _ => &["headerName", "headerValue"],
        };
        for k in need {
            if auth.get(*k).is_none() && sealed.get(*k).is_none() {
                return Err(ApiError::one(Detail::required(&format!(
                    "authentication.{k}"
                ))));
            }
        }
        doc.secrets = Some(ctx.app.master.encrypt_json(&sealed));
        Ok(())
    }
}

/// The environment's provider request for a delivery method (`SMS` or `VOICE`), with its
/// unsealed credentials.
pub async fn request_for(
    app: &crate::state::App,
    env_id: &str,
    method: &str,
) -> ApiResult<Option<(Value, Value)>> {
    let settings = app.cached_children(KIND, env_id, "").await?;
    for s in settings.iter() {
        if let Some(r) = s.data["requests"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["deliveryMethod"] == method))
        {
            let mut auth = s.data["authentication"].clone();
            if let Some(sealed) = s.secrets.as_deref() {
                let secrets = app
                    .master
                    .decrypt_json(sealed)
                    .map_err(ApiError::internal)?;
                for (k, v) in secrets.as_object().into_iter().flatten() {
                    auth[k] = v.clone();
                }
            }
            return Ok(Some((r.clone(), auth)));
        }
    }
    Ok(None)
}
