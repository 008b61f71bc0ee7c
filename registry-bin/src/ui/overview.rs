//! The overview: storage per repository as a bar chart, and the last
//! garbage-collection passes.
//!
//! # The hook for garbage collection
//! Exact usage (bytes only this repository holds, shared bytes, what a pass
//! would free) and pass history are garbage collection's to know. It plugs in
//! by implementing [`UsageReport`] and handing it to
//! [`RegistryBuilder::ui`](crate::RegistryBuilder::ui) in
//! [`UiOptions::usage`](super::UiOptions). Until then the page computes
//! what it can by reading manifests: for each repository, the distinct blobs
//! its tagged manifests (and their index children) reference, each counted
//! once, at most [`MANIFEST_BUDGET`] manifests per request.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use http::StatusCode;
use maud::{html, Markup};
use registry_core::manifest::ManifestKind;
use registry_core::{Digest, RepoName, Tag};
use registry_storage::Store;

use super::inspect::{self, InspectError};
use super::{layout, Ctx};
use crate::access::may_pull;
use crate::http_error::{ApiError, ApiResult};

/// Manifests one overview request reads when it computes sizes itself.
pub const MANIFEST_BUDGET: usize = 2_000;

/// Passes shown.
const PASSES_SHOWN: usize = 10;

/// Storage of one repository, as a usage report knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryUsage {
    /// The repository.
    pub repository: String,
    /// Bytes of every blob the repository references, each counted once.
    pub bytes: u64,
    /// Tags.
    pub tags: usize,
    /// Manifests (tagged or not).
    pub manifests: usize,
}

/// One garbage-collection pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcPass {
    /// When it started (RFC 3339).
    pub started: String,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// Blobs removed.
    pub blobs_removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Whether it completed (`false`: interrupted, resumed by the next).
    pub completed: bool,
}

/// Where per-repository usage and GC history come from, when something
/// records them (garbage collection). Implementations answer from what they
/// have stored; they must not walk the whole storage per call.
#[async_trait]
pub trait UsageReport: Send + Sync + std::fmt::Debug {
    /// Usage of every repository as of the last pass; `None` before the first.
    async fn repositories(&self) -> Option<Vec<RepositoryUsage>>;
    /// The most recent passes, newest first.
    async fn gc_passes(&self) -> Vec<GcPass>;
}

/// `GET <prefix>overview`.
pub async fn page(ctx: &Ctx<'_>) -> ApiResult {
    let may = |r: &str| {
        r.parse::<RepoName>()
            .is_ok_and(|name| may_pull(ctx.shared.authorizer.as_ref(), ctx.identity, &name))
    };
    let reported = match &ctx.ui.usage {
        Some(report) => report.repositories().await,
        None => None,
    };
    let (mut usage, source) = match reported {
        Some(all) => (
            all.into_iter().filter(|u| may(&u.repository)).collect(),
            Source::Report,
        ),
        None => {
            let repositories: Vec<String> = ctx
                .shared
                .store
                .list_repositories()
                .await?
                .into_iter()
                .filter(|r| may(r))
                .collect();
            let (usage, complete) = compute(&ctx.shared.store, &repositories).await?;
            (usage, Source::Computed { complete })
        }
    };
    usage.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.repository.cmp(&b.repository)));
    let passes = match &ctx.ui.usage {
        Some(report) => Some(report.gc_passes().await),
        None => None,
    };
    let main = html! {
        h2 { "Storage per repository" }
        p class="muted" { (source.describe()) }
        (chart(&usage))
        h2 { "Garbage collection" }
        @match passes {
            None => p class="muted" { "No garbage-collection history is recorded by this registry." },
            Some(p) if p.is_empty() => p class="muted" { "No pass has run yet." },
            Some(p) => (pass_table(&p)),
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
            Source::Report => "From the last garbage-collection pass. Blobs shared by repositories count in each.",
            Source::Computed { complete: true } => "Computed from the tagged manifests: config and layers, each blob counted once per repository, shared blobs in each.",
            Source::Computed { complete: false } => "Computed from the tagged manifests, but not all of them were read (too many for one page): sizes are lower bounds.",
        }
    }
}

fn chart(usage: &[RepositoryUsage]) -> Markup {
    let largest = usage.iter().map(|u| u.bytes).max().unwrap_or(0).max(1);
    html! {
        div class="table" {
            table id="usage" {
                thead { tr { th scope="col" { "Repository" } th scope="col" { "Tags" } th scope="col" { "Manifests" } th scope="col" { "Size" } th scope="col" { span class="muted" { "Share of the largest" } } } }
                tbody {
                    @for u in usage {
                        @let percent = u.bytes.saturating_mul(100) / largest;
                        tr data-repository=(u.repository) {
                            th scope="row" { a href={ "r/" (u.repository) } { (u.repository) } }
                            td { (u.tags) }
                            td { (u.manifests) }
                            td { (layout::size(u.bytes)) }
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

fn pass_table(passes: &[GcPass]) -> Markup {
    html! {
        div class="table" {
            table id="gc-passes" {
                thead { tr { th scope="col" { "Started" } th scope="col" { "Took" } th scope="col" { "Blobs removed" } th scope="col" { "Freed" } th scope="col" { "Completed" } } }
                tbody {
                    @for p in passes.iter().take(PASSES_SHOWN) {
                        tr {
                            td { (p.started) }
                            td { (p.duration_ms) " ms" }
                            td { (p.blobs_removed) }
                            td { (layout::size(p.bytes_freed)) }
                            td { @if p.completed { "yes" } @else { "interrupted" } }
                        }
                    }
                }
            }
        }
    }
}

/// Usage of each repository from its tagged manifests; `false` when the
/// budget ran out before every manifest was read.
async fn compute(
    store: &Store,
    repositories: &[String],
) -> Result<(Vec<RepositoryUsage>, bool), ApiError> {
    let mut budget = MANIFEST_BUDGET;
    let mut complete = true;
    let mut out = Vec::with_capacity(repositories.len());
    for repository in repositories {
        let Ok(name) = repository.parse::<RepoName>() else {
            continue;
        };
        let tags = store.list_tags(&name).await?.unwrap_or_default();
        let mut manifests: HashSet<Digest> = HashSet::new();
        let mut blobs: HashMap<Digest, u64> = HashMap::new();
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
                        blobs.insert(blob.digest, blob.size);
                    }
                }
            }
        }
        out.push(RepositoryUsage {
            repository: repository.clone(),
            bytes: blobs.values().sum(),
            tags: tags.len(),
            manifests: manifests.len(),
        });
    }
    Ok((out, complete))
}
