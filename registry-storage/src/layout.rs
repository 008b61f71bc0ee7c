//! The storage layout: every key the store reads or writes, built here and nowhere else.
//!
//! ```text
//! v1/                                        version prefix, so the layout can change later
//! ├── blobs/
//! │   └── <alg>/<first 2 hex>/<hex>/
//! │       └── data                           blob bytes, written once, shared by all repos
//! ├── _probe/<id>                            readiness probe: written and deleted at once
//! └── repositories/
//!     └── <name...>/                         one directory per name component: a/b/c
//!         ├── _layers/<alg>/<hex>            link: the blob is visible in this repository
//!         ├── _manifests/
//!         │   ├── revisions/<alg>/<hex>      link: the manifest is in this repository;
//!         │   │                              content {"mediaType": "..."}
//!         │   └── tags/<tag>                 content: the tagged digest, e.g. "sha256:ab.."
//!         ├── _referrers/<alg>/<hex>/        referrers of the subject <alg>:<hex>
//!         │   └── <alg>-<hex>                content: the referrer's descriptor JSON
//!         └── _uploads/<id>                  the bytes received so far; the id (a
//!                                            UUIDv7) says when the upload started
//! ```
//!
//! An upload is one object, renamed into `blobs/` when it completes: a push creates no
//! other file and deletes none (it used to create and delete a directory and a
//! `startedat` file per blob, and `_uploads` itself). Every file created costs an inode
//! allocation, and ext4 makes each allocation step, one by one, past every inode its
//! block group freed in the last minutes: after a bulk delete that took a fifth of the
//! server's CPU in the mixed benchmark. Uploads of older versions (`_uploads/<id>/data`)
//! are not found, and their directories go with the next purge of stale uploads.
//!
//! Why this is safe: every variable part is a validated `registry_core` type. Repository
//! name components match `[a-z0-9]+(separator[a-z0-9]+)*`, so they never start with `_` or
//! `.` and cannot collide with `_layers`, `_manifests`, `_uploads`, `_referrers` or a
//! backend's `.tmp-` files; tags never start with `.`; digests are lowercase hex; upload ids
//! are `[A-Za-z0-9_-]{1,64}`. A repository exists while its `_manifests` or `_layers`
//! prefix exists; the catalog is a walk of `v1/repositories` looking for those.

use registry_core::{Digest, RepoName, Tag, UploadId};

/// Where all repositories live; the catalog walks from here.
pub const REPOSITORIES: &str = "v1/repositories";
/// Where all blob data lives; garbage collection walks from here.
pub const BLOBS: &str = "v1/blobs";
/// A repository's blob links.
pub const LAYERS: &str = "_layers";
/// A repository's manifest revisions and tags.
pub const MANIFESTS: &str = "_manifests";
/// A repository's referrers index.
pub const REFERRERS: &str = "_referrers";
/// A repository's in-progress uploads.
pub const UPLOADS: &str = "_uploads";

/// `<alg>/<hex>`: how a digest becomes two key components.
fn digest_path(digest: &Digest) -> String {
    format!("{}/{}", digest.algorithm().as_str(), digest.hex())
}

/// The blob's bytes, shared by every repository that links it.
pub fn blob_data(digest: &Digest) -> String {
    let hex = digest.hex();
    // A digest's hex is at least 64 characters; `get` keeps this total anyway.
    let fanout = hex.get(..2).unwrap_or(hex);
    format!(
        "v1/blobs/{}/{fanout}/{hex}/data",
        digest.algorithm().as_str()
    )
}

/// The repository's own prefix: `v1/repositories/<name>`.
pub fn repo_dir(repo: &RepoName) -> String {
    format!("{REPOSITORIES}/{}", repo.as_str())
}

/// Link making `digest` visible as a blob in `repo`; content is the digest string.
pub fn layer_link(repo: &RepoName, digest: &Digest) -> String {
    format!("{}/{LAYERS}/{}", repo_dir(repo), digest_path(digest))
}

/// Link making `digest` a manifest of `repo`; content is `{"mediaType": "..."}`.
pub fn revision_link(repo: &RepoName, digest: &Digest) -> String {
    format!(
        "{}/{MANIFESTS}/revisions/{}",
        repo_dir(repo),
        digest_path(digest)
    )
}

/// The prefix holding one revision link per manifest: `<alg>/<hex>` under it.
pub fn revisions_dir(repo: &RepoName) -> String {
    format!("{}/{MANIFESTS}/revisions", repo_dir(repo))
}

/// The digest whose data `key` ([`blob_data`]) holds; `None` for any other key.
pub fn blob_digest(key: &str) -> Option<Digest> {
    let rest = key.strip_prefix(BLOBS)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (alg, _fanout, hex, data) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if data != "data" || parts.next().is_some() {
        return None;
    }
    format!("{alg}:{hex}").parse().ok()
}

