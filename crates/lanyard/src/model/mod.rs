//! Wire-level models: declarative schemas and SCIM filters.

pub mod filter;
pub mod schema;
