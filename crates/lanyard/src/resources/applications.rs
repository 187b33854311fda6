//! Applications (OIDC and SAML), their client secrets, resource grants, attribute mappings and
//! sign-on policy assignments.

use serde_json::{Value, json};

use super::{CRUD, ParentSpec, Resource, Spec, Unique, UniqueScope, WriteCtx, priority};
use crate::engine::authz::Area;
use crate::engine::oauth::redirect_uri;
use crate::engine::secrets::{random_secret, secret_eq};
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::schema::{Field, Ty, f, int, is_absolute_url, s};
use crate::state::App;
use crate::store::Doc;
use crate::store::sql_filter::{AttrType, EQ_OPS, STR_OPS, attr, column};

pub const KIND: &str = "application";
pub const GRANT_KIND: &str = "grant";
pub const MAPPING_KIND: &str = "applicationAttribute";
pub const ASSIGNMENT_KIND: &str = "signOnPolicyAssignment";

pub const OIDC_TYPES: &[&str] = &[
    "WEB_APP",
    "NATIVE_APP",
    "SINGLE_PAGE_APP",
    "WORKER",
    "SERVICE",
    "CUSTOM_APP",
];
pub const GRANT_TYPES: &[&str] = &[
    "AUTHORIZATION_CODE",
    "IMPLICIT",
    "REFRESH_TOKEN",
    "CLIENT_CREDENTIALS",
    "DEVICE_CODE",
    "TOKEN_EXCHANGE",
    "CIBA",
];
pub const AUTH_METHODS: &[&str] = &[
    "NONE",
    "CLIENT_SECRET_BASIC",
    "CLIENT_SECRET_POST",
    "CLIENT_SECRET_JWT",
    "PRIVATE_KEY_JWT",
];

const ICON: &[Field] = &[f("id", Ty::Uuid), f("href", Ty::Url)];
const ACCESS_ROLE: &[Field] = &[f("type", Ty::Enum(&["ADMIN_USERS_ONLY"])).req()];
const ACCESS_GROUP: &[Field] = &[
    f("type", Ty::Enum(&["ANY_GROUP", "ALL_GROUPS"])).req(),
    f("groups", Ty::Arr(&Ty::Ref, 1000)).req(),
];
const ACCESS: &[Field] = &[
    f("role", Ty::Obj(ACCESS_ROLE)),
    f("group", Ty::Obj(ACCESS_GROUP)),
];
const CORS: &[Field] = &[
    f(
        "behavior",
        Ty::Enum(&["ALLOW_NO_ORIGINS", "ALLOW_SPECIFIC_ORIGINS"]),
    )
    .req(),
    f("origins", Ty::Arr(&Ty::Str { min: 1, max: 2048 }, 20)),
];
const SIGNING: &[Field] = &[f("keyRotationPolicy", Ty::Ref).req()];
const KEY_REF: &[Field] = &[
    f("key", Ty::Ref).req(),
    f("algorithm", Ty::Enum(SIGNATURE_ALGORITHMS)),
];
const SIGNATURE_ALGORITHMS: &[&str] = &[
    "SHA256withRSA",
    "SHA384withRSA",
    "SHA512withRSA",
    "SHA256withECDSA",
    "SHA384withECDSA",
    "SHA512withECDSA",
];
const SP_ENCRYPTION: &[Field] = &[
    f("algorithm", Ty::Enum(&["AES_128", "AES_256", "TRIPLEDES"])).req(),
    f("certificate", Ty::Ref).req(),
];
const SP_VERIFICATION: &[Field] = &[
    f("authnRequestSigned", Ty::Bool).def_bool(false),
    f("certificates", Ty::Arr(&Ty::Ref, 100)),
];

