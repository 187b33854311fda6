//! Compiles a SCIM filter AST to a parameterised SQL condition over the attributes a resource
//! declares filterable. Anything else is refused with `INVALID_FILTER`.

use serde_json::json;

use super::{Condition, Dialect, Param};
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::filter::{Filter, Literal, Op};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    Str,
    Bool,
    Num,
    /// An RFC 3339 timestamp string; compared as text, which orders correctly in UTC.
    Date,
}

#[derive(Debug, Clone, Copy)]
pub enum Source {
    Column(&'static str),
    Json(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct FilterAttr {
    pub name: &'static str,
    pub source: Source,
    pub ty: AttrType,
    pub ops: &'static [Op],
}

pub const STR_OPS: &[Op] = &[
    Op::Eq,
    Op::Ne,
    Op::Co,
    Op::Sw,
    Op::Ew,
    Op::Gt,
    Op::Ge,
    Op::Lt,
    Op::Le,
];
pub const EQ_OPS: &[Op] = &[Op::Eq, Op::Ne];
pub const ORD_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Gt, Op::Ge, Op::Lt, Op::Le];

pub const fn attr(
    name: &'static str,
    path: &'static str,
    ty: AttrType,
    ops: &'static [Op],
) -> FilterAttr {
    FilterAttr {
        name,
        source: Source::Json(path),
        ty,
        ops,
    }
}
pub const fn column(
    name: &'static str,
    col: &'static str,
    ty: AttrType,
    ops: &'static [Op],
) -> FilterAttr {
    FilterAttr {
        name,
        source: Source::Column(col),
        ty,
        ops,
    }
}

fn unsupported(message: String, inner: serde_json::Value) -> ApiError {
    ApiError::one(Detail::new("INVALID_FILTER", Some("filter".into()), message).with_inner(inner))
}

pub fn compile(f: &Filter, attrs: &[FilterAttr], dialect: Dialect) -> ApiResult<Condition> {
    let mut c = Condition::default();
    c.sql = node(f, attrs, dialect, &mut c.params)?;
    Ok(c)
}

fn node(
    f: &Filter,
    attrs: &[FilterAttr],
    d: Dialect,
    params: &mut Vec<Param>,
) -> ApiResult<String> {
    Ok(match f {
        Filter::And(a, b) => format!(
            "({} AND {})",
            node(a, attrs, d, params)?,
            node(b, attrs, d, params)?
        ),
        Filter::Or(a, b) => format!(
            "({} OR {})",
            node(a, attrs, d, params)?,
            node(b, attrs, d, params)?
        ),
        Filter::Not(a) => format!("(NOT COALESCE({}, FALSE))", node(a, attrs, d, params)?),
        Filter::Present { attr } => {
            let a = find(attrs, attr)?;
            format!("({} IS NOT NULL)", expr(a, d))
        }
        Filter::ValuePath { attr, .. } => {
            return Err(unsupported(
                format!("Filtering on '{attr}[...]' is not supported."),
                json!({ "supportedAttributes": names(attrs) }),
            ));
        }
        Filter::Compare { attr, op, value } => {
            let a = find(attrs, attr)?;
            if !a.ops.contains(op) {
                return Err(unsupported(
                    format!(
                        "The operator '{}' is not supported for '{}'.",
                        op.name(),
                        a.name
                    ),
                    json!({ "supportedOperators": a.ops.iter().map(|o| o.name()).collect::<Vec<_>>() }),
                ));
            }
            compare(a, *op, value, d, params)?
        }
    })
}

fn names(attrs: &[FilterAttr]) -> Vec<&'static str> {
    attrs.iter().map(|a| a.name).collect()
}

fn find<'a>(attrs: &'a [FilterAttr], name: &str) -> ApiResult<&'a FilterAttr> {
    attrs
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            unsupported(
                format!("The attribute '{name}' is not supported in filters."),
                json!({ "supportedAttributes": names(attrs) }),
            )
        })
}

fn expr(a: &FilterAttr, d: Dialect) -> String {
    match a.source {
        Source::Column(c) => c.to_string(),
        Source::Json(p) => d.json_text(p),
    }
}

fn push(params: &mut Vec<Param>, p: Param) -> String {
    params.push(p);
    format!("${}", params.len())
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn compare(
    a: &FilterAttr,
    op: Op,
    value: &Literal,
    d: Dialect,
    params: &mut Vec<Param>,
) -> ApiResult<String> {
    let e = expr(a, d);
    let wrong_type = || {
        unsupported(
            format!("The value for '{}' has the wrong type.", a.name),
            json!({}),
        )
    };
    match (a.ty, value) {
        (_, Literal::Null) => match op {
            Op::Eq => Ok(format!("({e} IS NULL)")),
            Op::Ne => Ok(format!("({e} IS NOT NULL)")),
            _ => Err(wrong_type()),
        },
        (AttrType::Str | AttrType::Date, Literal::Str(s)) => {
            let (lhs, val) = if a.ty == AttrType::Str {
                (format!("LOWER({e})"), s.to_lowercase())
            } else {
                (e.clone(), s.clone())
            };
            Ok(match op {
                Op::Eq => format!("({lhs} = {})", push(params, Param::Str(val))),
                Op::Ne => format!(
                    "({e} IS NULL OR {lhs} <> {})",
                    push(params, Param::Str(val))
                ),
                Op::Co => format!(
                    "({lhs} LIKE {} ESCAPE '\\')",
                    push(params, Param::Str(format!("%{}%", like_escape(&val))))
                ),
                Op::Sw => format!(
                    "({lhs} LIKE {} ESCAPE '\\')",
                    push(params, Param::Str(format!("{}%", like_escape(&val))))
                ),
                Op::Ew => format!(
                    "({lhs} LIKE {} ESCAPE '\\')",
                    push(params, Param::Str(format!("%{}", like_escape(&val))))
                ),
                Op::Gt => format!("({lhs} > {})", push(params, Param::Str(val))),
                Op::Ge => format!("({lhs} >= {})", push(params, Param::Str(val))),
                Op::Lt => format!("({lhs} < {})", push(params, Param::Str(val))),
                Op::Le => format!("({lhs} <= {})", push(params, Param::Str(val))),
            })
        }
        (AttrType::Bool, Literal::Bool(b)) => {
            // SQLite's json_extract yields 1/0 for JSON booleans; PostgreSQL's #>> yields 'true'/'false'.
            let lit = match d {
                Dialect::Sqlite => if *b { "1" } else { "0" }.to_string(),
                Dialect::Postgres => format!("'{b}'"),
            };
            Ok(match op {
                Op::Eq => format!("({e} = {lit})"),
                _ => format!("({e} IS NULL OR {e} <> {lit})"),
            })
        }
        (AttrType::Num, Literal::Num(n)) => {
            let lhs = match d {
                Dialect::Sqlite => e.clone(),
                Dialect::Postgres => format!("CAST({e} AS DOUBLE PRECISION)"),
            };
            let p = push(params, Param::Num(*n));
            let sym = match op {
                Op::Eq => "=",
                Op::Ne => "<>",
                Op::Gt => ">",
                Op::Ge => ">=",
                Op::Lt => "<",
                Op::Le => "<=",
                _ => return Err(wrong_type()),
            };
            Ok(format!("({lhs} {sym} {p})"))
        }
        _ => Err(wrong_type()),
    }
}
