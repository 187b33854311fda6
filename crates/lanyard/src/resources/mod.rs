//! The generic resource layer: each management API resource is described once (its schema,
//! collection key, parent, filterable attributes, unique keys, permission area) plus hooks for
//! its own rules; list/create/read/replace/patch/delete, HAL rendering, paging, filtering and
//! uniqueness are written once in `http::mgmt` against this description.

pub mod applications;
pub mod devices;
pub mod environments;
pub mod mfa_policies;
pub mod ops;
pub mod outbox;
pub mod phone_delivery;
pub mod policies;
pub mod populations;
pub mod priority;
#[allow(clippy::module_inception)] // PingOne calls them resources too
pub mod resources;
pub mod roles;
pub mod single_default;
pub mod templates;
pub mod users;

use serde_json::{Map, Value, json};

use crate::engine::authz::{Actor, Area};
use crate::error::ApiResult;
use crate::model::schema::Field;
use crate::state::App;
use crate::store::sql_filter::FilterAttr;
use crate::store::{Doc, Tx, UniqueKey, json_path};

/// Where a unique key's values must be unique.
#[derive(Debug, Clone, Copy)]
pub enum UniqueScope {
    Environment,
    Parent,
    Organization,
}

#[derive(Debug, Clone, Copy)]
pub struct Unique {
    pub key: &'static str,
    /// Dotted JSON path of the value in the stored document.
    pub path: &'static str,
    pub scope: UniqueScope,
}

#[derive(Debug, Clone, Copy)]
pub struct ParentSpec {
    pub kind: &'static str,
    /// Path segment of the parent collection, e.g. `applications`.
    pub segment: &'static str,
    /// Field rendered on the child naming its parent, e.g. `application`.
    pub field: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Methods {
    pub list: bool,
    pub create: bool,
    pub read: bool,
    pub replace: bool,
    pub patch: bool,
    pub delete: bool,
}

pub const CRUD: Methods = Methods {
    list: true,
    create: true,
    read: true,
    replace: true,
    patch: false,
    delete: true,
};

#[derive(Debug)]
pub struct Spec {
    pub kind: &'static str,
    pub collection: &'static str,
    pub parent: Option<ParentSpec>,
    pub fields: &'static [Field],
    pub filters: &'static [FilterAttr],
    pub unique: &'static [Unique],
    pub area: Area,
    pub methods: Methods,
}

/// The context a write hook runs in: the open transaction and the environment.
pub struct WriteCtx<'a> {
    pub app: &'a App,
    pub tx: &'a mut Tx,
    pub env: &'a Doc,
    /// Organization of the environment.
    pub org_id: &'a str,
}

impl WriteCtx<'_> {
    /// Refuses a reference (the dotted path of an `…id` in the document) that names no `kind`
    /// document of the environment; an absent reference is fine.
    pub async fn require_ref(
        &mut self,
        doc: &Doc,
        path: &str,
        kind: &str,
        what: &str,
    ) -> ApiResult<()> {
        let Some(id) = json_path(&doc.data, path).and_then(Value::as_str) else {
            return Ok(());
        };
        if self.tx.get(kind, &doc.env_id, id).await?.is_none() {
            return Err(crate::error::ApiError::one(crate::error::Detail::invalid(
                path,
                format!("The {what} does not exist."),
            )));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
pub trait Resource: Send + Sync + 'static {
    fn spec(&self) -> &'static Spec;

    /// The schema for this body: resources whose shape depends on a discriminator
    /// (`protocol`, `type`) pick it here.
    fn fields(&self, _input: &Value, _existing: Option<&Doc>) -> &'static [Field] {
        self.spec().fields
    }

    /// Cross-field rules, references and server-set fields; runs inside the write transaction
    /// before the document is stored. `existing` is the stored version on updates.
    async fn prepare(
        &self,
        _ctx: &mut WriteCtx<'_>,
        _doc: &mut Doc,
        _existing: Option<&Doc>,
    ) -> ApiResult<()> {
        Ok(())
    }

    /// Whether the parent named in a path exists (stored parents by default; template
    /// contents have the fixed template catalog as parents).
    async fn parent_exists(&self, app: &App, env_id: &str, parent_id: &str) -> ApiResult<bool> {
        match self.spec().parent {
            Some(p) => Ok(app
                .store
                .read()
                .get(p.kind, env_id, parent_id)
                .await?
                .is_some()),
            None => Ok(true),
        }
    }

    /// Side effects after the document is inserted (same transaction).
    async fn after_create(&self, _ctx: &mut WriteCtx<'_>, _doc: &Doc) -> ApiResult<()> {
        Ok(())
    }

    /// Side effects after the document is updated (same transaction).
    async fn after_update(&self, _ctx: &mut WriteCtx<'_>, _doc: &Doc, _old: &Doc) -> ApiResult<()> {
        Ok(())
    }

    /// Rules that depend on who creates the document through the management API (roles within
    /// the actor's own authority, roles a new worker inherits); runs after `after_create`, in the
    /// same transaction.
    async fn created_by(
        &self,
        _ctx: &mut WriteCtx<'_>,
        _doc: &Doc,
        _input: &Value,
        _actor: &Actor,
    ) -> ApiResult<()> {
        Ok(())
    }

    /// Refusals that depend on who deletes the document through the management API.
    fn deletable_by(&self, _actor: &Actor, _org_id: &str, _doc: &Doc) -> ApiResult<()> {
        Ok(())
    }

    /// Refusals that depend on who changes or deletes the stored document through the
    /// management API (an application holding more authority than the actor); runs in the
    /// write transaction, before the change.
    async fn writable_by(
        &self,
        _ctx: &mut WriteCtx<'_>,
        _doc: &Doc,
        _actor: &Actor,
    ) -> ApiResult<()> {
        Ok(())
    }

    /// Refusals and cascades before a delete (same transaction). Children are removed generically.
    async fn before_delete(&self, _ctx: &mut WriteCtx<'_>, _doc: &Doc) -> ApiResult<()> {
        Ok(())
    }

    /// The `_embedded` key of collections, when it differs from the path segment.
    fn embedded_key(&self) -> &'static str {
        self.spec().collection
    }

    /// Whether collections list newest first (e.g. the outbox) instead of in creation order.
    fn newest_first(&self) -> bool {
        false
    }

    /// Computed read-only fields (e.g. a population's user count).
    async fn decorate(
        &self,
        _app: &App,
        _doc: &Doc,
        _out: &mut Map<String, Value>,
    ) -> ApiResult<()> {
        Ok(())
    }
}

