//! Names the set-up commands take on the command line, each a type built
//! only by parsing, so clap refuses a bad one with the reason before the
//! command runs.
//!
//! ```text
//! server    = host [ ":" port ]                  ; what --server takes
//! host      = dns-name / IPv4address / "[" IPv6address "]"
//! dns-name  = dns-label *( "." dns-label )       ; at most 253 characters,
//!                                                ; last label not all digits
//! dns-label = alnum [ *( alnum / "-" ) alnum ]   ; at most 63 characters
//! port      = 1*5DIGIT                           ; 1 to 65535
//!
//! label     = [a-z0-9]([-a-z0-9]*[a-z0-9])?      ; Kubernetes DNS-1123 label,
//!                                                ; at most 63: namespaces
//! subdomain = label *( "." label )               ; DNS-1123 subdomain, at most
//!                                                ; 253: Secrets, ServiceAccounts
//! ```
//!
//! The last two are Kubernetes' own checks (`IsDNS1123Label`,
//! `IsDNS1123Subdomain`), so a name accepted here is accepted by the API
//! server.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A registry host with an optional port, as it appears at the start of an
/// image reference (`registry.example.com`, `registry.example.com:5000`,
/// `10.0.0.7:5000`, `[fd00::7]:5000`): no scheme, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryHost(String);

impl RegistryHost {
    /// The host (and port) as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegistryHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const HOST_EXAMPLE: &str = "expected a host name with an optional port, \
     like registry.example.com or registry.example.com:5000";

impl FromStr for RegistryHost {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err(format!("empty; {HOST_EXAMPLE}"));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(format!(
                "remove the scheme `{scheme}://`: {HOST_EXAMPLE} (pull secrets match images by host)"
            ));
        }
        if s.contains('/') {
            return Err(format!(
                "remove the path: {HOST_EXAMPLE} (pull secrets match images by host)"
            ));
        }
        let (host, port) = split_port(s)?;
        if let Some(port) = port {
            match port.parse::<u16>() {
                Ok(n) if n > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
                _ => return Err(format!("the port `{port}` is not a number from 1 to 65535")),
            }
        }
        if let Some(inner) = host.strip_prefix('[') {
            let ok = inner
                .strip_suffix(']')
                .is_some_and(|ip| ip.parse::<Ipv6Addr>().is_ok());
            if !ok {
                return Err("not a valid bracketed IPv6 address".to_owned());
            }
        } else if host.parse::<Ipv4Addr>().is_err() {
            check_dns_name(host)?;
        }
        Ok(RegistryHost(s.to_owned()))
    }
}

/// Splits `host:port`; a bare IPv6 address must be bracketed.
fn split_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if s.starts_with('[') {
        return Ok(match s.rfind("]:") {
            Some(end) => (&s[..=end], Some(&s[end + 2..])),
            None => (s, None),
        });
    }
    match s.split_once(':') {
        Some((_, port)) if port.contains(':') => {
            Err("put an IPv6 address in brackets, like [fd00::7]:5000".to_owned())
        }
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((s, None)),
    }
}

