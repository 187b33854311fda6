//! Who may do what on the management API: built-in roles, the actor behind a token, and the
//! check of a role assignment's scope (organization ⊇ environment) against the target.

use serde_json::{Value, json};

/// The permission area a resource belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Environments themselves (create, delete, list across the organization).
    Environments,
    /// Environment configuration: populations, policies, password policies, keys.
    Config,
    /// Applications, resources, scopes and grants.
    Applications,
    /// Identity data: users, passwords, devices.
    Identity,
    /// Role assignments.
    Roles,
    /// Delivered messages (the outbox): passcodes and recovery codes that open any account of
    /// the environment. No role grants it alone: it needs write on every other area of the
    /// environment (a full administrator, such as Environment Admin with Identity Data Admin).
    Deliveries,
}

/// The areas a full administrator of an environment writes.
const ENVIRONMENT_AREAS: [Area; 4] = [
    Area::Config,
    Area::Applications,
    Area::Identity,
    Area::Roles,
];

pub struct Role {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub applicable_to: &'static [&'static str],
    /// (area, write allowed) pairs; read is implied by any entry for the area.
    pub grants: &'static [(Area, bool)],
}

pub const ORGANIZATION_ADMIN: &str = "db6213eb-a905-4e86-b686-c46b428a6133";
pub const ENVIRONMENT_ADMIN: &str = "da84f8c5-32fd-489d-b14e-b97aab884527";
pub const IDENTITY_DATA_ADMIN: &str = "9cfb1dab-5c27-47e0-86a1-ce117487933f";
pub const IDENTITY_DATA_READ_ONLY: &str = "7b33d539-72f8-477f-aaf0-f5d527807473";

pub const ROLES: &[Role] = &[
    Role {
        id: ORGANIZATION_ADMIN,
        name: "Organization Admin",
        description: "Manages the organization and its environments.",
        applicable_to: &["ORGANIZATION"],
        grants: &[
            (Area::Environments, true),
            (Area::Config, false),
            (Area::Applications, false),
            (Area::Roles, true),
        ],
    },
    Role {
        id: ENVIRONMENT_ADMIN,
        name: "Environment Admin",
        description: "Manages the configuration of environments: applications, populations, policies, keys and roles.",
        applicable_to: &["ORGANIZATION", "ENVIRONMENT"],
        grants: &[
            (Area::Environments, false),
            (Area::Config, true),
            (Area::Applications, true),
            (Area::Roles, true),
        ],
    },
    Role {
        id: IDENTITY_DATA_ADMIN,
        name: "Identity Data Admin",
        description: "Manages users, their passwords and their devices.",
        applicable_to: &["ENVIRONMENT", "POPULATION", "ORGANIZATION"],
        grants: &[(Area::Identity, true)],
    },
    Role {
        id: IDENTITY_DATA_READ_ONLY,
        name: "Identity Data Read Only",
        description: "Reads users and their data.",
        applicable_to: &["ENVIRONMENT", "POPULATION", "ORGANIZATION"],
        grants: &[(Area::Identity, false)],
    },
    Role {
        id: "97369929-2989-4a82-aa53-93e8d36dfa18",
        name: "Client Application Developer",
        description: "Manages applications, resources, scopes and grants.",
        applicable_to: &["ENVIRONMENT", "ORGANIZATION"],
        grants: &[(Area::Applications, true)],
    },
    Role {
        id: "28b951e7-3584-4b75-8439-df2e3645f1c1",
        name: "Configuration Read Only",
        description: "Reads environment configuration.",
        applicable_to: &["ENVIRONMENT", "ORGANIZATION"],
        grants: &[
            (Area::Environments, false),
            (Area::Config, false),
            (Area::Applications, false),
            (Area::Roles, false),
        ],
    },
    Role {
        id: "f2da4665-e85c-45ee-a392-815725e77833",
        name: "Application Owner",
        description: "Manages the applications assigned to it.",
        applicable_to: &["APPLICATION", "ENVIRONMENT"],
        grants: &[(Area::Applications, true)],
    },
];

pub fn role(id: &str) -> Option<&'static Role> {
    ROLES.iter().find(|r| r.id == id)
}

