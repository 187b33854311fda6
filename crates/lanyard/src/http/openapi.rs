//! The OpenAPI 3.1 document of what Lanyard implements, generated from the resource layer's
//! own descriptions so it cannot drift from the code.

use serde_json::{Map, Value, json};

use crate::model::schema::{Access, Field, Ty};
use crate::resources::{self, environments};

fn ty_schema(ty: &Ty) -> Value {
    match ty {
        Ty::Str { min, max } => json!({ "type": "string", "minLength": min, "maxLength": max }),
        Ty::Pattern(p) => json!({ "type": "string", "pattern": p }),
        Ty::Enum(v) => json!({ "type": "string", "enum": v }),
        Ty::Bool => json!({ "type": "boolean" }),
        Ty::Int { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Ty::Obj(fields) => object_schema(fields),
        Ty::Arr(item, max) => json!({ "type": "array", "items": ty_schema(item), "maxItems": max }),
        Ty::Ref => {
            json!({ "type": "object", "properties": { "id": { "type": "string", "format": "uuid" } }, "required": ["id"] })
        }
        Ty::Uuid => json!({ "type": "string", "format": "uuid" }),
        Ty::Url => json!({ "type": "string", "format": "uri" }),
        Ty::Email => json!({ "type": "string", "format": "email" }),
        Ty::Any => json!({}),
    }
}

fn object_schema(fields: &[Field]) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in fields {
        let mut s = ty_schema(&f.ty);
        if f.access == Access::ReadOnly {
            s["readOnly"] = json!(true);
        }
        props.insert(f.name.into(), s);
        if f.required {
            required.push(f.name);
        }
    }
    props.insert(
        "id".into(),
        json!({ "type": "string", "format": "uuid", "readOnly": true }),
    );
    json!({ "type": "object", "properties": props, "required": required })
}

fn op(summary: String, ok: &str, body: Option<&str>) -> Value {
    let mut o = json!({
        "summary": summary,
        "security": [{ "bearer": [] }],
        "responses": {
            ok: { "description": "Success" },
            "400": { "$ref": "#/components/responses/Error" },
            "401": { "$ref": "#/components/responses/Error" },
            "403": { "$ref": "#/components/responses/Error" },
            "404": { "$ref": "#/components/responses/Error" },
        }
    });
    if let Some(schema) = body {
        o["requestBody"] = json!({ "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
    }
    o
}

pub fn document(public_url: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in resources::all() {
        let spec = r.spec();
        let name = spec.kind.to_string();
        schemas.insert(name.clone(), object_schema(spec.fields));
        let (coll, item) = if spec.kind == environments::KIND {
            (
                "/v1/environments".to_string(),
                "/v1/environments/{envId}".to_string(),
            )
        } else {
            let c = format!(
                "/v1/environments/{{envId}}{}",
                spec.collection_rest("{parentId}")
            );
            (c.clone(), format!("{c}/{{id}}"))
        };
        let m = spec.methods;
        let mut c = Map::new();
        if m.list {
            c.insert(
                "get".into(),
                op(format!("List {}", spec.collection), "200", None),
            );
        }
        if m.create {
            c.insert(
                "post".into(),
                op(format!("Create a {}", spec.kind), "201", Some(&name)),
            );
        }
        let mut i = Map::new();
        if m.read {
            i.insert(
                "get".into(),
                op(format!("Read a {}", spec.kind), "200", None),
            );
        }
        if m.replace {
            i.insert(
                "put".into(),
                op(format!("Replace a {}", spec.kind), "200", Some(&name)),
            );
        }
        if m.patch {
            i.insert(
                "patch".into(),
                op(format!("Update a {}", spec.kind), "200", Some(&name)),
            );
        }
        if m.delete {
            i.insert(
                "delete".into(),
                op(format!("Delete a {}", spec.kind), "204", None),
            );
        }
        if let Some(o) = paths
            .entry(coll)
            .or_insert_with(|| json!({}))
            .as_object_mut()
        {
            o.extend(c)
        }
        if let Some(o) = paths
            .entry(item)
            .or_insert_with(|| json!({}))
            .as_object_mut()
        {
            o.extend(i)
        }
    }
    for (path, method, summary, ok) in super::EXTRA_ROUTES {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op(summary.to_string(), ok, None);
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Lanyard: the PingOne platform API, self-hosted", "version": env!("CARGO_PKG_VERSION") },
        "servers": [{ "url": public_url }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": schemas,
            "responses": { "Error": { "description": "PingOne error body", "content": { "application/json": { "schema": {
                "type": "object", "required": ["id", "code", "message"],
                "properties": { "id": { "type": "string" }, "code": { "type": "string" }, "message": { "type": "string" }, "details": { "type": "array" } }
            } } } } }
        }
    })
}
