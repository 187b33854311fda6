//! Role assignments of applications and users: `{ role: {id}, scope: {id, type} }`.

use serde_json::json;

use super::{Methods, ParentSpec, Resource, Spec, WriteCtx};
use crate::engine::authz::{self, Actor, Area, Assignment};
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::schema::{Field, Ty, f};
use crate::state::App;
use crate::store::Doc;
use crate::store::sql_filter::{AttrType, EQ_OPS, attr, column};

pub const KIND: &str = "roleAssignment";

const SCOPE: &[Field] = &[
    f("id", Ty::Uuid).req(),
    f(
        "type",
        Ty::Enum(&["ORGANIZATION", "ENVIRONMENT", "POPULATION", "APPLICATION"]),
    )
    .req(),
];

const FIELDS: &[Field] = &[
    f("role", Ty::Ref).req(),
    f("scope", Ty::Obj(SCOPE)).req(),
    f("readOnly", Ty::Bool).ro(),
];

const METHODS: Methods = Methods {
    list: true,
    create: true,
    read: true,
    replace: false,
    patch: false,
    delete: true,
};

const FILTERS: &[crate::store::sql_filter::FilterAttr] = &[
    column("id", "id", AttrType::Str, EQ_OPS),
    attr("role.id", "role.id", AttrType::Str, EQ_OPS),
    attr("scope.id", "scope.id", AttrType::Str, EQ_OPS),
    attr("scope.type", "scope.type", AttrType::Str, EQ_OPS),
];

pub static APPLICATION_SPEC: Spec = Spec {
    kind: KIND,
    collection: "roleAssignments",
    parent: Some(ParentSpec {
        kind: super::applications::KIND,
        segment: "applications",
        field: "application",
    }),
    fields: FIELDS,
    filters: FILTERS,
    unique: &[],
    area: Area::Roles,
    methods: METHODS,
};

pub static USER_SPEC: Spec = Spec {
    kind: KIND,
    collection: "roleAssignments",
    parent: Some(ParentSpec {
        kind: super::users::KIND,
        segment: "users",
        field: "user",
    }),
    fields: FIELDS,
    filters: FILTERS,
    unique: &[],
    area: Area::Roles,
    methods: METHODS,
};

