//! The event envelope CNCF Distribution 2.8 POSTs to its notification
//! endpoints, field for field, and [`Happened`]: what a handler reports
//! after a successful request, turned into events with the request's
//! context by [`Happened::into_events`].
//!
//! Which requests make which events, as Distribution 2.8.2 emits them
//! (observed by running it against a recording receiver):
//!
//! | request                                   | action   | target fields                                     |
//! |-------------------------------------------|----------|---------------------------------------------------|
//! | `PUT /manifests/<ref>` 201                | `push`   | mediaType size digest length repository url [tag] |
//! | `GET`/`HEAD /manifests/<ref>` 200         | `pull`   | same; `tag` when pulled by tag                    |
//! | upload completed 201 (`PUT` or one `POST`) | `push`   | mediaType (`application/octet-stream`) size digest length repository url |
//! | `GET`/`HEAD /blobs/<digest>` 200 or 206   | `pull`   | same as a blob push; size is the whole blob's     |
//! | `POST /blobs/uploads/?mount=` 201         | `mount`  | same, plus `fromRepository`                       |
//! | `DELETE /manifests/<digest>` 202          | `delete` | digest repository, then one per removed tag: repository tag |
//! | `DELETE /manifests/<tag>` 202             | `delete` | repository tag (Distribution 3; 2.8 refuses it)   |
//! | `DELETE /blobs/<digest>` 202              | `delete` | digest repository                                 |
//!
//! `url` is absolute: `http.host` when configured, otherwise built from the
//! request (`X-Forwarded-Proto`/`X-Forwarded-Host`, then the `Host`).
//! Failed requests make no event.

use std::collections::BTreeMap;
use std::time::SystemTime;

use registry_core::manifest::{Descriptor, Manifest};
use registry_core::route::{blob_url, manifest_url};
use registry_core::{Digest, Reference, RepoName, Tag};
use serde::Serialize;

pub use super::settings::Action;
use crate::timestamp::rfc3339;

/// The media type of the envelope (`Content-Type` of every POST).
pub const EVENTS_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";

/// Distribution reports every blob with this media type, whatever the
/// manifest that references it says.
const BLOB_MEDIA_TYPE: &str = "application/octet-stream";

/// The body of one POST: `{"events":[...]}`.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    /// The events, oldest first.
    pub events: &'a [&'a Event],
}

/// One event. Fields and names as Distribution writes them.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Unique per event (a UUID).
    pub id: String,
    /// When the request completed, RFC 3339 in UTC with nanoseconds.
    pub timestamp: String,
    /// What was done.
    pub action: Action,
    /// To what.
    pub target: Target,
    /// The request that did it.
    pub request: RequestRecord,
    /// Who did it.
    pub actor: ActorRecord,
    /// Which registry process saw it; filled by the sink.
    pub source: SourceRecord,
}

/// The content an event is about; empty fields are left out, as Distribution does.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The manifest's media type, or `application/octet-stream` for blobs.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// Size in bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub size: u64,
    /// The content's digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// The same as `size` (kept by Distribution for older receivers).
    #[serde(skip_serializing_if = "is_zero")]
    pub length: u64,
    /// The repository.
    pub repository: String,
    /// Where a mounted blob came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_repository: Option<String>,
    /// Absolute URL of the content, by digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The tag pushed, pulled or deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// What a manifest references, with `notifications.events.includereferences`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ReferenceRecord>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A descriptor as Distribution 2.8 lists it in `references` (no `artifactType`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceRecord {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Its digest.
    pub digest: Digest,
    /// Where it may also be downloaded from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Its annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Its platform, for index entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

impl From<&Descriptor> for ReferenceRecord {
    fn from(d: &Descriptor) -> Self {
        ReferenceRecord {
            media_type: d.media_type.clone(),
            size: d.size,
            digest: d.digest.clone(),
            urls: d.urls.clone(),
            annotations: d.annotations.clone(),
            platform: d.platform.clone(),
        }
    }
}

/// What a manifest references, in Distribution's order: config then layers,
/// or the manifests of an index.
pub fn references(manifest: &Manifest) -> Vec<ReferenceRecord> {
    manifest
        .config
        .iter()
        .chain(&manifest.layers)
        .chain(&manifest.manifests)
        .map(ReferenceRecord::from)
        .collect()
}

