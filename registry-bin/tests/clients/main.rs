//! The client compatibility suite: the real `registry` binary with htpasswd
//! auth, driven by the clients users push and pull with. One module per
//! client, and each flow runs twice, over plain HTTP and over HTTPS with a
//! test CA (`<client>::<flow>::http`, `::https`), so a failure names the
//! client, the flow, the step and the scheme.
//!
//! Every tool is required: a missing one fails its tests with the command
//! that installs it (`bash scripts/test` installs them all as root).
//!
//! | module       | client                         | installed by |
//! |--------------|--------------------------------|--------------|
//! | `skopeo`     | skopeo                         | apt          |
//! | `podman`     | podman (rootful, vfs, no daemon) | apt        |
//! | `buildah`    | buildah (`from scratch`)       | apt          |
//! | `containerd` | containerd + `ctr`             | apt          |
//! | `oras`       | oras-py (`oras_flow.py`)       | pip          |
//! | `oci_client` | the `oci-client` crate         | cargo        |
//! | `concurrent` | several of them at once        |              |
//! | `notifications` | webhooks seen by a receiver (skopeo) | apt    |
//! | `import`     | `registry import` from Distribution 2.8.2 (`docker-registry`), skopeo | apt |
//! | `ui`         | the web page in headless chromium (`webdriver.rs`) | apt: chromium, chromium-driver |
//! | `token`      | skopeo, podman, ctr with `auth.token` (a test token server) | |
//! | `proxy`      | skopeo, podman through the pull-through cache, Distribution 2.8 upstream | apt (docker-registry) |
//! | `replicas`   | skopeo and plain requests through haproxy to 3 replicas on one S3 bucket | apt: haproxy, ceph (scripts/test starts the S3 server) |

//!
//! With `TEST_STORAGE=s3-replicas` every registry a test starts is three processes on
//! one S3 bucket behind haproxy (`scripts/test` runs the client modules so).

#![allow(clippy::unwrap_used)]

#[path = "../common/haproxy.rs"]
mod haproxy;
mod harness;
#[path = "../common/spawn.rs"]
mod spawn;
#[path = "../common/test_ca.rs"]
mod test_ca;
#[path = "../common/token_server.rs"]
mod token_server;

mod buildah;
mod concurrent;
mod containerd;
mod import;
mod notifications;
mod oci_client;
mod oras;
mod podman;
mod proxy;
mod proxy_edges;
mod proxy_eviction;
mod replicas;
mod skopeo;
mod token;
mod ui;
mod webdriver;
