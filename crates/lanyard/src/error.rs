//! The one error type of the management and authentication APIs, rendered once as
//! PingOne's error body (`id`, `code`, `message`, `details[]`) or as an RFC 6749 OAuth error.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub message: String,
    #[serde(rename = "innerError", skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<Value>,
}

impl Detail {
    pub fn new(code: &str, target: impl Into<Option<String>>, message: impl Into<String>) -> Self {
        Detail {
            code: code.into(),
            target: target.into(),
            message: message.into(),
            inner_error: None,
        }
    }
    pub fn with_inner(mut self, inner: Value) -> Self {
        self.inner_error = Some(inner);
        self
    }
    pub fn required(target: &str) -> Self {
        Detail::new(
            "REQUIRED_VALUE",
            Some(target.to_string()),
            format!("{target} is required"),
        )
    }
    pub fn invalid(target: &str, message: impl Into<String>) -> Self {
        Detail::new("INVALID_VALUE", Some(target.to_string()), message)
    }
}

/// PingOne API errors. Each variant fixes the HTTP status and top-level `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid data")]
    InvalidData(Vec<Detail>),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("request failed: {0}")]
    RequestFailed(String, Vec<Detail>),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unexpected: {0}")]
    Internal(#[from] anyhow::Error),
    /// An OAuth 2.0 error (RFC 6749 §5.2) for the authorization server endpoints.
    #[error("oauth {0:?}")]
    OAuth(OAuthError),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn invalid(details: Vec<Detail>) -> Self {
        ApiError::InvalidData(details)
    }
    pub fn one(detail: Detail) -> Self {
        ApiError::InvalidData(vec![detail])
    }
    pub fn not_found() -> Self {
        ApiError::NotFound("The requested resource was not found.".into())
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(anyhow::anyhow!("{e}"))
    }

    fn parts(&self) -> (StatusCode, &'static str, String, Vec<Detail>) {
        match self {
            ApiError::InvalidData(d) => (
                StatusCode::BAD_REQUEST,
                "INVALID_DATA",
                "The request could not be completed. One or more validation errors were in the request.".into(),
                d.clone(),
            ),
            ApiError::InvalidRequest(m) => (StatusCode::BAD_REQUEST, "INVALID_REQUEST", m.clone(), vec![]),
            ApiError::RequestFailed(m, d) => (StatusCode::BAD_REQUEST, "REQUEST_FAILED", m.clone(), d.clone()),
            ApiError::Unauthorized(m) => (
                StatusCode::UNAUTHORIZED,
                "ACCESS_FAILED",
                "The request could not be completed. You do not have access to this resource.".into(),
                vec![Detail::new("INVALID_TOKEN", None, m.clone())],
            ),
            ApiError::Forbidden(m) => (
                StatusCode::FORBIDDEN,
                "ACCESS_FAILED",
                "The request could not be completed. You do not have access to this resource.".into(),
                vec![Detail::new("INSUFFICIENT_PERMISSIONS", None, m.clone())],
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "NOT_FOUND", m.clone(), vec![]),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "The request could not be completed. The HTTP method is not supported for this resource.".into(),
                vec![],
            ),
            ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "INVALID_REQUEST", m.clone(), vec![]),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "INVALID_REQUEST",
                "The request could not be completed. The request body is too large.".into(),
                vec![],
            ),
            ApiError::Internal(_) | ApiError::OAuth(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNEXPECTED_ERROR",
                "An unexpected error occurred.".into(),
                vec![],
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::OAuth(e) = self {
            return e.into_response();
        }
        let (status, code, message, details) = self.parts();
        let id = uuid::Uuid::new_v4().to_string();
        if let ApiError::Internal(e) = &self {
            tracing::error!(error_id = %id, error = %e, "unexpected error");
        }
        let mut body = json!({ "id": id, "code": code, "message": message });
        if !details.is_empty() {
            body["details"] = serde_json::to_value(details).unwrap_or(Value::Null);
        }
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(e))
    }
}

/// RFC 6749 error response.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = match error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        ApiError::OAuth(e)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"lanyard\""),
            );
        }
        resp
    }
}
