//! An image's or index's page: what it is, its config, history and layers,
//! or its platforms; its annotations and referrers; pull lines by digest.

use std::collections::BTreeMap;

use http::StatusCode;
use maud::{html, Markup};
use registry_auth::Action;
use registry_core::manifest::{Descriptor, ManifestKind};
use registry_core::{Digest, RepoName};

use super::inspect::{self, ImageConfig, InspectError, Summary};
use super::repository::platforms;
use super::{layout, Ctx};
use crate::http_error::ApiResult;

/// `GET <prefix>r/<name>/-/manifest/<digest>`.
pub async fn page(ctx: &Ctx<'_>, name: &RepoName, digest: &Digest) -> ApiResult {
    if !ctx.may(name, Action::Pull) {
        return Ok(ctx.no_repository());
    }
    let store = &ctx.shared.store;
    let summary = match inspect::summarize(store, name, digest).await {
        Ok(summary) => summary,
        Err(InspectError::Api(e)) => return Err(e),
        Err(InspectError::Missing) => {
            return Ok(ctx.message(
                StatusCode::NOT_FOUND,
                "This repository has no such manifest.",
            ))
        }
        Err(e @ InspectError::Invalid(_)) => {
            return Ok(ctx.message(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))
        }
    };
    let config = match (&summary.manifest.kind, &summary.manifest.config) {
        (ManifestKind::Image, Some(c)) => inspect::read_config(store, name, c).await?,
        _ => None,
    };
    let referrers = inspect::referrers(store, name, digest).await?;
    let repo = name.as_str();
    let m = &summary.manifest;
    let title = format!("{repo}@{digest}");
    let main = html! {
        p { a href={ "r/" (repo) } { "Back to " (repo) } }
        dl id="facts" {
            dt { "Digest" } dd { code data-digest=(digest) { (digest) } }
            dt { "Media type" } dd { code { (m.media_type) } }
            @if let Some(t) = &m.artifact_type { dt { "Artifact type" } dd { code { (t) } } }
            dt { "Manifest size" } dd { (layout::size(summary.manifest_size)) }
            dt { @if m.kind == ManifestKind::Index { "Size of all platforms" } @else { "Size (config and layers)" } }
            dd id="total-size" { (layout::size(summary.size)) }
            dt { "Platforms" } dd { (platforms(repo, &summary)) }
            @if let Some(subject) = &m.subject {
                dt { "Refers to" } dd { a href=(layout::manifest_href(repo, &subject.digest)) { (layout::short_digest(&subject.digest)) } }
            }
        }
        h2 { "Pull" }
        (layout::pull_lines(&ctx.host, repo, &digest.to_string()))
        @if m.kind == ManifestKind::Index { (children(repo, &summary)) }
        @if let Some(config) = &config { (config_section(config)) }
        @if m.kind == ManifestKind::Image { (layers(&m.layers, m.config.as_ref())) }
        (annotations("Annotations", m.annotations.as_ref()))
        h2 { "Referrers" }
        @if referrers.is_empty() {
            p class="muted" { "No signatures, SBOMs or attestations refer to this manifest." }
        } @else {
            div class="table" {
                table id="referrers" {
                    thead { tr { th scope="col" { "Artifact type" } th scope="col" { "Digest" } th scope="col" { "Size" } th scope="col" { "Annotations" } } }
                    tbody {
                        @for r in &referrers {
                            tr {
                                td { code class="artifact-type" { (r.artifact_type) } }
                                td { a href=(layout::manifest_href(repo, &r.descriptor.digest)) { (layout::short_digest(&r.descriptor.digest)) } }
                                td { (layout::size(r.descriptor.size)) }
                                td { (key_values(r.descriptor.annotations.as_ref())) }
                            }
                        }
                    }
                }
            }
        }
        @if ctx.may_delete(name) {
            h2 { "Delete" }
            p { a class="button danger" href={ "r/" (repo) "/-/delete?reference=" (digest) } { "Delete this manifest and its tags" } }
        }
    };
    Ok(layout::page(&ctx.shell, StatusCode::OK, &title, main))
}

