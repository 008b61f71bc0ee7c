//! Tag lists and the catalog, in lexical order with `n`, `last` and `Link`.

use http::StatusCode;
use registry_auth::Identity;
use registry_core::pagination::Page;
use registry_core::route::{next_page_url, tags_path, CATALOG_PATH};
use registry_core::{ErrorCode, RepoName};
use serde::Serialize;

use crate::access::lists;
use crate::http_error::{ApiError, ApiResult};
use crate::registry::Shared;
use crate::reply::Reply;

fn json_page<T: Serialize>(value: &T, link: Option<String>) -> ApiResult {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::Internal(format!("encoding a listing: {e}")))?;
    let reply = Reply::bytes(StatusCode::OK, "application/json", body);
    Ok(match link {
        Some(url) => reply.header("link", &format!("<{url}>; rel=\"next\"")),
        None => reply,
    })
}

/// `GET /v2/<name>/tags/list?n=&last=`
pub async fn tags(shared: &Shared, name: &RepoName, page: &Page) -> ApiResult {
    #[derive(Serialize)]
    struct Tags<'a> {
        name: &'a str,
        tags: &'a [String],
    }
    let all = shared
        .store
        .list_tags(name)
        .await?
        .ok_or(ErrorCode::NameUnknown)?;
    let cut = page.apply(&all);
    let link = cut
        .next_last
        .zip(page.n)
        .map(|(last, n)| next_page_url(&tags_path(name), n, last));
    json_page(
        &Tags {
            name: name.as_str(),
            tags: cut.items,
        },
        link,
    )
}

/// `GET /v2/_catalog?n=&last=`: only repositories the caller may pull
/// (everything for a token granted the catalog).
pub async fn catalog(shared: &Shared, identity: &Identity, page: &Page) -> ApiResult {
    #[derive(Serialize)]
    struct Catalog<'a> {
        repositories: &'a [String],
    }
    let visible: Vec<String> = shared
        .store
        .list_repositories()
        .await?
        .into_iter()
        .filter(|r| {
            r.parse::<RepoName>()
                .is_ok_and(|name| lists(shared.authorizer.as_ref(), identity, &name))
        })
        .collect();
    let cut = page.apply(&visible);
    let link = cut
        .next_last
        .zip(page.n)
        .map(|(last, n)| next_page_url(CATALOG_PATH, n, last));
    json_page(
        &Catalog {
            repositories: cut.items,
        },
        link,
    )
}
