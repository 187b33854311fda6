//! Resources (the `openid` and `PingOne API` built-ins, and custom ones with their audience),
//! their scopes and their attributes.

use serde_json::{Value, json};

use super::{CRUD, ParentSpec, Resource, Spec, Unique, UniqueScope, WriteCtx};
use crate::engine::authz::Area;
use crate::engine::secrets::random_secret;
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::schema::{Field, Ty, f, int, s};
use crate::state::App;
use crate::store::Doc;
use crate::store::sql_filter::{AttrType, EQ_OPS, STR_OPS, attr, column};

pub const KIND: &str = "resource";
pub const SCOPE_KIND: &str = "scope";
pub const ATTRIBUTE_KIND: &str = "resourceAttribute";

pub const OPENID_SCOPES: &[(&str, &str)] = &[
    ("openid", "Signs the user in with OpenID Connect."),
    ("profile", "The user's default profile claims."),
    ("email", "The user's email address."),
    ("address", "The user's postal address."),
    ("phone", "The user's phone number."),
];

pub const PLATFORM_SCOPES: &[&str] = &[
    "p1:read:user",
    "p1:update:user",
    "p1:update:userMfaEnabled",
    "p1:create:device",
    "p1:read:device",
    "p1:update:device",
    "p1:delete:device",
    "p1:read:userPassword",
    "p1:reset:userPassword",
    "p1:validate:userPassword",
    "p1:read:userLinkedAccounts",
    "p1:delete:userLinkedAccounts",
    "p1:create:pairingKey",
    "p1:read:pairingKey",
    "p1:delete:pairingKey",
    "p1:read:sessions",
    "p1:delete:sessions",
    "p1:read:oauthConsent",
    "p1:update:oauthConsent",
    "p1:verify:user",
];

const FIELDS: &[Field] = &[
    f("name", s(256)).req(),
    f("description", s(1024)),
    f("type", Ty::Any).ro(),
    f("audience", Ty::Str { min: 1, max: 2048 }),
    f("accessTokenValiditySeconds", int(300, 2592000)).def_int(3600),
    f(
        "introspectEndpointAuthMethod",
        Ty::Enum(&["NONE", "CLIENT_SECRET_BASIC", "CLIENT_SECRET_POST"]),
    )
    .def_str("CLIENT_SECRET_BASIC"),
    f(
        "applicationPermissionsSettings",
        Ty::Obj(&[f("claimEnabled", Ty::Bool).def_bool(false)]),
    ),
];

pub static SPEC: Spec = Spec {
    kind: KIND,
    collection: "resources",
    parent: None,
    fields: FIELDS,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("name", "name", AttrType::Str, STR_OPS),
        attr("type", "type", AttrType::Str, EQ_OPS),
        attr("audience", "audience", AttrType::Str, EQ_OPS),
    ],
    unique: &[Unique {
        key: "name",
        path: "name",
        scope: UniqueScope::Environment,
    }],
    area: Area::Applications,
    methods: CRUD,
};

pub struct Resources;
pub static RESOURCES: Resources = Resources;

fn builtin(doc: &Doc) -> bool {
    doc.data["type"] != "CUSTOM"
}

#[async_trait::async_trait]
impl Resource for Resources {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        existing: Option<&Doc>,
    ) -> ApiResult<()> {
        match existing {
            None => doc.data["type"] = json!("CUSTOM"),
            Some(old) if builtin(old) => {
                if old.data["name"] != doc.data["name"] {
                    return Err(ApiError::one(Detail::invalid(
                        "name",
                        "A built-in resource cannot be renamed.",
                    )));
                }
                doc.data["audience"] = old.data["audience"].clone();
                return Ok(());
            }
            Some(_) => {}
        }
        if doc.data.get("audience").is_none() {
            doc.data["audience"] = doc.data["name"].clone();
        }
        let aud = doc.data["audience"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if aud.contains("pingone") || aud.contains("pingidentity") || aud.contains('#') {
            return Err(ApiError::one(Detail::invalid(
                "audience",
                "The audience must not contain a fragment, 'pingone' or 'pingidentity'.",
            )));
        }
        if existing.is_none() {
            doc.secrets = Some(
                ctx.app
                    .master
                    .encrypt_json(&json!({ "secret": random_secret() })),
            );
        }
        Ok(())
    }

    async fn after_create(&self, ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        let sub = Doc::new(
            ATTRIBUTE_KIND,
            &uuid::Uuid::new_v4().to_string(),
            &doc.env_id,
            &doc.id,
            json!({ "name": "sub", "value": "${user.id}", "type": "CORE" }),
        );
        ctx.tx
            .insert(&sub, &ATTRIBUTES_SPEC.unique_keys(&sub, ctx.org_id))
            .await
    }

    async fn before_delete(&self, ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        if builtin(doc) {
            return Err(ApiError::RequestFailed(
                "A built-in resource cannot be deleted.".into(),
                vec![],
            ));
        }
        // Grants of this resource go with it.
        for g in ctx
            .tx
            .list(&grants_of(ctx.tx.dialect, &doc.env_id, &doc.id))
            .await?
        {
            ctx.tx.delete(&g.kind, &g.id).await?;
        }
        Ok(())
    }
}

