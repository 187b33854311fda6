//! Declarative resource schemas: each management resource describes its fields once, and this
//! validator turns a request body into the stored document or PingOne `details[]` errors
//! (`REQUIRED_VALUE`, `INVALID_VALUE` with `allowedValues`/`allowedPattern`, `OUT_OF_RANGE`,
//! `SIZE_LIMIT_EXCEEDED`). Unknown fields and read-only fields in a request are ignored.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::Regex;
use serde_json::{Map, Value, json};

use crate::error::Detail;

#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// A string with a length range in characters.
    Str {
        min: usize,
        max: usize,
    },
    /// A string matching a regular expression (anchored by the pattern itself).
    Pattern(&'static str),
    Enum(&'static [&'static str]),
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Obj(&'static [Field]),
    Arr(&'static Ty, usize),
    /// A reference object `{ "id": "<uuid>" }`.
    Ref,
    Uuid,
    /// An absolute URL (http or https).
    Url,
    Email,
    /// Any JSON value, stored as given.
    Any,
}

#[derive(Debug, Clone, Copy)]
pub enum Default {
    None,
    Bool(bool),
    Int(i64),
    Str(&'static str),
}

/// How a field behaves on write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Set by the server; ignored in requests and kept across updates.
    ReadOnly,
    /// Accepted on create, then kept as it was on updates.
    CreateOnly,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub access: Access,
    pub default: Default,
}

pub const fn f(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
        access: Access::ReadWrite,
        default: Default::None,
    }
}

