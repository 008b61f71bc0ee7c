//! The route table: method + path + query to a typed [`Route`], and back to
//! the URLs the registry sends in `Location` and `Link` headers.
//!
//! Repository names contain slashes, so routes are recognised from the END
//! of the path: the last segments (`tags/list`, `manifests/<ref>`,
//! `blobs/<digest>`, `blobs/uploads/<id>`, `referrers/<digest>`) pick the
//! endpoint and everything before them is the name. The path is never
//! percent-decoded: none of the grammars admit `%`, so an encoded `..` is
//! simply an invalid name.

use crate::digest::{Algorithm, Digest, DigestError};
use crate::error::{ErrorCode, RegistryError};
use crate::name::{NameError, Reference, RepoName, Tag};
use crate::pagination::{Page, MAX_PAGE_SIZE};

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// Parses an HTTP method token; `None` for methods the API never uses.
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }
}

/// An upload session id, as minted by the server: 1 to 64 characters of
/// `[A-Za-z0-9_-]`, so it is safe as a path component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(String);

impl UploadId {
    /// Validates an id taken from a URL or from storage.
    pub fn parse(s: &str) -> Option<UploadId> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| UploadId(s.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Mints a new id: a UUIDv7 (RFC 9562, section 5.7) from the caller's clock
    /// (`unix_millis`) and 10 random bytes (74 of their bits are used), as this
    /// crate reads neither a clock nor a random source.
    ///
    /// The id carries its own start time so that storage needs no second file per
    /// upload to find abandoned ones: every file created and deleted per push costs
    /// the file system an inode allocation and, later, a free.
    pub fn mint(unix_millis: u64, random: [u8; 10]) -> UploadId {
        let mut b = [0u8; 16];
        // 48 bits of milliseconds (enough until the year 10889).
        b[..6].copy_from_slice(&unix_millis.to_be_bytes()[2..]);
        b[6] = 0x70 | (random[0] & 0x0f);
        b[7] = random[1];
        b[8] = 0x80 | (random[2] & 0x3f);
        b[9..].copy_from_slice(&random[3..]);
        let hex = hex::encode(b);
        UploadId(format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        ))
    }

    /// When [`UploadId::mint`] made this id, in unix seconds; `None` for an id that is
    /// not a UUIDv7 (one an older version minted), whose age is unknown.
    pub fn minted_unix_secs(&self) -> Option<u64> {
        let s = self.0.as_bytes();
        let shaped = s.len() == 36
            && [8, 13, 18, 23].iter().all(|&i| s[i] == b'-')
            && s[14] == b'7'
            && matches!(s[19], b'8' | b'9' | b'a' | b'b')
            && s.iter().enumerate().all(|(i, c)| {
                matches!(i, 8 | 13 | 18 | 23) || matches!(c, b'0'..=b'9' | b'a'..=b'f')
            });
        if !shaped {
            return None;
        }
        let high = u64::from_str_radix(&self.0[..8], 16).ok()?;
        let low = u64::from_str_radix(&self.0[9..13], 16).ok()?;
        Some(((high << 16) | low) / 1000)
    }
}

impl std::fmt::Display for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a `POST .../blobs/uploads/` wants to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStart {
    /// Open a session; `algorithm` from `?digest-algorithm=` (default sha256).
    Session {
        /// The hash the session computes while bytes stream in.
        algorithm: Algorithm,
    },
    /// `?digest=`: the body is the whole blob.
    Monolithic {
        /// The digest the body must hash to.
        digest: Digest,
    },
    /// `?mount=&from=`: link an existing blob; `from: None` lets the registry
    /// pick any repository the caller may pull from.
    Mount {
        /// The blob to mount.
        digest: Digest,
        /// The source repository, when given.
        from: Option<RepoName>,
    },
}

