//! The page's paths, parsed without IO: a request path below the UI's mount
//! point becomes one [`Page`], or `None` when it is not the page's (the API
//! answers it then).
//!
//! ```text
//! <prefix>                                    repositories (?q=filter&last=)
//! <prefix>overview                            storage per repository
//! <prefix>login                               401 until signed in, then back to <prefix>
//! <prefix>static/ui.css                       the style sheet
//! <prefix>r/<name>                            a repository's tags (?last=)
//! <prefix>r/<name>/-/manifest/<digest>        an image or index
//! <prefix>r/<name>/-/delete                   GET: confirm, POST: delete (reference=)
//! ```
//!
//! A repository name never has a component `-` (components start with a
//! letter or digit), so `/-/` ends the name unambiguously, however many
//! components it has.

use registry_core::{Digest, RepoName};

/// One page of the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// The repositories the caller may pull.
    Repositories,
    /// Storage per repository and the last GC passes.
    Overview,
    /// Asks an anonymous caller to sign in (401), then back to the start.
    Login,
    /// The style sheet.
    Style,
    /// A repository's tags.
    Repository(RepoName),
    /// One manifest (image or index) of a repository.
    Manifest(RepoName, Digest),
    /// Deleting a tag or manifest (confirmation on GET, the deletion on POST).
    Delete(RepoName),
    /// A path below the prefix that is no page.
    NotFound,
}

/// The UI's mount point, normalised to start and end with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// `ui`, `/ui`, `/ui/` all become `/ui/`; empty becomes `/`.
    pub fn new(raw: &str) -> Prefix {
        let trimmed = raw.trim_matches('/');
        if trimmed.is_empty() {
            Prefix("/".to_owned())
        } else {
            Prefix(format!("/{trimmed}/"))
        }
    }

    /// The prefix as a path (`/` or `/ui/`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path below the prefix, when `path` is the page's. The API's
    /// paths (`/v2`, probes, metrics) are never the page's, whatever the prefix.
    pub fn strip<'a>(&self, path: &'a str) -> Option<&'a str> {
        if path == "/v2" || path.starts_with("/v2/") {
            return None;
        }
        path.strip_prefix(self.0.as_str())
    }

    /// Whether `path` is the prefix without its final slash (`/ui`), which
    /// is redirected to `/ui/` so that relative links resolve below it.
    pub fn is_bare(&self, path: &str) -> bool {
        self.0 != "/" && path == self.0.trim_end_matches('/')
    }
}

/// Parses the path below the prefix. Only the page's own top-level paths
/// are claimed; anything else returns `None` and falls through to the API,
/// which answers it exactly as before.
pub fn parse(below: &str) -> Option<Page> {
    Some(match below {
        "" => Page::Repositories,
        "overview" => Page::Overview,
        "login" => Page::Login,
        "static/ui.css" => Page::Style,
        _ => {
            let rest = below.strip_prefix("r/")?;
            repository_page(rest).unwrap_or(Page::NotFound)
        }
    })
}

fn repository_page(rest: &str) -> Option<Page> {
    let (name, action) = match rest.split_once("/-/") {
        Some((name, action)) => (name, Some(action)),
        None => (rest, None),
    };
    let name: RepoName = name.parse().ok()?;
    Some(match action {
        None => Page::Repository(name),
        Some("delete") => Page::Delete(name),
        Some(other) => {
            let digest = other.strip_prefix("manifest/")?.parse().ok()?;
            Page::Manifest(name, digest)
        }
    })
}

/// The relative path from the page at `below` back to the UI's root, for
/// `<base href>`: every link is then written relative to the root, so the
/// page works under any prefix an ingress adds or strips.
pub fn root_from(below: &str) -> String {
    let depth = below.matches('/').count();
    if depth == 0 {
        "./".to_owned()
    } else {
        "../".repeat(depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn repo(s: &str) -> RepoName {
        s.parse().unwrap()
    }

    #[test]
    fn paths_to_pages() {
        let manifest = format!("r/a/b/-/manifest/{DIGEST}");
        let table: Vec<(&str, Option<Page>)> = vec![
            ("", Some(Page::Repositories)),
            ("overview", Some(Page::Overview)),
            ("login", Some(Page::Login)),
            ("static/ui.css", Some(Page::Style)),
            ("r/alpine", Some(Page::Repository(repo("alpine")))),
            ("r/a/b/c", Some(Page::Repository(repo("a/b/c")))),
            (
                manifest.as_str(),
                Some(Page::Manifest(repo("a/b"), DIGEST.parse().unwrap())),
            ),
            ("r/a/b/-/delete", Some(Page::Delete(repo("a/b")))),
            ("r/a/b/-/manifest/sha256:nothex", Some(Page::NotFound)),
            ("r/a/b/-/other", Some(Page::NotFound)),
            ("r/../etc", Some(Page::NotFound)),
            ("r/UPPER", Some(Page::NotFound)),
            ("r/", Some(Page::NotFound)),
            ("favicon.ico", None),
            ("healthz", None),
        ];
        for (path, want) in table {
            assert_eq!(parse(path), want, "{path:?}");
        }
    }

    #[test]
    fn the_prefix_never_claims_the_api() {
        let root = Prefix::new("");
        assert_eq!(root.strip("/"), Some(""));
        assert_eq!(root.strip("/r/a"), Some("r/a"));
        assert_eq!(root.strip("/v2/"), None);
        assert_eq!(root.strip("/v2"), None);
        let ui = Prefix::new("ui/");
        assert_eq!(ui.as_str(), "/ui/");
        assert_eq!(ui.strip("/ui"), None);
        assert!(ui.is_bare("/ui"));
        assert!(!root.is_bare("/"));
        assert_eq!(ui.strip("/ui/overview"), Some("overview"));
        assert_eq!(ui.strip("/overview"), None);
        assert_eq!(ui.strip("/v2/ui/x"), None);
    }

    #[test]
    fn base_goes_back_to_the_root() {
        assert_eq!(root_from(""), "./");
        assert_eq!(root_from("overview"), "./");
        assert_eq!(root_from("r/a"), "../");
        assert_eq!(root_from("r/a/b/-/manifest/sha256:x"), "../../../../../");
    }
}