macro_rules! common_fields {
    ($($extra:expr),* $(,)?) => {
        &[
            f("name", s(256)).req(),
            f("description", s(1024)),
            f("enabled", Ty::Bool).def_bool(false),
            f("protocol", Ty::Enum(&["OPENID_CONNECT", "SAML"])).req().create_only(),
            f("icon", Ty::Obj(ICON)),
            f("loginPageUrl", Ty::Url),
            f("homePageUrl", Ty::Url),
            f("hiddenFromAppPortal", Ty::Bool),
            f("accessControl", Ty::Obj(ACCESS)),
            f("corsSettings", Ty::Obj(CORS)),
            $($extra),*
        ]
    };
}

const OIDC_FIELDS: &[Field] = common_fields![
    f("type", Ty::Enum(OIDC_TYPES)).req().create_only(),
    f("grantTypes", Ty::Arr(&Ty::Enum(GRANT_TYPES), 7)),
    f(
        "responseTypes",
        Ty::Arr(&Ty::Enum(&["CODE", "TOKEN", "ID_TOKEN"]), 3)
    ),
    f("tokenEndpointAuthMethod", Ty::Enum(AUTH_METHODS)).req(),
    f(
        "pkceEnforcement",
        Ty::Enum(&["OPTIONAL", "REQUIRED", "S256_REQUIRED"])
    )
    .def_str("OPTIONAL"),
    f("redirectUris", Ty::Arr(&Ty::Str { min: 1, max: 2048 }, 100)),
    f("allowWildcardInRedirectUris", Ty::Bool),
    f(
        "postLogoutRedirectUris",
        Ty::Arr(&Ty::Str { min: 1, max: 2048 }, 100)
    ),
    f("initiateLoginUri", Ty::Url),
    f("targetLinkUri", Ty::Url),
    f("clientId", Ty::Str { min: 8, max: 256 }).create_only(),
    f("jwks", s(65536)),
    f("jwksUrl", Ty::Url),
    f("refreshTokenDuration", int(60, 2147483647)).def_int(2592000),
    f("refreshTokenRollingDuration", int(60, 2147483647)),
    f("refreshTokenRollingGracePeriodDuration", int(0, 86400)),
    f("additionalRefreshTokenReplayProtectionEnabled", Ty::Bool).def_bool(true),
    f(
        "refreshTokenType",
        Ty::Enum(&["JSON_WEB_TOKEN", "OPAQUE_TOKEN"])
    ),
    f("parRequirement", Ty::Enum(&["REQUIRED", "OPTIONAL"])).def_str("OPTIONAL"),
    f("parTimeout", int(1, 600)).def_int(60),
    f("requireSignedRequestObject", Ty::Bool),
    f("supportUnsignedRequestObject", Ty::Bool),
    f("devicePathId", Ty::Pattern("^[a-zA-Z0-9_-]{1,50}$")),
    f("deviceCustomVerificationUri", Ty::Url),
    f("deviceTimeout", int(1, 3600)).def_int(600),
    f("devicePollingInterval", int(1, 60)).def_int(5),
    f("idpSignoff", Ty::Bool),
    f("includeX5t", Ty::Bool),
    f("opSessionCheckEnabled", Ty::Bool).def_bool(false),
    f("requestScopesForMultipleResourcesEnabled", Ty::Bool).def_bool(false),
    f("signing", Ty::Obj(SIGNING)),
    f(
        "tags",
        Ty::Arr(&Ty::Enum(&["PING_FED_CONNECTION_INTEGRATION"]), 1)
    ),
    f("template", Ty::Any),
    f("mobile", Ty::Any),
    f("kerberos", Ty::Any),
    f("assignActorRoles", Ty::Bool),
];

