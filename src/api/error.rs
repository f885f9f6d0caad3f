//! The API's one error shape: `{"status":"error","info":"<what and where>"}` with the HTTP status that says who
//! must act (SPEC §8): 400 the request cannot be read, 401 no valid key, 403 the key lacks the right, 404 no such
//! campaign/member/route, 409 the member is in a call (or the id is taken), 413 the body is too large, 422 the body
//! reads fine but its values are not acceptable, 503 the store is unreachable.
//!
//! Handlers return `Result<_, ApiError>`; store and validation errors convert with the right status, so no handler
//! builds error bodies by hand. Some errors carry details (the per-row errors of a refused import) in an extra
//! `errors` field beside `info`.

use crate::campaign::config::ConfigError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub info: String,
    /// Extra machine-readable detail, sent as `errors`.
    pub errors: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, info: impl Into<String>) -> ApiError {
        ApiError {
            status,
            info: info.into(),
            errors: None,
        }
    }
    pub fn bad_request(info: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, info)
    }
    pub fn unprocessable(info: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, info)
    }
    pub fn not_found(info: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, info)
    }
    pub fn conflict(info: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, info)
    }
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: larger than the limit of {limit} bytes"),
        )
    }
    pub fn unauthorized(info: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, info)
    }
    pub fn forbidden(info: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, info)
    }
    pub fn internal(info: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, info)
    }
    pub fn with_errors(mut self, errors: Value) -> ApiError {
        self.errors = Some(errors);
        self
    }
    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut v = json!({"status": "error", "info": self.info});
        if let Some(e) = &self.errors {
            v["errors"] = e.clone();
        }
        v
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.info)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), info = %self.info, "api error");
        }
        (self.status, axum::Json(self.body())).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match &e {
            StoreError::InvalidMember { .. }
            | StoreError::InvalidArgument { .. }
            | StoreError::InvalidCampaign { .. }
            | StoreError::InvalidAgent(_) => ApiError::unprocessable(e.to_string()),
            StoreError::ExternalIdTaken { .. } | StoreError::TooManyAgents { .. } => {
                ApiError::conflict(e.to_string())
            }
            StoreError::AgentsContended { .. } | StoreError::InboxFull { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            StoreError::Redis { .. }
            | StoreError::TlsConnect { .. }
            | StoreError::NotReplicated { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}"))
            }
            StoreError::InvalidUrl { .. } | StoreError::Corrupt { .. } => {
                ApiError::internal(format!("store: {e}"))
            }
        }
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> ApiError {
        let info = e
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        match e {
            ConfigError::Syntax { .. } => ApiError::bad_request(info),
            ConfigError::Invalid(_) => ApiError::unprocessable(info),
        }
    }
}

impl From<crate::engine::shell::EngineStopped> for ApiError {
    fn from(_: crate::engine::shell::EngineStopped) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the engine is not running")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_have_status_error_and_info() {
        let e = ApiError::unprocessable("communications[1].number: empty");
        assert_eq!(
            e.body(),
            json!({"status": "error", "info": "communications[1].number: empty"})
        );
        let e = e.with_errors(json!([{"line": 3}]));
        assert_eq!(e.body()["errors"][0]["line"], 3);
    }

    #[test]
    fn store_errors_map_to_statuses_that_say_who_must_act() {
        let e: ApiError = StoreError::InvalidMember {
            index: 0,
            field: "name",
            reason: "must not be empty".into(),
        }
        .into();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let e: ApiError = StoreError::ExternalIdTaken {
            external_id: "x".into(),
            owner: 3,
        }
        .into();
        assert_eq!(e.status, StatusCode::CONFLICT);
    }
}
