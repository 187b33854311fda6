//! The rules of the identity platform, independent of HTTP.

pub mod authz;
pub mod bootstrap;
pub mod common_passwords;
pub mod flows;
pub mod keys;
pub mod message_templates;
pub mod mfa;
pub mod notifications;
pub mod oauth;
pub mod otp;
pub mod outbound;
pub mod password_policy;
pub mod passwords;
pub mod phone;
pub mod secrets;
pub mod sessions;
pub mod tokens;
pub mod unknown_accounts;
pub mod user_password;