fn children(repo: &str, summary: &Summary) -> Markup {
    html! {
        h2 { "Manifests" }
        div class="table" {
            table id="children" {
                thead { tr { th scope="col" { "Platform" } th scope="col" { "Digest" } th scope="col" { "Media type" } th scope="col" { "Manifest size" } } }
                tbody {
                    @for child in &summary.manifest.manifests {
                        tr {
                            td { (platform_text(child)) }
                            td { a href=(layout::manifest_href(repo, &child.digest)) { (layout::short_digest(&child.digest)) } }
                            td { code { (child.media_type) } }
                            td { (layout::size(child.size)) }
                        }
                    }
                }
            }
        }
    }
}

fn platform_text(child: &Descriptor) -> String {
    let field = |p: &serde_json::Value, name: &str| {
        p.get(name)
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned()
    };
    match &child.platform {
        Some(p) => format!("{}/{}", field(p, "os"), field(p, "architecture")),
        None => child
            .artifact_type
            .clone()
            .unwrap_or_else(|| "—".to_owned()),
    }
}

fn config_section(config: &ImageConfig) -> Markup {
    let run = &config.config;
    let list = |items: &Option<Vec<String>>| {
        html! { @if let Some(items) = items { code { (items.join(" ")) } } @else { span class="muted" { "—" } } }
    };
    html! {
        h2 { "Config" }
        dl id="config" {
            dt { "Created" } dd { (config.created.as_deref().unwrap_or("—")) }
            @if let Some(author) = &config.author { dt { "Author" } dd { (author) } }
            dt { "Entrypoint" } dd { (list(&run.entrypoint)) }
            dt { "Command" } dd { (list(&run.cmd)) }
            @if let Some(dir) = &run.working_dir { dt { "Working directory" } dd { code { (dir) } } }
            @if let Some(user) = &run.user { dt { "User" } dd { code { (user) } } }
            dt { "Environment" }
            dd {
                ul class="plain env" { @for e in run.env.iter().flatten() { li { code { (e) } } } }
            }
        }
        (annotations("Labels", run.labels.as_ref()))
        h2 { "History" }
        @if config.history.is_empty() {
            p class="muted" { "No history recorded." }
        } @else {
            div class="table" {
                table id="history" {
                    thead { tr { th scope="col" { "Created" } th scope="col" { "Step" } th scope="col" { "Layer" } } }
                    tbody {
                        @for h in &config.history {
                            tr {
                                td { (h.created.as_deref().unwrap_or("—")) }
                                td { code { (h.created_by.as_deref().unwrap_or("")) } @if let Some(c) = &h.comment { " " span class="muted" { (c) } } }
                                td { @if h.empty_layer == Some(true) { "none" } @else { "yes" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn layers(layers: &[Descriptor], config: Option<&Descriptor>) -> Markup {
    html! {
        h2 { "Layers" }
        div class="table" {
            table id="layers" {
                thead { tr { th scope="col" { "#" } th scope="col" { "Digest" } th scope="col" { "Media type" } th scope="col" { "Size" } } }
                tbody {
                    @for (i, l) in layers.iter().enumerate() {
                        tr data-digest=(l.digest) {
                            td { (i + 1) }
                            td { (layout::short_digest(&l.digest)) }
                            td { code { (l.media_type) } }
                            td { (layout::size(l.size)) }
                        }
                    }
                    @if let Some(c) = config {
                        tr data-digest=(c.digest) {
                            td { "config" }
                            td { (layout::short_digest(&c.digest)) }
                            td { code { (c.media_type) } }
                            td { (layout::size(c.size)) }
                        }
                    }
                }
            }
        }
    }
}

fn annotations(title: &str, values: Option<&BTreeMap<String, String>>) -> Markup {
    html! {
        @if let Some(values) = values.filter(|v| !v.is_empty()) {
            h2 { (title) }
            (key_values(Some(values)))
        }
    }
}

fn key_values(values: Option<&BTreeMap<String, String>>) -> Markup {
    html! {
        @if let Some(values) = values {
            dl class="kv" {
                @for (k, v) in values { dt { code { (k) } } dd { (v) } }
            }
        }
    }
}
