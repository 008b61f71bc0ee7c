//! End-to-end tests of the HTTP API: a real server on 127.0.0.1, spoken to
//! over TCP, asserting statuses, headers, error codes and bytes.

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod authz;
mod blobs;
mod client_behaviours;
mod limits;
mod listing;
mod manifests;
mod referrers;
mod uploads;