/// Every application's grant of a resource.
fn grants_of<'a>(
    dialect: crate::store::Dialect,
    env_id: &'a str,
    resource_id: &str,
) -> crate::store::ListQuery<'a> {
    crate::store::ListQuery {
        kind: super::applications::GRANT_KIND,
        env_id,
        parent_id: None,
        condition: Some(crate::store::Condition {
            sql: format!("{} = $1", dialect.json_text("resource.id")),
            params: vec![crate::store::Param::Str(resource_id.to_string())],
        }),
        limit: 100_000,
        after: None,
    }
}

/// The `openid` and `PingOne API` resources with their scopes.
pub async fn create_builtin(ctx: &mut WriteCtx<'_>) -> ApiResult<()> {
    let env = ctx.env.id.clone();
    let openid = Doc::new(
        KIND,
        &uuid::Uuid::new_v4().to_string(),
        &env,
        "",
        json!({
            "name": "openid", "type": "OPENID_CONNECT", "audience": "openid",
            "description": "OpenID Connect scopes and claims", "accessTokenValiditySeconds": 3600,
        }),
    );
    ctx.tx
        .insert(&openid, &SPEC.unique_keys(&openid, ctx.org_id))
        .await?;
    for (name, description) in OPENID_SCOPES {
        insert_scope(ctx, &openid, name, description).await?;
    }
    let platform = Doc::new(
        KIND,
        &uuid::Uuid::new_v4().to_string(),
        &env,
        "",
        json!({
            "name": "PingOne API", "type": "PINGONE_API", "audience": crate::engine::tokens::PLATFORM_AUDIENCE,
            "description": "The platform API: self-service scopes for signed-in users", "accessTokenValiditySeconds": 3600,
        }),
    );
    ctx.tx
        .insert(&platform, &SPEC.unique_keys(&platform, ctx.org_id))
        .await?;
    for name in PLATFORM_SCOPES {
        insert_scope(ctx, &platform, name, "").await?;
    }
    Ok(())
}

async fn insert_scope(
    ctx: &mut WriteCtx<'_>,
    resource: &Doc,
    name: &str,
    description: &str,
) -> ApiResult<()> {
    let mut data = json!({ "name": name });
    if !description.is_empty() {
        data["description"] = json!(description);
    }
    let scope = Doc::new(
        SCOPE_KIND,
        &uuid::Uuid::new_v4().to_string(),
        &resource.env_id,
        &resource.id,
        data,
    );
    ctx.tx
        .insert(&scope, &SCOPES_SPEC.unique_keys(&scope, ctx.org_id))
        .await
}

/// A custom resource scope granted to an application.
#[derive(Debug, Clone)]
pub struct GrantedScope {
    pub scope: String,
    pub audience: String,
    pub lifetime: i64,
}

