//! Users and password policies. The user document keeps its password state under the internal
//! `_password` key (never rendered); the hash itself is sealed in the document's secrets.

use serde_json::{Value, json};

use super::{CRUD, Methods, Resource, Spec, Unique, UniqueScope, WriteCtx};
use crate::engine::authz::Area;
use crate::engine::password_policy;
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::filter::Op;
use crate::model::schema::{Field, Ty, f, int, s};
use crate::store::Doc;
use crate::store::sql_filter::{AttrType, EQ_OPS, ORD_OPS, STR_OPS, attr, column};

pub const KIND: &str = "user";

/// Whether a user may sign on and keep using tokens: `enabled` is true.
pub fn is_enabled(user: &Doc) -> bool {
    user.data["enabled"] == true
}

/// The user if it exists in the environment and is enabled.
pub async fn enabled(app: &crate::state::App, env_id: &str, id: &str) -> ApiResult<Option<Doc>> {
    Ok(app
        .store
        .read()
        .get(KIND, env_id, id)
        .await?
        .filter(is_enabled))
}

pub const PASSWORD_POLICY_KIND: &str = "passwordPolicy";

const NAME: &[Field] = &[
    f("formatted", s(256)),
    f("given", s(256)),
    f("middle", s(256)),
    f("family", s(256)),
    f("honorificPrefix", s(256)),
    f("honorificSuffix", s(256)),
];
const ADDRESS: &[Field] = &[
    f("streetAddress", s(256)),
    f("locality", s(256)),
    f("region", s(256)),
    f("postalCode", s(40)),
    f("countryCode", Ty::Pattern("^[A-Za-z]{2}$")),
];
const PASSWORD: &[Field] = &[
    f("value", s(4096)),
    f("forceChange", Ty::Bool).def_bool(false),
    f("external", Ty::Any),
];
const LIFECYCLE: &[Field] = &[
    f("status", Ty::Enum(&["ACCOUNT_OK", "VERIFICATION_REQUIRED"])),
    f("suppressVerificationCode", Ty::Bool),
];

/// `username` per PingOne: letters, marks, separators, symbols, numbers and punctuation.
pub const USERNAME_PATTERN: &str = r"^[\p{L}\p{M}\p{Zs}\p{S}\p{N}\p{P}]{1,128}$";

macro_rules! user_fields {
    ($($extra:expr),* $(,)?) => {
        &[
            f("username", Ty::Pattern(USERNAME_PATTERN)).req(),
            f("email", Ty::Email),
            f("population", Ty::Ref).create_only(),
            f("name", Ty::Obj(NAME)),
            f("nickname", s(256)),
            f("title", s(256)),
            f("type", s(256)),
            f("locale", s(64)),
            f("preferredLanguage", s(64)),
            f("timezone", Ty::Pattern(r"^[\w+-]+(/[\w+-]+)*$")),
            f("primaryPhone", s(32)),
            f("mobilePhone", s(32)),
            f("photo", Ty::Obj(&[f("href", Ty::Url).req()])),
            f("address", Ty::Obj(ADDRESS)),
            f("externalId", s(1024)),
            f("accountId", s(1024)),
            f("enabled", Ty::Bool).ro(),
            f("emailVerified", Ty::Bool).ro(),
            f("account", Ty::Any).ro(),
            f("identityProvider", Ty::Any).ro(),
            f("lastSignOn", Ty::Any).ro(),
            f("verifyStatus", Ty::Any).ro(),
            $($extra),*
        ]
    };
}

/// Create (`application/json`): password and `mfaEnabled` may be given; lifecycle is server-set.
const CREATE_FIELDS: &[Field] = user_fields![
    f("password", Ty::Obj(PASSWORD)),
    f("mfaEnabled", Ty::Bool).create_only().def_bool(false),
    f("lifecycle", Ty::Any).ro(),
];
/// Import (`application/vnd.pingidentity.user.import+json`): also lifecycle and pre-hashed passwords.
pub const IMPORT_FIELDS: &[Field] = user_fields![
    f("password", Ty::Obj(PASSWORD)),
    f("mfaEnabled", Ty::Bool).create_only().def_bool(false),
    f("lifecycle", Ty::Obj(LIFECYCLE)).create_only(),
];
/// PUT/PATCH: population, enabled, mfaEnabled and password are not changed here.
const UPDATE_FIELDS: &[Field] =
    user_fields![f("mfaEnabled", Ty::Bool).ro(), f("lifecycle", Ty::Any).ro()];

