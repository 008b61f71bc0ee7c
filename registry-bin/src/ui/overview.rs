//! The overview: storage per repository as a bar chart, and the last
//! garbage-collection passes.
//!
//! # The hook for garbage collection
//! Exact usage (what a pull of every tag moves, what deleting the repository
//! would free) and pass history are garbage collection's to know. It plugs
//! in by implementing [`UsageReport`] (returning `registry_core::gc::Usage`,
//! what `registry_core::gc::usage` computes during a pass). The server's own
//! scheduled passes (`storage.gc.interval`, recorded in
//! [`GcMetrics`]) are the report by default; an embedder that runs passes
//! elsewhere hands its own to [`RegistryBuilder::ui`](crate::RegistryBuilder::ui)
//! in [`UiOptions::usage`](super::UiOptions). Until a pass has run the page computes
//! the `logical` half itself with the same function: for each repository,
//! the distinct blobs its tagged manifests (and their index children)
//! reference, at most [`MANIFEST_BUDGET`] manifests per request; `unique`
//! needs the layer links only a pass walks, so it is not shown.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use http::StatusCode;
use maud::{html, Markup};
use registry_core::gc::{self, RepoBlobs, Usage};
use registry_core::manifest::ManifestKind;
use registry_core::{Digest, RepoName, Tag};
use registry_storage::Store;

use super::inspect::{self, InspectError};
use super::{layout, Ctx};
use crate::access::may_pull;
use crate::http_error::{ApiError, ApiResult};
use crate::metrics::{GcMetrics, PassRecord};

/// Manifests one overview request reads when it computes sizes itself.
pub const MANIFEST_BUDGET: usize = 2_000;

/// Passes shown.
const PASSES_SHOWN: usize = 10;

/// Where per-repository usage and GC history come from, when something
/// records them (garbage collection). Implementations answer from what they
/// have stored; they must not walk the whole storage per call.
#[async_trait]
pub trait UsageReport: Send + Sync + std::fmt::Debug {
    /// Usage of every repository as of the last pass; `None` before the first.
    async fn usage(&self) -> Option<Usage>;
    /// The most recent passes, newest first.
    async fn gc_passes(&self) -> Vec<PassRecord>;
}

/// The server's own scheduled passes (`storage.gc.interval`), as recorded for
/// `/metrics`: what the overview shows when no other report is configured.
#[async_trait]
impl UsageReport for GcMetrics {
    async fn usage(&self) -> Option<Usage> {
        self.last().map(|report| report.usage)
    }

    async fn gc_passes(&self) -> Vec<PassRecord> {
        self.recent()
    }
}

/// One row of the chart.
#[derive(Debug)]
struct Row {
    repository: String,
    tags: usize,
    /// Manifests reached from the tags (computed rows only).
    manifests: Option<usize>,
    /// What a pull of every tag moves.
    logical: u64,
    /// What deleting the repository would free (reported rows only).
    unique: Option<u64>,
}

/// `GET <prefix>overview`.
pub async fn page(ctx: &Ctx<'_>) -> ApiResult {
    let store = &ctx.shared.store;
    let visible: Vec<String> = store
        .list_repositories()
        .await?
        .into_iter()
        .filter(|r| {
            r.parse::<RepoName>()
                .is_ok_and(|name| may_pull(ctx.shared.authorizer.as_ref(), ctx.identity, &name))
        })
        .collect();
    if visible.is_empty() {
        if let Some(reply) = ctx.sign_in() {
            return Ok(reply);
        }
    }
    let report: &dyn UsageReport = match &ctx.ui.usage {
        Some(report) => report.as_ref(),
        None => &ctx.shared.metrics.gc,
    };
    let reported = report.usage().await;
    let (mut rows, source) = match reported {
        Some(usage) => (reported_rows(store, &visible, usage).await?, Source::Report),
        None => {
            let (rows, complete) = compute(store, &visible).await?;
            (rows, Source::Computed { complete })
        }
    };
    rows.sort_by(|a, b| {
        b.logical
            .cmp(&a.logical)
            .then(a.repository.cmp(&b.repository))
    });
    let passes = report.gc_passes().await;
    let main = html! {
        h2 { "Storage per repository" }
        p class="muted" { (source.describe()) }
        @if rows.is_empty() { p { "No repositories you may pull." } } @else { (chart(&rows)) }
        h2 { "Garbage collection" }
        @if passes.is_empty() {
            p class="muted" { "No pass has run since the registry started (passes run every storage.gc.interval when it is set; registry gc runs one by hand)." }
        } @else {
            (pass_table(&passes))
        }
    };
    Ok(layout::page(&ctx.shell, StatusCode::OK, "Overview", main))
}

