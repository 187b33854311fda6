//! Sign-on policies and their actions. Each action type has its own schema; priorities stay
//! dense and unique within a policy.

use serde_json::{Value, json};

use super::{CRUD, ParentSpec, Resource, Spec, Unique, UniqueScope, WriteCtx, priority};
use crate::engine::authz::Area;
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::schema::{Field, Ty, f, int, s};
use crate::store::Doc;
use crate::store::sql_filter::{AttrType, EQ_OPS, STR_OPS, attr, column};

pub const KIND: &str = "signOnPolicy";
pub const ACTION_KIND: &str = "signOnPolicyAction";

pub const ACTION_TYPES: &[&str] = &[
    "LOGIN",
    "MULTI_FACTOR_AUTHENTICATION",
    "IDENTIFIER_FIRST",
    "IDENTITY_PROVIDER",
    "PROGRESSIVE_PROFILING",
    "AGREEMENT",
    "PINGID_AUTHENTICATION",
    "PINGID_WINLOGIN_PASSWORDLESS_AUTHENTICATION",
];

const FIELDS: &[Field] = &[
    f(
        "name",
        Ty::Pattern(r"^([a-zA-Z0-9_. -]{1,256}|[a-zA-Z][a-zA-Z0-9+.-]*:[^\s]{1,2048})$"),
    )
    .req(),
    f("description", s(1024)),
    // Defaulted in `prepare`: a PUT that omits it keeps the current value.
    f("default", Ty::Bool),
];

pub static SPEC: Spec = Spec {
    kind: KIND,
    collection: "signOnPolicies",
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

pub struct SignOnPolicies;
pub static SIGN_ON_POLICIES: SignOnPolicies = SignOnPolicies;

#[async_trait::async_trait]
impl Resource for SignOnPolicies {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        existing: Option<&Doc>,
    ) -> ApiResult<()> {
        super::single_default::prepare(ctx, doc, existing, "sign-on policy").await?;
        Ok(())
    }

    async fn before_delete(&self, ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        super::single_default::before_delete(doc, "sign-on policy")?;
        // Applications assigned to this policy lose the assignment.
        let cond = crate::store::Condition {
            sql: format!("{} = $1", ctx.tx.dialect.json_text("signOnPolicy.id")),
            params: vec![crate::store::Param::Str(doc.id.clone())],
        };
        let q = crate::store::ListQuery {
            kind: super::applications::ASSIGNMENT_KIND,
            env_id: &doc.env_id,
            parent_id: None,
            condition: Some(cond),
            limit: 100_000,
            after: None,
        };
        for a in ctx.tx.list(&q).await? {
            ctx.tx.delete(&a.kind, &a.id).await?;
            priority::compact(ctx.tx, &a).await?;
        }
        Ok(())
    }
}

// ---- actions ----

const ENABLED: &[Field] = &[f("enabled", Ty::Bool).req()];
const REGISTRATION: &[Field] = &[
    f("enabled", Ty::Bool).req(),
    f("population", Ty::Ref),
    f("external", Ty::Obj(&[f("href", Ty::Url).req()])),
    f("confirmIdentityProviderAttributes", Ty::Bool).def_bool(false),
];
const IDP_REGISTRATION: &[Field] = &[
    f("enabled", Ty::Bool).req(),
    f("population", Ty::Ref),
    f("confirmIdentityProviderAttributes", Ty::Bool).def_bool(false),
];
const DISCOVERY_CONDITION: &[Field] = &[f("contains", s(1024)).req(), f("value", s(256)).req()];
const DISCOVERY_RULE: &[Field] = &[
    f("condition", Ty::Obj(DISCOVERY_CONDITION)).req(),
    f("identityProvider", Ty::Ref).req(),
];
const PROFILE_ATTRIBUTE: &[Field] = &[f("name", s(256)).req(), f("required", Ty::Bool).req()];
const MFA_APPLICATION: &[Field] = &[
    f("id", Ty::Uuid).req(),
    f("autoEnrollment", Ty::Obj(ENABLED)),
    f(
        "deviceAuthorization",
        Ty::Obj(&[
            f("enabled", Ty::Bool).req(),
            f(
                "extraVerification",
                Ty::Enum(&["disabled", "permissive", "restrictive"]),
            ),
        ]),
    ),
];

macro_rules! action_fields {
    ($($extra:expr),* $(,)?) => {
        &[
            f("type", Ty::Enum(ACTION_TYPES)).req().create_only(),
            f("priority", int(1, 1_000_000)).req(),
            f("condition", Ty::Any),
            $($extra),*
        ]
    };
}