/// RFC 1123 host name: letters, digits and inner hyphens per label.
fn check_dns_name(host: &str) -> Result<(), String> {
    if host.len() > 253 {
        return Err("the host name is longer than 253 characters".to_owned());
    }
    let labels: Vec<&str> = host.split('.').collect();
    for label in &labels {
        let bytes = label.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes.first() != Some(&b'-')
            && bytes.last() != Some(&b'-');
        if !valid {
            return Err(format!(
                "`{label}` is not a host name label (1 to 63 letters, digits and inner '-'); {HOST_EXAMPLE}"
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("neither a host name nor an IPv4 address".to_owned());
    }
    Ok(())
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` without the length limit.
fn is_label_shape(label: &str) -> bool {
    let bytes = label.as_bytes();
    let ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            ok(first) && ok(last) && bytes.iter().all(|b| ok(b) || *b == b'-')
        }
        _ => false,
    }
}

/// A Kubernetes DNS-1123 label: the name of a Namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns1123Label(String);

impl Dns1123Label {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Dns1123Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Dns1123Label {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() > 63 {
            return Err("a Kubernetes namespace name has at most 63 characters".to_owned());
        }
        if !is_label_shape(s) {
            return Err(
                "not a DNS-1123 label: use lowercase letters, digits and '-', \
                 starting and ending with a letter or digit"
                    .to_owned(),
            );
        }
        Ok(Dns1123Label(s.to_owned()))
    }
}

/// A Kubernetes DNS-1123 subdomain: the name of a Secret or a
/// ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns1123Subdomain(String);

impl Dns1123Subdomain {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Dns1123Subdomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Dns1123Subdomain {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() > 253 {
            return Err("a Kubernetes object name has at most 253 characters".to_owned());
        }
        if !s.split('.').all(is_label_shape) {
            return Err(
                "not a DNS-1123 subdomain: use lowercase letters, digits, '-' and '.', \
                 each part starting and ending with a letter or digit"
                    .to_owned(),
            );
        }
        Ok(Dns1123Subdomain(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_accepted() {
        for host in [
            "registry.example.com",
            "registry.example.com:5000",
            "Registry.Example.COM",
            "localhost",
            "localhost:5000",
            "my-registry",
            "10.0.0.7",
            "10.0.0.7:5000",
            "[fd00::7]",
            "[fd00::7]:5000",
            "[::1]:443",
            "xn--bcher-kva.example:65535",
        ] {
            let parsed: RegistryHost = host.parse().unwrap_or_else(|e| panic!("{host}: {e}"));
            assert_eq!(parsed.as_str(), host);
        }
    }

    #[test]
    fn hosts_refused_with_the_reason() {
        let cases = [
            ("", "empty"),
            (
                "https://registry.example.com",
                "remove the scheme `https://`",
            ),
            ("http://registry.example.com:5000", "remove the scheme"),
            ("registry.example.com/team", "remove the path"),
            ("registry.example.com/", "remove the path"),
            ("registry.example.com:0", "not a number from 1 to 65535"),
            ("registry.example.com:65536", "not a number from 1 to 65535"),
            ("registry.example.com:+80", "not a number"),
            ("registry.example.com:", "not a number"),
            ("registry.example.com:http", "not a number"),
            ("fd00::7", "brackets"),
            ("[fd00::7", "IPv6"),
            ("[not-ip]:5000", "IPv6"),
            ("-registry.example.com", "not a host name label"),
            ("registry-.example.com", "not a host name label"),
            ("registry..example.com", "not a host name label"),
            ("registry.example.com.", "not a host name label"),
            ("registry_1.example.com", "not a host name label"),
            ("registry example.com", "not a host name label"),
            ("user@registry.example.com", "not a host name label"),
            ("10.0.0.999", "neither a host name nor an IPv4 address"),
        ];
        for (host, reason) in cases {
            let error = host.parse::<RegistryHost>().unwrap_err();
            assert!(error.contains(reason), "{host}: {error}");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert!(long.parse::<RegistryHost>().is_err());
        let too_long = vec!["abcdefghi"; 26].join(".");
        assert!(too_long.len() > 253);
        assert!(too_long
            .parse::<RegistryHost>()
            .unwrap_err()
            .contains("253"));
    }

    #[test]
    fn dns_1123_labels() {
        for ok in [
            "default",
            "registry",
            "a",
            "team-1",
            "0abc",
            &"a".repeat(63),
        ] {
            assert!(ok.parse::<Dns1123Label>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Default",
            "team_1",
            "-a",
            "a-",
            "a.b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(bad.parse::<Dns1123Label>().is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_1123_subdomains() {
        for ok in ["regcred", "regcred.team-a", "a", "0", &"a".repeat(253)] {
            assert!(ok.parse::<Dns1123Subdomain>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "RegCred",
            "reg_cred",
            "reg cred",
            ".regcred",
            "regcred.",
            "a..b",
            "-a",
            "a-.b",
            &"a".repeat(254),
        ] {
            assert!(bad.parse::<Dns1123Subdomain>().is_err(), "{bad}");
        }
    }
}