/// One endpoint of the API, with its validated parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// `GET /v2/`
    Base,
    /// `GET /v2/_catalog?n=&last=`
    Catalog {
        /// Pagination.
        page: Page,
    },
    /// `GET /v2/<name>/tags/list?n=&last=`
    TagsList {
        /// Repository.
        name: RepoName,
        /// Pagination.
        page: Page,
    },
    /// `GET|HEAD /v2/<name>/manifests/<reference>`
    ManifestGet {
        /// Repository.
        name: RepoName,
        /// Tag or digest.
        reference: Reference,
        /// HEAD: headers only.
        head: bool,
    },
    /// `PUT /v2/<name>/manifests/<reference>?tag=...`
    ManifestPut {
        /// Repository.
        name: RepoName,
        /// Tag or digest.
        reference: Reference,
        /// Extra tags from `?tag=` (spec main branch).
        tags: Vec<Tag>,
    },
    /// `DELETE /v2/<name>/manifests/<reference>`
    ManifestDelete {
        /// Repository.
        name: RepoName,
        /// Tag (removes the tag) or digest (removes the manifest).
        reference: Reference,
    },
    /// `GET|HEAD /v2/<name>/blobs/<digest>`
    BlobGet {
        /// Repository.
        name: RepoName,
        /// Blob.
        digest: Digest,
        /// HEAD: headers only.
        head: bool,
    },
    /// `DELETE /v2/<name>/blobs/<digest>`
    BlobDelete {
        /// Repository.
        name: RepoName,
        /// Blob.
        digest: Digest,
    },
    /// `POST /v2/<name>/blobs/uploads/`
    UploadStart {
        /// Repository.
        name: RepoName,
        /// Session, monolithic or mount.
        start: UploadStart,
    },
    /// `PATCH /v2/<name>/blobs/uploads/<id>`
    UploadPatch {
        /// Repository.
        name: RepoName,
        /// Session.
        id: UploadId,
    },
    /// `PUT /v2/<name>/blobs/uploads/<id>?digest=`
    UploadPut {
        /// Repository.
        name: RepoName,
        /// Session.
        id: UploadId,
        /// The digest the whole upload must hash to.
        digest: Digest,
    },
    /// `GET /v2/<name>/blobs/uploads/<id>`
    UploadStatus {
        /// Repository.
        name: RepoName,
        /// Session.
        id: UploadId,
    },
    /// `DELETE /v2/<name>/blobs/uploads/<id>`
    UploadCancel {
        /// Repository.
        name: RepoName,
        /// Session.
        id: UploadId,
    },
    /// `GET /v2/<name>/referrers/<digest>?artifactType=`
    Referrers {
        /// Repository.
        name: RepoName,
        /// The subject.
        digest: Digest,
        /// Filter on the referrer's artifact type.
        artifact_type: Option<String>,
    },
}

impl Route {
    /// The repository the route acts on, if any (for authorization and logs).
    pub fn repository(&self) -> Option<&RepoName> {
        match self {
            Route::Base | Route::Catalog { .. } => None,
            Route::TagsList { name, .. }
            | Route::ManifestGet { name, .. }
            | Route::ManifestPut { name, .. }
            | Route::ManifestDelete { name, .. }
            | Route::BlobGet { name, .. }
            | Route::BlobDelete { name, .. }
            | Route::UploadStart { name, .. }
            | Route::UploadPatch { name, .. }
            | Route::UploadPut { name, .. }
            | Route::UploadStatus { name, .. }
            | Route::UploadCancel { name, .. }
            | Route::Referrers { name, .. } => Some(name),
        }
    }

    /// A short stable label for logs and metrics, e.g. `blob_get`.
    pub fn kind(&self) -> &'static str {
        match self {
            Route::Base => "base",
            Route::Catalog { .. } => "catalog",
            Route::TagsList { .. } => "tags_list",
            Route::ManifestGet { head: true, .. } => "manifest_head",
            Route::ManifestGet { .. } => "manifest_get",
            Route::ManifestPut { .. } => "manifest_put",
            Route::ManifestDelete { .. } => "manifest_delete",
            Route::BlobGet { head: true, .. } => "blob_head",
            Route::BlobGet { .. } => "blob_get",
            Route::BlobDelete { .. } => "blob_delete",
            Route::UploadStart { .. } => "upload_start",
            Route::UploadPatch { .. } => "upload_patch",
            Route::UploadPut { .. } => "upload_put",
            Route::UploadStatus { .. } => "upload_status",
            Route::UploadCancel { .. } => "upload_cancel",
            Route::Referrers { .. } => "referrers",
        }
    }
}

/// Why a request matches no route.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RouteError {
    /// The path is not an API path (404).
    NotFound,
    /// The path is an API path but not for this method (405).
    MethodNotAllowed,
    /// A parameter is invalid; the error says which spec code applies.
    Invalid(RegistryError),
}