const SAML_FIELDS: &[Field] = common_fields![
    f("type", Ty::Enum(&["WEB_APP", "CUSTOM_APP", "TEMPLATE_APP"]))
        .req()
        .create_only(),
    f("spEntityId", s(1024)).req(),
    f("acsUrls", Ty::Arr(&Ty::Url, 100)).req(),
    f("assertionDuration", int(1, 2147483647)).req(),
    f("assertionSigned", Ty::Bool).def_bool(true),
    f("responseSigned", Ty::Bool).def_bool(false),
    f("nameIdFormat", s(256)),
    f("idpSigning", Ty::Obj(KEY_REF)),
    f("spEncryption", Ty::Obj(SP_ENCRYPTION)),
    f("spVerification", Ty::Obj(SP_VERIFICATION)),
    f("sloBinding", Ty::Enum(&["HTTP_POST", "HTTP_REDIRECT"])),
    f("sloEndpoint", Ty::Url),
    f("sloResponseEndpoint", Ty::Url),
    f("sloWindow", int(0, 24)),
    f("sessionNotOnOrAfterDuration", int(60, 2147483647)),
    f("defaultTargetUrl", Ty::Url),
    f("enableRequestedAuthnContext", Ty::Bool),
    f("enableAlwaysAcceptAcsUrlInSignedAuthnRequest", Ty::Bool),
    f("virtualServerIdSettings", Ty::Any),
    f("template", Ty::Any),
];

const PROTOCOL_ONLY: &[Field] = &[f("protocol", Ty::Enum(&["OPENID_CONNECT", "SAML"])).req()];

pub static SPEC: Spec = Spec {
    kind: KIND,
    collection: "applications",
    parent: None,
    fields: PROTOCOL_ONLY,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("name", "name", AttrType::Str, STR_OPS),
        attr("type", "type", AttrType::Str, EQ_OPS),
        attr("protocol", "protocol", AttrType::Str, EQ_OPS),
        attr("enabled", "enabled", AttrType::Bool, EQ_OPS),
        attr("spEntityId", "spEntityId", AttrType::Str, EQ_OPS),
    ],
    unique: &[
        Unique {
            key: "clientId",
            path: "clientId",
            scope: UniqueScope::Environment,
        },
        Unique {
            key: "spEntityId",
            path: "spEntityId",
            scope: UniqueScope::Environment,
        },
    ],
    area: Area::Applications,
    methods: CRUD,
};

