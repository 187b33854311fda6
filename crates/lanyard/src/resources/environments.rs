//! Environments: the organization's top-level resources, created with their default contents
//! (population, built-in resources and scopes, sign-on and password policies, a signing key)
//! in one transaction.

use serde_json::{Value, json};

use super::{CRUD, Resource, Spec, Unique, UniqueScope, WriteCtx, ops};
use crate::engine::authz::{Actor, Area};
use crate::engine::keys;
use crate::error::{ApiError, ApiResult};
use crate::model::filter::Op;
use crate::model::schema::{Field, Ty, f, s};
use crate::state::App;
use crate::store::sql_filter::{AttrType, EQ_OPS, STR_OPS, attr, column};
use crate::store::{Condition, Doc, Param, renumber};

pub const KIND: &str = "environment";
pub const ADMIN_ENV_SETTING: &str = "admin_environment_id";
pub const REGIONS: &[&str] = &["NA", "EU", "AP", "CA", "AU", "SG"];

const FIELDS: &[Field] = &[
    f("name", s(256)).req(),
    f("description", s(1024)),
    f("type", Ty::Enum(&["PRODUCTION", "SANDBOX"])).req(),
    f("region", Ty::Enum(REGIONS)).req().create_only(),
    f("license", Ty::Ref),
    f("icon", Ty::Url),
    f("billOfMaterials", Ty::Any),
    f("status", Ty::Any).ro(),
    f("organization", Ty::Any).ro(),
];

pub static SPEC: Spec = Spec {
    kind: KIND,
    collection: "environments",
    parent: None,
    fields: FIELDS,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("name", "name", AttrType::Str, STR_OPS),
        attr("organization.id", "organization.id", AttrType::Str, EQ_OPS),
        attr("license.id", "license.id", AttrType::Str, EQ_OPS),
        attr("status", "status", AttrType::Str, EQ_OPS),
        attr("type", "type", AttrType::Str, EQ_OPS),
        attr("region", "region", AttrType::Str, EQ_OPS),
        column(
            "createdAt",
            "created_at",
            AttrType::Date,
            &[Op::Gt, Op::Ge, Op::Lt, Op::Le, Op::Eq],
        ),
    ],
    unique: &[Unique {
        key: "name",
        path: "name",
        scope: UniqueScope::Organization,
    }],
    area: Area::Environments,
    methods: CRUD,
};

pub struct Environments;
pub static ENVIRONMENTS: Environments = Environments;

#[async_trait::async_trait]
impl Resource for Environments {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    async fn before_delete(&self, ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        if ctx.tx.setting(ADMIN_ENV_SETTING).await?.as_deref() == Some(doc.id.as_str()) {
            return Err(ApiError::RequestFailed(
                "The Administrators environment holds the organization's admin credentials and cannot be deleted.".into(),
                vec![],
            ));
        }
        ctx.tx.delete_environment(&doc.id).await
    }
}

/// Creates an environment with its default contents, in one transaction.
pub async fn create(app: &App, _actor: &Actor, input: &Value) -> ApiResult<Doc> {
    let org_id = app
        .store
        .read()
        .setting(crate::engine::bootstrap::ORG_SETTING)
        .await?
        .unwrap_or_default();
    let mut tx = app.store.begin().await?;
    let doc = create_in(app, &mut tx, &org_id, input, None).await?;
    tx.commit().await?;
    Ok(doc)
}

pub async fn create_in(
    app: &App,
    tx: &mut crate::store::Tx,
    org_id: &str,
    input: &Value,
    id: Option<&str>,
) -> ApiResult<Doc> {
    let data =
        crate::model::schema::validate(FIELDS, input, None, crate::model::schema::Mode::Create)
            .map_err(ApiError::invalid)?;
    let id = id
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut doc = Doc::new(KIND, &id, &id, org_id, Value::Object(data));
    doc.data["organization"] = json!({ "id": org_id });
    doc.data["status"] = json!("ACTIVE");
    if doc.data.get("billOfMaterials").is_none() {
        doc.data["billOfMaterials"] =
            json!({ "products": [ { "type": "PING_ONE_BASE" }, { "type": "PING_ONE_MFA" } ] });
    }
    let keys = SPEC.unique_keys(&doc, org_id);
    tx.insert(&doc, &keys).await?;
    let mut ctx = WriteCtx {
        app,
        tx,
        env: &doc,
        org_id,
    };
    create_defaults(&mut ctx).await?;
    Ok(doc)
}

async fn create_defaults(ctx: &mut WriteCtx<'_>) -> ApiResult<()> {
    super::users::create_default_password_policies(ctx).await?;
    ops::create(
        ctx,
        &super::populations::POPULATIONS,
        &json!({ "name": "Default", "description": "The default population", "default": true }),
        "",
    )
    .await?;
    super::resources::create_builtin(ctx).await?;
    super::policies::create_defaults(ctx).await?;
    super::mfa_policies::create_default(ctx).await?;
    super::templates::create_defaults(ctx).await?;
    let env_name = ctx.env.data["name"]
        .as_str()
        .unwrap_or("environment")
        .to_string();
    let key = keys::generate(
        &ctx.env.id,
        ctx.org_id,
        &format!("Signing key for {env_name}"),
        &ctx.app.master,
    )?;
    ctx.tx.insert(&key, &[]).await?;
    Ok(())
}

/// An environment by id, through the short-lived cache (None if it does not exist).
pub async fn cached(app: &App, env_id: &str) -> ApiResult<Option<Doc>> {
    if let Some(d) = app.environments.get(&env_id.to_string()) {
        return Ok(Some(d));
    }
    let doc = app.store.read().get(KIND, env_id, env_id).await?;
    if let Some(d) = &doc {
        app.environments.put(env_id.to_string(), d.clone(), None);
    }
    Ok(doc)
}

pub async fn org_of(app: &App, env_id: &str) -> ApiResult<String> {
    let env = cached(app, env_id).await?.ok_or_else(ApiError::not_found)?;
    Ok(env.data["organization"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Limits an environment listing to the environments the actor's role assignments cover.
/// Only roles that read environments count: an environment listed is one the actor may also read.
pub fn visibility_condition(actor: &Actor, condition: Option<Condition>) -> Option<Condition> {
    let Some(ids) = actor.readable_environments() else {
        return condition;
    };
    let mut c = Condition::default();
    if ids.is_empty() {
        c.sql = "1 = 0".into();
    } else {
        c.sql = format!(
            "id IN ({})",
            (1..=ids.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        c.params = ids.into_iter().map(Param::Str).collect();
    }
    if let Some(other) = condition {
        c.sql = format!("({}) AND ({})", c.sql, renumber(&other.sql, c.params.len()));
        c.params.extend(other.params);
    }
    Some(c)
}
