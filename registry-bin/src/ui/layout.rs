//! The page shell and the small pieces every page uses: sizes, digests,
//! pull lines, the security headers.
//!
//! Everything interpolated with maud's `(...)` is HTML-escaped; the only
//! unescaped text is the style sheet, which is ours.

use std::time::SystemTime;

use http::StatusCode;
use maud::{html, Markup, DOCTYPE};
use registry_core::Digest;

use crate::reply::Reply;
use crate::timestamp::Utc;

/// The style sheet, served from `static/ui.css` (no inline styles: the
/// Content-Security-Policy forbids them).
pub const STYLE: &str = include_str!("ui.css");

/// No script at all, styles and images from this origin only, forms post
/// only here, and no framing.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; base-uri 'self'; frame-ancestors 'none'";

/// What the shell needs to know about the request.
#[derive(Debug, Clone)]
pub struct Shell<'a> {
    /// Relative path from this page back to the UI root (`<base href>`).
    pub root: String,
    /// Who is looking; `None` when anonymous.
    pub user: Option<&'a str>,
    /// Whether to offer signing in (anonymous, and there are users).
    pub sign_in: bool,
}

/// A complete HTML page.
pub fn page(shell: &Shell<'_>, status: StatusCode, title: &str, main: Markup) -> Reply {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                base href=(shell.root);
                title { (title) " · registry" }
                link rel="stylesheet" href="static/ui.css";
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    nav aria-label="Main" {
                        a href="./" { "Repositories" }
                        a href="overview" { "Overview" }
                    }
                    @if let Some(user) = shell.user {
                        p class="who" { "Signed in as " strong { (user) } }
                    } @else if shell.sign_in {
                        p class="who" { a href="login" { "Sign in" } }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (main)
                }
            }
        }
    };
    html_reply(status, doc.into_string())
}

/// An HTML body with the page's security headers.
pub fn html_reply(status: StatusCode, body: String) -> Reply {
    secured(Reply::bytes(status, "text/html; charset=utf-8", body))
}

/// The headers every page response carries.
pub fn secured(reply: Reply) -> Reply {
    reply
        .header("content-security-policy", CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "same-origin")
        .header("x-frame-options", "DENY")
        .header("cache-control", "no-store")
}

/// A page that says what went wrong (never internal details).
pub fn message(shell: &Shell<'_>, status: StatusCode, text: &str) -> Reply {
    let title = status.canonical_reason().unwrap_or("Error");
    page(shell, status, title, html! { p role="alert" { (text) } })
}

/// `1.5 MB`: decimal units, as registries and clients print them.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

/// A size with the exact byte count in a tooltip and a `data-bytes`
/// attribute (what tests compare).
pub fn size(bytes: u64) -> Markup {
    html! { span class="size" title={ (bytes) " bytes" } data-bytes=(bytes) { (human_size(bytes)) } }
}

/// A time as `2026-12-03 10:15:42 UTC` in a `<time>` element whose
/// `datetime` is RFC 3339 and `data-unix` the seconds (what tests read).
pub fn timestamp(at: SystemTime) -> Markup {
    let utc = Utc::of(at);
    let iso = utc.iso();
    let text = format!("{} UTC", iso.replace('T', " "));
    html! { time datetime=(format!("{iso}Z")) data-unix=(utc.unix) { (text) } }
}

/// A digest shortened to 12 hex digits, the full one in a tooltip.
pub fn short_digest(digest: &Digest) -> Markup {
    let text = digest.to_string();
    let hex: String = digest.hex().chars().take(12).collect();
    let short = format!("{}:{hex}", digest.algorithm());
    html! { code class="digest" title=(text) data-digest=(text) { (short) } }
}

/// The page of a manifest, relative to the root.
pub fn manifest_href(repo: &str, digest: &Digest) -> String {
    format!("r/{repo}/-/manifest/{digest}")
}

/// Copyable `docker pull` and `podman pull` lines (selected whole with one
/// click by CSS `user-select: all`; no script).
pub fn pull_lines(host: &str, repo: &str, reference: &str) -> Markup {
    let sep = if reference.contains(':') { '@' } else { ':' };
    let target = format!("{host}/{repo}{sep}{reference}");
    html! {
        ul class="pull" aria-label={ "Pull " (reference) } {
            li { code class="copy" { "docker pull " (target) } }
            li { code class="copy" { "podman pull " (target) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_clients_print_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_500), "1.5 kB");
        assert_eq!(human_size(3_200_000_000), "3.2 GB");
    }

    #[test]
    fn times_are_utc_calendar_dates() {
        let at = |secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let text = |secs| timestamp(at(secs)).into_string();
        assert!(text(0).contains("1970-01-01T00:00:00Z"), "{}", text(0));
        // 2000-02-29 (a leap day of a century leap year) 12:34:56.
        assert!(text(951_827_696).contains("2000-02-29 12:34:56 UTC"));
        // 2026-12-03 09:45:31.
        assert!(text(1_796_291_131).contains("2026-12-03T09:45:31Z"));
    }

    #[test]
    fn text_from_storage_is_escaped() {
        let hostile = "<script>alert(\"x\")</script>'";
        let out = pull_lines("h", "r", hostile).into_string();
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("&lt;script&gt;alert(&quot;x&quot;)"), "{out}");
    }
}