enum Source {
    Report,
    Computed { complete: bool },
}

impl Source {
    fn describe(&self) -> &'static str {
        match self {
            Source::Report => "From the last garbage-collection pass. Size: what a pull of every tag moves (blobs shared with other repositories included); unique: what deleting the repository would free.",
            Source::Computed { complete: true } => "Computed from the tagged manifests: what a pull of every tag moves, each blob counted once (blobs shared with other repositories included).",
            Source::Computed { complete: false } => "Computed from the tagged manifests, but not all of them were read (too many for one page): sizes are lower bounds.",
        }
    }
}

/// The report's rows for the repositories the caller may pull, with tag counts.
async fn reported_rows(
    store: &Store,
    visible: &[String],
    usage: Usage,
) -> Result<Vec<Row>, ApiError> {
    let mut rows = Vec::new();
    for u in usage.repositories {
        if visible.binary_search(&u.repository).is_err() {
            continue;
        }
        let tags = match u.repository.parse::<RepoName>() {
            Ok(name) => store.list_tags(&name).await?.map_or(0, |t| t.len()),
            Err(_) => 0,
        };
        rows.push(Row {
            repository: u.repository,
            tags,
            manifests: None,
            logical: u.logical,
            unique: Some(u.unique),
        });
    }
    Ok(rows)
}