const ANY_ACTION: &[Field] = action_fields![];
const LOGIN: &[Field] = action_fields![
    f("recovery", Ty::Obj(ENABLED)),
    f("registration", Ty::Obj(REGISTRATION)),
    f("socialProviders", Ty::Arr(&Ty::Ref, 100)),
    f("enforceLockoutForIdentityProviders", Ty::Bool),
    f("newUserProvisioning", Ty::Any),
];
const IDENTIFIER_FIRST: &[Field] = action_fields![
    f("recovery", Ty::Obj(ENABLED)),
    f("registration", Ty::Obj(REGISTRATION)),
    f("socialProviders", Ty::Arr(&Ty::Ref, 100)),
    f("enforceLockoutForIdentityProviders", Ty::Bool),
    f("discoveryRules", Ty::Arr(&Ty::Obj(DISCOVERY_RULE), 100)),
];
const MFA: &[Field] = action_fields![
    f("deviceAuthenticationPolicy", Ty::Ref),
    f("noDevicesMode", Ty::Enum(&["BYPASS", "BLOCK"])).def_str("BLOCK"),
    f("sms", Ty::Obj(ENABLED)),
    f("voice", Ty::Obj(ENABLED)),
    f("email", Ty::Obj(ENABLED)),
    f("authenticator", Ty::Obj(ENABLED)),
    f("securityKey", Ty::Obj(ENABLED)),
    f("boundBiometrics", Ty::Obj(ENABLED)),
    f("applications", Ty::Arr(&Ty::Obj(MFA_APPLICATION), 100)),
];
const IDENTITY_PROVIDER: &[Field] = action_fields![
    f("identityProvider", Ty::Ref).req(),
    f("acrValues", s(1024)),
    f("passUserContext", Ty::Bool),
    f("registration", Ty::Obj(IDP_REGISTRATION)),
];
const PROGRESSIVE_PROFILING: &[Field] = action_fields![
    f("attributes", Ty::Arr(&Ty::Obj(PROFILE_ATTRIBUTE), 100)).req(),
    f("preventMultiplePromptsPerFlow", Ty::Bool).def_bool(true),
    f("promptIntervalSeconds", int(1, 2147483647)).def_int(7776000),
    f("promptText", s(1024)).req(),
];
const AGREEMENT: &[Field] = action_fields![
    f("agreement", Ty::Ref).req(),
    f("disableDeclineOption", Ty::Bool).def_bool(false)
];

pub static ACTIONS_SPEC: Spec = Spec {
    kind: ACTION_KIND,
    collection: "actions",
    parent: Some(ParentSpec {
        kind: KIND,
        segment: "signOnPolicies",
        field: "signOnPolicy",
    }),
    fields: ANY_ACTION,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("type", "type", AttrType::Str, EQ_OPS),
    ],
    unique: &[],
    area: Area::Config,
    methods: CRUD,
};

pub struct Actions;
pub static ACTIONS: Actions = Actions;

#[async_trait::async_trait]
impl Resource for Actions {
    fn spec(&self) -> &'static Spec {
        &ACTIONS_SPEC
    }

    fn fields(&self, input: &Value, existing: Option<&Doc>) -> &'static [Field] {
        let t = existing.map(|d| &d.data["type"]).unwrap_or(&input["type"]);
        match t.as_str() {
            Some("LOGIN") => LOGIN,
            Some("IDENTIFIER_FIRST") => IDENTIFIER_FIRST,
            Some("MULTI_FACTOR_AUTHENTICATION") => MFA,
            Some("IDENTITY_PROVIDER") => IDENTITY_PROVIDER,
            Some("PROGRESSIVE_PROFILING") => PROGRESSIVE_PROFILING,
            Some("AGREEMENT") => AGREEMENT,
            _ => ANY_ACTION,
        }
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        _existing: Option<&Doc>,
    ) -> ApiResult<()> {
        let t = doc.data["type"].as_str().unwrap_or_default().to_string();
        if matches!(t.as_str(), "LOGIN" | "IDENTIFIER_FIRST") {
            if doc.data.get("recovery").is_none() {
                doc.data["recovery"] = json!({ "enabled": true });
            }
            if doc.data.get("registration").is_none() {
                doc.data["registration"] = json!({ "enabled": false });
            }
            if doc.data["registration"]["enabled"] == true
                && doc.data["registration"].get("external").is_some()
            {
                return Err(ApiError::one(Detail::invalid(
                    "registration.external",
                    "An external registration page applies only when registration is disabled.",
                )));
            }
        }
        ctx.require_ref(
            doc,
            "registration.population.id",
            super::populations::KIND,
            "population",
        )
        .await?;
        ctx.require_ref(
            doc,
            "deviceAuthenticationPolicy.id",
            super::mfa_policies::KIND,
            "device authentication policy",
        )
        .await?;
        if let Some(cond) = doc.data.get("condition") {
            check_condition(cond, "condition")?;
        }
        // The priority asked for may be past the end: check the rule at the placed priority.
        priority::place(ctx.tx, doc).await?;
        if doc.data["priority"] == 1 && doc.data.get("condition").is_some_and(uses_user_attribute) {
            return Err(ApiError::one(Detail::invalid(
                "condition",
                "The first action of a policy cannot depend on user attributes.",
            )));
        }
        Ok(())
    }

    async fn before_delete(&self, ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        priority::compact(ctx.tx, doc).await
    }
}

