//! Pagination of tag lists and the catalog: `n`, `last` and `Link`.
//!
//! Results are in lexical (byte) order. `last` is exclusive: the page starts
//! at the first entry greater than it, whether or not `last` itself exists.
//! `n = 0` gives an empty page and no `Link`. A `Link` to the next page is
//! sent only when entries remain after the page. `n` above
//! [`MAX_PAGE_SIZE`] is lowered to it.

/// Most entries one page may hold; a larger `n` is served as this many
/// (with a `Link` to the rest), so one request cannot ask for everything.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The `n` and `last` query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Most entries to return; `None` for all.
    pub n: Option<usize>,
    /// Return entries after this one.
    pub last: Option<String>,
}

/// One page of a sorted listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageOf<'a> {
    /// The entries of this page.
    pub items: &'a [String],
    /// When more entries follow: the `last` value for the next request.
    pub next_last: Option<&'a str>,
}

impl Page {
    /// Cuts one page out of `sorted` (which must be sorted and deduplicated).
    pub fn apply<'a>(&self, sorted: &'a [String]) -> PageOf<'a> {
        let start = match &self.last {
            Some(last) => sorted.partition_point(|s| s.as_str() <= last.as_str()),
            None => 0,
        };
        let rest = &sorted[start..];
        let take = self.n.map_or(rest.len(), |n| n.min(rest.len()));
        let items = &rest[..take];
        let next_last = match (self.n, items.last()) {
            (Some(_), Some(last)) if take < rest.len() => Some(last.as_str()),
            _ => None,
        };
        PageOf { items, next_last }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pages_walk_the_list() {
        let all = list(&["a", "b", "c", "d", "e"]);
        let p = Page {
            n: Some(2),
            last: None,
        }
        .apply(&all);
        assert_eq!(p.items, &all[0..2]);
        assert_eq!(p.next_last, Some("b"));
        let p = Page {
            n: Some(2),
            last: Some("b".into()),
        }
        .apply(&all);
        assert_eq!(p.items, &all[2..4]);
        assert_eq!(p.next_last, Some("d"));
        let p = Page {
            n: Some(2),
            last: Some("d".into()),
        }
        .apply(&all);
        assert_eq!(p.items, &all[4..5]);
        assert_eq!(p.next_last, None);
        let p = Page {
            n: Some(0),
            last: None,
        }
        .apply(&all);
        assert!(p.items.is_empty());
        assert_eq!(p.next_last, None);
        let p = Page {
            n: None,
            last: Some("bb".into()),
        }
        .apply(&all);
        assert_eq!(p.items, &all[2..]);
    }

    proptest! {
        #[test]
        fn walking_pages_yields_everything_once(mut items in proptest::collection::vec("[a-z]{1,4}", 0..40), n in 1usize..7) {
            items.sort();
            items.dedup();
            let mut seen = Vec::new();
            let mut last = None;
            loop {
                let page = Page { n: Some(n), last: last.clone() }.apply(&items);
                seen.extend_from_slice(page.items);
                match page.next_last {
                    Some(l) => last = Some(l.to_owned()),
                    None => break,
                }
            }
            prop_assert_eq!(seen, items);
        }
    }
}