/// The request that caused an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestRecord {
    /// Shared by the events of one request.
    pub id: String,
    /// The client: the first address of `X-Forwarded-For`, else
    /// `X-Real-Ip`, else the peer's `ip:port`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
    /// The `Host` the client asked for.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// `GET`, `HEAD`, `PUT`, `POST` or `DELETE`.
    pub method: String,
    /// The client's `User-Agent` (empty when it sent none).
    pub useragent: String,
}

/// Who made the request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActorRecord {
    /// The authenticated user; absent for anonymous requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The registry process that emitted the event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceRecord {
    /// `hostname:port` of the listener.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
    /// Random per process start.
    #[serde(rename = "instanceID", skip_serializing_if = "String::is_empty")]
    pub instance_id: String,
}

/// What a successful request did, as the handler knows it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Happened {
    /// A manifest was stored, under these tags (none when pushed by digest).
    ManifestPushed {
        /// The repository.
        repository: RepoName,
        /// The manifest.
        digest: Digest,
        /// Its media type.
        media_type: String,
        /// Its size.
        size: u64,
        /// One event per tag; one untagged event when empty.
        tags: Vec<Tag>,
        /// Empty unless references are wanted.
        references: Vec<ReferenceRecord>,
    },
    /// A manifest was read.
    ManifestPulled {
        /// The repository.
        repository: RepoName,
        /// The manifest.
        digest: Digest,
        /// Its media type.
        media_type: String,
        /// Its size.
        size: u64,
        /// The tag it was read by.
        tag: Option<Tag>,
        /// Empty unless references are wanted.
        references: Vec<ReferenceRecord>,
    },
    /// A blob upload completed.
    BlobPushed {
        /// The repository.
        repository: RepoName,
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// A blob was read (whole or a range).
    BlobPulled {
        /// The repository.
        repository: RepoName,
        /// The blob.
        digest: Digest,
        /// The whole blob's size.
        size: u64,
    },
    /// A blob was linked into a repository from another.
    BlobMounted {
        /// The repository it now is in.
        repository: RepoName,
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// Where it came from, when known.
        from: Option<RepoName>,
    },
    /// A manifest was deleted with the tags that pointed at it.
    ManifestDeleted {
        /// The repository.
        repository: RepoName,
        /// The manifest.
        digest: Digest,
        /// The tags removed with it.
        tags: Vec<Tag>,
    },
    /// A tag was deleted (the manifest stays).
    TagDeleted {
        /// The repository.
        repository: RepoName,
        /// The tag.
        tag: Tag,
    },
    /// A blob was removed from a repository.
    BlobDeleted {
        /// The repository.
        repository: RepoName,
        /// The blob.
        digest: Digest,
    },
}

/// The request's side of an event: everything not known to the handler.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The request.
    pub request: RequestRecord,
    /// The authenticated user.
    pub actor: Option<String>,
    /// `scheme://host` for `url`; `None` leaves `url` out.
    pub base_url: Option<String>,
}

