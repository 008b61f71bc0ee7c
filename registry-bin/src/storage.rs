//! Opening the configured storage: the filesystem folder or the S3 bucket.

use std::sync::Arc;

use registry_storage::s3::client::{S3Client, S3Config};
use registry_storage::s3::S3Backend;
use registry_storage::{Backend, FsBackend};

use crate::config::{S3Settings, StorageSettings};
use crate::preflight::check_storage_root;

/// The backend `storage` names, checked: the folder exists or is created and is
/// writable; the bucket answers with these credentials and a clock close to ours.
pub async fn open_backend(storage: &StorageSettings) -> Result<Arc<dyn Backend>, String> {
    match storage {
        StorageSettings::Filesystem(root) => {
            check_storage_root(root).map_err(|e| e.to_string())?;
            let backend = FsBackend::open(root)
                .await
                .map_err(|e| format!("{}: {e}", root.display()))?;
            Ok(Arc::new(backend))
        }
        StorageSettings::S3(s3) => {
            let client = s3_client(s3)?;
            client
                .check()
                .await
                .map_err(|e| format!("{storage}: {e}"))?;
            let backend = S3Backend::new(client)
                .await
                .map_err(|e| format!("{storage}: {e}"))?;
            if !backend.deletes_conditionally() {
                tracing::warn!(
                    storage = %storage,
                    "the object store ignores x-amz-delete-if-unmodified-since: garbage \
                     collection passes will refuse to delete on it"
                );
            }
            Ok(Arc::new(backend))
        }
    }
}

/// The S3 client for `s3`.
pub fn s3_client(s3: &S3Settings) -> Result<S3Client, String> {
    S3Client::new(S3Config {
        endpoint: s3.endpoint.clone(),
        region: s3.region.clone(),
        bucket: s3.bucket.clone(),
        root: s3.root.clone(),
        credentials: s3.credentials.clone(),
        path_style: s3.path_style,
        skip_verify: s3.skip_verify,
        ca_bundle: s3.ca_bundle.clone(),
        part_size: s3.part_size,
    })
    .map_err(|e| format!("storage.s3: {e}"))
}