impl Field {
    pub const fn req(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn ro(mut self) -> Self {
        self.access = Access::ReadOnly;
        self
    }
    pub const fn create_only(mut self) -> Self {
        self.access = Access::CreateOnly;
        self
    }
    pub const fn def_bool(mut self, b: bool) -> Self {
        self.default = Default::Bool(b);
        self
    }
    pub const fn def_int(mut self, i: i64) -> Self {
        self.default = Default::Int(i);
        self
    }
    pub const fn def_str(mut self, s: &'static str) -> Self {
        self.default = Default::Str(s);
        self
    }
}

pub const fn s(max: usize) -> Ty {
    Ty::Str { min: 1, max }
}
pub const fn int(min: i64, max: i64) -> Ty {
    Ty::Int { min, max }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Replace,
}

/// Validates `input` against `fields`. On success returns the object to store: every known,
/// writable field that was given (or defaulted); read-only fields are taken from `existing`.
pub fn validate(
    fields: &[Field],
    input: &Value,
    existing: Option<&Value>,
    mode: Mode,
) -> Result<Map<String, Value>, Vec<Detail>> {
    let mut errors = Vec::new();
    let Some(obj) = input.as_object() else {
        return Err(vec![Detail::new(
            "INVALID_VALUE",
            None,
            "The request body must be a JSON object.",
        )]);
    };
    let out = check_object(
        fields,
        obj,
        existing.and_then(Value::as_object),
        mode,
        "",
        &mut errors,
    );
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn check_object(
    fields: &[Field],
    obj: &Map<String, Value>,
    existing: Option<&Map<String, Value>>,
    mode: Mode,
    prefix: &str,
    errors: &mut Vec<Detail>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for field in fields {
        let target = if prefix.is_empty() {
            field.name.to_string()
        } else {
            format!("{prefix}.{}", field.name)
        };
        let keep_existing = match field.access {
            Access::ReadOnly => true,
            Access::CreateOnly => mode == Mode::Replace,
            Access::ReadWrite => false,
        };
        if keep_existing {
            if let Some(v) = existing.and_then(|e| e.get(field.name)) {
                out.insert(field.name.to_string(), v.clone());
            }
            continue;
        }
        match obj.get(field.name) {
            None | Some(Value::Null) => {
                if field.required {
                    errors.push(Detail::required(&target));
                } else {
                    match field.default {
                        Default::None => {}
                        Default::Bool(b) => {
                            out.insert(field.name.into(), Value::Bool(b));
                        }
                        Default::Int(i) => {
                            out.insert(field.name.into(), json!(i));
                        }
                        Default::Str(s) => {
                            out.insert(field.name.into(), json!(s));
                        }
                    }
                }
            }
            Some(v) => {
                if let Some(v) = check_value(&field.ty, v, &target, errors) {
                    out.insert(field.name.into(), v);
                }
            }
        }
    }
    out
}

fn check_value(ty: &Ty, v: &Value, target: &str, errors: &mut Vec<Detail>) -> Option<Value> {
    let before = errors.len();
    let result = match ty {
        Ty::Str { min, max } => match v.as_str() {
            Some(s) => {
                let n = s.chars().count();
                if n < *min {
                    errors.push(Detail::new(
                        "EMPTY_VALUE",
                        Some(target.into()),
                        format!("{target} must not be empty"),
                    ));
                } else if n > *max {
                    errors.push(
                        Detail::new(
                            "SIZE_LIMIT_EXCEEDED",
                            Some(target.into()),
                            format!("{target} must be at most {max} characters"),
                        )
                        .with_inner(json!({ "maximumValue": max })),
                    );
                }
                Some(v.clone())
            }
            None => type_error(target, "a string", errors),
        },
        Ty::Pattern(p) => match v.as_str() {
            Some(s) if pattern_matches(p, s) => Some(v.clone()),
            Some(_) => {
                errors.push(
                    Detail::invalid(target, format!("{target} has an invalid format"))
                        .with_inner(json!({ "allowedPattern": p })),
                );
                None
            }
            None => type_error(target, "a string", errors),
        },
        Ty::Enum(values) => match v.as_str() {
            Some(s) if values.contains(&s) => Some(v.clone()),
            _ => {
                errors.push(
                    Detail::invalid(
                        target,
                        format!("{target} must be one of the allowed values"),
                    )
                    .with_inner(json!({ "allowedValues": values })),
                );
                None
            }
        },
        Ty::Bool => match v {
            Value::Bool(_) => Some(v.clone()),
            // PingOne (Jackson) coerces the strings "true"/"false" to booleans, and its own
            // guides send them (`"default": "false"` on a sign-on policy); they are stored as
            // booleans. Any other string is still a type error.
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(Value::Bool(false)),
            _ => type_error(target, "a boolean", errors),
        },
        Ty::Int { min, max } => match v.as_i64() {
            Some(i) if i >= *min && i <= *max => Some(v.clone()),
            Some(_) => {
                errors.push(
                    Detail::new(
                        "OUT_OF_RANGE",
                        Some(target.into()),
                        format!("{target} must be between {min} and {max}"),
                    )
                    .with_inner(json!({ "rangeMinimumValue": min, "rangeMaximumValue": max })),
                );
                None
            }
            None => type_error(target, "an integer", errors),
        },
        Ty::Obj(fields) => match v.as_object() {
            Some(o) => Some(Value::Object(check_object(
                fields,
                o,
                None,
                Mode::Create,
                target,
                errors,
            ))),
            None => type_error(target, "an object", errors),
        },
        Ty::Arr(item, max) => match v.as_array() {
            Some(items) => {
                if items.len() > *max {
                    errors.push(
                        Detail::new(
                            "SIZE_LIMIT_EXCEEDED",
                            Some(target.into()),
                            format!("{target} may have at most {max} items"),
                        )
                        .with_inner(json!({ "maximumValue": max })),
                    );
                }
                let out: Vec<Value> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, x)| check_value(item, x, &format!("{target}[{i}]"), errors))
                    .collect();
                Some(Value::Array(out))
            }
            None => type_error(target, "an array", errors),
        },
        Ty::Ref => match v.as_object().and_then(|o| o.get("id")) {
            Some(Value::String(id)) if uuid::Uuid::parse_str(id).is_ok() => {
                Some(json!({ "id": id.to_lowercase() }))
            }
            Some(_) => {
                errors.push(Detail::invalid(
                    &format!("{target}.id"),
                    format!("{target}.id must be a valid UUID"),
                ));
                None
            }
            None if v.is_object() => {
                errors.push(Detail::required(&format!("{target}.id")));
                None
            }
            None => type_error(target, "an object with an id", errors),
        },
        Ty::Uuid => match v.as_str() {
            Some(s) if uuid::Uuid::parse_str(s).is_ok() => Some(json!(s.to_lowercase())),
            _ => {
                errors.push(Detail::invalid(
                    target,
                    format!("{target} must be a valid UUID"),
                ));
                None
            }
        },
        Ty::Url => match v.as_str() {
            Some(s) if is_absolute_url(s) => Some(v.clone()),
            _ => {
                errors.push(Detail::invalid(
                    target,
                    format!("{target} must be an absolute URL"),
                ));
                None
            }
        },
        Ty::Email => match v.as_str() {
            Some(s) if is_email(s) => Some(v.clone()),
            _ => {
                errors.push(Detail::invalid(
                    target,
                    format!("{target} must be a valid email address"),
                ));
                None
            }
        },
        Ty::Any => Some(v.clone()),
    };
    if errors.len() > before { None } else { result }
}