impl Spec {
    /// The unique keys a document claims.
    pub fn unique_keys(&self, doc: &Doc, org_id: &str) -> Vec<UniqueKey> {
        self.unique
            .iter()
            .filter_map(|u| {
                let value = json_path(&doc.data, u.path)?;
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Null => return None,
                    other => other.to_string(),
                };
                let scope_id = match u.scope {
                    UniqueScope::Environment => doc.env_id.clone(),
                    UniqueScope::Parent => doc.parent_id.clone(),
                    UniqueScope::Organization => org_id.to_string(),
                };
                Some(UniqueKey {
                    scope_id,
                    key: u.key,
                    value,
                })
            })
            .collect()
    }

    /// The collection path under `/v1/environments/{env}`.
    pub fn collection_rest(&self, parent_id: &str) -> String {
        match self.parent {
            Some(p) => format!("/{}/{parent_id}/{}", p.segment, self.collection),
            None => format!("/{}", self.collection),
        }
    }

    pub fn href(&self, app: &App, doc: &Doc) -> String {
        if self.kind == environments::KIND {
            return app.env_href(&doc.id, "");
        }
        app.env_href(
            &doc.env_id,
            &format!("{}/{}", self.collection_rest(&doc.parent_id), doc.id),
        )
    }

    /// The JSON a client sees: id, links, environment, parent reference, data, timestamps.
    /// Keys starting with `_` in the stored data are internal and never rendered.
    pub fn render(&self, app: &App, doc: &Doc) -> Map<String, Value> {
        let mut m = Map::new();
        let mut links = Map::new();
        links.insert("self".into(), json!({ "href": self.href(app, doc) }));
        if self.kind != environments::KIND {
            links.insert(
                "environment".into(),
                json!({ "href": app.env_href(&doc.env_id, "") }),
            );
        }
        if let Some(p) = self.parent {
            links.insert(p.field.into(), json!({ "href": app.env_href(&doc.env_id, &format!("/{}/{}", p.segment, doc.parent_id)) }));
        }
        m.insert("_links".into(), Value::Object(links));
        m.insert("id".into(), json!(doc.id));
        if self.kind != environments::KIND {
            m.insert("environment".into(), json!({ "id": doc.env_id }));
        }
        if let Some(p) = self.parent {
            m.insert(p.field.into(), json!({ "id": doc.parent_id }));
        }
        if let Some(data) = doc.data.as_object() {
            for (k, v) in data {
                if !k.starts_with('_') {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        m.insert("createdAt".into(), json!(doc.created_at));
        m.insert("updatedAt".into(), json!(doc.updated_at));
        m
    }
}

/// Every resource served through the generic layer.
pub fn all() -> Vec<&'static dyn Resource> {
    vec![
        &environments::ENVIRONMENTS,
        &populations::POPULATIONS,
        &users::USERS,
        &users::PASSWORD_POLICIES,
        &applications::APPLICATIONS,
        &applications::GRANTS,
        &applications::ATTRIBUTE_MAPPINGS,
        &applications::SIGN_ON_POLICY_ASSIGNMENTS,
        &resources::RESOURCES,
        &resources::SCOPES,
        &resources::RESOURCE_ATTRIBUTES,
        &policies::SIGN_ON_POLICIES,
        &policies::ACTIONS,
        &roles::APPLICATION_ROLE_ASSIGNMENTS,
        &roles::USER_ROLE_ASSIGNMENTS,
        &outbox::OUTBOX,
        &mfa_policies::MFA_POLICIES,
        &devices::DEVICES,
        &templates::CONTENTS,
        &phone_delivery::PHONE_DELIVERY,
    ]
}
