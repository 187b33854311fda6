//! `/environments/{envId}/outbox` (a Lanyard extension, a development aid): every message
//! delivered to users, newest first, so tests and developers can read codes without a phone.
//! Served and written only when the server's `outbox` setting is on (`--dev`), and readable
//! only by the environment's full administrators (`Area::Deliveries`): its codes open accounts.

use super::{Methods, Resource, Spec};
use crate::engine::authz::Area;
use crate::model::schema::{Field, Ty, f};
use crate::store::sql_filter::{AttrType, EQ_OPS, ORD_OPS, STR_OPS, attr, column};

pub const KIND: &str = "outboxMessage";

const FIELDS: &[Field] = &[
    f("deliveryMethod", Ty::Any).ro(),
    f("to", Ty::Any).ro(),
    f("subject", Ty::Any).ro(),
    f("body", Ty::Any).ro(),
    f("status", Ty::Any).ro(),
    f("error", Ty::Any).ro(),
    f("user", Ty::Any).ro(),
];

pub static SPEC: Spec = Spec {
    kind: KIND,
    collection: "outbox",
    parent: None,
    fields: FIELDS,
    filters: &[
        column("id", "id", AttrType::Str, EQ_OPS),
        attr("to", "to", AttrType::Str, STR_OPS),
        attr("deliveryMethod", "deliveryMethod", AttrType::Str, EQ_OPS),
        attr("user.id", "user.id", AttrType::Str, EQ_OPS),
        attr("status", "status", AttrType::Str, EQ_OPS),
        column("createdAt", "created_at", AttrType::Date, ORD_OPS),
    ],
    unique: &[],
    area: Area::Deliveries,
    methods: Methods {
        list: true,
        create: false,
        read: true,
        replace: false,
        patch: false,
        delete: true,
    },
};

pub struct Outbox;
pub static OUTBOX: Outbox = Outbox;

impl Resource for Outbox {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn embedded_key(&self) -> &'static str {
        "messages"
    }
    fn newest_first(&self) -> bool {
        true
    }
}
