//! Reading S3 failures: the `<Error>` body, and the operator-facing reason text of
//! [`StorageError::Unavailable`](crate::StorageError::Unavailable).

use std::error::Error as _;

use reqwest::StatusCode;

/// The code and message of an S3 `<Error>` body (`<Error><Code>NoSuchKey</Code>...`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    /// `NoSuchKey`, `SlowDown`, ...; empty when the answer had no error body (HEAD).
    pub(crate) code: String,
    /// The human-readable message, possibly empty.
    pub(crate) message: String,
}

impl ErrorBody {
    /// The error in `body`, if it is an S3 `<Error>` document.
    pub(crate) fn parse(body: &str) -> Option<ErrorBody> {
        let error = element(body, "Error")?;
        Some(ErrorBody {
            code: element(error, "Code").map(unescape).unwrap_or_default(),
            message: element(error, "Message").map(unescape).unwrap_or_default(),
        })
    }
}

/// The text inside the first `<tag>...</tag>` of `xml` (attributes on the opening tag
/// allowed). The S3 answers read this way are flat and small; the listings go through
/// rusty-s3's parser.
pub(crate) fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(at) = xml[from..].find(&format!("<{tag}")) {
        let open = from + at;
        let rest = &xml[open + 1 + tag.len()..];
        from = open + 1;
        let end_of_open = rest.find('>')?;
        // `<Code>` must not match `<CodeX>`.
        if !matches!(
            rest.as_bytes().first(),
            Some(b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n')
        ) {
            continue;
        }
        if rest[..end_of_open].ends_with('/') {
            return Some("");
        }
        let inner = &rest[end_of_open + 1..];
        return inner
            .find(&format!("</{tag}>"))
            .map(|close| &inner[..close]);
    }
    None
}

/// XML character references and the five predefined entities, decoded.
pub(crate) fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

/// Why an answer with `status` and `error` is a failure, for operators: credentials,
/// a missing bucket and clock skew are named as such; everything else names the code,
/// the status and the message.
pub(crate) fn status_reason(bucket: &str, status: StatusCode, error: &ErrorBody) -> String {
    let code = if error.code.is_empty() {
        "no error code"
    } else {
        error.code.as_str()
    };
    let detail = if error.message.is_empty() {
        String::new()
    } else {
        format!(": {}", error.message)
    };
    match error.code.as_str() {
        "NoSuchBucket" => format!("bucket {bucket} does not exist (HTTP {status})"),
        "RequestTimeTooSkewed" => {
            format!(
                "clock skew: the server refused the request time ({code}, HTTP {status}{detail})"
            )
        }
        _ if status == StatusCode::FORBIDDEN => {
            format!("credentials refused: {code} (HTTP {status}{detail})")
        }
        _ => format!("S3 answered {code} (HTTP {status}{detail})"),
    }
}

/// Why a request got no answer: TLS failures, unreachable endpoints and timeouts named
/// as such, with the whole chain of causes.
pub(crate) fn transport_reason(endpoint: &str, err: &reqwest::Error) -> String {
    let mut chain = err.to_string();
    // The URL's query is a presigned request: its signature is a credential for minutes.
    if let Some(url) = err.url() {
        let mut shown = url.clone();
        shown.set_query(None);
        chain = chain.replace(url.as_str(), shown.as_str());
    }
    let mut tls = false;
    let mut cause = err.source();
    while let Some(e) = cause {
        chain.push_str(": ");
        chain.push_str(&e.to_string());
        tls |= is_tls(e);
        cause = e.source();
    }
    if tls {
        format!("TLS failure talking to {endpoint}: {chain}")
    } else if err.is_timeout() {
        format!("S3 endpoint {endpoint} timed out: {chain}")
    } else if err.is_connect() {
        format!("S3 endpoint {endpoint} unreachable: {chain}")
    } else {
        format!("S3 request to {endpoint} failed: {chain}")
    }
}

/// True for a rustls error, also inside io::Errors (tokio-rustls wraps it in one, the
/// connector in another), whose `source` skips what they wrap.
fn is_tls(err: &(dyn std::error::Error + 'static)) -> bool {
    err.is::<rustls::Error>()
        || err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| is_tls(inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_error_body() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>a &amp; b</Message><BucketName>b</BucketName></Error>"#;
        assert_eq!(
            ErrorBody::parse(body),
            Some(ErrorBody {
                code: "NoSuchKey".into(),
                message: "a & b".into()
            })
        );
        assert_eq!(ErrorBody::parse("<CompleteMultipartUploadResult/>"), None);
    }

    #[test]
    fn element_skips_longer_tags_and_reads_empty_ones() {
        assert_eq!(element("<CodeX>1</CodeX><Code>2</Code>", "Code"), Some("2"));
        assert_eq!(element(r#"<ETag a="b">x</ETag>"#, "ETag"), Some("x"));
        assert_eq!(element("<ETag/>", "ETag"), Some(""));
        assert_eq!(element("<ETag>", "ETag"), None);
    }

    #[test]
    fn reasons_name_the_cause() {
        let e = |code: &str| ErrorBody {
            code: code.into(),
            message: String::new(),
        };
        assert_eq!(
            status_reason("b", StatusCode::NOT_FOUND, &e("NoSuchBucket")),
            "bucket b does not exist (HTTP 404 Not Found)"
        );
        assert_eq!(
            status_reason("b", StatusCode::FORBIDDEN, &e("SignatureDoesNotMatch")),
            "credentials refused: SignatureDoesNotMatch (HTTP 403 Forbidden)"
        );
        assert!(
            status_reason("b", StatusCode::FORBIDDEN, &e("RequestTimeTooSkewed"))
                .starts_with("clock skew")
        );
        assert_eq!(
            status_reason("b", StatusCode::SERVICE_UNAVAILABLE, &e("SlowDown")),
            "S3 answered SlowDown (HTTP 503 Service Unavailable)"
        );
    }
}
