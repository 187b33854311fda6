//! Lanyard: a self-hosted identity platform that speaks the PingOne platform API.
//!
//! Layers (see ARCHITECTURE.md): `http` (routers, extractors, rendering) → `resources` and
//! `engine` (the rules) → `model` (schemas, filters, the error type) → `store` (SQLite/PostgreSQL).

pub mod cache;
pub mod clock;
pub mod config;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod http;
pub mod model;
pub mod resources;
pub mod server;
pub mod state;
pub mod store;