impl From<RegistryError> for RouteError {
    fn from(e: RegistryError) -> Self {
        RouteError::Invalid(e)
    }
}

fn name_error(e: NameError, what: &str) -> RouteError {
    let code = match e {
        NameError::InvalidName => ErrorCode::NameInvalid,
        NameError::InvalidTag => ErrorCode::ManifestInvalid,
        NameError::InvalidDigest => ErrorCode::DigestInvalid,
    };
    RouteError::Invalid(RegistryError::new(code).with_message(format!("{e}: {what:?}")))
}

fn digest_error(e: DigestError, what: &str) -> RouteError {
    let code = match e {
        DigestError::Malformed => ErrorCode::DigestInvalid,
        DigestError::Unsupported => ErrorCode::Unsupported,
    };
    RouteError::Invalid(
        RegistryError::new(code)
            .with_status(400)
            .with_message(format!("{e}: {what:?}")),
    )
}

/// Decoded query parameters, in order; repeated keys are kept.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn digest(&self, key: &str) -> Result<Option<Digest>, RouteError> {
        self.get(key)
            .map(|d| d.parse().map_err(|e| digest_error(e, d)))
            .transpose()
    }

    fn page(&self) -> Result<Page, RouteError> {
        let n = match self.get("n") {
            None | Some("") => None,
            Some(n) => Some(
                n.parse::<usize>()
                    .map_err(|_| {
                        RegistryError::new(ErrorCode::Unsupported)
                            .with_status(400)
                            .with_message(format!("invalid pagination parameter n: {n:?}"))
                    })?
                    .min(MAX_PAGE_SIZE),
            ),
        };
        let last = self
            .get("last")
            .filter(|l| !l.is_empty())
            .map(str::to_owned);
        Ok(Page { n, last })
    }
}

fn repo(segments: &[&str]) -> Result<RepoName, RouteError> {
    let joined = segments.join("/");
    joined.parse().map_err(|e| name_error(e, &joined))
}

fn digest(s: &str) -> Result<Digest, RouteError> {
    s.parse().map_err(|e| digest_error(e, s))
}

