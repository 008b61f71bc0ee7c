//! The JWS compact serialization (RFC 7515 section 7.1) and the header
//! fields the registry reads.
//!
//! ```text
//! token = BASE64URL(header) "." BASE64URL(claims) "." BASE64URL(signature)
//! signing input = the bytes before the second "."
//! ```
//!
//! Base64url without padding, as RFC 7515 requires; `x5c` entries are
//! standard base64 with padding (RFC 7515 section 4.1.6).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;

use super::verify::TokenError;

/// The signature algorithms accepted: RSA PKCS#1 v1.5 and ECDSA on P-256
/// and P-384, the ones libtrust-era and current issuers sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
}

impl Alg {
    /// The algorithm named by a header's `alg`; `None` for every other name
    /// (`none`, `HS256`, `ES512`, `PS256`, ...).
    pub fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            _ => return None,
        })
    }

    /// The verification algorithm, which also pins the key type (and the
    /// curve): an `ES256` token cannot be checked against an RSA key.
    pub(crate) fn webpki(self) -> &'static dyn rustls_pki_types::SignatureVerificationAlgorithm {
        use webpki::ring as algs;
        match self {
            Alg::Rs256 => algs::RSA_PKCS1_2048_8192_SHA256,
            Alg::Rs384 => algs::RSA_PKCS1_2048_8192_SHA384,
            Alg::Rs512 => algs::RSA_PKCS1_2048_8192_SHA512,
            Alg::Es256 => algs::ECDSA_P256_SHA256,
            Alg::Es384 => algs::ECDSA_P384_SHA384,
        }
    }

    /// The JWS signature in the encoding webpki verifies: as sent for RSA;
    /// for ECDSA, JWS's fixed-width `r || s` (RFC 7518 section 3.4) turned
    /// into the DER `SEQUENCE { r INTEGER, s INTEGER }` of X.509.
    pub(crate) fn signature_der(self, signature: &[u8]) -> Option<Vec<u8>> {
        let width = match self {
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 => return Some(signature.to_vec()),
            Alg::Es256 => 32,
            Alg::Es384 => 48,
        };
        if signature.len() != 2 * width {
            return None;
        }
        let (r, s) = signature.split_at(width);
        let mut body = der_integer(r);
        body.extend(der_integer(s));
        // At most 2 * (2 + 49) bytes: a one-byte length always fits.
        let mut out = vec![0x30, u8::try_from(body.len()).ok()?];
        out.extend(body);
        Some(out)
    }
}

/// An unsigned big-endian number as a DER INTEGER (short lengths only).
fn der_integer(n: &[u8]) -> Vec<u8> {
    let start = n.iter().position(|b| *b != 0).unwrap_or(n.len());
    let n = &n[start..];
    let pad = n.first().is_none_or(|b| b & 0x80 != 0);
    let len = n.len() + usize::from(pad);
    let mut out = vec![0x02, len as u8];
    if pad {
        out.push(0);
    }
    out.extend_from_slice(n);
    out
}

/// The header fields the registry reads; others are ignored.
#[derive(Debug, Clone, Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    x5c: Vec<String>,
}

/// A token split and decoded, its signature not yet checked.
#[derive(Debug, Clone)]
pub struct Jws<'a> {
    /// The signature algorithm.
    pub alg: Alg,
    /// `kid`: the libtrust ID of the signing key.
    pub kid: Option<String>,
    /// `x5c`: DER certificates, the signer's first.
    pub x5c: Vec<Vec<u8>>,
    /// What the signature covers: `header "." claims`, as sent.
    pub signing_input: &'a [u8],
    /// The claims' JSON, unparsed until the signature holds.
    pub claims: Vec<u8>,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

