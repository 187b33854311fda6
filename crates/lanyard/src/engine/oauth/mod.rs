//! The OAuth 2.0 / OpenID Connect authorization server rules.

pub mod authorize;
