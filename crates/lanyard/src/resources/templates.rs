//! Notification templates and their contents. The templates themselves are PingOne's fixed
//! catalog (read-only, named by path key); contents (`/templates/{name}/contents`) are stored
//! per environment: one per locale, delivery method and variant. New environments get the
//! default contents of the templates Lanyard sends; rendering falls back to the same defaults
//! when a content is missing.

use serde_json::{Value, json};

use super::{CRUD, ParentSpec, Resource, Spec, Unique, UniqueScope, WriteCtx};
use crate::engine::authz::Area;
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::schema::{Field, Ty, f, s};
use crate::store::Doc;
use crate::store::sql_filter::{AttrType, EQ_OPS, ORD_OPS, STR_OPS, attr, column};

pub const KIND: &str = "templateContent";
/// The parent kind named in content documents (templates are not stored).
pub const TEMPLATE_KIND: &str = "template";

pub struct Template {
    pub name: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    pub delivery_methods: &'static [&'static str],
    /// Variables the template defines besides the user's attributes (`${user.*}`).
    pub variables: &'static [&'static str],
    pub allow_dynamic_variables: bool,
}

const ALL: &[&str] = &["SMS", "Voice", "Email", "Push"];
const MESSAGES: &[&str] = &["SMS", "Voice", "Email"];