/// The digest a layer link ([`layer_link`]) makes visible; `None` for any other key.
/// Name components never start with `_`, so `/_layers/` is always the layout's.
pub fn linked_digest(key: &str) -> Option<Digest> {
    let rest = key.strip_prefix(REPOSITORIES)?;
    let (_, link) = rest.rsplit_once(&format!("/{LAYERS}/"))?;
    let (alg, hex) = link.split_once('/')?;
    if hex.contains('/') {
        return None;
    }
    format!("{alg}:{hex}").parse().ok()
}

/// The prefix holding one object per tag.
pub fn tags_dir(repo: &RepoName) -> String {
    format!("{}/{MANIFESTS}/tags", repo_dir(repo))
}

/// The tag's object; content is the digest it points at.
pub fn tag_link(repo: &RepoName, tag: &Tag) -> String {
    format!("{}/{}", tags_dir(repo), tag.as_str())
}

/// The prefix holding the referrers of `subject`.
pub fn referrers_dir(repo: &RepoName, subject: &Digest) -> String {
    format!("{}/{REFERRERS}/{}", repo_dir(repo), digest_path(subject))
}

/// `<alg>-<hex>`: the name of a referrer's entry, one component, sorting by digest.
pub fn referrer_name(referrer: &Digest) -> String {
    format!("{}-{}", referrer.algorithm().as_str(), referrer.hex())
}

/// The entry recording that `referrer` refers to `subject`; content is its descriptor.
pub fn referrer_link(repo: &RepoName, subject: &Digest, referrer: &Digest) -> String {
    format!(
        "{}/{}",
        referrers_dir(repo, subject),
        referrer_name(referrer)
    )
}

/// The prefix holding all of the repository's uploads.
pub fn uploads_dir(repo: &RepoName) -> String {
    format!("{}/{UPLOADS}", repo_dir(repo))
}

/// The bytes received so far for an upload; deleting it cancels the upload.
pub fn upload_data(repo: &RepoName, id: &UploadId) -> String {
    format!("{}/{}", uploads_dir(repo), id.as_str())
}

/// A short-lived object that readiness checks write and delete. `id` is an
/// upload-id-shaped nonce, so concurrent probes never collide.
pub fn probe(id: &UploadId) -> String {
    format!("v1/_probe/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn every_path_is_pinned() {
        let repo: RepoName = "a/b-c/d".parse().unwrap();
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        let s: Digest = format!("sha512:{}", "0f".repeat(64)).parse().unwrap();
        let tag: Tag = "v1.0".parse().unwrap();
        let id = UploadId::parse("u-1_x").unwrap();
        let r = "v1/repositories/a/b-c/d";
        let s_hex = "0f".repeat(64);

        assert_eq!(blob_data(&d), format!("v1/blobs/sha256/e3/{HEX}/data"));
        assert_eq!(blob_data(&s), format!("v1/blobs/sha512/0f/{s_hex}/data"));
        assert_eq!(repo_dir(&repo), r);
        assert_eq!(layer_link(&repo, &d), format!("{r}/_layers/sha256/{HEX}"));
        assert_eq!(
            revision_link(&repo, &d),
            format!("{r}/_manifests/revisions/sha256/{HEX}")
        );
        assert_eq!(tags_dir(&repo), format!("{r}/_manifests/tags"));
        assert_eq!(tag_link(&repo, &tag), format!("{r}/_manifests/tags/v1.0"));
        assert_eq!(
            referrers_dir(&repo, &d),
            format!("{r}/_referrers/sha256/{HEX}")
        );
        assert_eq!(referrer_name(&s), format!("sha512-{s_hex}"));
        assert_eq!(
            referrer_link(&repo, &d, &s),
            format!("{r}/_referrers/sha256/{HEX}/sha512-{s_hex}")
        );
        assert_eq!(uploads_dir(&repo), format!("{r}/_uploads"));
        assert_eq!(upload_data(&repo, &id), format!("{r}/_uploads/u-1_x"));
        assert_eq!(probe(&id), "v1/_probe/u-1_x");
        assert_eq!(revisions_dir(&repo), format!("{r}/_manifests/revisions"));
        assert_eq!(blob_digest(&blob_data(&d)), Some(d.clone()));
        assert_eq!(blob_digest(&blob_data(&s)), Some(s.clone()));
        assert_eq!(linked_digest(&layer_link(&repo, &d)), Some(d.clone()));
        for other in [
            revision_link(&repo, &d),
            tag_link(&repo, &tag),
            referrer_link(&repo, &d, &s),
            format!("{}/x", blob_data(&d)),
        ] {
            assert_eq!(blob_digest(&other), None, "{other}");
            assert_eq!(linked_digest(&other), None, "{other}");
        }
    }

    #[test]
    fn every_key_passes_the_backend_key_check() {
        let repo: RepoName = "x".parse().unwrap();
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        let tag: Tag = "_t".parse().unwrap();
        let id = UploadId::parse("id").unwrap();
        for key in [
            blob_data(&d),
            layer_link(&repo, &d),
            revision_link(&repo, &d),
            tag_link(&repo, &tag),
            referrer_link(&repo, &d, &d),
            upload_data(&repo, &id),
        ] {
            assert_eq!(crate::backend::check_key(&key), Ok(()), "{key}");
        }
    }
}
