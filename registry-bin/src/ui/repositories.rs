//! The first page: the repositories the caller may pull, with a filter.

use http::StatusCode;
use maud::html;
use registry_core::pagination::Page;
use registry_core::RepoName;

use super::{layout, Ctx};
use crate::access::may_pull;
use crate::http_error::ApiResult;

/// Repositories per page.
pub const PAGE_SIZE: usize = 100;

/// `GET <prefix>?q=<filter>&last=<name>`: repositories whose name contains
/// the filter, in name order, [`PAGE_SIZE`] at a time, each with its tag count.
pub async fn list(ctx: &Ctx<'_>) -> ApiResult {
    let store = &ctx.shared.store;
    let filter = ctx.param("q").unwrap_or("").trim();
    let visible: Vec<String> = store
        .list_repositories()
        .await?
        .into_iter()
        .filter(|r| r.contains(filter))
        .filter(|r| {
            r.parse::<RepoName>()
                .is_ok_and(|name| may_pull(ctx.shared.authorizer.as_ref(), ctx.identity, &name))
        })
        .collect();
    let page = Page {
        n: Some(PAGE_SIZE),
        last: ctx.param("last").map(str::to_owned),
    };
    if visible.is_empty() && filter.is_empty() {
        if let Some(reply) = ctx.sign_in() {
            return Ok(reply);
        }
    }
    let cut = page.apply(&visible);
    let mut rows = Vec::with_capacity(cut.items.len());
    for repo in cut.items {
        let tags = match repo.parse::<RepoName>() {
            Ok(name) => store.list_tags(&name).await?.map_or(0, |t| t.len()),
            Err(_) => 0,
        };
        rows.push((repo, tags));
    }
    let next = cut.next_last.map(|last| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("q", filter)
            .append_pair("last", last)
            .finish()
    });
    let main = html! {
        form class="filter" method="get" action="./" role="search" {
            div {
                label for="q" { "Filter repositories" }
                input id="q" name="q" type="search" value=(filter) placeholder="name contains…";
            }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p { @if filter.is_empty() { "No repositories you may pull." } @else { "No repository matches." } }
        } @else {
            div class="table" {
                table {
                    caption class="muted" { (visible.len()) " repositories" }
                    thead { tr { th scope="col" { "Repository" } th scope="col" { "Tags" } } }
                    tbody {
                        @for (repo, tags) in &rows {
                            tr { td { a href={ "r/" (repo) } { (repo) } } td { (tags) } }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            nav class="pager" aria-label="Pages" { a href={ "./?" (next) } rel="next" { "Next page" } }
        }
    };
    Ok(layout::page(
        &ctx.shell,
        StatusCode::OK,
        "Repositories",
        main,
    ))
}