pub struct Applications;
pub static APPLICATIONS: Applications = Applications;

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The rules between an OIDC application's type, grants, response types and client auth.
fn check_oidc(data: &mut Value) -> Vec<Detail> {
    let mut errs = Vec::new();
    let app_type = data["type"].as_str().unwrap_or_default().to_string();
    if data.get("grantTypes").is_none() {
        let default: &[&str] = match app_type.as_str() {
            "WORKER" | "SERVICE" => &["CLIENT_CREDENTIALS"],
            _ => &["AUTHORIZATION_CODE"],
        };
        data["grantTypes"] = json!(default);
    }
    let grants = strings(&data["grantTypes"])
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    let has = |g: &str| grants.iter().any(|x| x == g);
    if grants.is_empty() {
        errs.push(Detail::invalid(
            "grantTypes",
            "At least one grant type is required.",
        ));
    }
    if data.get("responseTypes").is_none() {
        let mut rt = Vec::new();
        if has("AUTHORIZATION_CODE") {
            rt.push("CODE");
        }
        if has("IMPLICIT") {
            rt.extend(["TOKEN", "ID_TOKEN"]);
        }
        data["responseTypes"] = json!(rt);
    }
    let responses = strings(&data["responseTypes"])
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    let responds = |r: &str| responses.iter().any(|x| x == r);
    let method = data["tokenEndpointAuthMethod"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    if has("AUTHORIZATION_CODE") && !responds("CODE") {
        errs.push(Detail::invalid(
            "responseTypes",
            "The AUTHORIZATION_CODE grant requires the CODE response type.",
        ));
    }
    if responds("CODE") && !has("AUTHORIZATION_CODE") {
        errs.push(Detail::invalid(
            "responseTypes",
            "The CODE response type requires the AUTHORIZATION_CODE grant.",
        ));
    }
    if (responds("TOKEN") || responds("ID_TOKEN")) && !has("IMPLICIT") {
        errs.push(Detail::invalid(
            "responseTypes",
            "The TOKEN and ID_TOKEN response types require the IMPLICIT grant.",
        ));
    }
    if has("IMPLICIT") && !(responds("TOKEN") || responds("ID_TOKEN")) {
        errs.push(Detail::invalid(
            "responseTypes",
            "The IMPLICIT grant requires the TOKEN or ID_TOKEN response type.",
        ));
    }
    if has("REFRESH_TOKEN")
        && !(has("AUTHORIZATION_CODE")
            || has("DEVICE_CODE")
            || has("CIBA")
            || has("TOKEN_EXCHANGE"))
    {
        errs.push(Detail::invalid(
            "grantTypes",
            "The REFRESH_TOKEN grant requires a grant that signs a user in.",
        ));
    }
    if has("CLIENT_CREDENTIALS") && method == "NONE" {
        errs.push(Detail::invalid(
            "tokenEndpointAuthMethod",
            "The CLIENT_CREDENTIALS grant requires client authentication.",
        ));
    }
    match app_type.as_str() {
        "SINGLE_PAGE_APP" => {
            if method != "NONE" {
                errs.push(Detail::invalid(
                    "tokenEndpointAuthMethod",
                    "A single-page application is a public client; use NONE.",
                ));
            }
            if has("CLIENT_CREDENTIALS") {
                errs.push(Detail::invalid(
                    "grantTypes",
                    "A single-page application cannot use CLIENT_CREDENTIALS.",
                ));
            }
        }
        "WORKER" | "SERVICE" => {
            for g in &grants {
                if ![
                    "CLIENT_CREDENTIALS",
                    "AUTHORIZATION_CODE",
                    "IMPLICIT",
                    "REFRESH_TOKEN",
                    "TOKEN_EXCHANGE",
                ]
                .contains(&g.as_str())
                {
                    errs.push(Detail::invalid(
                        "grantTypes",
                        format!("A {app_type} application cannot use the {g} grant."),
                    ));
                }
            }
        }
        _ => {}
    }
    if method == "PRIVATE_KEY_JWT" && data.get("jwks").is_none() && data.get("jwksUrl").is_none() {
        errs.push(Detail::required("jwks"));
    }
    if data.get("jwks").is_some() && data.get("jwksUrl").is_some() {
        errs.push(Detail::invalid(
            "jwksUrl",
            "Give either jwks or jwksUrl, not both.",
        ));
    }
    if let Some(j) = data["jwks"].as_str() {
        let ok = serde_json::from_str::<Value>(j)
            .ok()
            .is_some_and(|v| v["keys"].is_array());
        if !ok {
            errs.push(Detail::invalid("jwks", "jwks must be a JSON Web Key Set."));
        }
    }
    if data["requireSignedRequestObject"] == true && data["supportUnsignedRequestObject"] == true {
        errs.push(Detail::invalid(
            "supportUnsignedRequestObject",
            "requireSignedRequestObject and supportUnsignedRequestObject cannot both be true.",
        ));
    }
    if (has("AUTHORIZATION_CODE") || has("IMPLICIT")) && strings(&data["redirectUris"]).is_empty() {
        errs.push(Detail::required("redirectUris"));
    }
    let wildcard = data["allowWildcardInRedirectUris"] == true;
    for (field, uris) in [
        ("redirectUris", strings(&data["redirectUris"])),
        (
            "postLogoutRedirectUris",
            strings(&data["postLogoutRedirectUris"]),
        ),
    ] {
        for (i, u) in uris.iter().enumerate() {
            let target = format!("{field}[{i}]");
            if redirect_uri::runs_script(u) {
                errs.push(Detail::invalid(
                    &target,
                    "Redirect URIs cannot use the javascript, data or vbscript scheme.",
                ));
            } else if !is_absolute_url(u) || u.contains('#') {
                errs.push(Detail::invalid(
                    &target,
                    "Redirect URIs must be absolute URIs without a fragment.",
                ));
            } else if u.contains('*') && !(wildcard && field == "redirectUris") {
                errs.push(Detail::invalid(
                    &target,
                    "Wildcards are allowed only when allowWildcardInRedirectUris is true.",
                ));
            } else if let Some(why) = u
                .contains('*')
                .then(|| redirect_uri::wildcard_problem(u))
                .flatten()
            {
                errs.push(Detail::invalid(&target, why));
            }
        }
    }
    errs
}

#[async_trait::async_trait]
impl Resource for Applications {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn fields(&self, input: &Value, existing: Option<&Doc>) -> &'static [Field] {
        let protocol = existing
            .map(|d| &d.data["protocol"])
            .unwrap_or(&input["protocol"]);
        match protocol.as_str() {
            Some("OPENID_CONNECT") => OIDC_FIELDS,
            Some("SAML") => SAML_FIELDS,
            _ => PROTOCOL_ONLY,
        }
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        existing: Option<&Doc>,
    ) -> ApiResult<()> {
        let errs = match doc.data["protocol"].as_str() {
            Some("OPENID_CONNECT") => check_oidc(&mut doc.data),
            Some("SAML") => {
                ctx.require_ref(
                    doc,
                    "idpSigning.key.id",
                    crate::engine::keys::KIND,
                    "signing key",
                )
                .await?;
                vec![]
            }
            _ => vec![Detail::invalid("protocol", "Unsupported protocol.")],
        };
        if !errs.is_empty() {
            return Err(ApiError::invalid(errs));
        }
        doc.data
            .as_object_mut()
            .map(|m| m.remove("assignActorRoles"));
        if existing.is_none() && doc.data["protocol"] == "OPENID_CONNECT" {
            if doc.data.get("clientId").is_none() {
                doc.data["clientId"] = json!(doc.id);
            }
            if doc.data["tokenEndpointAuthMethod"] != "NONE" {
                doc.secrets = Some(
                    ctx.app
                        .master
                        .encrypt_json(&json!({ "secret": random_secret() })),
                );
            }
        }
        if let Some(old) = existing {
            // Switching from a public client to a confidential one needs a secret.
            if doc.data["protocol"] == "OPENID_CONNECT"
                && old.secrets.is_none()
                && doc.data["tokenEndpointAuthMethod"] != "NONE"
            {
                doc.secrets = Some(
                    ctx.app
                        .master
                        .encrypt_json(&json!({ "secret": random_secret() })),
                );
            }
        }
        Ok(())
    }

    /// A client_credentials worker created through the API inherits its creator's role
    /// assignments unless the request says `assignActorRoles: false` (PingOne: "by default the
    /// application inherits the same role assignments as the actor that created the
    /// application"). Interactive workers act with their user's roles instead.
    async fn created_by(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &Doc,
        input: &Value,
        actor: &crate::engine::authz::Actor,
    ) -> ApiResult<()> {
        if doc.data["protocol"] != "OPENID_CONNECT"
            || doc.data["type"] != "WORKER"
            || input["assignActorRoles"] == false
            || !strings(&doc.data["grantTypes"]).contains(&"CLIENT_CREDENTIALS")
        {
            return Ok(());
        }
        let mut done: Vec<(&str, &str, &str)> = Vec::new();
        for a in &actor.assignments {
            let key = (
                a.role_id.as_str(),
                a.scope_type.as_str(),
                a.scope_id.as_str(),
            );
            if done.contains(&key) {
                continue;
            }
            done.push(key);
            super::roles::insert(ctx.tx, &doc.env_id, &doc.id, a, false).await?;
        }
        Ok(())
    }

    /// Changing or deleting an application (its keys, its authentication method, whether it
    /// is enabled) needs the authority of the roles it holds.
    async fn writable_by(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &Doc,
        actor: &crate::engine::authz::Actor,
    ) -> ApiResult<()> {
        super::roles::require_authority_over(ctx.tx, actor, &doc.env_id, &doc.id, ctx.org_id).await
    }

    async fn after_create(&self, ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        // The core subject mapping every application has.
        let (name, value) = if doc.data["protocol"] == "SAML" {
            ("saml_subject", "${user.id}")
        } else {
            ("sub", "${user.id}")
        };
        let data = json!({ "name": name, "value": value, "required": true, "mappingType": "CORE", "idToken": true, "userInfo": true });
        let data = if doc.data["protocol"] == "SAML" {
            json!({ "name": name, "value": value, "required": true, "mappingType": "CORE" })
        } else {
            data
        };
        let mapping = Doc::new(
            MAPPING_KIND,
            &uuid::Uuid::new_v4().to_string(),
            &doc.env_id,
            &doc.id,
            data,
        );
        ctx.tx
            .insert(&mapping, &MAPPINGS_SPEC.unique_keys(&mapping, ctx.org_id))
            .await
    }
}