pub static SPEC: Spec = Spec {
    kind: KIND,
    collection: "users",
    parent: None,
    fields: CREATE_FIELDS,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("username", "username", AttrType::Str, STR_OPS),
        attr("email", "email", AttrType::Str, STR_OPS),
        attr("externalId", "externalId", AttrType::Str, STR_OPS),
        attr("accountId", "accountId", AttrType::Str, STR_OPS),
        attr("population.id", "population.id", AttrType::Str, EQ_OPS),
        attr("name.given", "name.given", AttrType::Str, STR_OPS),
        attr("name.family", "name.family", AttrType::Str, STR_OPS),
        attr("name.middle", "name.middle", AttrType::Str, STR_OPS),
        attr("name.formatted", "name.formatted", AttrType::Str, STR_OPS),
        attr("nickname", "nickname", AttrType::Str, STR_OPS),
        attr("title", "title", AttrType::Str, STR_OPS),
        attr("type", "type", AttrType::Str, STR_OPS),
        attr("locale", "locale", AttrType::Str, STR_OPS),
        attr(
            "preferredLanguage",
            "preferredLanguage",
            AttrType::Str,
            STR_OPS,
        ),
        attr("mobilePhone", "mobilePhone", AttrType::Str, STR_OPS),
        attr("primaryPhone", "primaryPhone", AttrType::Str, STR_OPS),
        attr(
            "address.streetAddress",
            "address.streetAddress",
            AttrType::Str,
            STR_OPS,
        ),
        attr(
            "address.locality",
            "address.locality",
            AttrType::Str,
            STR_OPS,
        ),
        attr("address.region", "address.region", AttrType::Str, STR_OPS),
        attr(
            "address.postalCode",
            "address.postalCode",
            AttrType::Str,
            STR_OPS,
        ),
        attr(
            "address.countryCode",
            "address.countryCode",
            AttrType::Str,
            STR_OPS,
        ),
        attr("enabled", "enabled", AttrType::Bool, EQ_OPS),
        attr("mfaEnabled", "mfaEnabled", AttrType::Bool, EQ_OPS),
        attr(
            "lifecycle.status",
            "lifecycle.status",
            AttrType::Str,
            EQ_OPS,
        ),
        attr("account.status", "account.status", AttrType::Str, EQ_OPS),
        attr(
            "identityProvider.type",
            "identityProvider.type",
            AttrType::Str,
            EQ_OPS,
        ),
        column("createdAt", "created_at", AttrType::Date, ORD_OPS),
        column("updatedAt", "updated_at", AttrType::Date, ORD_OPS),
    ],
    unique: &[Unique {
        key: "username",
        path: "username",
        scope: UniqueScope::Environment,
    }],
    area: Area::Identity,
    // Creation is routed by media type in `http::users`.
    methods: Methods {
        patch: true,
        create: false,
        ..CRUD
    },
};

pub struct Users {
    import: bool,
}
pub static USERS: Users = Users { import: false };
pub static USER_IMPORT: Users = Users { import: true };