fn type_error(target: &str, what: &str, errors: &mut Vec<Detail>) -> Option<Value> {
    errors.push(Detail::invalid(target, format!("{target} must be {what}")));
    None
}

static PATTERNS: LazyLock<Mutex<HashMap<&'static str, Regex>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

pub fn pattern_matches(pattern: &'static str, s: &str) -> bool {
    let mut cache = PATTERNS.lock().unwrap_or_else(|e| e.into_inner());
    let re = cache
        .entry(pattern)
        .or_insert_with(|| Regex::new(pattern).expect("schema patterns are valid"));
    re.is_match(s)
}

/// An absolute http(s) URL, or a custom scheme URI (`myapp://cb`) as native apps use.
pub fn is_absolute_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &[Field] = &[f("given", s(5)), f("family", s(256))];
    const FIELDS: &[Field] = &[
        f("name", s(10)).req(),
        f("kind", Ty::Enum(&["A", "B"])).def_str("A"),
        f("count", int(1, 3)),
        f("enabled", Ty::Bool).def_bool(false),
        f("person", Ty::Obj(NAME)),
        f("owner", Ty::Ref),
        f("createdBy", Ty::Any).ro(),
        f("tags", Ty::Arr(&Ty::Str { min: 1, max: 3 }, 2)),
    ];

    #[test]
    fn defaults_and_unknown_fields() {
        let out = validate(
            FIELDS,
            &json!({"name": "x", "junk": 1, "createdBy": "me"}),
            None,
            Mode::Create,
        )
        .unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"name": "x", "kind": "A", "enabled": false})
        );
    }

    #[test]
    fn collects_every_error_with_targets() {
        let err = validate(
            FIELDS,
            &json!({"kind": "C", "count": 9, "enabled": "yes", "person": {"given": "toolong"}, "owner": {"id": "nope"}, "tags": ["a", "b", "cccc"]}),
            None,
            Mode::Create,
        )
        .unwrap_err();
        let got: Vec<(String, String)> = err
            .iter()
            .map(|d| (d.code.clone(), d.target.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("REQUIRED_VALUE".into(), "name".into()),
                ("INVALID_VALUE".into(), "kind".into()),
                ("OUT_OF_RANGE".into(), "count".into()),
                ("INVALID_VALUE".into(), "enabled".into()),
                ("SIZE_LIMIT_EXCEEDED".into(), "person.given".into()),
                ("INVALID_VALUE".into(), "owner.id".into()),
                ("SIZE_LIMIT_EXCEEDED".into(), "tags".into()),
                ("SIZE_LIMIT_EXCEEDED".into(), "tags[2]".into()),
            ]
        );
        assert_eq!(
            err[1].inner_error,
            Some(json!({"allowedValues": ["A", "B"]}))
        );
    }

    #[test]
    fn boolean_strings_are_coerced() {
        let out = validate(
            FIELDS,
            &json!({"name": "x", "enabled": "TRUE"}),
            None,
            Mode::Create,
        )
        .unwrap();
        assert_eq!(out["enabled"], json!(true));
        let out = validate(
            FIELDS,
            &json!({"name": "x", "enabled": "false"}),
            None,
            Mode::Create,
        )
        .unwrap();
        assert_eq!(out["enabled"], json!(false));
        assert!(
            validate(
                FIELDS,
                &json!({"name": "x", "enabled": "yes"}),
                None,
                Mode::Create
            )
            .is_err()
        );
        assert!(
            validate(
                FIELDS,
                &json!({"name": "x", "enabled": 1}),
                None,
                Mode::Create
            )
            .is_err()
        );
    }

    #[test]
    fn read_only_fields_survive_updates() {
        let existing = json!({"name": "x", "createdBy": "admin"});
        let out = validate(
            FIELDS,
            &json!({"name": "y", "createdBy": "mallory"}),
            Some(&existing),
            Mode::Replace,
        )
        .unwrap();
        assert_eq!(out["createdBy"], json!("admin"));
        assert_eq!(out["name"], json!("y"));
    }

    #[test]
    fn urls_and_emails() {
        assert!(is_absolute_url("https://example.com/cb"));
        assert!(is_absolute_url("com.example.app://callback"));
        assert!(!is_absolute_url("/relative"));
        assert!(!is_absolute_url("https://exa mple.com"));
        assert!(is_email("a.b@example.com"));
        assert!(!is_email("a@b"));
        assert!(!is_email("@example.com"));
    }
}