/// Creates an application with a given id and secret (the bootstrap worker).
pub async fn create_fixed(
    ctx: &mut WriteCtx<'_>,
    input: &Value,
    id: &str,
    secret: Option<&str>,
) -> ApiResult<Doc> {
    let mut doc = super::ops::create_with_id(ctx, &APPLICATIONS, input, "", id).await?;
    if let Some(secret) = secret {
        doc.secrets = Some(ctx.app.master.encrypt_json(&json!({ "secret": secret })));
        ctx.tx.update_data(&mut doc).await?;
    }
    Ok(doc)
}

pub async fn find_by_client_id(app: &App, env_id: &str, client_id: &str) -> ApiResult<Option<Doc>> {
    if client_id.is_empty() || client_id.len() > 256 {
        return Ok(None);
    }
    // Unique keys compare case-insensitively; an OAuth client_id is compared exactly.
    let found = app
        .cached_config(format!("client|{env_id}|{client_id}"), || async {
            Ok(app
                .store
                .read()
                .find_unique(env_id, KIND, "clientId", client_id)
                .await?
                .into_iter()
                .collect())
        })
        .await?;
    Ok(found
        .first()
        .filter(|d| d.data["clientId"].as_str() == Some(client_id))
        .cloned())
}

/// An application by id, through the sign-on configuration cache (at most `CACHE_TTL` old
/// on other nodes; local writes clear it).
pub async fn cached(app: &App, env_id: &str, id: &str) -> ApiResult<Option<Doc>> {
    app.cached_doc(KIND, env_id, id).await
}

