//! The web page: what the registry holds, for people, served by the same
//! process on the same port, behind the same users.
//!
//! The pages read through the same [`Store`](registry_storage::Store) calls
//! as the API handlers and decide access with the same authorizer
//! (`access.rs`): a user sees only repositories they may pull, sees a delete
//! button only with delete rights, and a delete runs the API's own handler
//! (`handlers::manifests::delete`). There is no second code path to the bytes.
//!
//! # Choices
//! - **maud** for templates: markup is Rust, checked when the crate
//!   compiles, and every interpolated value is HTML-escaped unless wrapped
//!   in `PreEscaped` (which only our own style sheet is). Unlike askama it
//!   needs no template files or extension-based escaping rules, and it
//!   builds from one small proc-macro crate, which matters on small CI
//!   machines.
//! - **No script.** The filter is a GET form, confirmation is a page, and a
//!   pull line is selected whole with one click by CSS. The
//!   Content-Security-Policy (`layout::CSP`) forbids every script.
//! - **Login** is HTTP basic auth, as for the API: the browser's own prompt,
//!   or `curl -u`. Nothing is ever put in a URL. Because browsers attach
//!   basic credentials to cross-site posts, deletes carry a CSRF token
//!   (`csrf.rs`) and are refused when `Origin`/`Sec-Fetch-Site` say another
//!   site sent them.
//! - **Links are relative** to a `<base href>` that leads back to the UI's
//!   root, so the page works at `http.ui.prefix` and behind an ingress that
//!   strips or adds a path prefix.
//!
//! # Layout
//! - `route.rs`: paths to pages, pure.
//! - `layout.rs`: the page shell, security headers, small markup helpers.
//! - `inspect.rs`: manifests, configs and referrers as the pages show them.
//! - `repositories.rs`, `repository.rs`, `manifest.rs`, `overview.rs`: the pages.
//! - `delete.rs`: confirmation and deletion; `csrf.rs`: its tokens.
//! - `ui.css`: the style sheet, compiled into the binary.

mod csrf;
mod delete;
mod inspect;
mod layout;
mod manifest;
mod overview;
mod repositories;
mod repository;
mod route;

use std::sync::Arc;

use http::{Method, StatusCode};
use registry_auth::{Action, Challenge, Identity};
use registry_core::RepoName;

pub use overview::UsageReport;

use crate::body::RequestBody;
use crate::config::UrlMode;
use crate::http_error::ApiResult;
use crate::registry::Shared;
use crate::reply::Reply;
use csrf::CsrfKey;
use layout::Shell;
use route::{Page, Prefix};

/// How the page is served (`http.ui.*`).
#[derive(Debug, Clone)]
pub struct UiOptions {
    /// Where the page is mounted on this server (`/` by default).
    pub prefix: String,
    /// Storage per repository and GC pass history from passes run outside
    /// this server; without it the overview shows this server's scheduled
    /// passes, and before the first one computes sizes from the manifests.
    pub usage: Option<Arc<dyn UsageReport>>,
}

impl Default for UiOptions {
    fn default() -> Self {
        UiOptions {
            prefix: "/".to_owned(),
            usage: None,
        }
    }
}

/// The page's state, kept with the registry's.
#[derive(Debug)]
pub struct Ui {
    prefix: Prefix,
    usage: Option<Arc<dyn UsageReport>>,
    csrf: CsrfKey,
}

impl Ui {
    /// The page with `options` and a fresh CSRF key.
    pub fn new(options: UiOptions) -> Ui {
        Ui {
            prefix: Prefix::new(&options.prefix),
            usage: options.usage,
            csrf: CsrfKey::random(),
        }
    }
}

/// One request to the page, as the page handlers see it.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    shared: &'a Shared,
    ui: &'a Ui,
    identity: &'a Identity,
    /// The challenge to answer an anonymous caller with, when there are users.
    challenge: Option<Challenge>,
    shell: Shell<'a>,
    /// `host[:port]` for pull lines.
    host: String,
    query: Vec<(String, String)>,
}

