//! `Content-Range` (upload chunks) and `Range` (blob reads) parsing.
//!
//! Chunk uploads use the spec's bare form, `<start>-<end>`, inclusive at both
//! ends. Clients also send the RFC 9110 forms `bytes <start>-<end>/<total>` and
//! `bytes=<start>-<end>`, so both prefixes and a `/total` suffix are accepted.
//!
//! Blob reads accept one RFC 9110 byte range: `bytes=<first>-<last>`,
//! `bytes=<first>-` or `bytes=-<suffix>`. Several ranges in one header are
//! answered with the whole blob, which RFC 9110 permits.

/// An inclusive byte range `start..=end` as sent in `Content-Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// First byte offset.
    pub start: u64,
    /// Last byte offset, inclusive.
    pub end: u64,
}

impl ContentRange {
    /// Number of bytes the range covers.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// A range always covers at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The header is not a range we understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeSyntaxError;

impl std::fmt::Display for RangeSyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("malformed range")
    }
}

impl std::error::Error for RangeSyntaxError {}

fn number(s: &str) -> Result<u64, RangeSyntaxError> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RangeSyntaxError);
    }
    s.parse().map_err(|_| RangeSyntaxError)
}

/// Parses an upload `Content-Range`.
///
/// ```text
/// content-range ::= [ "bytes " | "bytes=" ] start "-" end [ "/" ( total | "*" ) ]
/// ```
pub fn parse_content_range(header: &str) -> Result<ContentRange, RangeSyntaxError> {
    let s = header.trim();
    let s = s
        .strip_prefix("bytes ")
        .or_else(|| s.strip_prefix("bytes="))
        .unwrap_or(s)
        .trim_start();
    let s = s.split_once('/').map_or(s, |(range, _total)| range);
    let (start, end) = s.split_once('-').ok_or(RangeSyntaxError)?;
    let (start, end) = (number(start.trim())?, number(end.trim())?);
    if end < start {
        return Err(RangeSyntaxError);
    }
    Ok(ContentRange { start, end })
}

/// A request `Range` before the blob's length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` or `bytes=first-`.
    From {
        /// First byte wanted.
        first: u64,
        /// Last byte wanted, inclusive; `None` for "to the end".
        last: Option<u64>,
    },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// The range cannot be served from a blob of this length (answer 416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

impl ByteRange {
    /// Parses a `Range` header. `Ok(None)` means "serve the whole blob"
    /// (several ranges, or a unit other than bytes).
    pub fn parse(header: &str) -> Result<Option<ByteRange>, RangeSyntaxError> {
        let Some(spec) = header.trim().strip_prefix("bytes=") else {
            return Ok(None);
        };
        if spec.contains(',') {
            return Ok(None);
        }
        let (first, last) = spec.trim().split_once('-').ok_or(RangeSyntaxError)?;
        match (first.trim(), last.trim()) {
            ("", suffix) => Ok(Some(ByteRange::Suffix(number(suffix)?))),
            (first, "") => Ok(Some(ByteRange::From {
                first: number(first)?,
                last: None,
            })),
            (first, last) => {
                let (first, last) = (number(first)?, number(last)?);
                if last < first {
                    return Err(RangeSyntaxError);
                }
                Ok(Some(ByteRange::From {
                    first,
                    last: Some(last),
                }))
            }
        }
    }

    /// Resolves against a blob of `len` bytes to an inclusive `(start, end)`.
    pub fn resolve(self, len: u64) -> Result<(u64, u64), Unsatisfiable> {
        match self {
            ByteRange::From { first, last } => {
                if first >= len {
                    return Err(Unsatisfiable);
                }
                let end = last.map_or(len - 1, |l| l.min(len - 1));
                Ok((first, end))
            }
            ByteRange::Suffix(0) => Err(Unsatisfiable),
            ByteRange::Suffix(n) => {
                if len == 0 {
                    return Err(Unsatisfiable);
                }
                Ok((len.saturating_sub(n), len - 1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_range_forms() {
        let r = ContentRange { start: 0, end: 99 };
        assert_eq!(parse_content_range("0-99"), Ok(r));
        assert_eq!(parse_content_range("bytes 0-99/100"), Ok(r));
        assert_eq!(parse_content_range("bytes=0-99"), Ok(r));
        assert_eq!(parse_content_range("bytes 0-99/*"), Ok(r));
        assert_eq!(r.len(), 100);
        for bad in [
            "",
            "-",
            "5-",
            "-5",
            "9-1",
            "a-b",
            "0-99999999999999999999",
            "+1-2",
            "0 - x",
        ] {
            assert_eq!(parse_content_range(bad), Err(RangeSyntaxError), "{bad:?}");
        }
    }

    #[test]
    fn byte_range_forms() {
        assert_eq!(
            ByteRange::parse("bytes=0-9"),
            Ok(Some(ByteRange::From {
                first: 0,
                last: Some(9)
            }))
        );
        assert_eq!(
            ByteRange::parse("bytes=5-"),
            Ok(Some(ByteRange::From {
                first: 5,
                last: None
            }))
        );
        assert_eq!(ByteRange::parse("bytes=-3"), Ok(Some(ByteRange::Suffix(3))));
        assert_eq!(ByteRange::parse("bytes=0-1,4-5"), Ok(None));
        assert_eq!(ByteRange::parse("items=0-1"), Ok(None));
        assert_eq!(ByteRange::parse("bytes=9-1"), Err(RangeSyntaxError));
        assert_eq!(ByteRange::parse("bytes=-"), Err(RangeSyntaxError));
        assert_eq!(
            ByteRange::parse("bytes=-18446744073709551616"),
            Err(RangeSyntaxError)
        );
    }

    #[test]
    fn resolve_against_length() {
        let r = |s| ByteRange::parse(s).unwrap().unwrap();
        assert_eq!(r("bytes=0-9").resolve(5), Ok((0, 4)));
        assert_eq!(r("bytes=5-").resolve(5), Err(Unsatisfiable));
        assert_eq!(r("bytes=-3").resolve(10), Ok((7, 9)));
        assert_eq!(r("bytes=-30").resolve(10), Ok((0, 9)));
        assert_eq!(r("bytes=-1").resolve(0), Err(Unsatisfiable));
        assert_eq!(r("bytes=-0").resolve(10), Err(Unsatisfiable));
    }

    proptest! {
        #[test]
        fn content_range_round_trips(start in 0u64..u64::MAX / 2, len in 1u64..1 << 40) {
            let end = start + len - 1;
            let parsed = parse_content_range(&format!("{start}-{end}")).unwrap();
            prop_assert_eq!(parsed, ContentRange { start, end });
            prop_assert_eq!(parsed.len(), len);
        }

        #[test]
        fn resolved_ranges_stay_inside(s in "\\PC{0,24}", len in 0u64..1000) {
            if let Ok(Some(r)) = ByteRange::parse(&s) {
                if let Ok((a, b)) = r.resolve(len) {
                    prop_assert!(a <= b && b < len);
                }
            }
            let _ = parse_content_range(&s);
        }
    }
}