impl Happened {
    /// The events this makes, in Distribution's order, each with a new id.
    pub fn into_events(self, origin: &Origin, now: SystemTime) -> Vec<Event> {
        let timestamp = rfc3339(now);
        let url = |path: String| origin.base_url.as_ref().map(|base| format!("{base}{path}"));
        let manifest_target = |repository: &RepoName, digest: &Digest, media_type, size| Target {
            media_type,
            size,
            digest: Some(digest.clone()),
            length: size,
            repository: repository.to_string(),
            url: url(manifest_url(repository, &Reference::Digest(digest.clone()))),
            ..Target::default()
        };
        let blob_target = |repository: &RepoName, digest: &Digest, size| Target {
            media_type: BLOB_MEDIA_TYPE.into(),
            size,
            digest: Some(digest.clone()),
            length: size,
            repository: repository.to_string(),
            url: url(blob_url(repository, digest)),
            ..Target::default()
        };
        let tag_target = |repository: &RepoName, tag: &Tag| Target {
            repository: repository.to_string(),
            tag: Some(tag.to_string()),
            ..Target::default()
        };
        let digest_target = |repository: &RepoName, digest: &Digest| Target {
            digest: Some(digest.clone()),
            repository: repository.to_string(),
            ..Target::default()
        };
        let targets: Vec<(Action, Target)> = match self {
            Happened::ManifestPushed {
                repository,
                digest,
                media_type,
                size,
                tags,
                references,
            } => {
                let base = Target {
                    references,
                    ..manifest_target(&repository, &digest, media_type, size)
                };
                if tags.is_empty() {
                    vec![(Action::Push, base)]
                } else {
                    tags.iter()
                        .map(|tag| {
                            let target = Target {
                                tag: Some(tag.to_string()),
                                ..base.clone()
                            };
                            (Action::Push, target)
                        })
                        .collect()
                }
            }
            Happened::ManifestPulled {
                repository,
                digest,
                media_type,
                size,
                tag,
                references,
            } => vec![(
                Action::Pull,
                Target {
                    tag: tag.map(|t| t.to_string()),
                    references,
                    ..manifest_target(&repository, &digest, media_type, size)
                },
            )],
            Happened::BlobPushed {
                repository,
                digest,
                size,
            } => vec![(Action::Push, blob_target(&repository, &digest, size))],
            Happened::BlobPulled {
                repository,
                digest,
                size,
            } => vec![(Action::Pull, blob_target(&repository, &digest, size))],
            Happened::BlobMounted {
                repository,
                digest,
                size,
                from,
            } => vec![(
                Action::Mount,
                Target {
                    from_repository: from.map(|r| r.to_string()),
                    ..blob_target(&repository, &digest, size)
                },
            )],
            Happened::ManifestDeleted {
                repository,
                digest,
                tags,
            } => std::iter::once((Action::Delete, digest_target(&repository, &digest)))
                .chain(
                    tags.iter()
                        .map(|tag| (Action::Delete, tag_target(&repository, tag))),
                )
                .collect(),
            Happened::TagDeleted { repository, tag } => {
                vec![(Action::Delete, tag_target(&repository, &tag))]
            }
            Happened::BlobDeleted { repository, digest } => {
                vec![(Action::Delete, digest_target(&repository, &digest))]
            }
        };
        targets
            .into_iter()
            .map(|(action, target)| Event {
                id: uuid::Uuid::new_v4().to_string(),
                timestamp: timestamp.clone(),
                action,
                target,
                request: origin.request.clone(),
                actor: ActorRecord {
                    name: origin.actor.clone(),
                },
                source: SourceRecord::default(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            request: RequestRecord {
                id: "req".into(),
                addr: "127.0.0.1:4000".into(),
                host: "reg:5000".into(),
                method: "DELETE".into(),
                useragent: String::new(),
            },
            actor: None,
            base_url: Some("https://reg.example.com".into()),
        }
    }

    fn digest(byte: u8) -> Digest {
        format!("sha256:{}", hex_of(byte)).parse().unwrap()
    }

    fn hex_of(byte: u8) -> String {
        format!("{byte:02x}").repeat(32)
    }

    #[test]
    fn a_manifest_delete_reports_the_digest_then_each_tag() {
        let repo: RepoName = "team/app".parse().unwrap();
        let events = Happened::ManifestDeleted {
            repository: repo,
            digest: digest(1),
            tags: vec!["v1".parse().unwrap(), "v2".parse().unwrap()],
        }
        .into_events(&origin(), SystemTime::UNIX_EPOCH);
        let json: Vec<serde_json::Value> = events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect();
        assert_eq!(
            json[0]["target"],
            serde_json::json!({"digest": digest(1).to_string(), "repository": "team/app"})
        );
        assert_eq!(
            json[2]["target"],
            serde_json::json!({"repository": "team/app", "tag": "v2"})
        );
        // Anonymous: an empty actor; no user agent: an empty string, as Distribution writes them.
        assert_eq!(json[0]["actor"], serde_json::json!({}));
        assert_eq!(json[0]["request"]["useragent"], "");
        assert_eq!(json[0]["timestamp"], "1970-01-01T00:00:00Z");
        assert_eq!(json[0]["request"]["id"], json[1]["request"]["id"]);
        assert_ne!(json[0]["id"], json[1]["id"]);
    }

    #[test]
    fn a_mount_names_its_source_and_an_absolute_url() {
        let event = Happened::BlobMounted {
            repository: "b".parse().unwrap(),
            digest: digest(2),
            size: 7,
            from: Some("a".parse().unwrap()),
        }
        .into_events(&origin(), SystemTime::UNIX_EPOCH)
        .remove(0);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["action"], "mount");
        assert_eq!(
            json["target"],
            serde_json::json!({
                "mediaType": "application/octet-stream",
                "size": 7,
                "digest": digest(2).to_string(),
                "length": 7,
                "repository": "b",
                "fromRepository": "a",
                "url": format!("https://reg.example.com/v2/b/blobs/{}", digest(2)),
            })
        );
    }
}
