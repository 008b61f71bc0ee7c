//! Route table tests: every endpoint, ambiguous names, traversal attempts.

use super::*;

const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn name(s: &str) -> RepoName {
    s.parse().unwrap()
}

fn parse(method: Method, target: &str) -> Result<Route, RouteError> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    Route::parse(method, path, query)
}

fn code(r: Result<Route, RouteError>) -> ErrorCode {
    match r {
        Err(RouteError::Invalid(e)) => e.code,
        other => panic!("expected an invalid-parameter error, got {other:?}"),
    }
}

#[test]
fn every_endpoint() {
    use Method::*;
    let d: Digest = D.parse().unwrap();
    let cases: Vec<(Method, String, Route)> = vec![
        (Get, "/v2/".into(), Route::Base),
        (Head, "/v2".into(), Route::Base),
        (
            Get,
            "/v2/_catalog?n=10&last=a%2Fb".into(),
            Route::Catalog {
                page: Page {
                    n: Some(10),
                    last: Some("a/b".into()),
                },
            },
        ),
        (
            Get,
            "/v2/a/b/tags/list".into(),
            Route::TagsList {
                name: name("a/b"),
                page: Page::default(),
            },
        ),
        (
            Get,
            "/v2/a/manifests/latest".into(),
            Route::ManifestGet {
                name: name("a"),
                reference: "latest".parse().unwrap(),
                head: false,
            },
        ),
        (
            Head,
            format!("/v2/a/manifests/{D}"),
            Route::ManifestGet {
                name: name("a"),
                reference: D.parse().unwrap(),
                head: true,
            },
        ),
        (
            Put,
            format!("/v2/a/manifests/{D}?tag=v1&tag=v2"),
            Route::ManifestPut {
                name: name("a"),
                reference: D.parse().unwrap(),
                tags: vec!["v1".parse().unwrap(), "v2".parse().unwrap()],
            },
        ),
        (
            Delete,
            "/v2/a/manifests/v1".into(),
            Route::ManifestDelete {
                name: name("a"),
                reference: "v1".parse().unwrap(),
            },
        ),
        (
            Get,
            format!("/v2/a/b/c/blobs/{D}"),
            Route::BlobGet {
                name: name("a/b/c"),
                digest: d.clone(),
                head: false,
            },
        ),
        (
            Delete,
            format!("/v2/a/blobs/{D}"),
            Route::BlobDelete {
                name: name("a"),
                digest: d.clone(),
            },
        ),
        (
            Post,
            "/v2/a/blobs/uploads/".into(),
            Route::UploadStart {
                name: name("a"),
                start: UploadStart::Session {
                    algorithm: Algorithm::Sha256,
                },
            },
        ),
        (
            Post,
            "/v2/a/blobs/uploads".into(),
            Route::UploadStart {
                name: name("a"),
                start: UploadStart::Session {
                    algorithm: Algorithm::Sha256,
                },
            },
        ),
        (
            Post,
            "/v2/a/blobs/uploads/?digest-algorithm=sha512".into(),
            Route::UploadStart {
                name: name("a"),
                start: UploadStart::Session {
                    algorithm: Algorithm::Sha512,
                },
            },
        ),
        (
            Post,
            format!("/v2/a/blobs/uploads/?digest={D}"),
            Route::UploadStart {
                name: name("a"),
                start: UploadStart::Monolithic { digest: d.clone() },
            },
        ),
        (
            Post,
            format!("/v2/a/blobs/uploads/?mount={D}&from=b/c"),
            Route::UploadStart {
                name: name("a"),
                start: UploadStart::Mount {
                    digest: d.clone(),
                    from: Some(name("b/c")),
                },
            },
        ),
        (
            Post,
            format!("/v2/a/blobs/uploads/?mount={D}"),
            Route::UploadStart {
                name: name("a"),
                start: UploadStart::Mount {
                    digest: d.clone(),
                    from: None,
                },
            },
        ),
        (
            Patch,
            "/v2/a/blobs/uploads/abc-1".into(),
            Route::UploadPatch {
                name: name("a"),
                id: UploadId::parse("abc-1").unwrap(),
            },
        ),
        (
            Get,
            "/v2/a/blobs/uploads/abc-1".into(),
            Route::UploadStatus {
                name: name("a"),
                id: UploadId::parse("abc-1").unwrap(),
            },
        ),
        (
            Delete,
            "/v2/a/blobs/uploads/abc-1".into(),
            Route::UploadCancel {
                name: name("a"),
                id: UploadId::parse("abc-1").unwrap(),
            },
        ),
        (
            Put,
            format!("/v2/a/blobs/uploads/abc-1?digest={D}"),
            Route::UploadPut {
                name: name("a"),
                id: UploadId::parse("abc-1").unwrap(),
                digest: d.clone(),
            },
        ),
        (
            Get,
            format!("/v2/a/referrers/{D}?artifactType=application%2Fx"),
            Route::Referrers {
                name: name("a"),
                digest: d.clone(),
                artifact_type: Some("application/x".into()),
            },
        ),
    ];
    for (method, target, want) in cases {
        assert_eq!(parse(method, &target), Ok(want), "{method:?} {target}");
    }
}

