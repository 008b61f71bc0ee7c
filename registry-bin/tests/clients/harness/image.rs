//! Test images built here, byte for byte, so every digest is known before
//! any client touches them: a 3-layer image (real tar layers, so podman,
//! buildah and containerd can unpack them) and a two-platform image index.
//! `Layout` writes them as an OCI image layout (`oci:` for skopeo and
//! podman, a tar of it for `ctr images import`).

use std::path::{Path, PathBuf};

use super::sha256_digest;
use super::tar;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Content with its digest and media type.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: String,
    pub media_type: String,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, data: Vec<u8>) -> Blob {
        Blob {
            digest: sha256_digest(&data),
            media_type: media_type.to_owned(),
            data,
        }
    }

    /// The JSON descriptor of this blob; `extra` is spliced in (e.g. a platform).
    pub fn descriptor(&self, extra: &str) -> String {
        format!(
            r#"{{"mediaType":"{}","digest":"{}","size":{}{extra}}}"#,
            self.media_type,
            self.digest,
            self.data.len()
        )
    }
}

/// One image: a manifest, its config and three uncompressed tar layers.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub arch: String,
}

impl Image {
    /// A 3-layer linux image for `arch`; `seed` makes its content unique and
    /// `sizes` sets the size of the one file in each layer.
    pub fn build(seed: u64, arch: &str, sizes: [usize; 3]) -> Image {
        let layers: Vec<Blob> = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let path = format!("data/layer{i}/file-{seed}-{arch}.bin");
                let data = tar::noise(seed * 10 + i as u64, size);
                Blob::new(OCI_LAYER, tar::archive(&[(path, data)]))
            })
            .collect();
        let diff_ids: Vec<String> = layers.iter().map(|l| format!("\"{}\"", l.digest)).collect();
        let config = Blob::new(
            OCI_CONFIG,
            format!(
                r#"{{"architecture":"{arch}","os":"linux","config":{{"Env":["SEED={seed}"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}},"history":[]}}"#,
                diff_ids.join(",")
            )
            .into_bytes(),
        );
        let layer_json: Vec<String> = layers.iter().map(|l| l.descriptor("")).collect();
        let manifest = Blob::new(
            OCI_MANIFEST,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
                config.descriptor(""),
                layer_json.join(",")
            )
            .into_bytes(),
        );
        Image {
            manifest,
            config,
            layers,
            arch: arch.to_owned(),
        }
    }

    /// A small image (three layers of a few KiB) for flows where size does not matter.
    pub fn small(seed: u64) -> Image {
        Image::build(seed, "amd64", [3_000, 40_000, 120_000])
    }

    /// Config and layers: the blobs the manifest references.
    pub fn blobs(&self) -> Vec<&Blob> {
        std::iter::once(&self.config).chain(&self.layers).collect()
    }
}

/// An image index over two images (linux/amd64 and linux/arm64).
#[derive(Debug, Clone)]
pub struct Index {
    pub index: Blob,
    pub images: Vec<Image>,
}

impl Index {
    pub fn two_platforms(seed: u64) -> Index {
        let images = vec![
            Image::build(seed, "amd64", [2_000, 20_000, 60_000]),
            Image::build(seed + 1, "arm64", [2_500, 25_000, 65_000]),
        ];
        let entries: Vec<String> = images
            .iter()
            .map(|img| {
                let platform = format!(
                    r#","platform":{{"architecture":"{}","os":"linux"}}"#,
                    img.arch
                );
                img.manifest.descriptor(&platform)
            })
            .collect();
        let index = Blob::new(
            OCI_INDEX,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
                entries.join(",")
            )
            .into_bytes(),
        );
        Index { index, images }
    }

    /// Every blob below the index: manifests, configs, layers.
    pub fn blobs(&self) -> Vec<&Blob> {
        self.images
            .iter()
            .flat_map(|img| std::iter::once(&img.manifest).chain(img.blobs()))
            .collect()
    }
}

/// An OCI image layout folder.
#[derive(Debug)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    /// Writes `blobs` and an `index.json` naming each `(tag, top)` pair.
    pub fn write(dir: &Path, tagged: &[(&str, &Blob)], blobs: &[&Blob]) -> Layout {
        let store = dir.join("blobs/sha256");
        std::fs::create_dir_all(&store).unwrap();
        for blob in blobs.iter().copied().chain(tagged.iter().map(|(_, b)| *b)) {
            let hex = blob.digest.trim_start_matches("sha256:");
            std::fs::write(store.join(hex), &blob.data).unwrap();
        }
        let entries: Vec<String> = tagged
            .iter()
            .map(|(tag, top)| {
                top.descriptor(&format!(
                    r#","annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}"#
                ))
            })
            .collect();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(
            dir.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
                entries.join(",")
            ),
        )
        .unwrap();
        Layout {
            dir: dir.to_owned(),
        }
    }

    /// A layout holding one image tagged `tag`.
    pub fn of_image(dir: &Path, tag: &str, image: &Image) -> Layout {
        Layout::write(dir, &[(tag, &image.manifest)], &image.blobs())
    }

    /// A layout holding one index tagged `tag`.
    pub fn of_index(dir: &Path, tag: &str, index: &Index) -> Layout {
        Layout::write(dir, &[(tag, &index.index)], &index.blobs())
    }

    /// The containers-image reference `oci:<dir>:<tag>`.
    pub fn oci_ref(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }

    /// The bytes stored in this layout under `digest`.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let path = self
            .dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Asserts that each blob is in this layout with exactly its bytes.
    pub fn assert_has(&self, blobs: &[&Blob], step: &str) {
        for blob in blobs {
            let got = self.blob(&blob.digest);
            assert!(
                got == blob.data,
                "{step}: blob {} differs from what was pushed",
                blob.digest
            );
        }
    }

    /// The layout as a tar archive (what `ctr images import` reads).
    pub fn tar(&self) -> Vec<u8> {
        let mut files = vec![
            (
                "oci-layout".to_owned(),
                std::fs::read(self.dir.join("oci-layout")).unwrap(),
            ),
            (
                "index.json".to_owned(),
                std::fs::read(self.dir.join("index.json")).unwrap(),
            ),
        ];
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let data = std::fs::read(self.dir.join("blobs/sha256").join(&name)).unwrap();
            files.push((format!("blobs/sha256/{name}"), data));
        }
        tar::archive(&files)
    }
}