impl<'a> Jws<'a> {
    /// Splits and decodes `token`. Refuses anything but three base64url
    /// parts with a JSON header, and any `alg` but those of [`Alg`].
    pub fn parse(token: &'a str) -> Result<Jws<'a>, TokenError> {
        let malformed = TokenError::Malformed;
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not three dot-separated parts"));
        };
        let decode = |part: &str, what| URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed(what));
        let header: RawHeader = serde_json::from_slice(&decode(header, "header is not base64url")?)
            .map_err(|_| malformed("header is not a JSON object with alg"))?;
        let alg = Alg::from_name(&header.alg).ok_or(TokenError::Algorithm(header.alg))?;
        let x5c = header
            .x5c
            .iter()
            .map(|c| STANDARD.decode(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| malformed("x5c entry is not base64"))?;
        let claims = decode(claims, "claims are not base64url")?;
        let signature = decode(signature, "signature is not base64url")?;
        if signature.is_empty() {
            return Err(malformed("no signature"));
        }
        let signed_len = token.len() - token.rsplit('.').next().map_or(0, str::len) - 1;
        Ok(Jws {
            alg,
            kid: header.kid.filter(|k| !k.is_empty()),
            x5c,
            signing_input: &token.as_bytes()[..signed_len],
            claims,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn algorithms() {
        for (name, alg) in [
            ("RS256", Alg::Rs256),
            ("RS384", Alg::Rs384),
            ("RS512", Alg::Rs512),
            ("ES256", Alg::Es256),
            ("ES384", Alg::Es384),
        ] {
            assert_eq!(Alg::from_name(name), Some(alg));
        }
        for name in ["none", "HS256", "HS512", "ES512", "PS256", "rs256", ""] {
            assert_eq!(Alg::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn parses_parts_and_signing_input() {
        let token = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"ES256","kid":"K"}"#),
            b64("{}"),
            b64("sig")
        );
        let jws = Jws::parse(&token).unwrap();
        assert_eq!(jws.alg, Alg::Es256);
        assert_eq!(jws.kid.as_deref(), Some("K"));
        assert_eq!(jws.claims, b"{}");
        assert_eq!(jws.signature, b"sig");
        let dot = token.rfind('.').unwrap();
        assert_eq!(jws.signing_input, &token.as_bytes()[..dot]);
    }

    #[test]
    fn refuses_none_and_hmac() {
        for alg in ["none", "HS256"] {
            let token = format!(
                "{}.{}.{}",
                b64(&format!(r#"{{"alg":"{alg}"}}"#)),
                b64("{}"),
                b64("s")
            );
            assert_eq!(
                Jws::parse(&token).unwrap_err(),
                TokenError::Algorithm(alg.into())
            );
        }
    }

    #[test]
    fn malformed() {
        let good_header = b64(r#"{"alg":"RS256"}"#);
        let cases = [
            String::new(),
            "a.b".into(),
            "a.b.c.d".into(),
            format!("{good_header}.{}.", b64("{}")),
            format!("!!.{}.{}", b64("{}"), b64("s")),
            format!("{}.{}.{}", b64("not json"), b64("{}"), b64("s")),
            format!("{}.{}.{}", b64(r#"{"kid":"x"}"#), b64("{}"), b64("s")),
            format!("{good_header}.{}.{}", "*", b64("s")),
            format!(
                "{}.{}.{}",
                b64(r#"{"alg":"RS256","x5c":["%%%"]}"#),
                b64("{}"),
                b64("s")
            ),
        ];
        for token in cases {
            assert!(
                matches!(Jws::parse(&token), Err(TokenError::Malformed(_))),
                "{token:?}"
            );
        }
    }

    #[test]
    fn ecdsa_fixed_to_der() {
        let mut sig = vec![0u8; 64];
        sig[0] = 0x80; // r needs a leading zero
        sig[63] = 1; // s is 1
        let der = Alg::Es256.signature_der(&sig).unwrap();
        let mut want = vec![0x30, 2 + 33 + 3, 0x02, 33, 0];
        want.push(0x80);
        want.extend([0u8; 31]);
        want.extend([0x02, 1, 1]);
        assert_eq!(der, want);
        assert_eq!(Alg::Es256.signature_der(&[0; 63]), None);
        assert_eq!(Alg::Es384.signature_der(&[0; 64]), None);
        assert_eq!(Alg::Rs256.signature_der(b"raw").unwrap(), b"raw");
    }
}