/// Whether a holder of role `holder` may assign role `target` (PingOne's built-in admin roles
/// table: Environment Admin assigns every role but Organization Admin; Identity Data Admin assigns
/// the identity data roles; Organization Admin assigns Environment Admin; the read-only and
/// developer roles assign nothing). A second organization administrator comes from a worker
/// created through the API, which inherits its creator's roles.
pub fn assignable_by(holder: &str, target: &str) -> bool {
    match holder {
        ORGANIZATION_ADMIN => target == ENVIRONMENT_ADMIN,
        ENVIRONMENT_ADMIN => target != ORGANIZATION_ADMIN,
        IDENTITY_DATA_ADMIN => target == IDENTITY_DATA_ADMIN || target == IDENTITY_DATA_READ_ONLY,
        _ => false,
    }
}

pub fn role_json(r: &Role, public_url: &str) -> Value {
    json!({
        "_links": { "self": { "href": format!("{public_url}/v1/roles/{}", r.id) } },
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "applicableTo": r.applicable_to,
        "type": "PLATFORM",
        "permissions": r.grants.iter().map(|(a, w)| json!({
            "id": format!("{}:{}", if *w { "write" } else { "read" }, area_name(*a)),
            "classifier": area_name(*a),
            "description": format!("{} {}", if *w { "Manage" } else { "Read" }, area_name(*a)),
        })).collect::<Vec<_>>(),
    })
}

fn area_name(a: Area) -> &'static str {
    match a {
        Area::Environments => "environments",
        Area::Config => "configuration",
        Area::Applications => "applications",
        Area::Identity => "identityData",
        Area::Roles => "roleAssignments",
        Area::Deliveries => "deliveries",
    }
}

#[derive(Debug, Clone)]
pub struct Assignment {
    pub role_id: String,
    pub scope_type: String,
    pub scope_id: String,
}

impl Assignment {
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Assignment {
            role_id: v.pointer("/role/id")?.as_str()?.to_string(),
            scope_type: v.pointer("/scope/type")?.as_str()?.to_string(),
            scope_id: v.pointer("/scope/id")?.as_str()?.to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Application,
    User,
}

/// Who is calling: the client (worker) or user behind a verified access token.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
    /// The environment the actor lives in (the token's `env`).
    pub env_id: String,
    pub org_id: String,
    pub assignments: Vec<Assignment>,
    /// The OAuth scopes of a user's token (`p1:*` self-service); empty for workers.
    pub scopes: Vec<String>,
}

/// The self-service scope a user's token needs for a management call on its own user
/// (`method` and the matched route template), or None when users may not make the call.
pub fn self_service_scope(method: &str, route: &str) -> Option<&'static str> {
    match (method, route) {
        ("GET", "/v1/environments/{envId}/users/{id}") => Some("p1:read:user"),
        ("PUT" | "PATCH", "/v1/environments/{envId}/users/{id}") => Some("p1:update:user"),
        _ => None,
    }
}

/// The attribute paths (`name.given`) a self-service scope's `schemaAttributes` may name;
/// internal state (`_…`) is never one.
fn attribute_paths(attributes: &[String]) -> impl Iterator<Item = Vec<&str>> {
    attributes
        .iter()
        .filter(|a| !a.split('.').any(|p| p.starts_with('_') || p.is_empty()))
        .map(|a| a.split('.').collect())
}

/// The value at `parts` in `root`, made (with objects on the way) if it is missing.
fn slot<'a>(root: &'a mut Value, parts: &[&str]) -> &'a mut Value {
    parts.iter().fold(root, |at, p| {
        if !at.is_object() {
            *at = json!({});
        }
        &mut at[*p]
    })
}

/// What a self-service token whose scopes have `schemaAttributes` may see of a rendered
/// document: its id and links and the listed attributes (None: everything).
pub fn visible_attributes(body: Value, attributes: Option<&[String]>) -> Value {
    let Some(attrs) = attributes else {
        return body;
    };
    let mut out = json!({});
    for k in ["_links", "id", "environment"] {
        if let Some(v) = body.get(k) {
            out[k] = v.clone();
        }
    }
    for parts in attribute_paths(attrs) {
        if let Some(v) = parts.iter().try_fold(&body, |v, p| v.get(*p)) {
            *slot(&mut out, &parts) = v.clone();
        }
    }
    out
}

