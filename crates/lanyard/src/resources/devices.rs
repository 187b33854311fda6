//! A user's MFA devices (`/users/{userId}/devices`): SMS and voice (a phone number), email,
//! and TOTP authenticator apps. The TOTP secret is sealed in the document's secrets; the
//! internal keys hold the device's place in the user's order (`_rank`), its OTP failure count
//! and lock (`_otp`), recent sends for rate limiting (`_sends`) and a pending activation code
//! (`_activation`). All of it lives in the database, so every process sees the same lock.

use serde_json::{Value, json};

use super::{Methods, ParentSpec, Resource, Spec, WriteCtx};
use crate::engine::authz::Area;
use crate::engine::otp;
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::schema::{Field, Ty, f, s};
use crate::store::Doc;
use crate::store::sql_filter::{AttrType, EQ_OPS, attr, column};

pub const KIND: &str = "device";
pub const TYPES: &[&str] = &["SMS", "VOICE", "EMAIL", "TOTP"];
pub const ACTIVE: &str = "ACTIVE";
pub const ACTIVATION_REQUIRED: &str = "ACTIVATION_REQUIRED";
/// Devices one user may have (PingOne's limit).
pub const MAX_PER_USER: usize = 15;

macro_rules! device_fields {
    ($($extra:expr),* $(,)?) => {
        &[
            f("type", Ty::Enum(TYPES)).req().create_only(),
            f("status", Ty::Enum(&[ACTIVE, ACTIVATION_REQUIRED])).create_only(),
            f("nickname", s(100)),
            f("policy", Ty::Ref).create_only(),
            f("lock", Ty::Any).ro(),
            f("block", Ty::Any).ro(),
            $($extra),*
        ]
    };
}

const PHONE_FIELDS: &[Field] = device_fields![f("phone", s(64)).req().create_only()];
const EMAIL_FIELDS: &[Field] = device_fields![f("email", Ty::Email).req().create_only()];
const TOTP_FIELDS: &[Field] = device_fields![];
const ANY_FIELDS: &[Field] = device_fields![];

pub static SPEC: Spec = Spec {
    kind: KIND,
    collection: "devices",
    parent: Some(ParentSpec {
        kind: super::users::KIND,
        segment: "users",
        field: "user",
    }),
    fields: ANY_FIELDS,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("type", "type", AttrType::Str, EQ_OPS),
        attr("status", "status", AttrType::Str, EQ_OPS),
    ],
    unique: &[],
    area: Area::Identity,
    // The collection (create, reorder, order removal, ordered listing) is in `http::devices`.
    methods: Methods {
        list: false,
        create: false,
        read: true,
        replace: false,
        patch: false,
        delete: true,
    },
};

pub struct Devices;
pub static DEVICES: Devices = Devices;

/// Normalizes a phone number to E.164 (`+15125551234`). PingOne accepts separators such as
/// `+1.5125551234` or `+1 (512) 555-1234`; the country code is required.
pub fn normalize_phone(input: &str) -> Option<String> {
    let t = input.trim();
    let rest = t.strip_prefix('+')?;
    let mut digits = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '(' | ')' => {}
            _ => return None,
        }
    }
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return None;
    }
    Some(format!("+{digits}"))
}

/// Masks as PingOne shows devices in flows (`*******34`, `ja****@example.com`): the user
/// sees which device, nobody learns the number or address.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    format!("*******{tail}")
}

pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let head: String = local.chars().take(2).collect();
            format!("{head}****@{domain}")
        }
        None => "****".into(),
    }
}

