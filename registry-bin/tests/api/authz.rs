//! The authorization matrix: every route against no credentials, a wrong
//! password, a pull-only user, a push user of another repository, and the
//! owner; plus anonymous pull of chosen repositories and catalog filtering.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::common::*;
use registry_auth::{AccessRules, Action, Pattern, Rule};
use registry_bin::ServeOptions;
use reqwest::Method;

const PULLER: (&str, &str) = ("puller", "pull-pw");
const OTHER: (&str, &str) = ("other", "other-pw");

fn rule(pattern: &str, users: &[&str], anonymous: bool, actions: &[Action]) -> Rule {
    Rule {
        repository: Pattern::parse(pattern).unwrap(),
        users: users.iter().map(|u| u.to_string()).collect(),
        groups: BTreeSet::new(),
        anonymous,
        actions: actions.iter().copied().collect(),
    }
}

async fn server() -> TestServer {
    use Action::*;
    let rules = AccessRules::new(
        vec![
            rule("*", &[USER], false, &[Pull, Push, Delete]),
            rule("*", &[PULLER.0], false, &[Pull]),
            rule("other/*", &[OTHER.0], false, &[Pull, Push]),
            rule("public/*", &[], true, &[Pull]),
        ],
        BTreeMap::new(),
    )
    .unwrap();
    let rules = Arc::new(rules);
    TestServer::with_users(
        &[(USER, PASS), PULLER, OTHER],
        // The matrix sends many wrong passwords on purpose.
        |b| {
            b.authorizer(rules.clone())
                .throttle(1000, std::time::Duration::from_secs(60))
        },
        ServeOptions::default(),
    )
    .await
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    Pull,
    Push,
    Delete,
}

#[tokio::test]
async fn every_route_against_every_kind_of_caller() {
    let s = server().await;
    let (digest, manifest) = s.push_image("team/app", "v1", b"layer").await;
    let layer = sha256(b"layer");
    let upload = s
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let location = upload.headers()["location"].to_str().unwrap().to_owned();
    let callers: [(&str, Option<(&str, &str)>); 5] = [
        ("anonymous", None),
        ("wrong password", Some((USER, "wrong"))),
        ("pull-only", Some(PULLER)),
        ("push user of another repository", Some(OTHER)),
        ("owner", Some((USER, PASS))),
    ];
    let routes: Vec<(Method, String, Needs, Option<&str>)> = vec![
        (
            Method::GET,
            "/v2/team/app/tags/list".into(),
            Needs::Pull,
            None,
        ),
        (
            Method::GET,
            "/v2/team/app/manifests/v1".into(),
            Needs::Pull,
            None,
        ),
        (
            Method::HEAD,
            format!("/v2/team/app/manifests/{digest}"),
            Needs::Pull,
            None,
        ),
        (
            Method::GET,
            format!("/v2/team/app/blobs/{layer}"),
            Needs::Pull,
            None,
        ),
        (
            Method::HEAD,
            format!("/v2/team/app/blobs/{layer}"),
            Needs::Pull,
            None,
        ),
        (
            Method::GET,
            format!("/v2/team/app/referrers/{digest}"),
            Needs::Pull,
            None,
        ),
        (
            Method::POST,
            "/v2/team/app/blobs/uploads/".into(),
            Needs::Push,
            None,
        ),
        (Method::GET, location.clone(), Needs::Push, None),
        (Method::PATCH, location.clone(), Needs::Push, Some("chunk")),
        (
            Method::PUT,
            "/v2/team/app/manifests/v2".to_string(),
            Needs::Push,
            Some(manifest.as_str()),
        ),
        (
            Method::POST,
            format!("/v2/other/copy/blobs/uploads/?mount={layer}&from=team/app"),
            Needs::Pull,
            None,
        ),
        (
            Method::DELETE,
            "/v2/team/app/manifests/v2".into(),
            Needs::Delete,
            None,
        ),
        (
            Method::DELETE,
            format!("/v2/team/app/blobs/{layer}"),
            Needs::Delete,
            None,
        ),
    ];
    for (method, path, needs, body) in &routes {
        for (who, creds) in &callers {
            let mut req = s.req_as(method.clone(), path, *creds);
            if let Some(body) = body {
                req = req
                    .header("content-type", OCI_MANIFEST)
                    .body(body.to_string());
            }
            let status = req.send().await.unwrap().status().as_u16();
            let allowed = match *who {
                "anonymous" | "wrong password" => false,
                "pull-only" => *needs == Needs::Pull && !path.starts_with("/v2/other/"),
                // `other` may push to other/*, but the mount reads team/app.
                "push user of another repository" => false,
                _ => true,
            };
            let expected_denial = if creds.is_none() || *who == "wrong password" {
                401
            } else {
                403
            };
            if allowed {
                assert!(
                    status != 401 && status != 403,
                    "{who} {method} {path}: {status}"
                );
            } else {
                assert_eq!(status, expected_denial, "{who} {method} {path}");
            }
        }
    }
}

#[tokio::test]
async fn anonymous_pull_of_chosen_repositories_only() {
    let s = server().await;
    let (digest, _) = s.push_image("public/base", "v1", b"base").await;
    s.push_image("team/secret", "v1", b"secret").await;
    // The version check is open to anonymous callers when something is.
    assert_eq!(
        s.req_as(Method::GET, "/v2/", None)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = s
        .req_as(
            Method::GET,
            &format!("/v2/public/base/manifests/{digest}"),
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = s
        .req_as(Method::GET, "/v2/team/secret/manifests/v1", None)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("www-authenticate"));
    let res = s
        .req_as(Method::POST, "/v2/public/base/blobs/uploads/", None)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn catalog_shows_only_what_the_caller_may_pull() {
    let s = server().await;
    for repo in ["public/base", "team/app", "other/tool"] {
        s.push_image(repo, "v1", repo.as_bytes()).await;
    }
    let catalog = |creds: Option<(&'static str, &'static str)>| {
        let req = s.req_as(Method::GET, "/v2/_catalog", creds);
        async move {
            let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
            body["repositories"].clone()
        }
    };
    assert_eq!(catalog(None).await, serde_json::json!(["public/base"]));
    // What anonymous callers may pull, every user may pull.
    assert_eq!(
        catalog(Some(OTHER)).await,
        serde_json::json!(["other/tool", "public/base"])
    );
    assert_eq!(
        catalog(Some(PULLER)).await,
        serde_json::json!(["other/tool", "public/base", "team/app"])
    );
}

#[tokio::test]
async fn mount_needs_pull_on_the_source() {
    let s = server().await;
    let digest = s.push_blob("team/app", b"private layer").await;
    // `other` may push to other/tool but not read team/app: denied, not a
    // silent fallback to a normal upload.
    let res = s
        .req_as(
            Method::POST,
            &format!("/v2/other/tool/blobs/uploads/?mount={digest}&from=team/app"),
            Some(OTHER),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(error_codes(res).await, ["DENIED"]);
    // Without `from`, the automatic mount only looks where the caller may pull.
    let res = s
        .req_as(
            Method::POST,
            &format!("/v2/other/tool/blobs/uploads/?mount={digest}"),
            Some(OTHER),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "a normal upload starts instead");
    let res = s
        .req_as(
            Method::HEAD,
            &format!("/v2/other/tool/blobs/{digest}"),
            Some(OTHER),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