#[test]
fn names_that_look_like_endpoints() {
    // The last segments decide; earlier ones belong to the name.
    assert_eq!(
        parse(Method::Get, "/v2/tags/list/tags/list"),
        Ok(Route::TagsList {
            name: name("tags/list"),
            page: Page::default()
        })
    );
    assert_eq!(
        parse(Method::Get, "/v2/manifests/manifests/latest"),
        Ok(Route::ManifestGet {
            name: name("manifests"),
            reference: "latest".parse().unwrap(),
            head: false
        })
    );
    assert_eq!(
        parse(Method::Post, "/v2/blobs/uploads/blobs/uploads/"),
        Ok(Route::UploadStart {
            name: name("blobs/uploads"),
            start: UploadStart::Session {
                algorithm: Algorithm::Sha256
            }
        })
    );
    assert_eq!(
        parse(Method::Get, &format!("/v2/blobs/blobs/{D}")),
        Ok(Route::BlobGet {
            name: name("blobs"),
            digest: D.parse().unwrap(),
            head: false
        })
    );
}

#[test]
fn traversal_and_bad_names() {
    for target in [
        "/v2/../etc/tags/list",
        "/v2/a/../b/tags/list",
        "/v2/%2e%2e/tags/list",
        "/v2//a/tags/list",
        "/v2/A/tags/list",
        "/v2/a%00/tags/list",
        "/v2//tags/list",
    ] {
        assert_eq!(
            code(parse(Method::Get, target)),
            ErrorCode::NameInvalid,
            "{target}"
        );
    }
    // A digest with slashes is not a blob path at all.
    assert_eq!(
        parse(Method::Get, "/v2/a/blobs/sha256:../../x"),
        Err(RouteError::NotFound)
    );
    assert_eq!(
        code(parse(Method::Get, "/v2/a/blobs/sha256:..")),
        ErrorCode::DigestInvalid
    );
    assert_eq!(
        code(parse(Method::Get, "/v2/a/blobs/md5:abcd")),
        ErrorCode::Unsupported
    );
    // A reference that cannot name any manifest: a miss for reads and deletes (the OCI
    // conformance suite asks for `.INVALID_MANIFEST_NAME`), a bad request for a push.
    for method in [Method::Get, Method::Head, Method::Delete] {
        for target in [
            "/v2/a/manifests/.INVALID_MANIFEST_NAME",
            "/v2/a/manifests/sha256:00",
            "/v2/a/manifests/md5:abcd",
        ] {
            let Err(RouteError::Invalid(e)) = parse(method, target) else {
                panic!("{method:?} {target} parsed");
            };
            assert_eq!(
                (e.code, e.status),
                (ErrorCode::ManifestUnknown, 404),
                "{method:?} {target}"
            );
        }
    }
    assert_eq!(
        code(parse(Method::Put, "/v2/a/manifests/.bad")),
        ErrorCode::ManifestInvalid
    );
    assert_eq!(
        code(parse(Method::Put, "/v2/a/manifests/sha256:00")),
        ErrorCode::DigestInvalid
    );
    assert_eq!(
        code(parse(Method::Patch, "/v2/a/blobs/uploads/..")),
        ErrorCode::BlobUploadUnknown
    );
    assert_eq!(
        code(parse(Method::Put, "/v2/a/blobs/uploads/x")),
        ErrorCode::DigestInvalid
    );
    assert_eq!(
        code(parse(Method::Get, "/v2/a/tags/list?n=-1")),
        ErrorCode::Unsupported
    );
    assert_eq!(
        code(parse(Method::Get, "/v2/_catalog?n=abc")),
        ErrorCode::Unsupported
    );
}

