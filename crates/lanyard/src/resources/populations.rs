//! Populations: named groups of users; one is the environment's default, where users land
//! when they are created without a population.

use serde_json::{Map, Value, json};

use super::{CRUD, Resource, Spec, Unique, UniqueScope, WriteCtx};
use crate::engine::authz::Area;
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::schema::{Field, Ty, f, s};
use crate::state::App;
use crate::store::sql_filter::{AttrType, EQ_OPS, STR_OPS, attr, column};
use crate::store::{Doc, ListQuery};

pub const KIND: &str = "population";

const FIELDS: &[Field] = &[
    f("name", s(256)).req(),
    f("description", s(1024)),
    // Defaulted in `prepare`: a PUT that omits it keeps the current value.
    f("default", Ty::Bool),
    f(
        "alternativeIdentifiers",
        Ty::Arr(&Ty::Str { min: 1, max: 256 }, 100),
    ),
    f("preferredLanguage", s(64)),
    f("passwordPolicy", Ty::Ref),
    f("theme", Ty::Ref),
];

pub static SPEC: Spec = Spec {
    kind: KIND,
    collection: "populations",
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

pub struct Populations;
pub static POPULATIONS: Populations = Populations;

#[async_trait::async_trait]
impl Resource for Populations {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        existing: Option<&Doc>,
    ) -> ApiResult<()> {
        ctx.require_ref(
            doc,
            "passwordPolicy.id",
            super::users::PASSWORD_POLICY_KIND,
            "password policy",
        )
        .await?;
        let was_default = existing.is_some_and(|e| e.data["default"] == true);
        // `default` can only be set to true (which moves it here from the previous default); a
        // PUT that leaves it out, as clients that do not manage it do, keeps the current value.
        if doc.data.get("default").is_none() {
            doc.data["default"] = json!(was_default);
        }
        if was_default && doc.data["default"] != true {
            return Err(ApiError::one(Detail::invalid(
                "default",
                "The default population cannot be unset; make another population the default instead.",
            )));
        }
        if doc.data["default"] == true && !was_default {
            // One default per environment, also when two writers set it at once.
            ctx.tx.lock(&doc.env_id, &doc.env_id).await?;
            // At most one default population per environment.
            for mut other in ctx.tx.children(KIND, &doc.env_id, "").await? {
                if other.id != doc.id && other.data["default"] == true {
                    other.data["default"] = json!(false);
                    ctx.tx.update_data(&mut other).await?;
                }
            }
        }
        Ok(())
    }

    async fn before_delete(&self, ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        if doc.data["default"] == true {
            return Err(ApiError::RequestFailed(
                "The default population cannot be deleted.".into(),
                vec![],
            ));
        }
        if user_count(ctx.tx.dialect, &mut *ctx.tx, &doc.env_id, &doc.id).await? > 0 {
            return Err(ApiError::RequestFailed(
                "A population that contains users cannot be deleted.".into(),
                vec![],
            ));
        }
        Ok(())
    }

    async fn decorate(&self, app: &App, doc: &Doc, out: &mut Map<String, Value>) -> ApiResult<()> {
        let q = users_in(app.store.dialect, &doc.env_id, &doc.id);
        out.insert("userCount".into(), json!(app.store.read().count(&q).await?));
        Ok(())
    }
}

fn users_in<'a>(
    dialect: crate::store::Dialect,
    env_id: &'a str,
    population_id: &str,
) -> ListQuery<'a> {
    ListQuery {
        kind: super::users::KIND,
        env_id,
        parent_id: None,
        condition: Some(crate::store::Condition {
            sql: format!("{} = $1", dialect.json_text("population.id")),
            params: vec![crate::store::Param::Str(population_id.into())],
        }),
        limit: 1,
        after: None,
    }
}

async fn user_count(
    dialect: crate::store::Dialect,
    tx: &mut crate::store::Tx,
    env_id: &str,
    population_id: &str,
) -> ApiResult<i64> {
    tx.count(&users_in(dialect, env_id, population_id)).await
}

/// The environment's default population.
pub async fn default_population(tx: &mut crate::store::Tx, env_id: &str) -> ApiResult<Option<Doc>> {
    Ok(tx
        .children(KIND, env_id, "")
        .await?
        .into_iter()
        .find(|p| p.data["default"] == true))
}