#[async_trait::async_trait]
impl Resource for Users {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn fields(&self, _input: &Value, existing: Option<&Doc>) -> &'static [Field] {
        match (existing, self.import) {
            (Some(_), _) => UPDATE_FIELDS,
            (None, true) => IMPORT_FIELDS,
            (None, false) => CREATE_FIELDS,
        }
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        existing: Option<&Doc>,
    ) -> ApiResult<()> {
        if existing.is_some() {
            return Ok(());
        }
        let population = match doc.data["population"]["id"].as_str() {
            Some(id) => ctx
                .tx
                .get(super::populations::KIND, &doc.env_id, id)
                .await?
                .ok_or_else(|| {
                    ApiError::one(Detail::invalid(
                        "population.id",
                        "The population does not exist.",
                    ))
                })?,
            None => super::populations::default_population(ctx.tx, &doc.env_id)
                .await?
                .ok_or_else(|| ApiError::one(Detail::required("population.id")))?,
        };
        doc.data["population"] = json!({ "id": population.id });
        doc.data["enabled"] = json!(true);
        doc.data["account"] = json!({ "canAuthenticate": true, "status": "OK" });
        doc.data["identityProvider"] = json!({ "type": "PING_ONE" });
        doc.data["verifyStatus"] = json!("NOT_INITIATED");
        doc.data["emailVerified"] = json!(false);
        if doc.data.get("lifecycle").is_none() {
            doc.data["lifecycle"] = json!({ "status": "ACCOUNT_OK" });
        }
        let password = doc.data.as_object_mut().and_then(|m| m.remove("password"));
        doc.data["_password"] = json!({ "status": "NO_PASSWORD" });
        if let Some(pw) = password {
            let value = pw["value"].as_str().unwrap_or_default().to_string();
            if !value.is_empty() {
                let force = pw["forceChange"] == true;
                password_policy::set_password(
                    ctx,
                    doc,
                    &value,
                    force,
                    self.import,
                    "password.value",
                )
                .await?;
            }
        }
        Ok(())
    }
}

// ---- password policies ----

const RULE_2_3: &[Field] = &[f("maxLength", int(2, 3)).req()];
const RULE_3: &[Field] = &[f("maxLength", int(3, 3)).req()];
const HISTORY: &[Field] = &[f("count", int(1, 24)), f("retentionDays", int(1, 3650))];
const LENGTH: &[Field] = &[
    f("min", int(8, 32)).def_int(8),
    f("max", int(8, 255)).def_int(255),
];
const LOCKOUT: &[Field] = &[
    f("durationSeconds", int(1, 86400 * 365)),
    f("failureCount", int(1, 1000)),
];
const MIN_CHARACTERS: &[Field] = &[
    f("ABCDEFGHIJKLMNOPQRSTUVWXYZ", int(0, 255)),
    f("abcdefghijklmnopqrstuvwxyz", int(0, 255)),
    f("0123456789", int(0, 255)),
    f("~!@#$%^&*()-_=+[]{}|;:,.<>/?", int(0, 255)),
];

const PASSWORD_POLICY_FIELDS: &[Field] = &[
    f("name", s(256)).req(),
    f("description", s(1024)),
    f("default", Ty::Bool).def_bool(false),
    f("excludesCommonlyUsed", Ty::Bool).req(),
    f("excludesProfileData", Ty::Bool).req(),
    f("notSimilarToCurrent", Ty::Bool).req(),
    f("alphabetSequenceRule", Ty::Obj(RULE_2_3)),
    f("numberSequenceRule", Ty::Obj(RULE_2_3)),
    f("qwertySequenceRule", Ty::Obj(RULE_3)),
    f("shiftedNumberRowSequenceRule", Ty::Obj(RULE_3)),
    f("history", Ty::Obj(HISTORY)),
    f("length", Ty::Obj(LENGTH)),
    f("lockout", Ty::Obj(LOCKOUT)),
    f("maxAgeDays", int(1, 3650)),
    f("minAgeDays", int(1, 3650)),
    f("maxRepeatedCharacters", int(1, 255)),
    f("minCharacters", Ty::Obj(MIN_CHARACTERS)),
    f("minComplexity", int(1, 7)),
    f("minUniqueCharacters", int(1, 255)),
    f("populationCount", Ty::Any).ro(),
];

pub static PASSWORD_POLICY_SPEC: Spec = Spec {
    kind: PASSWORD_POLICY_KIND,
    collection: "passwordPolicies",
    parent: None,
    fields: PASSWORD_POLICY_FIELDS,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("name", "name", AttrType::Str, STR_OPS),
        attr("default", "default", AttrType::Bool, EQ_OPS),
        column(
            "createdAt",
            "created_at",
            AttrType::Date,
            &[Op::Gt, Op::Lt, Op::Ge, Op::Le],
        ),
    ],
    unique: &[Unique {
        key: "name",
        path: "name",
        scope: UniqueScope::Environment,
    }],
    area: Area::Config,
    methods: CRUD,
};

