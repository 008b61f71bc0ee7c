//! A repository's page: its tags, a page at a time, each with digest, push
//! time, size, platforms, referrers and pull lines.
//!
//! The tag names come from one listing (`Store::list_tags`); only the
//! page's tags are resolved, timed (`Store::tag_modified`) and have their
//! manifests read, so a page of a repository with 10,000 tags costs what a
//! page of a small one does, plus the listing.

use std::time::SystemTime;

use http::StatusCode;
use maud::{html, Markup};
use registry_auth::Action;
use registry_core::manifest::ManifestKind;
use registry_core::pagination::Page;
use registry_core::{RepoName, Tag};

use super::inspect::{self, InspectError, Referrer, Summary};
use super::{layout, Ctx};
use crate::http_error::{ApiError, ApiResult};

/// Tags per page by default; `?n=` may ask for up to [`MAX_PAGE`].
pub const PAGE_SIZE: usize = 50;
/// The most tags one page shows (each costs a few reads).
pub const MAX_PAGE: usize = 200;

/// One tag as the table shows it.
struct Row {
    tag: String,
    pushed: Option<SystemTime>,
    summary: Result<Summary, String>,
    referrers: Vec<Referrer>,
}

/// `GET <prefix>r/<name>?last=<tag>&n=`.
pub async fn page(ctx: &Ctx<'_>, name: &RepoName) -> ApiResult {
    if !ctx.may(name, Action::Pull) {
        return Ok(ctx.no_repository());
    }
    let store = &ctx.shared.store;
    let Some(tags) = store.list_tags(name).await? else {
        return Ok(ctx.no_repository());
    };
    let n = ctx
        .param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(PAGE_SIZE)
        .clamp(1, MAX_PAGE);
    let page = Page {
        n: Some(n),
        last: ctx.param("last").map(str::to_owned),
    };
    let cut = page.apply(&tags);
    let mut rows = Vec::with_capacity(cut.items.len());
    for tag in cut.items {
        rows.push(row(ctx, name, tag).await?);
    }
    let may_delete = ctx.may_delete(name);
    let repo = name.as_str();
    let main = html! {
        @if let Some(deleted) = ctx.param("deleted") {
            p class="notice" role="status" { "Deleted " code { (deleted) } "." }
        }
        p { (tags.len()) @if tags.len() == 1 { " tag" } @else { " tags" } @if tags.len() > rows.len() { ", showing " (rows.len()) } "." }
        @if rows.is_empty() {
            p { "No tags on this page." }
        } @else {
            div class="table" {
                table id="tags" class="cards" {
                    thead {
                        tr {
                            th scope="col" { "Tag" }
                            th scope="col" { "Digest" }
                            th scope="col" { "Pushed" }
                            th scope="col" { "Size" }
                            th scope="col" { "Platforms" }
                            th scope="col" { "Referrers" }
                            th scope="col" { "Pull" }
                            @if may_delete { th scope="col" { "Delete" } }
                        }
                    }
                    tbody {
                        @for row in &rows {
                            (tag_row(ctx, repo, row, may_delete))
                        }
                    }
                }
            }
        }
        nav class="pager" aria-label="Pages" {
            @if page.last.is_some() { a href={ "r/" (repo) "?n=" (n) } { "First page" } }
            @if let Some(next) = cut.next_last {
                a href={ "r/" (repo) "?n=" (n) "&last=" (next) } rel="next" { "Next page" }
            }
        }
    };
    Ok(layout::page(&ctx.shell, StatusCode::OK, repo, main))
}

async fn row(ctx: &Ctx<'_>, name: &RepoName, tag: &str) -> Result<Row, ApiError> {
    let store = &ctx.shared.store;
    let gone = |why: &str| Row {
        tag: tag.to_owned(),
        pushed: None,
        summary: Err(why.to_owned()),
        referrers: Vec::new(),
    };
    let Ok(parsed) = tag.parse::<Tag>() else {
        return Ok(gone("not a valid tag"));
    };
    let (Some(digest), pushed) = (
        store.resolve_tag(name, &parsed).await?,
        store.tag_modified(name, &parsed).await?,
    ) else {
        return Ok(gone("deleted meanwhile"));
    };
    let (summary, referrers) = match inspect::summarize(store, name, &digest).await {
        Ok(summary) => (Ok(summary), inspect::referrers(store, name, &digest).await?),
        Err(InspectError::Api(e)) => return Err(e),
        Err(e) => (Err(e.to_string()), Vec::new()),
    };
    Ok(Row {
        tag: tag.to_owned(),
        pushed,
        summary,
        referrers,
    })
}

fn tag_row(ctx: &Ctx<'_>, repo: &str, row: &Row, may_delete: bool) -> Markup {
    html! {
        tr data-tag=(row.tag) {
            th scope="row" { (row.tag) }
            @match &row.summary {
                Err(why) => { td colspan="5" class="muted" { (why) } }
                Ok(summary) => {
                    td data-label="Digest" { a href=(layout::manifest_href(repo, &summary.digest)) { (layout::short_digest(&summary.digest)) } }
                    td data-label="Pushed" { @if let Some(at) = row.pushed { (layout::timestamp(at)) } }
                    td data-label="Size" { (layout::size(summary.size)) }
                    td data-label="Platforms" { (platforms(repo, summary)) }
                    td data-label="Referrers" { (referrer_counts(&row.referrers)) }
                }
            }
            td data-label="Pull" { (layout::pull_lines(&ctx.host, repo, &row.tag)) }
            @if may_delete {
                td { a class="button danger" href={ "r/" (repo) "/-/delete?reference=" (row.tag) } { "Delete " span class="muted" { (row.tag) } } }
            }
        }
    }
}

/// An image's platform, or each platform of an index linked to its manifest.
pub fn platforms(repo: &str, summary: &Summary) -> Markup {
    html! {
        ul class="plain platforms" {
            @for p in &summary.platforms {
                li {
                    @match &p.digest {
                        Some(d) => { a href=(layout::manifest_href(repo, d)) data-platform=(p.name) { (p.name) } }
                        None => { span data-platform=(p.name) { (p.name) } }
                    }
                }
            }
            @if summary.platforms.is_empty() && summary.manifest.kind == ManifestKind::Image {
                li class="muted" { @if let Some(t) = summary.manifest.effective_artifact_type() { (t) } @else { "unknown" } }
            }
        }
    }
}

/// Referrers counted by artifact type.
pub fn referrer_counts(referrers: &[Referrer]) -> Markup {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for r in referrers {
        match counts.last_mut() {
            Some((t, n)) if *t == r.artifact_type => *n += 1,
            _ => counts.push((&r.artifact_type, 1)),
        }
    }
    html! {
        @if counts.is_empty() { span class="muted" { "none" } }
        ul class="plain referrers" {
            @for (t, n) in counts { li { (n) " × " code { (t) } } }
        }
    }
}
