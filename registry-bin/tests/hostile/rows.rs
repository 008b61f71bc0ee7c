//! The table: request bytes and what each must get. One row per line, so
//! the table stays readable (`rustfmt::skip`).

use super::{Expect, Row, Target, OCI_INDEX, OCI_MANIFEST, REPO, USER};
use crate::raw::{request, Ending};

use base64::Engine as _;

fn basic(credentials: &[u8]) -> String {
    format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

#[rustfmt::skip]
pub(crate) fn rows(t: &Target) -> Vec<Row> {
    use Expect::{ClosedOr4xx, Spec, Status};
    let good = t.manifest(OCI_MANIFEST);
    let oci = format!("Content-Type: {OCI_MANIFEST}");
    let oci: &[u8] = oci.as_bytes();
    let hex64 = &t.blob["sha256:".len()..];
    let blob = format!("/v2/{REPO}/blobs/{}", t.blob);
    let long_name = "a".repeat(300);
    let deep_name = vec!["a"; 300].join("/");
    let long_tag = "t".repeat(129);
    let big_header = format!("X-Filler: {}", "f".repeat(1100 * 1024));
    let long_target = format!("/v2/{REPO}/tags/list?last={}", "x".repeat(70 * 1024));
    let many_headers: Vec<String> = (0..200).map(|i| format!("X-H{i}: v")).collect();
    let many_headers: Vec<&[u8]> = many_headers.iter().map(String::as_bytes).collect();
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let body100 = vec![b'x'; 100];
    let size = format!("\"size\":{}", t.blob_len);
    let p = |s: String| s.into_bytes();
    let mut rows = vec![
        // Path traversal in repository names.
        t.row("dot-dot name", "GET", b"/v2/../../canary/tags/list", &[], b"", Spec(400, "NAME_INVALID")),
        t.row("dot-dot inside name", "GET", b"/v2/hostile/../../../canary/manifests/latest", &[], b"", Spec(400, "NAME_INVALID")),
        t.row("encoded dot-dot name", "GET", b"/v2/%2e%2e/%2e%2e/canary/tags/list", &[], b"", Spec(400, "NAME_INVALID")),
        t.row("encoded slash in name", "GET", b"/v2/hostile%2F..%2F..%2Fcanary/tags/list", &[], b"", Spec(400, "NAME_INVALID")),
        t.row("dot component", "GET", b"/v2/./hostile/tags/list", &[], b"", Spec(400, "NAME_INVALID")),
        t.row("dot-dot name on push", "POST", &p(format!("/v2/../canary/blobs/uploads/?digest={}", t.blob)), &[], b"hello", Spec(400, "NAME_INVALID")),
        t.row("encoded dot-dot name on manifest put", "PUT", b"/v2/..%2fcanary/manifests/x", &[oci], good.as_bytes(), Spec(400, "NAME_INVALID")),
        t.row("mount from dot-dot", "POST", &p(format!("/v2/{REPO}/blobs/uploads/?mount={}&from=../../canary", t.blob)), &[], b"", Spec(400, "NAME_INVALID")),
        // Absolute paths.
        t.row("absolute path", "GET", b"//etc/passwd", &[], b"", Spec(404, "UNSUPPORTED")),
        t.row("dot-dot above the root", "GET", b"/../../etc/passwd", &[], b"", Spec(404, "UNSUPPORTED")),
        t.row("empty first name component", "GET", b"/v2//etc/passwd/manifests/latest", &[], b"", Spec(400, "NAME_INVALID")),
        t.row("absolute path as blob", "GET", &p(format!("/v2/{REPO}/blobs//etc/passwd")), &[], b"", Spec(404, "UNSUPPORTED")),
        t.row("absolute-form target", "GET", b"http://registry.test//etc/passwd", &[], b"", Spec(404, "UNSUPPORTED")),
        // Tags.
        t.row("dot-dot tag", "GET", &p(format!("/v2/{REPO}/manifests/..")), &[], b"", Spec(404, "MANIFEST_UNKNOWN")),
        t.row("encoded dot-dot tag", "GET", &p(format!("/v2/{REPO}/manifests/%2e%2e")), &[], b"", Spec(404, "MANIFEST_UNKNOWN")),
        t.row("traversal tag on put", "PUT", &p(format!("/v2/{REPO}/manifests/..%2F..%2Fescape")), &[oci], good.as_bytes(), Spec(400, "MANIFEST_INVALID")),
        t.row("traversal in ?tag=", "PUT", &p(format!("/v2/{REPO}/manifests/good?tag=../../escape")), &[oci], good.as_bytes(), Spec(400, "MANIFEST_INVALID")),
        t.row("temp-file-like tag", "GET", &p(format!("/v2/{REPO}/manifests/.tmp-x")), &[], b"", Spec(404, "MANIFEST_UNKNOWN")),
        t.row("temp-file-like tag on put", "PUT", &p(format!("/v2/{REPO}/manifests/.tmp-x")), &[oci], good.as_bytes(), Spec(400, "MANIFEST_INVALID")),
        t.row("traversal tag on delete", "DELETE", &p(format!("/v2/{REPO}/manifests/..%2Fgood")), &[], b"", Spec(404, "MANIFEST_UNKNOWN")),
        t.row("129-character tag", "GET", &p(format!("/v2/{REPO}/manifests/{long_tag}")), &[], b"", Spec(404, "MANIFEST_UNKNOWN")),
        t.row("129-character tag on put", "PUT", &p(format!("/v2/{REPO}/manifests/{long_tag}")), &[oci], good.as_bytes(), Spec(400, "MANIFEST_INVALID")),
        // Digests.
        t.row("encoded traversal digest", "GET", &p(format!("/v2/{REPO}/blobs/sha256:..%2F..%2F..%2Fcanary")), &[], b"", Spec(400, "DIGEST_INVALID")),
        t.row("traversal digest", "GET", &p(format!("/v2/{REPO}/blobs/sha256:../../../canary/secret")), &[], b"", Spec(404, "UNSUPPORTED")),
        t.row("traversal digest as reference", "GET", &p(format!("/v2/{REPO}/manifests/sha256:..%2F..")), &[], b"", Spec(404, "MANIFEST_UNKNOWN")),
        t.row("traversal digest as reference on put", "PUT", &p(format!("/v2/{REPO}/manifests/sha256:..%2F..")), &[oci], good.as_bytes(), Spec(400, "DIGEST_INVALID")),
        t.row("short digest", "GET", &p(format!("/v2/{REPO}/blobs/sha256:abc")), &[], b"", Spec(400, "DIGEST_INVALID")),
        t.row("long digest", "GET", &p(format!("/v2/{REPO}/blobs/sha256:{hex64}0")), &[], b"", Spec(400, "DIGEST_INVALID")),
        t.row("upper-case digest", "GET", &p(format!("/v2/{REPO}/blobs/sha256:{}", hex64.to_ascii_uppercase())), &[], b"", Spec(400, "DIGEST_INVALID")),
        t.row("unknown algorithm", "GET", &p(format!("/v2/{REPO}/blobs/md5:d41d8cd98f00b204e9800998ecf8427e")), &[], b"", Spec(400, "UNSUPPORTED")),
        t.row("sha512 of sha256 length", "GET", &p(format!("/v2/{REPO}/blobs/sha512:{hex64}")), &[], b"", Spec(400, "DIGEST_INVALID")),
        t.row("short digest on push", "POST", &p(format!("/v2/{REPO}/blobs/uploads/?digest=sha256:abc")), &[], b"hello", Spec(400, "DIGEST_INVALID")),
        t.row("traversal digest on push", "POST", &p(format!("/v2/{REPO}/blobs/uploads/?digest=sha256:../../canary")), &[], b"hello", Spec(400, "DIGEST_INVALID")),
        t.row("unknown digest-algorithm", "POST", &p(format!("/v2/{REPO}/blobs/uploads/?digest-algorithm=md5")), &[], b"", Spec(400, "UNSUPPORTED")),
        t.row("traversal referrers subject", "GET", &p(format!("/v2/{REPO}/referrers/sha256:..")), &[], b"", Spec(400, "DIGEST_INVALID")),
        // NUL bytes.
        t.row("encoded NUL in name", "GET", b"/v2/hostile%00/tags/list", &[], b"", Spec(400, "NAME_INVALID")),
        t.row("encoded NUL in tag", "GET", &p(format!("/v2/{REPO}/manifests/good%00")), &[], b"", Spec(404, "MANIFEST_UNKNOWN")),
        t.row("encoded NUL in digest", "GET", &p(format!("/v2/{REPO}/blobs/{}%00", t.blob)), &[], b"", Spec(400, "DIGEST_INVALID")),
        t.row("raw NUL in path", "GET", b"/v2/hostile\0/tags/list", &[], b"", Status(&[400])),
        t.row("raw NUL in a header", "GET", &p(format!("/v2/{REPO}/tags/list")), &[b"X-Evil: a\0b"], b"", Status(&[400])),
        // Long names and headers.
        t.row("300-character name", "GET", &p(format!("/v2/{long_name}/tags/list")), &[], b"", Spec(400, "NAME_INVALID")),
        t.row("300-component name", "GET", &p(format!("/v2/{deep_name}/tags/list")), &[], b"", Spec(400, "NAME_INVALID")),
        t.row("header over 1 MiB", "GET", b"/v2/", &[big_header.as_bytes()], b"", Status(&[431])),
        t.row("request target over 64 KiB", "GET", long_target.as_bytes(), &[], b"", Status(&[414, 431])),
        t.row("200 headers", "GET", b"/v2/", &many_headers, b"", Status(&[431])),
        // Invalid UTF-8.
        t.row("raw invalid UTF-8 in path", "GET", b"/v2/host\xffile/tags/list", &[], b"", Status(&[400])),
        t.row("encoded invalid UTF-8 in path", "GET", b"/v2/host%ff%feile/tags/list", &[], b"", Spec(400, "NAME_INVALID")),
        t.row("invalid UTF-8 content type", "PUT", &p(format!("/v2/{REPO}/manifests/utf8")), &[b"Content-Type: \xff\xfe"], br#"{"schemaVersion":2}"#, Spec(400, "MANIFEST_INVALID")),
        t.anonymous("invalid UTF-8 Authorization", "GET", b"/v2/", &[b"Authorization: Basic \xff\xfe\xfd"], Spec(401, "UNAUTHORIZED")),
        t.anonymous("credentials of invalid UTF-8", "GET", b"/v2/", &[basic(b"\xff\xfe:\xc3\x28").as_bytes()], Spec(401, "UNAUTHORIZED")),
        t.anonymous("credentials without a colon", "GET", b"/v2/", &[basic(USER.as_bytes()).as_bytes()], Spec(401, "UNAUTHORIZED")),
        t.anonymous("40 KiB password", "GET", b"/v2/", &[basic(format!("{USER}:{}", "p".repeat(40 * 1024)).as_bytes()).as_bytes()], Spec(401, "UNAUTHORIZED")),
        t.anonymous("no credentials", "GET", &p(format!("/v2/{REPO}/tags/list")), &[], Spec(401, "UNAUTHORIZED")),
        t.anonymous("bearer scheme", "GET", b"/v2/", &[b"Authorization: Bearer ../../canary"], Spec(401, "UNAUTHORIZED")),
        // Ambiguous requests: a proxy in front may have read the other field.
        t.row("a second, wrong Authorization", "GET", &p(format!("/v2/{REPO}/tags/list")), &[basic(format!("{USER}:wrong").as_bytes()).as_bytes()], b"", Spec(400, "UNSUPPORTED")),
        t.row("a second Host", "GET", &p(format!("/v2/{REPO}/tags/list")), &[b"Host: other.test"], b"", Status(&[400])),
        // Content types and bodies of manifest PUT.
        t.row("text/plain manifest", "PUT", &p(format!("/v2/{REPO}/manifests/ct1")), &[b"Content-Type: text/plain"], good.as_bytes(), Spec(400, "MANIFEST_INVALID")),
        t.row("index content type on an image", "PUT", &p(format!("/v2/{REPO}/manifests/ct2")), &[format!("Content-Type: {OCI_INDEX}").as_bytes()], good.as_bytes(), Spec(400, "MANIFEST_INVALID")),
        t.row("no content type, shapeless body", "PUT", &p(format!("/v2/{REPO}/manifests/ct3")), &[], br#"{"schemaVersion":2}"#, Spec(400, "MANIFEST_INVALID")),
        t.row("unknown manifest content type", "PUT", &p(format!("/v2/{REPO}/manifests/ct4")), &[b"Content-Type: application/vnd.evil+json"], good.as_bytes(), Spec(400, "MANIFEST_INVALID")),
        t.row("deeply nested JSON", "PUT", &p(format!("/v2/{REPO}/manifests/deep")), &[oci], nested.as_bytes(), Spec(400, "MANIFEST_INVALID")),
        t.row("traversal digest inside a manifest", "PUT", &p(format!("/v2/{REPO}/manifests/inner")), &[oci], good.replace(&t.blob, "sha256:../../../canary").as_bytes(), Spec(400, "MANIFEST_INVALID")),
        t.row("manifest size beyond u64", "PUT", &p(format!("/v2/{REPO}/manifests/huge-size")), &[oci], good.replace(&size, "\"size\":1e400").as_bytes(), Spec(400, "MANIFEST_INVALID")),
        t.row("negative size in a manifest", "PUT", &p(format!("/v2/{REPO}/manifests/neg-size")), &[oci], good.replace(&size, "\"size\":-1").as_bytes(), Spec(400, "MANIFEST_INVALID")),
        t.row("5 MiB manifest announced", "PUT", &p(format!("/v2/{REPO}/manifests/big")), &[oci, b"Content-Length: 5242880"], b"{", Spec(413, "SIZE_INVALID")),
        // Pagination.
        t.row("huge n on the catalog", "GET", b"/v2/_catalog?n=99999999999999999999", &[], b"", Spec(400, "UNSUPPORTED")),
        t.row("negative n on the catalog", "GET", b"/v2/_catalog?n=-1", &[], b"", Spec(400, "UNSUPPORTED")),
        t.row("huge n on tags", "GET", &p(format!("/v2/{REPO}/tags/list?n=99999999999999999999")), &[], b"", Spec(400, "UNSUPPORTED")),
        t.row("negative n on tags", "GET", &p(format!("/v2/{REPO}/tags/list?n=-5")), &[], b"", Spec(400, "UNSUPPORTED")),
        t.row("n with a NUL", "GET", &p(format!("/v2/{REPO}/tags/list?n=1%00")), &[], b"", Spec(400, "UNSUPPORTED")),
        // Range on blob reads: unsatisfiable or unparsable `bytes=` ranges are 416, as
        // RFC 9110 allows and the standard registry does (other units and several ranges
        // are ignored: checked after the table).
        t.row("range past the end", "GET", blob.as_bytes(), &[b"Range: bytes=1000000-"], b"", Spec(416, "BLOB_UNKNOWN")),
        t.row("inverted range", "GET", blob.as_bytes(), &[b"Range: bytes=500-0"], b"", Spec(416, "BLOB_UNKNOWN")),
        t.row("junk range", "GET", blob.as_bytes(), &[b"Range: bytes=abc"], b"", Spec(416, "BLOB_UNKNOWN")),
        t.row("range beyond u64", "GET", blob.as_bytes(), &[b"Range: bytes=99999999999999999999999-"], b"", Spec(416, "BLOB_UNKNOWN")),
        t.row("control character in Range", "GET", blob.as_bytes(), &[b"Range: bytes=\x01-2"], b"", Status(&[400])),
        t.row("empty suffix range", "GET", blob.as_bytes(), &[b"Range: bytes=-0"], b"", Spec(416, "BLOB_UNKNOWN")),
        // Unknown methods.
        t.row("unknown method", "FOO", b"/v2/", &[], b"", Spec(405, "UNSUPPORTED")),
        t.row("TRACE", "TRACE", b"/v2/", &[], b"", Spec(405, "UNSUPPORTED")),
        t.row("OPTIONS on uploads", "OPTIONS", &p(format!("/v2/{REPO}/blobs/uploads/")), &[], b"", Spec(405, "UNSUPPORTED")),
        t.row("PATCH on a manifest", "PATCH", &p(format!("/v2/{REPO}/manifests/good")), &[], b"x", Spec(405, "UNSUPPORTED")),
        t.row("lower-case get", "get", b"/v2/", &[], b"", Spec(405, "UNSUPPORTED")),
        t.row("CONNECT", "CONNECT", b"127.0.0.1:22", &[], b"", ClosedOr4xx),
        // Bodies longer than announced: the surplus is read as the next request.
        t.row("blob longer than announced", "POST", &p(format!("/v2/{REPO}/blobs/uploads/?digest={}", crate::sha256(&body100))), &[b"Content-Length: 10"], &body100, Spec(400, "DIGEST_INVALID")),
        t.row("manifest longer than announced", "PUT", &p(format!("/v2/{REPO}/manifests/longer")), &[oci, b"Content-Length: 10"], good.as_bytes(), Spec(400, "MANIFEST_INVALID")),
        // Framing that hyper refuses before the registry sees anything.
        t.row("non-numeric Content-Length", "POST", &p(format!("/v2/{REPO}/blobs/uploads/")), &[b"Content-Length: abc"], b"", Status(&[400])),
        t.row("negative Content-Length", "POST", &p(format!("/v2/{REPO}/blobs/uploads/")), &[b"Content-Length: -1"], b"", Status(&[400])),
        t.row("Content-Length beyond u64", "POST", &p(format!("/v2/{REPO}/blobs/uploads/")), &[b"Content-Length: 99999999999999999999999"], b"", Status(&[400])),
        t.row("two Content-Lengths", "POST", &p(format!("/v2/{REPO}/blobs/uploads/?digest={}", crate::sha256(b"hello"))), &[b"Content-Length: 5", b"Content-Length: 6"], b"hello!", Status(&[400])),
        t.row("bad chunk size", "POST", &p(format!("/v2/{REPO}/blobs/uploads/?digest={}", crate::sha256(b"hello"))), &[b"Transfer-Encoding: chunked"], b"zz\r\nhello\r\n0\r\n\r\n", ClosedOr4xx),
        t.row("Content-Length with chunked", "POST", &p(format!("/v2/{REPO}/blobs/uploads/?digest={}", crate::sha256(b"nope"))), &[b"Transfer-Encoding: chunked", b"Content-Length: 3"], b"5\r\nhello\r\n0\r\n\r\n", Status(&[400])),
        t.row("space in a header name", "GET", b"/v2/", &[b"Bad Header: x"], b"", Status(&[400])),
    ];
    // Bodies shorter than announced: the client stops and half-closes.
    for (what, method, target, headers) in [
        ("blob shorter than announced", "POST", format!("/v2/{REPO}/blobs/uploads/?digest={}", t.blob), &[][..]),
        ("chunk shorter than announced", "PATCH", t.upload(), &[]),
        ("last chunk shorter than announced", "PUT", format!("{}?digest={}", t.upload(), t.blob), &[]),
        ("manifest shorter than announced", "PUT", format!("/v2/{REPO}/manifests/short"), &[oci]),
    ] {
        let mut all: Vec<&[u8]> = vec![&t.auth, b"Content-Length: 1000"];
        all.extend_from_slice(headers);
        let mut bytes = request(method, target.as_bytes(), &all, b"");
        bytes.extend_from_slice(&[b'x'; 10]);
        rows.push(Row { what: what.to_owned(), bytes, ending: Ending::HalfClose, expect: ClosedOr4xx });
    }
    // Content-Range on chunks, each on a fresh upload.
    for (what, range, length, expect) in [
        ("Content-Range not at the offset", "5-10", 6, Spec(416, "BLOB_UPLOAD_INVALID")),
        ("reversed Content-Range", "10-5", 6, Spec(400, "BLOB_UPLOAD_INVALID")),
        ("Content-Range beyond u64", "0-99999999999999999999999", 6, Spec(400, "BLOB_UPLOAD_INVALID")),
        ("Content-Range of junk", "abc", 6, Spec(400, "BLOB_UPLOAD_INVALID")),
        ("negative Content-Range", "-1-5", 6, Spec(400, "BLOB_UPLOAD_INVALID")),
        ("Content-Range with a NUL", "0-5\0", 6, Status(&[400])),
        ("Content-Range and Content-Length disagree", "0-9", 4, Spec(400, "SIZE_INVALID")),
        ("Content-Range of 10^19 bytes", "0-9999999999999999999", 6, Spec(400, "SIZE_INVALID")),
    ] {
        let range = format!("Content-Range: {range}");
        let length = format!("Content-Length: {length}");
        rows.push(t.row(what, "PATCH", t.upload().as_bytes(), &[range.as_bytes(), length.as_bytes()], b"yyyyyy", expect));
    }
    rows.extend([
        t.row("upload id of dot-dot", "PATCH", &p(format!("/v2/{REPO}/blobs/uploads/..")), &[], b"x", Spec(404, "BLOB_UPLOAD_UNKNOWN")),
        t.row("upload id with encoded slashes", "GET", &p(format!("/v2/{REPO}/blobs/uploads/..%2F..%2Fcanary")), &[], b"", Spec(404, "BLOB_UPLOAD_UNKNOWN")),
        t.row("unknown upload id", "PATCH", &p(format!("/v2/{REPO}/blobs/uploads/nope")), &[], b"x", Spec(404, "BLOB_UPLOAD_UNKNOWN")),
        t.row("upload of another repository", "PATCH", t.upload().replace(REPO, "other").as_bytes(), &[], b"x", Spec(404, "BLOB_UPLOAD_UNKNOWN")),
        t.row("wrong digest on completion", "PUT", &p(format!("{}?digest={}", t.upload(), crate::sha256(b"not this"))), &[], b"this", Spec(400, "DIGEST_INVALID")),
        // Requests cut off midway, and bytes that are not HTTP/1.1 at all.
        t.verbatim("headers cut off", p(format!("GET /v2/{REPO}/tags/list HTTP/1.1\r\nHost: x\r\nAuthoriz")), ClosedOr4xx),
        t.verbatim("request line cut off", b"GET /v2/hos".to_vec(), ClosedOr4xx),
        t.verbatim("HTTP/1.1 without Host", p(format!("GET /v2/{REPO}/tags/list HTTP/1.1\r\n{}\r\n\r\n", String::from_utf8_lossy(&t.auth))), Spec(400, "UNSUPPORTED")),
        t.verbatim("nothing at all", Vec::new(), ClosedOr4xx),
        t.verbatim("TLS hello on plain HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), ClosedOr4xx),
        t.verbatim("HTTP/2 preface then junk", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(), ClosedOr4xx),
    ]);
    rows
}