impl Ctx<'_> {
    /// The first value of a query parameter.
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the caller may do `action` in `repo`.
    fn may(&self, repo: &RepoName, action: Action) -> bool {
        self.shared
            .authorizer
            .authorize(self.identity, Some(repo), action)
    }

    /// Whether a delete button is shown: deletes are on, the registry is
    /// not read-only, and the caller has delete rights (the POST checks again).
    fn may_delete(&self, repo: &RepoName) -> bool {
        self.shared.delete_enabled && !self.shared.read_only && self.may(repo, Action::Delete)
    }

    fn message(&self, status: StatusCode, text: &str) -> Reply {
        layout::message(&self.shell, status, text)
    }

    /// The answer for a repository the caller may not pull, or that does
    /// not exist: the same, so the page does not reveal which; an anonymous
    /// caller is asked to sign in.
    fn no_repository(&self) -> Reply {
        self.sign_in().unwrap_or_else(|| {
            self.message(
                StatusCode::NOT_FOUND,
                "No such repository, or you may not pull from it.",
            )
        })
    }

    /// 401 with the challenge (the browser shows its login prompt; `curl -u`
    /// just works), when the caller is anonymous and there are users.
    fn sign_in(&self) -> Option<Reply> {
        let challenge = self.challenge.as_ref()?;
        let reply = self
            .message(
                StatusCode::UNAUTHORIZED,
                "Sign in with your registry user name and password.",
            )
            .header("www-authenticate", &challenge.header_value());
        Some(reply)
    }
}

/// Answers `parts` when its path is the page's; `None` lets the API answer.
/// `identity` is already authenticated (bad credentials never get here).
pub async fn handle(
    shared: &Shared,
    ui: &Ui,
    identity: &Identity,
    parts: &http::request::Parts,
    body: &mut RequestBody,
) -> Option<ApiResult> {
    let path = parts.uri.path();
    if ui.prefix.is_bare(path) {
        let to = ui.prefix.as_str();
        return Some(Ok(layout::secured(
            Reply::empty(StatusCode::PERMANENT_REDIRECT).header("location", to),
        )));
    }
    let below = ui.prefix.strip(path)?;
    let page = route::parse(below)?;
    let user = identity.username();
    // Anonymous callers see what access rules let anyone pull, and are
    // asked to sign in (the browser's prompt) where that is nothing.
    let challenge = match identity {
        Identity::Anonymous => shared.authenticator.challenge(),
        Identity::User(_) | Identity::Token(_) => None,
    };
    let shell = Shell {
        root: route::root_from(below),
        user,
        sign_in: challenge.is_some(),
    };
    let ctx = Ctx {
        shared,
        ui,
        identity,
        challenge,
        shell,
        host: pull_host(parts, &shared.urls),
        query: parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
    };
    let method = &parts.method;
    let reading = *method == Method::GET || *method == Method::HEAD;
    let result = match page {
        Page::Delete(name) if *method == Method::POST => {
            delete::perform(&ctx, &parts.headers, body, &name).await
        }
        _ if !reading => Ok(ctx
            .message(StatusCode::METHOD_NOT_ALLOWED, "This page only reads.")
            .header("allow", "GET, HEAD")),
        Page::Style => Ok(layout::secured(Reply::bytes(
            StatusCode::OK,
            "text/css; charset=utf-8",
            layout::STYLE,
        ))
        .header("cache-control", "max-age=300")),
        Page::Repositories => repositories::list(&ctx).await,
        Page::Overview => overview::page(&ctx).await,
        Page::Repository(name) => repository::page(&ctx, &name).await,
        Page::Manifest(name, digest) => manifest::page(&ctx, &name, &digest).await,
        Page::Delete(name) => delete::confirm(&ctx, &name).await,
        Page::Login => Ok(ctx.sign_in().unwrap_or_else(|| {
            layout::secured(Reply::empty(StatusCode::SEE_OTHER).header("location", "./"))
        })),
        Page::NotFound => Ok(ctx.message(StatusCode::NOT_FOUND, "There is no such page.")),
    };
    // Storage failures become a page too; their detail goes to the log only.
    Some(Ok(result.unwrap_or_else(|e| {
        let status = e.into_reply().status();
        ctx.message(status, "The registry could not answer; try again later.")
    })))
}

/// `host[:port]` for pull lines: the configured external host, else what
/// the client reached (`X-Forwarded-Host` first, then `Host`).
fn pull_host(parts: &http::request::Parts, urls: &UrlMode) -> String {
    if let UrlMode::Fixed(base) = urls {
        let host = base.split("://").nth(1).unwrap_or(base);
        return host.trim_end_matches('/').to_owned();
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    header("x-forwarded-host")
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .or_else(|| header("host"))
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost")
        .to_owned()
}