pub fn secrets_of(app: &App, doc: &Doc) -> ApiResult<Value> {
    match &doc.secrets {
        Some(s) => Ok(app.master.decrypt_json(s)?),
        None => Ok(json!({})),
    }
}

/// Whether `given` is the application's secret, or its previous one while that is still valid.
pub fn secret_matches(app: &App, doc: &Doc, given: &str) -> ApiResult<bool> {
    let s = secrets_of(app, doc)?;
    let current = s["secret"].as_str().is_some_and(|c| secret_eq(c, given));
    let previous = s["previous"]["secret"]
        .as_str()
        .is_some_and(|p| secret_eq(p, given))
        && s["previous"]["expiresAt"]
            .as_str()
            .and_then(crate::clock::parse)
            .is_some_and(|t| t > time::OffsetDateTime::now_utc());
    Ok(current | previous)
}

// ---- grants ----

const GRANT_FIELDS: &[Field] = &[
    f("resource", Ty::Ref).req(),
    f("scopes", Ty::Arr(&Ty::Ref, 1000)).req(),
];

pub static GRANTS_SPEC: Spec = Spec {
    kind: GRANT_KIND,
    collection: "grants",
    parent: Some(ParentSpec {
        kind: KIND,
        segment: "applications",
        field: "application",
    }),
    fields: GRANT_FIELDS,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("resource.id", "resource.id", AttrType::Str, EQ_OPS),
    ],
    unique: &[Unique {
        key: "resource.id",
        path: "resource.id",
        scope: UniqueScope::Parent,
    }],
    area: Area::Applications,
    methods: CRUD,
};