pub struct RoleAssignments(&'static Spec);
pub static APPLICATION_ROLE_ASSIGNMENTS: RoleAssignments = RoleAssignments(&APPLICATION_SPEC);
pub static USER_ROLE_ASSIGNMENTS: RoleAssignments = RoleAssignments(&USER_SPEC);

#[async_trait::async_trait]
impl Resource for RoleAssignments {
    fn spec(&self) -> &'static Spec {
        self.0
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        _existing: Option<&Doc>,
    ) -> ApiResult<()> {
        let role_id = doc.data["role"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let role = authz::role(&role_id)
            .ok_or_else(|| ApiError::one(Detail::invalid("role.id", "The role does not exist.")))?;
        let scope_type = doc.data["scope"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let scope_id = doc.data["scope"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !role.applicable_to.contains(&scope_type.as_str()) {
            return Err(ApiError::one(
                Detail::invalid(
                    "scope.type",
                    format!(
                        "The role {} cannot be assigned with this scope type.",
                        role.name
                    ),
                )
                .with_inner(json!({ "allowedValues": role.applicable_to })),
            ));
        }
        let exists = match scope_type.as_str() {
            "ORGANIZATION" => scope_id == ctx.org_id,
            "ENVIRONMENT" => ctx
                .tx
                .get(super::environments::KIND, &scope_id, &scope_id)
                .await?
                .is_some_and(|e| e.parent_id == ctx.org_id),
            "POPULATION" => ctx
                .tx
                .get(super::populations::KIND, &doc.env_id, &scope_id)
                .await?
                .is_some(),
            _ => ctx
                .tx
                .get(super::applications::KIND, &doc.env_id, &scope_id)
                .await?
                .is_some(),
        };
        if !exists {
            return Err(ApiError::one(Detail::invalid(
                "scope.id",
                "The scope does not exist in this organization.",
            )));
        }
        // Two identical assignments posted at once must not both pass the check below.
        ctx.tx.lock(&doc.env_id, &doc.parent_id).await?;
        for other in ctx.tx.children(KIND, &doc.env_id, &doc.parent_id).await? {
            if other.data["role"] == doc.data["role"] && other.data["scope"] == doc.data["scope"] {
                return Err(ApiError::one(
                    Detail::new(
                        "UNIQUENESS_VIOLATION",
                        Some("role".into()),
                        "This role assignment already exists.",
                    )
                    .with_inner(json!({ "existingId": other.id })),
                ));
            }
        }
        doc.data["readOnly"] = json!(false);
        Ok(())
    }

    async fn created_by(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &Doc,
        _input: &serde_json::Value,
        actor: &Actor,
    ) -> ApiResult<()> {
        within_authority(actor, doc, ctx.org_id)?;
        self.writable_by(ctx, doc, actor).await
    }

    fn deletable_by(&self, actor: &Actor, org_id: &str, doc: &Doc) -> ApiResult<()> {
        // A read-only assignment is refused as such, whoever asks.
        if doc.data["readOnly"] == true {
            return Err(read_only(doc));
        }
        within_authority(actor, doc, org_id)
    }

    /// Changing an application's roles needs the authority of the roles it holds already
    /// (adding a weak role to a strong worker is still a change to that worker).
    async fn writable_by(&self, ctx: &mut WriteCtx<'_>, doc: &Doc, actor: &Actor) -> ApiResult<()> {
        if std::ptr::eq(self.0, &APPLICATION_SPEC) {
            require_authority_over(ctx.tx, actor, &doc.env_id, &doc.parent_id, ctx.org_id).await?;
        }
        Ok(())
    }

    async fn before_delete(&self, _ctx: &mut WriteCtx<'_>, doc: &Doc) -> ApiResult<()> {
        if doc.data["readOnly"] == true {
            return Err(read_only(doc));
        }
        Ok(())
    }
}

fn read_only(doc: &Doc) -> ApiError {
    ApiError::RequestFailed(
        format!(
            "Role assignment {} cannot be deleted as it is read only.",
            doc.id
        ),
        vec![],
    )
}

/// An actor may only hand out (or take away) roles it could assign itself, over scopes its own
/// role assignments cover: no one escalates beyond their own roles.
fn within_authority(actor: &Actor, doc: &Doc, org_id: &str) -> ApiResult<()> {
    let Some(a) = Assignment::from_json(&doc.data) else {
        return Ok(());
    };
    if actor.may_assign(&a.role_id, &a.scope_type, &a.scope_id, &doc.env_id, org_id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "The actor cannot assign this role with this scope.".into(),
        ))
    }
}

/// Refuses `actor` unless its authority includes every role the actor `holder_id` (an
/// application or user of `env_id`) holds: nobody may obtain or control credentials carrying
/// more authority than their own (PingOne's "can assign" rules).
pub async fn require_authority_over(
    tx: &mut crate::store::Tx,
    actor: &Actor,
    env_id: &str,
    holder_id: &str,
    org_id: &str,
) -> ApiResult<()> {
    let held: Vec<Assignment> = tx
        .children(KIND, env_id, holder_id)
        .await?
        .iter()
        .filter_map(|d| Assignment::from_json(&d.data))
        .collect();
    require_authority(actor, &held, env_id, org_id)
}

/// [`require_authority_over`] with the holder's assignments already read.
pub fn require_authority(
    actor: &Actor,
    held: &[Assignment],
    env_id: &str,
    org_id: &str,
) -> ApiResult<()> {
    if actor.has_authority_of(held, env_id, org_id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "This application or user holds roles beyond the caller's own.".into(),
        ))
    }
}

/// Stores a role assignment directly (roles a new worker inherits from its creator).
pub async fn insert(
    tx: &mut crate::store::Tx,
    env_id: &str,
    actor_id: &str,
    a: &Assignment,
    read_only: bool,
) -> ApiResult<()> {
    let data = json!({ "role": { "id": a.role_id }, "scope": { "id": a.scope_id, "type": a.scope_type }, "readOnly": read_only });
    let doc = Doc::new(
        KIND,
        &uuid::Uuid::new_v4().to_string(),
        env_id,
        actor_id,
        data,
    );
    tx.insert(&doc, &[]).await
}

/// The role assignments of an actor (application or user) living in `env_id`.
pub async fn assignments_of(app: &App, env_id: &str, actor_id: &str) -> ApiResult<Vec<Assignment>> {
    Ok(app
        .store
        .read()
        .children(KIND, env_id, actor_id)
        .await?
        .iter()
        .filter_map(|d| Assignment::from_json(&d.data))
        .collect())
}

/// Stores a role assignment directly (bootstrap), marked read-only.
pub async fn assign_read_only(
    tx: &mut crate::store::Tx,
    env_id: &str,
    actor_id: &str,
    role_id: &str,
    scope_type: &str,
    scope_id: &str,
) -> ApiResult<()> {
    let data = json!({ "role": { "id": role_id }, "scope": { "id": scope_id, "type": scope_type }, "readOnly": true });
    let doc = Doc::new(
        KIND,
        &uuid::Uuid::new_v4().to_string(),
        env_id,
        actor_id,
        data,
    );
    tx.insert(&doc, &[]).await
}
