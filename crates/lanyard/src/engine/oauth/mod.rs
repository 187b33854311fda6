//! The OAuth 2.0 / OpenID Connect authorization server rules.

pub mod authorize;
pub mod bearer;
pub mod client_jwt;
pub mod code_flow;
pub mod grants;
pub mod introspection;
pub mod issue;
pub mod login_hint;
pub mod redirect_uri;
pub mod remote_jwks;
pub mod request_object;