pub struct Grants;
pub static GRANTS: Grants = Grants;

#[async_trait::async_trait]
impl Resource for Grants {
    fn spec(&self) -> &'static Spec {
        &GRANTS_SPEC
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        _existing: Option<&Doc>,
    ) -> ApiResult<()> {
        let resource_id = doc.data["resource"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if ctx
            .tx
            .get(super::resources::KIND, &doc.env_id, &resource_id)
            .await?
            .is_none()
        {
            return Err(ApiError::one(Detail::invalid(
                "resource.id",
                "The resource does not exist.",
            )));
        }
        let scopes = doc.data["scopes"].as_array().cloned().unwrap_or_default();
        if scopes.is_empty() {
            return Err(ApiError::one(Detail::new(
                "EMPTY_VALUE",
                Some("scopes".into()),
                "At least one scope is required.",
            )));
        }
        let mut seen = Vec::new();
        let mut errs = Vec::new();
        for (i, s) in scopes.iter().enumerate() {
            let sid = s["id"].as_str().unwrap_or_default();
            let ok = ctx
                .tx
                .get(super::resources::SCOPE_KIND, &doc.env_id, sid)
                .await?
                .is_some_and(|sc| sc.parent_id == resource_id);
            if !ok {
                errs.push(
                    Detail::invalid(
                        &format!("scopes[{i}].id"),
                        "The scope does not belong to the granted resource.",
                    )
                    .with_inner(json!({ "referencedValues": [sid] })),
                );
            }
            if seen.contains(&sid) {
                errs.push(Detail::invalid(
                    &format!("scopes[{i}].id"),
                    "The scope is listed twice.",
                ));
            }
            seen.push(sid);
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(errs))
        }
    }
}

// ---- attribute mappings ----

/// A mapping or claim value: a literal, or exactly `${user.<path>}` (mappings read only the user;
/// anything else inside `${…}` could never be evaluated and would be released as literal text).
pub fn check_user_expression(value: &str, target: &str) -> ApiResult<()> {
    if !value.contains("${") {
        return Ok(());
    }
    const PATTERN: &str = r"^\$\{user\.[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\}$";
    if crate::model::schema::pattern_matches(PATTERN, value) {
        Ok(())
    } else {
        Err(ApiError::one(
            Detail::invalid(
                target,
                "An expression must be ${user.<attribute path>}; other values are literals.",
            )
            .with_inner(json!({ "allowedPattern": PATTERN })),
        ))
    }
}

const RESERVED_OIDC_CLAIMS: &[&str] = &[
    "acr",
    "amr",
    "at_hash",
    "aud",
    "auth_time",
    "azp",
    "client_id",
    "exp",
    "iat",
    "iss",
    "jti",
    "nbf",
    "nonce",
    "org",
    "scope",
    "sid",
    "sub",
];

const MAPPING_FIELDS: &[Field] = &[
    f("name", s(256)).req(),
    f("value", s(1024)).req(),
    f("required", Ty::Bool).def_bool(false),
    f("mappingType", Ty::Any).ro(),
    f("nameFormat", s(1024)),
    f("idToken", Ty::Bool),
    f("userInfo", Ty::Bool),
    f("oidcScopes", Ty::Arr(&Ty::Uuid, 100)),
];

pub static MAPPINGS_SPEC: Spec = Spec {
    kind: MAPPING_KIND,
    collection: "attributes",
    parent: Some(ParentSpec {
        kind: KIND,
        segment: "applications",
        field: "application",
    }),
    fields: MAPPING_FIELDS,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("name", "name", AttrType::Str, STR_OPS),
    ],
    unique: &[Unique {
        key: "name",
        path: "name",
        scope: UniqueScope::Parent,
    }],
    area: Area::Applications,
    methods: CRUD,
};

