//! `GET /v2/`: the API version check.

use http::StatusCode;

use crate::http_error::ApiResult;
use crate::reply::Reply;

/// `GET /v2/` answers `{}` once the caller is authenticated.
pub fn version_check() -> ApiResult {
    Ok(Reply::bytes(StatusCode::OK, "application/json", &b"{}"[..]))
}