pub const CATALOG: &[Template] = &[
    Template {
        name: "credential_issued",
        display_name: "Credential Issued",
        description: "Sent when a digital credential is issued.",
        delivery_methods: &["Email", "SMS", "Push"],
        variables: &["credential.name"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "credential_revoked",
        display_name: "Credential Revoked",
        description: "Sent when a digital credential is revoked.",
        delivery_methods: &["Email", "SMS", "Push"],
        variables: &["credential.name"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "credential_updated",
        display_name: "Credential Updated",
        description: "Sent when a digital credential is updated.",
        delivery_methods: &["Email", "SMS", "Push"],
        variables: &["credential.name"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "credential_verification",
        display_name: "Credential Verification",
        description: "Sent to verify a digital credential.",
        delivery_methods: &["Email", "SMS", "Push"],
        variables: &["otp"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "device_pairing",
        display_name: "Device Pairing",
        description: "The passcode that activates a new MFA device.",
        delivery_methods: MESSAGES,
        variables: &["otp"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "digital_wallet_pairing",
        display_name: "Digital Wallet Pairing",
        description: "Pairs a digital wallet.",
        delivery_methods: &["Email", "SMS"],
        variables: &["digitalWallet.pairingUrl"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "email_verification_admin",
        display_name: "Email Verification (admin)",
        description: "Verifies an email address an administrator set.",
        delivery_methods: &["Email"],
        variables: &["code"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "email_verification_user",
        display_name: "Email Verification (user)",
        description: "Verifies an email address a user registered.",
        delivery_methods: &["Email"],
        variables: &["code"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "email_phone_verification",
        display_name: "Email and Phone Verification",
        description: "Verifies an email address or phone number.",
        delivery_methods: &["Email", "SMS", "Voice"],
        variables: &["otp"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "general",
        display_name: "General",
        description: "Free-form messages.",
        delivery_methods: ALL,
        variables: &[],
        allow_dynamic_variables: true,
    },
    Template {
        name: "id_verification",
        display_name: "Identity Verification",
        description: "Identity verification links.",
        delivery_methods: &["Email", "SMS"],
        variables: &["verificationUrl"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "new_device_paired",
        display_name: "New Device Paired",
        description: "Tells the user a new MFA device was paired.",
        delivery_methods: &["Email", "SMS"],
        variables: &["device.type", "device.nickname"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "recovery_code_template",
        display_name: "Recovery Code",
        description: "The code that resets a forgotten password.",
        delivery_methods: &["Email", "SMS", "Voice"],
        variables: &["code", "application.name"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "strong_authentication",
        display_name: "Strong Authentication",
        description: "The one-time passcode of a multi-factor sign-on.",
        delivery_methods: ALL,
        variables: &["otp"],
        allow_dynamic_variables: false,
    },
    Template {
        name: "transaction",
        display_name: "Transaction",
        description: "Approval of a transaction, with the values of the request.",
        delivery_methods: ALL,
        variables: &["otp"],
        allow_dynamic_variables: true,
    },
    Template {
        name: "verification_code_template",
        display_name: "Verification Code",
        description: "The code that verifies a new account.",
        delivery_methods: &["Email"],
        variables: &["code"],
        allow_dynamic_variables: false,
    },
];

pub fn template(name: &str) -> Option<&'static Template> {
    CATALOG.iter().find(|t| t.name == name)
}

/// The default content of a template for a delivery method (locale `en`).
pub struct DefaultContent {
    pub template: &'static str,
    pub delivery_method: &'static str,
    pub subject: Option<&'static str>,
    pub body: &'static str,
}

pub const DEFAULTS: &[DefaultContent] = &[
    DefaultContent {
        template: "strong_authentication",
        delivery_method: "SMS",
        subject: None,
        body: "Use code ${otp} to sign on.",
    },
    DefaultContent {
        template: "strong_authentication",
        delivery_method: "Voice",
        subject: None,
        body: "Hello <pause1sec> your authentication code is <sayCharValue>${otp}</sayCharValue> <pause1sec> I repeat <pause1sec> your code is <sayCharValue>${otp}</sayCharValue>",
    },
    DefaultContent {
        template: "strong_authentication",
        delivery_method: "Email",
        subject: Some("Your sign-on passcode"),
        body: "Hello ${user.username},\n\nUse code ${otp} to sign on.\n\nIf you did not try to sign on, you can ignore this message.",
    },
    DefaultContent {
        template: "transaction",
        delivery_method: "SMS",
        subject: None,
        body: "Use code ${otp} to approve the transaction.",
    },
    DefaultContent {
        template: "transaction",
        delivery_method: "Voice",
        subject: None,
        body: "Your transaction approval code is <sayCharValue>${otp}</sayCharValue>",
    },
    DefaultContent {
        template: "transaction",
        delivery_method: "Email",
        subject: Some("Approve your transaction"),
        body: "Hello ${user.username},\n\nUse code ${otp} to approve the transaction.",
    },
    DefaultContent {
        template: "device_pairing",
        delivery_method: "SMS",
        subject: None,
        body: "Use code ${otp} to activate your device.",
    },
    DefaultContent {
        template: "device_pairing",
        delivery_method: "Voice",
        subject: None,
        body: "Your activation code is <sayCharValue>${otp}</sayCharValue>",
    },
    DefaultContent {
        template: "device_pairing",
        delivery_method: "Email",
        subject: Some("Activate your device"),
        body: "Hello ${user.username},\n\nUse code ${otp} to activate your new authentication method.",
    },
    DefaultContent {
        template: "recovery_code_template",
        delivery_method: "Email",
        subject: Some("Your password recovery code"),
        body: "Hello ${user.username},\n\nUse this code to reset your password:\n\n    ${code}\n\nThe code expires in 5 minutes. If you did not ask to reset your password, ignore this email: your password has not changed.\n",
    },
    DefaultContent {
        template: "verification_code_template",
        delivery_method: "Email",
        subject: Some("Verify your account"),
        body: "Hello ${user.username},\n\nYour verification code is ${code}.",
    },
];

pub fn default_content(template: &str, delivery_method: &str) -> Option<&'static DefaultContent> {
    DEFAULTS
        .iter()
        .find(|d| d.template == template && d.delivery_method.eq_ignore_ascii_case(delivery_method))
}

/// The template object of the management API.
pub fn render_template(app: &crate::state::App, env_id: &str, t: &Template) -> Value {
    let vars: serde_json::Map<String, Value> = t
        .variables
        .iter()
        .map(|v| ((*v).to_string(), json!({ "required": false })))
        .collect();
    json!({
        "_links": {
            "self": { "href": app.env_href(env_id, &format!("/templates/{}", t.name)) },
            "contents": { "href": app.env_href(env_id, &format!("/templates/{}/contents", t.name)) },
            "environment": { "href": app.env_href(env_id, "") },
        },
        "id": t.name,
        "name": t.name,
        "environment": { "id": env_id },
        "displayName": t.display_name,
        "description": t.description,
        "deliveryMethods": t.delivery_methods,
        "variables": vars,
        "allowDynamicVariables": t.allow_dynamic_variables,
        "defaultVariant": Value::Null,
    })
}

// ---- contents ----

const ADDRESS: &[Field] = &[f("name", s(256)), f("address", Ty::Email)];
pub const DELIVERY_METHODS: &[&str] = &["Email", "SMS", "Voice", "Push"];
const LOCALE: Ty = Ty::Pattern(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$");

macro_rules! content_fields {
    ($($extra:expr),* $(,)?) => {
        &[
            f("locale", LOCALE).req(),
            f("deliveryMethod", Ty::Enum(DELIVERY_METHODS)).req().create_only(),
            f("variant", s(100)),
            f("default", Ty::Bool).ro(),
            $($extra),*
        ]
    };
}

const EMAIL_FIELDS: &[Field] = content_fields![
    f(
        "body",
        Ty::Str {
            min: 1,
            max: 100_000
        }
    )
    .req(),
    f("subject", s(256)),
    f("from", Ty::Obj(ADDRESS)),
    f("replyTo", Ty::Obj(ADDRESS)),
    f("charset", s(64)).def_str("UTF-8"),
    f("emailContentType", Ty::Enum(&["text/html", "text/plain"])).def_str("text/html"),
];
const SMS_FIELDS: &[Field] = content_fields![
    f("content", s(1600)).req(),
    f("sender", Ty::Pattern(r"^[A-Za-z0-9 ]{1,11}$"))
];
const VOICE_FIELDS: &[Field] = content_fields![f("content", s(1024)).req(), f("voice", s(64))];
const PUSH_FIELDS: &[Field] = content_fields![
    f("title", s(200)).req(),
    f("body", s(400)).req(),
    f(
        "pushCategory",
        Ty::Enum(&[
            "BANNER_BUTTONS",
            "WITHOUT_BANNER_BUTTONS",
            "APPROVE_AND_OPEN_APP"
        ])
    )
    .def_str("BANNER_BUTTONS"),
];
const ANY_FIELDS: &[Field] = content_fields![];

pub static CONTENT_SPEC: Spec = Spec {
    kind: KIND,
    collection: "contents",
    parent: Some(ParentSpec {
        kind: TEMPLATE_KIND,
        segment: "templates",
        field: "template",
    }),
    fields: ANY_FIELDS,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("locale", "locale", AttrType::Str, STR_OPS),
        attr("deliveryMethod", "deliveryMethod", AttrType::Str, EQ_OPS),
        attr("variant", "variant", AttrType::Str, STR_OPS),
        attr("default", "default", AttrType::Bool, EQ_OPS),
        column("createdAt", "created_at", AttrType::Date, ORD_OPS),
        column("updatedAt", "updated_at", AttrType::Date, ORD_OPS),
    ],
    unique: &[Unique {
        key: "content",
        path: "_key",
        scope: UniqueScope::Environment,
    }],
    area: Area::Config,
    methods: CRUD,
};

pub struct Contents;
pub static CONTENTS: Contents = Contents;

/// `${name}` placeholders of a text.
pub fn variables_of(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => {
                out.push(&after[..j]);
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

/// The texts of a content that may hold variables.
fn texts(data: &Value) -> Vec<(&'static str, &str)> {
    ["content", "body", "subject", "title"]
        .into_iter()
        .filter_map(|k| data.get(k).and_then(Value::as_str).map(|v| (k, v)))
        .collect()
}

#[async_trait::async_trait]
impl Resource for Contents {
    fn spec(&self) -> &'static Spec {
        &CONTENT_SPEC
    }

    fn fields(&self, input: &Value, existing: Option<&Doc>) -> &'static [Field] {
        let m = existing
            .map(|d| &d.data["deliveryMethod"])
            .unwrap_or(&input["deliveryMethod"]);
        match m.as_str() {
            Some("Email") => EMAIL_FIELDS,
            Some("SMS") => SMS_FIELDS,
            Some("Voice") => VOICE_FIELDS,
            Some("Push") => PUSH_FIELDS,
            _ => ANY_FIELDS,
        }
    }

    async fn parent_exists(
        &self,
        _app: &crate::state::App,
        _env_id: &str,
        parent_id: &str,
    ) -> ApiResult<bool> {
        Ok(template(parent_id).is_some())
    }

    async fn prepare(
        &self,
        _ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        existing: Option<&Doc>,
    ) -> ApiResult<()> {
        let t = template(&doc.parent_id).ok_or_else(ApiError::not_found)?;
        let method = doc.data["deliveryMethod"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !t.delivery_methods.contains(&method.as_str()) {
            return Err(ApiError::one(
                Detail::invalid(
                    "deliveryMethod",
                    format!("The {} template does not deliver by {method}.", t.name),
                )
                .with_inner(json!({ "allowedValues": t.delivery_methods })),
            ));
        }
        for (field, text) in texts(&doc.data) {
            for var in variables_of(text) {
                let known = var.starts_with("user.")
                    || t.variables.contains(&var)
                    || (t.allow_dynamic_variables && !var.is_empty());
                if !known {
                    return Err(ApiError::one(Detail::invalid(
                        field,
                        format!(
                            "The variable ${{{var}}} is not defined by the {} template.",
                            t.name
                        ),
                    )));
                }
            }
        }
        if existing.is_none() && doc.data.get("default").is_none() {
            doc.data["default"] = json!(false);
        }
        let variant = doc.data["variant"].as_str().unwrap_or_default();
        let locale = doc.data["locale"].as_str().unwrap_or_default();
        doc.data["_key"] = json!(format!("{}|{locale}|{method}|{variant}", t.name));
        Ok(())
    }

    async fn before_delete(&self, _ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        if doc.data["default"] == true {
            return Err(ApiError::RequestFailed(
                "A default template content cannot be deleted; update it instead.".into(),
                vec![],
            ));
        }
        Ok(())
    }
}

/// Stores the default contents of a new environment.
pub async fn create_defaults(ctx: &mut WriteCtx<'_>) -> ApiResult<()> {
    for d in DEFAULTS {
        let mut body = json!({ "locale": "en", "deliveryMethod": d.delivery_method });
        match d.delivery_method {
            "Email" => {
                body["body"] = json!(d.body);
                body["subject"] = json!(d.subject);
                body["emailContentType"] = json!("text/plain");
            }
            _ => body["content"] = json!(d.body),
        }
        let mut doc = super::ops::create(ctx, &CONTENTS, &body, d.template).await?;
        doc.data["default"] = json!(true);
        ctx.tx.update_data(&mut doc).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_variables() {
        assert_eq!(
            super::variables_of("a ${otp} b ${user.name.given}${x"),
            vec!["otp", "user.name.given"]
        );
    }
}
