//! Storage use per repository, for `registry du`.
//!
//! `logical` is what pulling every tag of the repository moves, each blob
//! counted once; `unique` is what deleting the repository would free: the
//! blobs no other repository links. Blobs shared between repositories
//! count in each one's `logical` and in no one's `unique`, so the totals
//! tell how much deduplication saves (`logical` sum against `stored`).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::digest::Digest;

/// What one repository references and links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoBlobs {
    /// The repository.
    pub repository: String,
    /// Blobs a pull of every tag moves ([`super::RepoSnapshot::pulled_by_tags`]).
    pub referenced: HashSet<Digest>,
    /// Blobs the repository links: layers and manifest revisions.
    pub linked: HashSet<Digest>,
}

/// One repository's use, in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoUsage {
    /// The repository.
    pub repository: String,
    /// Sum of the sizes of the referenced blobs.
    pub logical: u64,
    /// Sum of the sizes of the blobs only this repository links.
    pub unique: u64,
    /// Referenced or linked blobs of unknown size (no data), counted as 0.
    pub missing: usize,
}

/// Every repository's use and the totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Per repository, in the order given.
    pub repositories: Vec<RepoUsage>,
    /// Sum of every repository's `logical`.
    pub logical: u64,
    /// Sum of every repository's `unique`.
    pub unique: u64,
    /// Bytes of the distinct blobs some repository links: the data kept.
    pub stored: u64,
}

/// Computes [`Usage`] from each repository's blobs and the blob sizes.
pub fn usage(repositories: &[RepoBlobs], sizes: &HashMap<Digest, u64>) -> Usage {
    let mut linked_by: HashMap<&Digest, usize> = HashMap::new();
    for repo in repositories {
        for digest in &repo.linked {
            *linked_by.entry(digest).or_default() += 1;
        }
    }
    let size = |d: &Digest| sizes.get(d).copied();
    let per_repo: Vec<RepoUsage> = repositories
        .iter()
        .map(|repo| {
            let missing = repo
                .referenced
                .union(&repo.linked)
                .filter(|d| size(d).is_none())
                .count();
            RepoUsage {
                repository: repo.repository.clone(),
                logical: repo.referenced.iter().filter_map(size).sum(),
                unique: repo
                    .linked
                    .iter()
                    .filter(|d| linked_by.get(d) == Some(&1))
                    .filter_map(size)
                    .sum(),
                missing,
            }
        })
        .collect();
    Usage {
        logical: per_repo.iter().map(|r| r.logical).sum(),
        unique: per_repo.iter().map(|r| r.unique).sum(),
        stored: linked_by.keys().filter_map(|d| size(d)).sum(),
        repositories: per_repo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;

    fn d(s: &str) -> Digest {
        Digest::of(Algorithm::Sha256, s.as_bytes())
    }

    fn set(names: &[&str]) -> HashSet<Digest> {
        names.iter().map(|n| d(n)).collect()
    }

    #[test]
    fn shared_blobs_count_in_logical_not_in_unique() {
        let sizes: HashMap<Digest, u64> = [("base", 100), ("a", 10), ("b", 20), ("orphan", 5)]
            .into_iter()
            .map(|(n, s)| (d(n), s))
            .collect();
        let repos = [
            RepoBlobs {
                repository: "x".into(),
                referenced: set(&["base", "a"]),
                linked: set(&["base", "a", "orphan"]),
            },
            RepoBlobs {
                repository: "y".into(),
                referenced: set(&["base", "b", "gone"]),
                linked: set(&["base", "b"]),
            },
        ];
        let u = usage(&repos, &sizes);
        assert_eq!(
            u.repositories,
            vec![
                RepoUsage {
                    repository: "x".into(),
                    logical: 110,
                    unique: 15,
                    missing: 0
                },
                RepoUsage {
                    repository: "y".into(),
                    logical: 120,
                    unique: 20,
                    missing: 1
                },
            ]
        );
        assert_eq!((u.logical, u.unique, u.stored), (230, 35, 135));
    }
}
