//! The spec's error codes as one table, and the JSON error body.
//!
//! Every error the registry reports to a client is one [`ErrorCode`] plus an
//! optional detail. The HTTP status lives in the same table so that the server
//! renders errors in exactly one place and never invents a status of its own.

use serde::Serialize;

/// One error code of the OCI Distribution Spec (section "Error Codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// code-1: blob unknown to registry.
    BlobUnknown,
    /// code-2: blob upload invalid.
    BlobUploadInvalid,
    /// code-3: blob upload unknown to registry.
    BlobUploadUnknown,
    /// code-4: provided digest did not match uploaded content.
    DigestInvalid,
    /// code-5: manifest references a manifest or blob unknown to registry.
    ManifestBlobUnknown,
    /// code-6: manifest invalid.
    ManifestInvalid,
    /// code-7: manifest unknown to registry.
    ManifestUnknown,
    /// code-8: invalid repository name.
    NameInvalid,
    /// code-9: repository name not known to registry.
    NameUnknown,
    /// code-10: provided length did not match content length.
    SizeInvalid,
    /// code-11: authentication required.
    Unauthorized,
    /// code-12: requested access to the resource is denied.
    Denied,
    /// code-13: the operation is unsupported.
    Unsupported,
    /// code-14: too many requests.
    TooManyRequests,
    /// Not in the spec's table: a failure on the registry's side (storage
    /// unavailable, disk full). Sent as `UNKNOWN`, the code clients are told
    /// to expect for anything they do not recognise; never for bad input.
    Unknown,
}

/// `(code, wire name, default message, HTTP status)`: the whole table.
const TABLE: [(ErrorCode, &str, &str, u16); 15] = [
    (
        ErrorCode::BlobUnknown,
        "BLOB_UNKNOWN",
        "blob unknown to registry",
        404,
    ),
    (
        ErrorCode::BlobUploadInvalid,
        "BLOB_UPLOAD_INVALID",
        "blob upload invalid",
        400,
    ),
    (
        ErrorCode::BlobUploadUnknown,
        "BLOB_UPLOAD_UNKNOWN",
        "blob upload unknown to registry",
        404,
    ),
    (
        ErrorCode::DigestInvalid,
        "DIGEST_INVALID",
        "provided digest did not match uploaded content",
        400,
    ),
    (
        ErrorCode::ManifestBlobUnknown,
        "MANIFEST_BLOB_UNKNOWN",
        "manifest references a manifest or blob unknown to registry",
        400,
    ),
    (
        ErrorCode::ManifestInvalid,
        "MANIFEST_INVALID",
        "manifest invalid",
        400,
    ),
    (
        ErrorCode::ManifestUnknown,
        "MANIFEST_UNKNOWN",
        "manifest unknown to registry",
        404,
    ),
    (
        ErrorCode::NameInvalid,
        "NAME_INVALID",
        "invalid repository name",
        400,
    ),
    (
        ErrorCode::NameUnknown,
        "NAME_UNKNOWN",
        "repository name not known to registry",
        404,
    ),
    (
        ErrorCode::SizeInvalid,
        "SIZE_INVALID",
        "provided length did not match content length",
        400,
    ),
    (
        ErrorCode::Unauthorized,
        "UNAUTHORIZED",
        "authentication required",
        401,
    ),
    (
        ErrorCode::Denied,
        "DENIED",
        "requested access to the resource is denied",
        403,
    ),
    (
        ErrorCode::Unsupported,
        "UNSUPPORTED",
        "the operation is unsupported",
        405,
    ),
    (
        ErrorCode::TooManyRequests,
        "TOOMANYREQUESTS",
        "too many requests",
        429,
    ),
    (ErrorCode::Unknown, "UNKNOWN", "unknown error", 500),
];

impl ErrorCode {
    fn row(self) -> &'static (ErrorCode, &'static str, &'static str, u16) {
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[0])
    }

    /// The identifier sent in the `code` field, e.g. `BLOB_UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        self.row().1
    }

    /// The spec's short human-readable message.
    pub fn message(self) -> &'static str {
        self.row().2
    }

    /// The HTTP status this code is sent with unless a route says otherwise.
    pub fn status(self) -> u16 {
        self.row().3
    }

    /// Every code, in the spec's order.
    pub fn all() -> impl Iterator<Item = ErrorCode> {
        TABLE.iter().map(|row| row.0)
    }
}

/// An error as the client sees it: a code, a status and an optional detail.
///
/// The detail is data the client can act on (the missing digest, the
/// offending name); it never carries internal error text.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryError {
    /// Which spec error this is.
    pub code: ErrorCode,
    /// HTTP status; defaults to the table's, overridden for cases such as
    /// 416 on an out-of-order chunk or 413 on an oversize manifest.
    pub status: u16,
    /// Message shown to the client; defaults to the table's message.
    pub message: String,
    /// Optional structured detail.
    pub detail: Option<serde_json::Value>,
}

impl RegistryError {
    /// An error with the table's status and message.
    pub fn new(code: ErrorCode) -> Self {
        RegistryError {
            code,
            status: code.status(),
            message: code.message().to_owned(),
            detail: None,
        }
    }

    /// Replaces the message with a more specific one.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Attaches a structured detail.
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Overrides the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

impl From<ErrorCode> for RegistryError {
    fn from(code: ErrorCode) -> Self {
        RegistryError::new(code)
    }
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for RegistryError {}

#[derive(Serialize)]
struct WireError<'a> {
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a serde_json::Value>,
}

#[derive(Serialize)]
struct WireBody<'a> {
    errors: Vec<WireError<'a>>,
}

/// Renders `{"errors":[...]}` for one or more errors.
pub fn error_body(errors: &[RegistryError]) -> Vec<u8> {
    let body = WireBody {
        errors: errors
            .iter()
            .map(|e| WireError {
                code: e.code.as_str(),
                message: &e.message,
                detail: e.detail.as_ref(),
            })
            .collect(),
    };
    // Serializing plain strings and already-valid JSON values cannot fail.
    serde_json::to_vec(&body).unwrap_or_else(|_| br#"{"errors":[]}"#.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_every_code_once() {
        let names: Vec<_> = ErrorCode::all().map(ErrorCode::as_str).collect();
        assert_eq!(names.len(), 15);
        let mut dedup = names.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), 15);
    }

    #[test]
    fn statuses_follow_the_spec() {
        assert_eq!(ErrorCode::BlobUnknown.status(), 404);
        assert_eq!(ErrorCode::Unauthorized.status(), 401);
        assert_eq!(ErrorCode::Denied.status(), 403);
        assert_eq!(ErrorCode::TooManyRequests.status(), 429);
        assert_eq!(ErrorCode::DigestInvalid.status(), 400);
    }

    #[test]
    fn body_is_spec_json() {
        let err = RegistryError::new(ErrorCode::BlobUnknown)
            .with_detail(serde_json::json!({"digest": "sha256:00"}));
        let body: serde_json::Value = serde_json::from_slice(&error_body(&[err])).unwrap();
        assert_eq!(body["errors"][0]["code"], "BLOB_UNKNOWN");
        assert_eq!(body["errors"][0]["message"], "blob unknown to registry");
        assert_eq!(body["errors"][0]["detail"]["digest"], "sha256:00");
    }
}