/// Whether a condition reads user attributes (`${user.…}`).
pub fn uses_user_attribute(cond: &Value) -> bool {
    cond.to_string().contains("${user.")
}

/// The boolean condition tree of an action: `and`/`or` lists, `not`, and the leaf forms.
fn check_condition(v: &Value, target: &str) -> ApiResult<()> {
    let bad = |m: &str| ApiError::one(Detail::invalid(target, m));
    let obj = v
        .as_object()
        .ok_or_else(|| bad("A condition must be an object."))?;
    if let Some(list) = obj.get("and").or_else(|| obj.get("or")) {
        let items = list
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| bad("'and'/'or' take a non-empty list of conditions."))?;
        for (i, c) in items.iter().enumerate() {
            check_condition(
                c,
                &format!(
                    "{target}.{}[{i}]",
                    if obj.contains_key("and") { "and" } else { "or" }
                ),
            )?;
        }
        return Ok(());
    }
    if let Some(inner) = obj.get("not") {
        return check_condition(inner, &format!("{target}.not"));
    }
    let leaf_ok = (obj.contains_key("secondsSince")
        && obj
            .get("greater")
            .and_then(Value::as_i64)
            .is_some_and(|g| g >= 1))
        || (obj.contains_key("value") && obj.contains_key("equals"))
        || (obj.contains_key("contains") && obj.get("ipRange").is_some_and(Value::is_array))
        || (obj.contains_key("ipRisk") && obj.contains_key("valid"))
        || (obj.contains_key("geoVelocity") && obj.contains_key("valid"))
        || (obj.contains_key("anonymousNetwork") && obj.contains_key("valid"));
    if !leaf_ok {
        return Err(bad(
            "Unknown condition; expected and/or/not, secondsSince+greater, value+equals, contains+ipRange, ipRisk, geoVelocity or anonymousNetwork.",
        ));
    }
    if let Some(ranges) = obj.get("ipRange").and_then(Value::as_array) {
        for r in ranges {
            let ok = r
                .as_str()
                .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok() || valid_cidr(s));
            if !ok {
                return Err(bad("ipRange entries must be IP addresses or CIDR ranges."));
            }
        }
    }
    Ok(())
}

fn valid_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    match (ip.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
        _ => false,
    }
}

/// `Single_Factor` (the default: LOGIN) and `Multi_Factor` (LOGIN, then MFA).
pub async fn create_defaults(ctx: &mut WriteCtx<'_>) -> ApiResult<()> {
    let single = super::ops::create(ctx, &SIGN_ON_POLICIES, &json!({ "name": "Single_Factor", "description": "Sign on with a username and password", "default": true }), "").await?;
    super::ops::create(ctx, &ACTIONS, &json!({ "type": "LOGIN", "priority": 1, "recovery": { "enabled": true }, "registration": { "enabled": false } }), &single.id).await?;
    let multi = super::ops::create(ctx, &SIGN_ON_POLICIES, &json!({ "name": "Multi_Factor", "description": "Sign on with a username and password, then a second factor" }), "").await?;
    super::ops::create(ctx, &ACTIONS, &json!({ "type": "LOGIN", "priority": 1, "recovery": { "enabled": true }, "registration": { "enabled": false } }), &multi.id).await?;
    super::ops::create(ctx, &ACTIONS, &json!({ "type": "MULTI_FACTOR_AUTHENTICATION", "priority": 2, "noDevicesMode": "BYPASS", "sms": { "enabled": true }, "voice": { "enabled": true }, "email": { "enabled": true }, "authenticator": { "enabled": true } }), &multi.id).await?;
    Ok(())
}
