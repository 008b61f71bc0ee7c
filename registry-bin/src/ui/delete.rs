//! Deleting a tag or a manifest: a confirmation page (GET), then the
//! deletion (POST), which runs the API's own handler after the API's own
//! authorization check.
//!
//! A POST is refused (403) when the caller lacks delete rights (whatever
//! the page showed them), when `Origin` or `Sec-Fetch-Site` say another site
//! sent it, or when its CSRF token is not the one made for this user and
//! repository (`csrf.rs`).

use http::{HeaderMap, StatusCode};
use maud::html;
use registry_core::{Reference, RepoName, Route};

use super::{layout, Ctx};
use crate::access;
use crate::body::{read_limited, RequestBody};
use crate::handlers::manifests;
use crate::http_error::{ApiError, ApiResult};
use crate::reply::Reply;

/// A delete form is two short fields.
const MAX_FORM_BYTES: usize = 4096;

/// Why a delete is refused before it runs; each is a 403 with its own text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Refused {
    #[error("You may not delete in this repository.")]
    NoRights,
    #[error("Deleting is turned off on this registry.")]
    Disabled,
    #[error("The registry is read-only for maintenance: pulls work, deletes are refused.")]
    ReadOnly,
    #[error("This form came from another site, or has expired; reload the page and try again.")]
    Forged,
}

fn check_rights(ctx: &Ctx<'_>, name: &RepoName, reference: &Reference) -> Result<(), Refused> {
    let route = Route::ManifestDelete {
        name: name.clone(),
        reference: reference.clone(),
    };
    access::authorize(
        ctx.shared.authenticator.as_ref(),
        ctx.shared.authorizer.as_ref(),
        ctx.identity,
        &route,
    )
    .map_err(|_| Refused::NoRights)?;
    if !ctx.shared.delete_enabled {
        return Err(Refused::Disabled);
    }
    if ctx.shared.read_only {
        return Err(Refused::ReadOnly);
    }
    Ok(())
}

/// 403 with the reason; an anonymous caller without rights is asked to sign in.
fn refuse(ctx: &Ctx<'_>, why: Refused) -> Reply {
    let sign_in = match why {
        Refused::NoRights => ctx.sign_in(),
        _ => None,
    };
    sign_in.unwrap_or_else(|| ctx.message(StatusCode::FORBIDDEN, &why.to_string()))
}

/// `GET <prefix>r/<name>/-/delete?reference=<tag|digest>`: asks to confirm.
pub async fn confirm(ctx: &Ctx<'_>, name: &RepoName) -> ApiResult {
    let Some(reference) = ctx
        .param("reference")
        .and_then(|r| r.parse::<Reference>().ok())
    else {
        return Ok(ctx.message(
            StatusCode::BAD_REQUEST,
            "Say which tag or digest to delete.",
        ));
    };
    if let Err(why) = check_rights(ctx, name, &reference) {
        return Ok(refuse(ctx, why));
    }
    let repo = name.as_str();
    let user = ctx.identity.username().unwrap_or("");
    let what = match &reference {
        Reference::Tag(_) => "the tag",
        Reference::Digest(_) => "the manifest (and every tag pointing at it)",
    };
    let main = html! {
        p { "Delete " (what) " " code { (reference) } " from " strong { (repo) } "? This cannot be undone." }
        form method="post" action={ "r/" (repo) "/-/delete" } {
            input type="hidden" name="reference" value=(reference);
            input type="hidden" name="csrf" value=(ctx.ui.csrf.token(user, repo));
            button type="submit" class="danger" { "Delete " (reference) }
            " "
            a class="button" href={ "r/" (repo) } { "Cancel" }
        }
    };
    Ok(layout::page(
        &ctx.shell,
        StatusCode::OK,
        "Confirm delete",
        main,
    ))
}

/// `POST <prefix>r/<name>/-/delete` with `reference` and `csrf`: deletes,
/// then sends the browser back to the repository (303).
pub async fn perform(
    ctx: &Ctx<'_>,
    headers: &HeaderMap,
    body: &mut RequestBody,
    name: &RepoName,
) -> ApiResult {
    let form = read_limited(body, MAX_FORM_BYTES, ctx.shared.body_timeout)
        .await
        .map_err(|e| ApiError::Internal(format!("reading a delete form: {e}")))?;
    let Some(form) = form else {
        return Ok(ctx.message(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."));
    };
    let fields: Vec<(String, String)> = form_urlencoded::parse(&form).into_owned().collect();
    let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let Some(reference) = field("reference").and_then(|r| r.parse::<Reference>().ok()) else {
        return Ok(ctx.message(
            StatusCode::BAD_REQUEST,
            "Say which tag or digest to delete.",
        ));
    };
    if let Err(why) = check_rights(ctx, name, &reference) {
        return Ok(refuse(ctx, why));
    }
    let user = ctx.identity.username().unwrap_or("");
    let token_ok = field("csrf").is_some_and(|t| ctx.ui.csrf.verify(t, user, name.as_str()));
    if !token_ok || cross_site(headers) {
        return Ok(refuse(ctx, Refused::Forged));
    }
    match manifests::delete(ctx.shared, name, &reference).await {
        Ok(_) => {
            tracing::info!(repository = %name, %reference, user = %user, "deleted from the web page");
            let back = format!("{}r/{name}?deleted={reference}", ctx.shell.root);
            Ok(layout::secured(
                Reply::empty(StatusCode::SEE_OTHER).header("location", &back),
            ))
        }
        Err(ApiError::Spec(_)) => Ok(ctx.message(
            StatusCode::NOT_FOUND,
            "Nothing to delete: it is already gone.",
        )),
        Err(e) => Err(e),
    }
}

/// Whether the browser says another site sent the request. Browsers send
/// `Sec-Fetch-Site` on every request and `Origin` on every POST; tools such
/// as curl send neither, and are then judged by the token alone.
fn cross_site(headers: &HeaderMap) -> bool {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return true;
        }
    }
    // Behind a proxy the public host is the forwarded one.
    let host = header("x-forwarded-host")
        .and_then(|h| h.split(',').next())
        .map(str::trim)
        .or_else(|| header("host"));
    match (header("origin"), host) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin.split("://").nth(1) != Some(host),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        assert!(!cross_site(&headers(&[])));
        assert!(!cross_site(&headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://r.example"),
            ("host", "r.example")
        ])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(cross_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "r.example")
        ])));
        assert!(cross_site(&headers(&[("origin", "null")])));
    }
}