#[async_trait::async_trait]
impl Resource for Devices {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn fields(&self, input: &Value, existing: Option<&Doc>) -> &'static [Field] {
        let t = existing.map(|d| &d.data["type"]).unwrap_or(&input["type"]);
        match t.as_str() {
            Some("SMS" | "VOICE") => PHONE_FIELDS,
            Some("EMAIL") => EMAIL_FIELDS,
            Some("TOTP") => TOTP_FIELDS,
            _ => ANY_FIELDS,
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
        if let Some(p) = doc.data.get("phone").and_then(Value::as_str) {
            let phone = normalize_phone(p).ok_or_else(|| {
                ApiError::one(
                    Detail::invalid(
                        "phone",
                        "The phone number must be in international format with a country code, such as +15125551234.",
                    )
                    .with_inner(json!({ "allowedPattern": "^\\+[1-9][0-9 .()-]{7,}$" })),
                )
            })?;
            doc.data["phone"] = json!(phone);
        }
        ctx.require_ref(
            doc,
            "policy.id",
            super::mfa_policies::KIND,
            "device authentication policy",
        )
        .await?;
        // Serialize device creation per user so the limit holds under concurrent requests.
        ctx.tx.lock(&doc.env_id, &doc.parent_id).await?;
        let existing_devices = ctx.tx.children(KIND, &doc.env_id, &doc.parent_id).await?;
        if existing_devices.len() >= MAX_PER_USER {
            return Err(ApiError::RequestFailed(
                format!("A user can have at most {MAX_PER_USER} MFA devices."),
                vec![],
            ));
        }
        // The creation order, exact even within one millisecond.
        let seq = existing_devices
            .iter()
            .filter_map(|d| d.data["_seq"].as_i64())
            .max()
            .map_or(0, |m| m + 1);
        doc.data["_seq"] = json!(seq);
        if doc.data.get("status").is_none() {
            // An admin's SMS, voice or email device is paired at once; an authenticator app
            // must prove it holds the secret first.
            let pending = doc.data["type"] == "TOTP";
            doc.data["status"] = json!(if pending { ACTIVATION_REQUIRED } else { ACTIVE });
        }
        if doc.data["type"] == "TOTP" {
            let secret = otp::new_totp_secret();
            doc.secrets = Some(ctx.app.master.encrypt_json(&json!({ "secret": secret })));
        }
        Ok(())
    }

    async fn decorate(
        &self,
        _app: &crate::state::App,
        doc: &Doc,
        out: &mut serde_json::Map<String, Value>,
    ) -> ApiResult<()> {
        crate::engine::mfa::decorate(doc, out);
        Ok(())
    }
}

/// The TOTP secret of a device (base32), if it has one.
pub fn totp_secret(app: &crate::state::App, device: &Doc) -> Option<String> {
    let sealed = device.secrets.as_deref()?;
    let v = app.master.decrypt_json(sealed).ok()?;
    v["secret"].as_str().map(str::to_string)
}

/// A user's devices in their order: ranked ones first (by rank), then by creation (the
/// per-user sequence breaks ties within a millisecond).
pub fn in_order(mut devices: Vec<Doc>) -> Vec<Doc> {
    devices.sort_by(|a, b| {
        let ra = a.data["_rank"].as_i64().unwrap_or(i64::MAX);
        let rb = b.data["_rank"].as_i64().unwrap_or(i64::MAX);
        ra.cmp(&rb)
            .then_with(|| a.created_at.cmp(&b.created_at))
            .then_with(|| a.data["_seq"].as_i64().cmp(&b.data["_seq"].as_i64()))
            .then_with(|| a.id.cmp(&b.id))
    });
    devices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        assert_eq!(
            normalize_phone("+15125551234").as_deref(),
            Some("+15125551234")
        );
        assert_eq!(
            normalize_phone("+1.5125551234").as_deref(),
            Some("+15125551234")
        );
        assert_eq!(
            normalize_phone("+1 (512) 555-1234").as_deref(),
            Some("+15125551234")
        );
        for bad in [
            "5125551234",
            "+1",
            "+1abc5551234",
            "+0123456789",
            "",
            "+1234567890123456",
        ] {
            assert!(normalize_phone(bad).is_none(), "{bad}");
        }
        assert_eq!(mask_phone("+15125551234"), "*******34");
    }

    #[test]
    fn emails() {
        assert_eq!(mask_email("abc@ping.com"), "ab****@ping.com");
        assert_eq!(mask_email("j@example.com"), "j****@example.com");
    }
}