pub struct AttributeMappings;
pub static ATTRIBUTE_MAPPINGS: AttributeMappings = AttributeMappings;

#[async_trait::async_trait]
impl Resource for AttributeMappings {
    fn spec(&self) -> &'static Spec {
        &MAPPINGS_SPEC
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        existing: Option<&Doc>,
    ) -> ApiResult<()> {
        let app = ctx
            .tx
            .get(KIND, &doc.env_id, &doc.parent_id)
            .await?
            .ok_or_else(ApiError::not_found)?;
        let name = doc.data["name"].as_str().unwrap_or_default().to_string();
        check_user_expression(doc.data["value"].as_str().unwrap_or_default(), "value")?;
        let is_core = existing.is_some_and(|e| e.data["mappingType"] == "CORE");
        if is_core && existing.is_some_and(|e| e.data["name"] != doc.data["name"]) {
            return Err(ApiError::one(Detail::invalid(
                "name",
                "A core mapping cannot be renamed.",
            )));
        }
        if !is_core {
            let reserved = if app.data["protocol"] == "SAML" {
                name == "saml_subject" || name == "samlAssertion.subject"
            } else {
                RESERVED_OIDC_CLAIMS.contains(&name.as_str())
            };
            if reserved {
                return Err(ApiError::one(Detail::invalid(
                    "name",
                    format!("'{name}' is a reserved attribute name."),
                )));
            }
            doc.data["mappingType"] = json!("CUSTOM");
        }
        if app.data["protocol"] == "OPENID_CONNECT" {
            for k in ["idToken", "userInfo"] {
                if doc.data.get(k).is_none() {
                    doc.data[k] = json!(true);
                }
            }
        }
        Ok(())
    }

    async fn before_delete(&self, _ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        if doc.data["mappingType"] == "CORE" {
            return Err(ApiError::RequestFailed(
                "A core attribute mapping cannot be deleted.".into(),
                vec![],
            ));
        }
        Ok(())
    }
}

// ---- sign-on policy assignments ----

const ASSIGNMENT_FIELDS: &[Field] = &[
    f("signOnPolicy", Ty::Ref).req(),
    f("priority", int(1, 1_000_000)).req(),
];

pub static ASSIGNMENTS_SPEC: Spec = Spec {
    kind: ASSIGNMENT_KIND,
    collection: "signOnPolicyAssignments",
    parent: Some(ParentSpec {
        kind: KIND,
        segment: "applications",
        field: "application",
    }),
    fields: ASSIGNMENT_FIELDS,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("signOnPolicy.id", "signOnPolicy.id", AttrType::Str, EQ_OPS),
    ],
    unique: &[Unique {
        key: "signOnPolicy.id",
        path: "signOnPolicy.id",
        scope: UniqueScope::Parent,
    }],
    area: Area::Applications,
    methods: CRUD,
};

pub struct SignOnPolicyAssignments;
pub static SIGN_ON_POLICY_ASSIGNMENTS: SignOnPolicyAssignments = SignOnPolicyAssignments;

#[async_trait::async_trait]
impl Resource for SignOnPolicyAssignments {
    fn spec(&self) -> &'static Spec {
        &ASSIGNMENTS_SPEC
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        _existing: Option<&Doc>,
    ) -> ApiResult<()> {
        let policy = doc.data["signOnPolicy"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if ctx
            .tx
            .get(super::policies::KIND, &doc.env_id, &policy)
            .await?
            .is_none()
        {
            return Err(ApiError::one(Detail::invalid(
                "signOnPolicy.id",
                "The sign-on policy does not exist.",
            )));
        }
        priority::place(ctx.tx, doc).await
    }

    async fn before_delete(&self, ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        priority::compact(ctx.tx, doc).await
    }
}
