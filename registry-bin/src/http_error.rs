//! The only place an error becomes an HTTP response.
//!
//! Handlers return [`ApiError`]: one or more spec errors (a manifest can miss
//! several blobs at once), a refusal that needs a `WWW-Authenticate`
//! challenge, or an internal failure whose text is logged and never sent.

use http::StatusCode;
use registry_auth::Challenge;
use registry_core::error::error_body;
use registry_core::{ErrorCode, RegistryError};
use registry_storage::StorageError;

use crate::reply::Reply;

/// Why a request failed.
#[derive(Debug)]
pub enum ApiError {
    /// Errors the client can act on, rendered as the spec's JSON.
    Spec(Vec<RegistryError>),
    /// 401 with a challenge.
    Unauthorized(Challenge),
    /// A failure on our side; the text goes to the log only.
    Internal(String),
    /// Headers that must accompany a spec error (416 carries `Range` and `Location`).
    WithHeaders(RegistryError, Vec<(&'static str, String)>),
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError::Spec(vec![e])
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        ApiError::Spec(vec![RegistryError::new(code)])
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        if is_storage_full(&e) {
            // Say what the operator must fix; the client may retry later.
            tracing::error!(error = %e, "storage is full");
            return RegistryError::new(ErrorCode::Unknown)
                .with_status(507)
                .with_message(
                    "storage is full: the registry cannot store more data until space is freed",
                )
                .into();
        }
        if let StorageError::Unavailable { .. } = &e {
            // The object store is down or refusing: the client may retry; the message
            // says what the store answered, never a credential.
            tracing::error!(error = %e, "storage unavailable");
            return RegistryError::new(ErrorCode::Unknown)
                .with_status(503)
                .with_message(format!("storage unavailable: {e}"))
                .into();
        }
        ApiError::Internal(format!("storage: {e}"))
    }
}

/// Whether a storage failure is a full disk (or quota).
pub fn is_storage_full(e: &StorageError) -> bool {
    match e {
        StorageError::Io { source, .. } => {
            matches!(
                source.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        }
        _ => false,
    }
}

/// Handler result.
pub type ApiResult = Result<Reply, ApiError>;

fn json_error(errors: &[RegistryError]) -> Reply {
    let status = errors
        .first()
        .and_then(|e| StatusCode::from_u16(e.status).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    Reply::bytes(status, "application/json", error_body(errors))
}

impl ApiError {
    /// Renders the error; internal details are logged here and not sent.
    pub fn into_reply(self) -> Reply {
        match self {
            ApiError::Spec(errors) => json_error(&errors),
            ApiError::WithHeaders(error, headers) => headers
                .iter()
                .fold(json_error(&[error]), |reply, (name, value)| {
                    reply.header(name, value)
                }),
            ApiError::Unauthorized(challenge) => {
                json_error(&[RegistryError::new(ErrorCode::Unauthorized)])
                    .header("www-authenticate", &challenge.header_value())
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                json_error(&[RegistryError::new(ErrorCode::Unknown)])
            }
        }
    }
}