/// A self-service write limited to `attributes`: the request's values for those paths over
/// the stored document (a path the request leaves out is removed); everything else stays.
pub fn writable_attributes(stored: &Value, input: &Value, attributes: &[String]) -> Value {
    let mut out = stored.clone();
    for parts in attribute_paths(attributes) {
        let (last, parents) = parts.split_last().expect("split yields one part at least");
        let given = parts.iter().try_fold(input, |v, p| v.get(*p));
        let parent = slot(&mut out, parents);
        if !parent.is_object() {
            *parent = json!({});
        }
        match given {
            Some(v) => parent[*last] = v.clone(),
            None => {
                if let Some(m) = parent.as_object_mut() {
                    m.remove(*last);
                }
            }
        }
    }
    out
}

impl Actor {
    fn covering<'a>(
        &'a self,
        env_id: &'a str,
        org_id: &'a str,
    ) -> impl Iterator<Item = &'a Assignment> + 'a {
        self.assignments
            .iter()
            .filter(move |a| match a.scope_type.as_str() {
                "ORGANIZATION" => a.scope_id == org_id && self.org_id == org_id,
                "ENVIRONMENT" => a.scope_id == env_id,
                _ => false,
            })
    }

    /// Whether any role assignment of the actor covers this environment.
    pub fn sees(&self, env_id: &str, org_id: &str) -> bool {
        self.covering(env_id, org_id).next().is_some()
    }

    pub fn may(&self, env_id: &str, org_id: &str, area: Area, write: bool) -> bool {
        if area == Area::Deliveries {
            return ENVIRONMENT_AREAS
                .iter()
                .all(|a| self.may(env_id, org_id, *a, true));
        }
        self.covering(env_id, org_id).any(|a| {
            role(&a.role_id)
                .is_some_and(|r| r.grants.iter().any(|(ar, w)| *ar == area && (*w || !write)))
        })
    }

    /// Whether the actor's assignment `a` covers a scope: organization scope covers the whole
    /// organization, environment scope the environment and its populations and applications
    /// (`scope_env` is the environment of a POPULATION or APPLICATION scope), others only
    /// themselves.
    fn scope_covers(
        &self,
        a: &Assignment,
        scope_type: &str,
        scope_id: &str,
        scope_env: &str,
        org_id: &str,
    ) -> bool {
        match a.scope_type.as_str() {
            "ORGANIZATION" => a.scope_id == org_id && self.org_id == org_id,
            "ENVIRONMENT" => match scope_type {
                "ENVIRONMENT" => scope_id == a.scope_id,
                "POPULATION" | "APPLICATION" => scope_env == a.scope_id,
                _ => false,
            },
            other => other == scope_type && a.scope_id == scope_id,
        }
    }

    /// Whether the actor may assign (or remove) `role_id` with this scope: one of its own role
    /// assignments must both allow assigning that role and cover the scope. `scope_env` is the
    /// environment of a POPULATION or APPLICATION scope.
    pub fn may_assign(
        &self,
        role_id: &str,
        scope_type: &str,
        scope_id: &str,
        scope_env: &str,
        org_id: &str,
    ) -> bool {
        self.assignments.iter().any(|a| {
            assignable_by(&a.role_id, role_id)
                && self.scope_covers(a, scope_type, scope_id, scope_env, org_id)
        })
    }

    /// Whether the actor's authority includes all of `held`, the role assignments of another
    /// actor living in `held_env` (a worker whose secret it reads, whose keys it changes, whose
    /// roles it changes): for each, the actor holds the same role, or one that may assign it,
    /// over a scope covering it. Nobody may obtain or control credentials carrying more
    /// authority than their own.
    pub fn has_authority_of(&self, held: &[Assignment], held_env: &str, org_id: &str) -> bool {
        held.iter().all(|t| {
            self.assignments.iter().any(|a| {
                (a.role_id == t.role_id || assignable_by(&a.role_id, &t.role_id))
                    && self.scope_covers(a, &t.scope_type, &t.scope_id, held_env, org_id)
            })
        })
    }

    /// The environments whose documents the actor may read: `None` for every environment of
    /// the organization, else the ids named by its environment-scoped roles that read them.
    pub fn readable_environments(&self) -> Option<Vec<String>> {
        let reads_envs = |a: &Assignment| {
            role(&a.role_id)
                .is_some_and(|r| r.grants.iter().any(|(ar, _)| *ar == Area::Environments))
        };
        let org_wide = self
            .assignments
            .iter()
            .any(|a| a.scope_type == "ORGANIZATION" && a.scope_id == self.org_id && reads_envs(a));
        if org_wide {
            return None;
        }
        Some(
            self.assignments
                .iter()
                .filter(|a| a.scope_type == "ENVIRONMENT" && reads_envs(a))
                .map(|a| a.scope_id.clone())
                .collect(),
        )
    }

    /// Organization-level rights (creating environments).
    pub fn may_in_org(&self, area: Area, write: bool) -> bool {
        self.assignments.iter().any(|a| {
            a.scope_type == "ORGANIZATION"
                && a.scope_id == self.org_id
                && role(&a.role_id)
                    .is_some_and(|r| r.grants.iter().any(|(ar, w)| *ar == area && (*w || !write)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(assignments: Vec<(&str, &str, &str)>) -> Actor {
        Actor {
            kind: ActorKind::Application,
            id: "a".into(),
            env_id: "admin-env".into(),
            org_id: "org".into(),
            scopes: vec![],
            assignments: assignments
                .into_iter()
                .map(|(r, t, s)| Assignment {
                    role_id: r.into(),
                    scope_type: t.into(),
                    scope_id: s.into(),
                })
                .collect(),
        }
    }

    #[test]
    fn scopes_and_roles() {
        let a = actor(vec![
            (IDENTITY_DATA_ADMIN, "ENVIRONMENT", "e1"),
            (ENVIRONMENT_ADMIN, "ORGANIZATION", "org"),
        ]);
        assert!(a.may("e1", "org", Area::Identity, true));
        assert!(
            !a.may("e2", "org", Area::Identity, false),
            "identity role is scoped to e1"
        );
        assert!(
            a.may("e2", "org", Area::Config, true),
            "env admin is org-wide"
        );
        assert!(
            !a.may("e2", "other-org", Area::Config, false),
            "never across organizations"
        );
        assert!(!a.may_in_org(Area::Environments, true));
        let ro = actor(vec![(
            "28b951e7-3584-4b75-8439-df2e3645f1c1",
            "ENVIRONMENT",
            "e1",
        )]);
        assert!(
            ro.may("e1", "org", Area::Config, false) && !ro.may("e1", "org", Area::Config, true)
        );
    }

    #[test]
    fn authority_over_another_actor() {
        let org_admin_worker = [
            Assignment {
                role_id: ORGANIZATION_ADMIN.into(),
                scope_type: "ORGANIZATION".into(),
                scope_id: "org".into(),
            },
            Assignment {
                role_id: ENVIRONMENT_ADMIN.into(),
                scope_type: "ORGANIZATION".into(),
                scope_id: "org".into(),
            },
        ];
        let env_admin_worker = [Assignment {
            role_id: ENVIRONMENT_ADMIN.into(),
            scope_type: "ENVIRONMENT".into(),
            scope_id: "e1".into(),
        }];
        let developer = actor(vec![(
            "97369929-2989-4a82-aa53-93e8d36dfa18",
            "ENVIRONMENT",
            "e1",
        )]);
        let env_admin = actor(vec![(ENVIRONMENT_ADMIN, "ENVIRONMENT", "e1")]);
        let org_admin = actor(vec![
            (ORGANIZATION_ADMIN, "ORGANIZATION", "org"),
            (ENVIRONMENT_ADMIN, "ORGANIZATION", "org"),
        ]);
        assert!(
            developer.has_authority_of(&[], "e1", "org"),
            "a worker without roles"
        );
        assert!(!developer.has_authority_of(&env_admin_worker, "e1", "org"));
        assert!(
            !env_admin.has_authority_of(&org_admin_worker, "e1", "org"),
            "organization roles are above an environment admin"
        );
        assert!(
            env_admin.has_authority_of(&env_admin_worker, "e1", "org"),
            "the same role over the same scope"
        );
        let other_env = [Assignment {
            role_id: ENVIRONMENT_ADMIN.into(),
            scope_type: "ENVIRONMENT".into(),
            scope_id: "e2".into(),
        }];
        assert!(
            !env_admin.has_authority_of(&other_env, "e1", "org"),
            "another environment's admin"
        );
        assert!(org_admin.has_authority_of(&org_admin_worker, "e1", "org"));
        assert!(org_admin.has_authority_of(&other_env, "e1", "org"));
        let ida = [Assignment {
            role_id: IDENTITY_DATA_ADMIN.into(),
            scope_type: "ENVIRONMENT".into(),
            scope_id: "e1".into(),
        }];
        assert!(
            env_admin.has_authority_of(&ida, "e1", "org"),
            "an environment admin assigns identity data admin"
        );
    }
}