pub struct PasswordPolicies;
pub static PASSWORD_POLICIES: PasswordPolicies = PasswordPolicies;

#[async_trait::async_trait]
impl Resource for PasswordPolicies {
    fn spec(&self) -> &'static Spec {
        &PASSWORD_POLICY_SPEC
    }

    async fn prepare(
        &self,
        ctx: &mut WriteCtx<'_>,
        doc: &mut Doc,
        existing: Option<&Doc>,
    ) -> ApiResult<()> {
        let len = &doc.data["length"];
        if let (Some(min), Some(max)) = (len["min"].as_i64(), len["max"].as_i64())
            && min > max
        {
            return Err(ApiError::one(Detail::invalid(
                "length.min",
                "length.min must not exceed length.max.",
            )));
        }
        if let (Some(min), Some(max)) = (
            doc.data["minAgeDays"].as_i64(),
            doc.data["maxAgeDays"].as_i64(),
        ) && min >= max
        {
            return Err(ApiError::one(Detail::invalid(
                "minAgeDays",
                "minAgeDays must be less than maxAgeDays.",
            )));
        }
        let was_default = existing.is_some_and(|e| e.data["default"] == true);
        if was_default && doc.data["default"] != true {
            return Err(ApiError::one(Detail::invalid(
                "default",
                "The default password policy cannot be unset; make another policy the default instead.",
            )));
        }
        if doc.data["default"] == true && !was_default {
            for mut other in ctx
                .tx
                .children(PASSWORD_POLICY_KIND, &doc.env_id, "")
                .await?
            {
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
                "The default password policy cannot be deleted.".into(),
                vec![],
            ));
        }
        for p in ctx
            .tx
            .children(super::populations::KIND, &doc.env_id, "")
            .await?
        {
            if p.data["passwordPolicy"]["id"] == doc.id.as_str() {
                return Err(ApiError::RequestFailed(
                    "The password policy is assigned to a population.".into(),
                    vec![],
                ));
            }
        }
        Ok(())
    }
}

/// PingOne's three predefined password policies; `Standard` is the default.
pub async fn create_default_password_policies(ctx: &mut WriteCtx<'_>) -> ApiResult<()> {
    let standard = json!({
        "name": "Standard", "description": "A standard policy that incorporates industry best practices", "default": true,
        "excludesCommonlyUsed": true, "excludesProfileData": true, "notSimilarToCurrent": true,
        "history": { "count": 6, "retentionDays": 365 }, "length": { "min": 8, "max": 255 },
        "lockout": { "failureCount": 5, "durationSeconds": 900 }, "maxRepeatedCharacters": 2, "minUniqueCharacters": 5,
        "minCharacters": { "ABCDEFGHIJKLMNOPQRSTUVWXYZ": 1, "abcdefghijklmnopqrstuvwxyz": 1, "0123456789": 1, "~!@#$%^&*()-_=+[]{}|;:,.<>/?": 1 },
        "minAgeDays": 1, "maxAgeDays": 182,
    });
    let basic = json!({
        "name": "Basic", "description": "A basic policy that requires a minimum length", "default": false,
        "excludesCommonlyUsed": false, "excludesProfileData": false, "notSimilarToCurrent": false,
        "length": { "min": 8, "max": 255 }, "lockout": { "failureCount": 5, "durationSeconds": 900 },
    });
    let passphrase = json!({
        "name": "Passphrase", "description": "A policy that encourages the use of passphrases", "default": false,
        "excludesCommonlyUsed": true, "excludesProfileData": true, "notSimilarToCurrent": true,
        "history": { "count": 6, "retentionDays": 365 }, "length": { "min": 30, "max": 255 },
        "lockout": { "failureCount": 5, "durationSeconds": 900 }, "minUniqueCharacters": 5,
    });
    for p in [standard, basic, passphrase] {
        super::ops::create(ctx, &PASSWORD_POLICIES, &p, "").await?;
    }
    Ok(())
}