fn chart(rows: &[Row]) -> Markup {
    let largest = rows.iter().map(|r| r.logical).max().unwrap_or(0).max(1);
    let reported = rows.iter().any(|r| r.unique.is_some());
    html! {
        div class="table" {
            table id="usage" class="cards" {
                thead {
                    tr {
                        th scope="col" { "Repository" }
                        th scope="col" { "Tags" }
                        @if !reported { th scope="col" { "Manifests" } }
                        th scope="col" { "Size" }
                        @if reported { th scope="col" { "Unique" } }
                        th scope="col" { span class="muted" { "Share of the largest" } }
                    }
                }
                tbody {
                    @for r in rows {
                        @let percent = r.logical.saturating_mul(100) / largest;
                        tr data-repository=(r.repository) {
                            th scope="row" { a href={ "r/" (r.repository) } { (r.repository) } }
                            td data-label="Tags" { (r.tags) }
                            @if let Some(m) = r.manifests { td data-label="Manifests" { (m) } }
                            td data-label="Size" { (layout::size(r.logical)) }
                            @if let Some(u) = r.unique { td data-label="Unique" class="unique" { (layout::size(u)) } }
                            td {
                                svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label={ (percent) "% of the largest" } {
                                    rect x="0" y="0" height="10" width=(percent.max(1)) {}
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn pass_table(passes: &[PassRecord]) -> Markup {
    html! {
        div class="table" {
            table id="gc-passes" class="cards" {
                thead { tr { th scope="col" { "Started" } th scope="col" { "Took" } th scope="col" { "Tags, manifests, blobs deleted" } th scope="col" { "Freed" } th scope="col" { "Blob sweep" } } }
                tbody {
                    @for p in passes.iter().take(PASSES_SHOWN) {
                        tr {
                            td { (layout::timestamp(UNIX_EPOCH + Duration::from_secs(p.started))) }
                            td data-label="Took" { (format!("{:.1} s", p.seconds)) }
                            td data-label="Deleted" { (p.deleted_tags) ", " (p.deleted_manifests) ", " (p.deleted_blobs) }
                            td data-label="Freed" { (layout::size(p.freed_bytes)) }
                            td data-label="Blob sweep" { @if p.blocked { "skipped: an unreadable manifest" } @else { "done" } }
                        }
                    }
                }
            }
        }
    }
}

/// The `logical` usage of each repository from its tagged manifests, with
/// garbage collection's own [`gc::usage`]; `false` when the budget ran out
/// before every manifest was read.
async fn compute(store: &Store, repositories: &[String]) -> Result<(Vec<Row>, bool), ApiError> {
    let mut budget = MANIFEST_BUDGET;
    let mut complete = true;
    let mut sizes: HashMap<Digest, u64> = HashMap::new();
    let mut blobs = Vec::with_capacity(repositories.len());
    let mut counts = Vec::with_capacity(repositories.len());
    for repository in repositories {
        let Ok(name) = repository.parse::<RepoName>() else {
            continue;
        };
        let tags = store.list_tags(&name).await?.unwrap_or_default();
        let mut manifests: HashSet<Digest> = HashSet::new();
        let mut referenced: HashSet<Digest> = HashSet::new();
        let mut queue: Vec<Digest> = Vec::new();
        for tag in &tags {
            let Ok(tag) = tag.parse::<Tag>() else {
                continue;
            };
            if let Some(digest) = store.resolve_tag(&name, &tag).await? {
                queue.push(digest);
            }
        }
        while let Some(digest) = queue.pop() {
            if !manifests.insert(digest.clone()) {
                continue;
            }
            if budget == 0 {
                complete = false;
                break;
            }
            budget -= 1;
            let manifest = match inspect::manifest(store, &name, &digest).await {
                Ok((manifest, _)) => manifest,
                Err(InspectError::Api(e)) => return Err(e),
                Err(_) => continue,
            };
            match manifest.kind {
                ManifestKind::Index => {
                    queue.extend(manifest.manifests.into_iter().map(|d| d.digest))
                }
                ManifestKind::Image => {
                    for blob in manifest.config.into_iter().chain(manifest.layers) {
                        sizes.insert(blob.digest.clone(), blob.size);
                        referenced.insert(blob.digest);
                    }
                }
            }
        }
        counts.push((tags.len(), manifests.len()));
        blobs.push(RepoBlobs {
            repository: repository.clone(),
            referenced,
            linked: HashSet::new(),
        });
    }
    let rows = gc::usage(&blobs, &sizes)
        .repositories
        .into_iter()
        .zip(counts)
        .map(|(u, (tags, manifests))| Row {
            repository: u.repository,
            tags,
            manifests: Some(manifests),
            logical: u.logical,
            unique: None,
        })
        .collect();
    Ok((rows, complete))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http_body_util::{BodyExt, Empty};
    use registry_core::gc::RepoUsage;
    use registry_core::Digest;
    use registry_storage::{MemoryBackend, Store};

    use super::*;
    use crate::ui::UiOptions;
    use crate::Registry;

    /// What garbage collection would hand the page.
    #[derive(Debug)]
    struct Report;

    #[async_trait]
    impl UsageReport for Report {
        async fn usage(&self) -> Option<Usage> {
            let row = |repository: &str, logical, unique| RepoUsage {
                repository: repository.to_owned(),
                logical,
                unique,
                missing: 0,
            };
            Some(Usage {
                repositories: vec![row("a", 1234, 567), row("gone", 1, 1)],
                logical: 1235,
                unique: 568,
                stored: 1000,
            })
        }

        async fn gc_passes(&self) -> Vec<PassRecord> {
            vec![PassRecord {
                started: 1_796_292_000,
                seconds: 0.5,
                deleted_tags: 1,
                deleted_manifests: 2,
                deleted_blobs: 7,
                freed_bytes: 9_000,
                blocked: false,
            }]
        }
    }

    #[tokio::test]
    async fn a_usage_report_replaces_the_computed_sizes() {
        let store = Store::new(Arc::new(MemoryBackend::new()));
        let blob = Digest::of(registry_core::Algorithm::Sha256, b"x");
        store.link_blob(&"a".parse().unwrap(), &blob).await.unwrap();
        let registry = Registry::builder(store)
            .ui(Some(UiOptions {
                prefix: "/".to_owned(),
                usage: Some(Arc::new(Report)),
            }))
            .build();
        let request = http::Request::get("/overview")
            .header("host", "registry.test")
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = registry.handle(request).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(html.contains(r#"data-repository="a""#), "{html}");
        assert!(html.contains(r#"data-bytes="1234""#), "{html}");
        assert!(html.contains(r#"data-bytes="567""#), "{html}");
        assert!(
            !html.contains("gone"),
            "only repositories that exist and may be pulled: {html}"
        );
        assert!(
            html.contains("2026-12-03T10:00:00Z") && html.contains(r#"data-bytes="9000""#),
            "{html}"
        );
    }
}