pub async fn granted_custom_scopes(
    app: &App,
    env_id: &str,
    app_id: &str,
) -> ApiResult<Vec<GrantedScope>> {
    let mut out = Vec::new();
    let mut reader = app.store.read();
    for grant in reader
        .children(super::applications::GRANT_KIND, env_id, app_id)
        .await?
    {
        let rid = grant.data["resource"]["id"].as_str().unwrap_or_default();
        let Some(res) = reader.get(KIND, env_id, rid).await? else {
            continue;
        };
        if res.data["type"] != "CUSTOM" {
            continue;
        }
        for s in grant.data["scopes"].as_array().into_iter().flatten() {
            if let Some(scope) = reader
                .get(SCOPE_KIND, env_id, s["id"].as_str().unwrap_or_default())
                .await?
            {
                out.push(GrantedScope {
                    scope: scope.data["name"].as_str().unwrap_or_default().to_string(),
                    audience: res.data["audience"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    lifetime: res.data["accessTokenValiditySeconds"]
                        .as_i64()
                        .unwrap_or(3600),
                });
            }
        }
    }
    Ok(out)
}

// ---- scopes ----

const SCOPE_FIELDS: &[Field] = &[
    f("name", Ty::Pattern(r"^[^\s]{1,256}$")).req(),
    f("description", s(1024)),
    f(
        "schemaAttributes",
        Ty::Arr(&Ty::Str { min: 1, max: 256 }, 1000),
    ),
    f("mappedClaims", Ty::Arr(&Ty::Uuid, 1000)),
];

pub static SCOPES_SPEC: Spec = Spec {
    kind: SCOPE_KIND,
    collection: "scopes",
    parent: Some(ParentSpec {
        kind: KIND,
        segment: "resources",
        field: "resource",
    }),
    fields: SCOPE_FIELDS,
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

pub struct Scopes;
pub static SCOPES: Scopes = Scopes;

#[async_trait::async_trait]
impl Resource for Scopes {
    fn spec(&self) -> &'static Spec {
        &SCOPES_SPEC
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        existing: Option<&Doc>,
    ) -> ApiResult<()> {
        let res = ctx
            .tx
            .get(KIND, &doc.env_id, &doc.parent_id)
            .await?
            .ok_or_else(ApiError::not_found)?;
        let name = doc.data["name"].as_str().unwrap_or_default().to_string();
        if existing.is_some_and(|e| e.data["name"] != doc.data["name"])
            && res.data["type"] != "CUSTOM"
        {
            return Err(ApiError::one(Detail::invalid(
                "name",
                "A built-in scope cannot be renamed.",
            )));
        }
        match res.data["type"].as_str() {
            Some("PINGONE_API") => {
                // `p1:read:user:{suffix}` / `p1:update:user:{suffix}`, with a non-empty suffix.
                let sub_scope = ["p1:read:user:", "p1:update:user:"]
                    .iter()
                    .any(|p| name.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
                let user_scope = name == "p1:read:user" || name == "p1:update:user" || sub_scope;
                if existing.is_none() && !sub_scope {
                    return Err(ApiError::one(Detail::invalid(
                        "name",
                        "Only p1:read:user:{suffix} and p1:update:user:{suffix} scopes can be added to the PingOne API resource.",
                    )));
                }
                if doc.data.get("schemaAttributes").is_some() && !user_scope {
                    return Err(ApiError::one(Detail::invalid(
                        "schemaAttributes",
                        "schemaAttributes apply only to p1:read:user and p1:update:user scopes.",
                    )));
                }
            }
            Some("CUSTOM") => {
                if name.starts_with("p1:") {
                    return Err(ApiError::one(Detail::invalid(
                        "name",
                        "Custom scopes cannot use the p1: prefix.",
                    )));
                }
                if doc.data.get("schemaAttributes").is_some() {
                    return Err(ApiError::one(Detail::invalid(
                        "schemaAttributes",
                        "schemaAttributes apply only to PingOne API scopes.",
                    )));
                }
            }
            _ => {
                // The openid resource takes custom scopes, but `p1:` names belong to PingOne.
                if name.starts_with("p1:") {
                    return Err(ApiError::one(Detail::invalid(
                        "name",
                        "The p1: prefix is reserved for PingOne API scopes.",
                    )));
                }
                if doc.data.get("schemaAttributes").is_some() {
                    return Err(ApiError::one(Detail::invalid(
                        "schemaAttributes",
                        "schemaAttributes apply only to PingOne API scopes.",
                    )));
                }
            }
        }
        if let Some(attrs) = doc.data["schemaAttributes"].as_array()
            && attrs.len() > 1
            && attrs.iter().any(|a| a == "*")
        {
            return Err(ApiError::one(Detail::invalid(
                "schemaAttributes",
                "'*' must be the only schema attribute.",
            )));
        }
        Ok(())
    }

    async fn before_delete(&self, ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        let res = ctx.tx.get(KIND, &doc.env_id, &doc.parent_id).await?;
        let name = doc.data["name"].as_str().unwrap_or_default();
        let predefined = match res.as_ref().and_then(|r| r.data["type"].as_str()) {
            Some("OPENID_CONNECT") => OPENID_SCOPES.iter().any(|(n, _)| *n == name),
            Some("PINGONE_API") => PLATFORM_SCOPES.contains(&name),
            _ => false,
        };
        if predefined {
            return Err(ApiError::RequestFailed(
                "A predefined scope cannot be deleted.".into(),
                vec![],
            ));
        }
        // Grants of the resource lose the scope; a grant left with no scope goes with it.
        for mut grant in ctx
            .tx
            .list(&grants_of(ctx.tx.dialect, &doc.env_id, &doc.parent_id))
            .await?
        {
            let Some(scopes) = grant.data["scopes"].as_array() else {
                continue;
            };
            let kept: Vec<_> = scopes
                .iter()
                .filter(|s| s["id"] != doc.id.as_str())
                .cloned()
                .collect();
            if kept.len() == scopes.len() {
                continue;
            }
            if kept.is_empty() {
                ctx.tx.delete(&grant.kind, &grant.id).await?;
            } else {
                grant.data["scopes"] = json!(kept);
                ctx.tx.update_data(&mut grant).await?;
            }
        }
        Ok(())
    }
}

// ---- resource attributes ----

const RESERVED_ATTRIBUTES: &[&str] = &[
    "acr",
    "amr",
    "aud",
    "auth_time",
    "client_id",
    "env",
    "exp",
    "iat",
    "iss",
    "jti",
    "org",
    "scope",
    "sid",
    "sub",
];

const ATTRIBUTE_FIELDS: &[Field] = &[
    f("name", s(256)).req(),
    f("value", s(1024)).req(),
    f("type", Ty::Any).ro(),
    f("idToken", Ty::Bool),
    f("userInfo", Ty::Bool),
];

pub static ATTRIBUTES_SPEC: Spec = Spec {
    kind: ATTRIBUTE_KIND,
    collection: "attributes",
    parent: Some(ParentSpec {
        kind: KIND,
        segment: "resources",
        field: "resource",
    }),
    fields: ATTRIBUTE_FIELDS,
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

pub struct ResourceAttributes;
pub static RESOURCE_ATTRIBUTES: ResourceAttributes = ResourceAttributes;

#[async_trait::async_trait]
impl Resource for ResourceAttributes {
    fn spec(&self) -> &'static Spec {
        &ATTRIBUTES_SPEC
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        existing: Option<&Doc>,
    ) -> ApiResult<()> {
        let res = ctx
            .tx
            .get(KIND, &doc.env_id, &doc.parent_id)
            .await?
            .ok_or_else(ApiError::not_found)?;
        super::applications::check_user_expression(
            doc.data["value"].as_str().unwrap_or_default(),
            "value",
        )?;
        let core = existing.is_some_and(|e| e.data["type"] == "CORE");
        if core {
            if existing.is_some_and(|e| e.data["name"] != doc.data["name"]) {
                return Err(ApiError::one(Detail::invalid(
                    "name",
                    "A core attribute cannot be renamed.",
                )));
            }
            return Ok(());
        }
        let name = doc.data["name"].as_str().unwrap_or_default();
        if RESERVED_ATTRIBUTES.contains(&name) || name.starts_with("p1.") {
            return Err(ApiError::one(Detail::invalid(
                "name",
                format!("'{name}' is a reserved claim name."),
            )));
        }
        if res.data["type"] != "OPENID_CONNECT"
            && (doc.data.get("idToken").is_some() || doc.data.get("userInfo").is_some())
        {
            return Err(ApiError::one(Detail::invalid(
                "idToken",
                "idToken and userInfo apply only to the openid resource.",
            )));
        }
        doc.data["type"] = existing
            .map(|e| e.data["type"].clone())
            .unwrap_or(json!("CUSTOM"));
        Ok(())
    }

    async fn before_delete(&self, _ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        if doc.data["type"] == "CORE" {
            return Err(ApiError::RequestFailed(
                "A core attribute cannot be deleted.".into(),
                vec![],
            ));
        }
        Ok(())
    }
}

/// The user attributes that the PingOne API scopes `granted` (e.g. `p1:read:user` and
/// `p1:read:user:profile`) allow: the union of their `schemaAttributes`, or None when one of
/// them has none (all attributes).
pub async fn schema_attributes(
    app: &crate::state::App,
    env_id: &str,
    granted: &[String],
) -> ApiResult<Option<Vec<String>>> {
    let mut reader = app.store.read();
    let Some(api) = reader
        .children(KIND, env_id, "")
        .await?
        .into_iter()
        .find(|r| r.data["type"] == "PINGONE_API")
    else {
        return Ok(None);
    };
    let mut out: Vec<String> = Vec::new();
    let mut matched = false;
    for scope in reader.children(SCOPE_KIND, env_id, &api.id).await? {
        if !granted
            .iter()
            .any(|g| scope.data["name"].as_str() == Some(g.as_str()))
        {
            continue;
        }
        matched = true;
        match scope.data["schemaAttributes"].as_array() {
            Some(list) if !list.iter().any(|a| a == "*") => {
                out.extend(list.iter().filter_map(Value::as_str).map(str::to_string))
            }
            _ => return Ok(None),
        }
    }
    Ok(matched.then_some(out))
}