#[test]
fn page_size_is_capped() {
    let page = |q: &str| match parse(Method::Get, &format!("/v2/a/tags/list?{q}")) {
        Ok(Route::TagsList { page, .. }) => page.n,
        other => panic!("{other:?}"),
    };
    assert_eq!(page("n=5000"), Some(MAX_PAGE_SIZE));
    assert_eq!(page("n=10"), Some(10));
    assert_eq!(
        code(parse(
            Method::Get,
            "/v2/a/tags/list?n=99999999999999999999999"
        )),
        ErrorCode::Unsupported
    );
}

#[test]
fn unknown_paths_and_methods() {
    assert_eq!(parse(Method::Get, "/"), Err(RouteError::NotFound));
    assert_eq!(parse(Method::Get, "/v1/"), Err(RouteError::NotFound));
    assert_eq!(parse(Method::Get, "/v2/a"), Err(RouteError::NotFound));
    assert_eq!(
        parse(Method::Get, "/v2/a/unknown/x"),
        Err(RouteError::NotFound)
    );
    assert_eq!(
        parse(Method::Post, "/v2/"),
        Err(RouteError::MethodNotAllowed)
    );
    assert_eq!(
        parse(Method::Patch, "/v2/a/manifests/latest"),
        Err(RouteError::MethodNotAllowed)
    );
    assert_eq!(
        parse(Method::Get, "/v2/a/blobs/uploads/"),
        Err(RouteError::MethodNotAllowed)
    );
    assert_eq!(
        parse(Method::Post, "/v2/a/tags/list"),
        Err(RouteError::MethodNotAllowed)
    );
}

#[test]
fn urls_round_trip_through_the_parser() {
    let n = name("a/b");
    let d: Digest = D.parse().unwrap();
    let id = UploadId::parse("u1").unwrap();
    assert_eq!(
        parse(Method::Get, &blob_url(&n, &d)),
        Ok(Route::BlobGet {
            name: n.clone(),
            digest: d.clone(),
            head: false
        })
    );
    assert_eq!(
        parse(Method::Get, &upload_url(&n, &id)),
        Ok(Route::UploadStatus {
            name: n.clone(),
            id
        })
    );
    let r = Reference::Digest(d);
    assert_eq!(
        parse(Method::Get, &manifest_url(&n, &r)),
        Ok(Route::ManifestGet {
            name: n.clone(),
            reference: r,
            head: false
        })
    );
    let link = next_page_url(&tags_path(&n), 5, "v1.0");
    assert_eq!(link, "/v2/a/b/tags/list?n=5&last=v1.0");
    assert_eq!(
        parse(Method::Get, &link),
        Ok(Route::TagsList {
            name: n,
            page: Page {
                n: Some(5),
                last: Some("v1.0".into())
            }
        })
    );
    assert_eq!(
        next_page_url(CATALOG_PATH, 2, "a/b"),
        "/v2/_catalog?n=2&last=a%2Fb"
    );
}

#[test]
fn minted_upload_ids_are_uuid_v7_carrying_their_time() {
    let millis = 1_795_731_356_789;
    let id = UploadId::mint(millis, [0xff; 10]);
    let s = id.as_str();
    assert_eq!(s.len(), 36);
    // 48 bits of milliseconds, big-endian, first.
    assert_eq!(
        &s[..13],
        format!("{:08x}-{:04x}", millis >> 16, millis & 0xffff)
    );
    assert_eq!(s.as_bytes()[14], b'7', "version 7: {s}");
    assert_eq!(
        s.as_bytes()[19],
        b'b',
        "variant 10 with the random bits set: {s}"
    );
    assert_eq!(UploadId::parse(s), Some(id.clone()), "a valid id");
    assert_eq!(id.minted_unix_secs(), Some(1_795_731_356));
    assert_eq!(
        UploadId::mint(0, [0; 10]).as_str(),
        "00000000-0000-7000-8000-000000000000"
    );
    assert_eq!(UploadId::mint(0, [0; 10]).minted_unix_secs(), Some(0));
}

#[test]
fn ids_of_other_shapes_have_no_minting_time() {
    for other in [
        "8383096f-1d43-4b9d-a3be-f3ce47e39531", // v4, from older versions
        "u1",
        "0190b2c4-5d6e-7f00-c000-000000000000", // variant bits not 10
        "0190B2C4-5D6E-7F00-8000-000000000000", // not lowercase
        "0190b2c4x5d6e-7f00-8000-000000000000",
    ] {
        let id = UploadId::parse(other).unwrap();
        assert_eq!(id.minted_unix_secs(), None, "{other}");
    }
}