impl Route {
    /// Maps a request line to a route. `path` is the raw (undecoded) path,
    /// `query` the raw query string without `?`.
    pub fn parse(method: Method, path: &str, query: Option<&str>) -> Result<Route, RouteError> {
        let rest = match path {
            "/v2" | "/v2/" => {
                return match method {
                    Method::Get | Method::Head => Ok(Route::Base),
                    _ => Err(RouteError::MethodNotAllowed),
                }
            }
            _ => path.strip_prefix("/v2/").ok_or(RouteError::NotFound)?,
        };
        let q = Query::parse(query);
        if rest == "_catalog" {
            return match method {
                Method::Get => Ok(Route::Catalog { page: q.page()? }),
                _ => Err(RouteError::MethodNotAllowed),
            };
        }
        let segs: Vec<&str> = rest.split('/').collect();
        let n = segs.len();
        let tail = |k: usize| if n > k { &segs[..n - k] } else { &segs[..0] };
        let is = |from_end: usize, s: &str| n > from_end && segs[n - 1 - from_end] == s;

        // .../blobs/uploads/ and .../blobs/uploads
        if n >= 3 && is(2, "blobs") && is(1, "uploads") && segs[n - 1].is_empty()
            || n >= 3 && is(1, "blobs") && is(0, "uploads")
        {
            let name_end = if segs[n - 1].is_empty() { 3 } else { 2 };
            let name = repo(tail(name_end))?;
            if method != Method::Post {
                return Err(RouteError::MethodNotAllowed);
            }
            let start = if let Some(mount) = q.digest("mount")? {
                let from = match q.get("from") {
                    Some(f) if !f.is_empty() => Some(f.parse().map_err(|e| name_error(e, f))?),
                    _ => None,
                };
                UploadStart::Mount {
                    digest: mount,
                    from,
                }
            } else if let Some(d) = q.digest("digest")? {
                UploadStart::Monolithic { digest: d }
            } else {
                let algorithm = match q.get("digest-algorithm") {
                    None => Algorithm::Sha256,
                    Some(a) => a.parse().map_err(|e| digest_error(e, a))?,
                };
                UploadStart::Session { algorithm }
            };
            return Ok(Route::UploadStart { name, start });
        }
        // .../blobs/uploads/<id>
        if n >= 4 && is(2, "blobs") && is(1, "uploads") {
            let name = repo(tail(3))?;
            let id = UploadId::parse(segs[n - 1]).ok_or_else(|| {
                RouteError::Invalid(RegistryError::new(ErrorCode::BlobUploadUnknown))
            })?;
            return match method {
                Method::Patch => Ok(Route::UploadPatch { name, id }),
                Method::Get => Ok(Route::UploadStatus { name, id }),
                Method::Delete => Ok(Route::UploadCancel { name, id }),
                Method::Put => {
                    let digest = q.digest("digest")?.ok_or_else(|| {
                        RegistryError::new(ErrorCode::DigestInvalid).with_message(
                            "the digest query parameter is required to complete an upload",
                        )
                    })?;
                    Ok(Route::UploadPut { name, id, digest })
                }
                _ => Err(RouteError::MethodNotAllowed),
            };
        }
        if n >= 3 && is(1, "tags") && is(0, "list") {
            let name = repo(tail(2))?;
            return match method {
                Method::Get => Ok(Route::TagsList {
                    name,
                    page: q.page()?,
                }),
                _ => Err(RouteError::MethodNotAllowed),
            };
        }
        if n >= 3 && is(1, "manifests") {
            let name = repo(tail(2))?;
            let raw = segs[n - 1];
            let reference: Reference = match raw.parse() {
                Ok(reference) => reference,
                // No manifest can be stored under a reference that does not parse, so a
                // read or delete of one is a miss (the OCI conformance suite asks for
                // `.INVALID_MANIFEST_NAME` and expects 404); only a push is a bad request.
                Err(_) if matches!(method, Method::Get | Method::Head | Method::Delete) => {
                    return Err(RouteError::Invalid(
                        RegistryError::new(ErrorCode::ManifestUnknown)
                            .with_message(format!("no manifest can have the reference {raw:?}")),
                    ));
                }
                Err(e) => return Err(name_error(e, raw)),
            };
            return match method {
                Method::Get | Method::Head => Ok(Route::ManifestGet {
                    name,
                    reference,
                    head: method == Method::Head,
                }),
                Method::Put => {
                    let tags = q
                        .all("tag")
                        .map(|t| t.parse().map_err(|e| name_error(e, t)))
                        .collect::<Result<_, _>>()?;
                    Ok(Route::ManifestPut {
                        name,
                        reference,
                        tags,
                    })
                }
                Method::Delete => Ok(Route::ManifestDelete { name, reference }),
                _ => Err(RouteError::MethodNotAllowed),
            };
        }
        if n >= 3 && is(1, "blobs") {
            let name = repo(tail(2))?;
            let digest = digest(segs[n - 1])?;
            return match method {
                Method::Get | Method::Head => Ok(Route::BlobGet {
                    name,
                    digest,
                    head: method == Method::Head,
                }),
                Method::Delete => Ok(Route::BlobDelete { name, digest }),
                _ => Err(RouteError::MethodNotAllowed),
            };
        }
        if n >= 3 && is(1, "referrers") {
            let name = repo(tail(2))?;
            let digest = digest(segs[n - 1])?;
            return match method {
                Method::Get => Ok(Route::Referrers {
                    name,
                    digest,
                    artifact_type: q
                        .get("artifactType")
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned),
                }),
                _ => Err(RouteError::MethodNotAllowed),
            };
        }
        Err(RouteError::NotFound)
    }
}

/// `Location` of an upload session.
pub fn upload_url(name: &RepoName, id: &UploadId) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// `Location` of a blob.
pub fn blob_url(name: &RepoName, digest: &Digest) -> String {
    format!("/v2/{name}/blobs/{digest}")
}

/// `Location` of a manifest.
pub fn manifest_url(name: &RepoName, reference: &Reference) -> String {
    format!("/v2/{name}/manifests/{reference}")
}

/// The `Link` target for the next page of a listing at `path`.
pub fn next_page_url(path: &str, n: usize, last: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("n", &n.to_string())
        .append_pair("last", last)
        .finish();
    format!("{path}?{query}")
}

/// The path of a repository's tag list.
pub fn tags_path(name: &RepoName) -> String {
    format!("/v2/{name}/tags/list")
}

/// The path of the catalog.
pub const CATALOG_PATH: &str = "/v2/_catalog";

#[cfg(test)]
mod tests;
