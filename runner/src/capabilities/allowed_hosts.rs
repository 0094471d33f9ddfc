//! `allowed_outbound_hosts`: which `scheme://host:port` a job may send requests to.
//!
//! The grammar is Spin's (so its users recognise it), written here from its documentation:
//! `scheme://host[:port]`, nothing else.
//! - scheme: `*`, `http` or `https`;
//! - host: `*`; `*.example.com` (every subdomain, **not** `example.com` itself); a name
//!   (`api.example.com`); an IPv4 address or CIDR (`10.0.0.1`, `10.0.0.0/8`); an IPv6 address or
//!   CIDR in brackets (`[2001:db8::1]`, `[2001:db8::]/32`);
//! - port: `*`; a number; a range `a..b` (the end is exclusive: `8000..8100` is 8000-8099);
//!   when left out, the scheme's (http 80, https 443), so `*` as scheme needs an explicit port.
//!
//! Host names match case-insensitively and a trailing dot is ignored. Paths, queries,
//! fragments, user info and `{{ templates }}` are refused with a message saying so.
//!
//! This module only decides whether a destination is *named* by a pattern. It must never be
//! the only check: the sandbox also refuses forbidden addresses after resolving a name.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest pattern accepted (a DNS name is at most 253 bytes; this leaves room for the rest).
pub const MAX_PATTERN_BYTES: usize = 300;

/// A parsed, non-empty-or-empty list of patterns. Empty allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    patterns: Vec<HostPattern>,
}

/// A pattern that is not in the grammar: the pattern and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?}: {problem}")]
pub struct PatternError {
    /// The pattern as given (cut to [`MAX_PATTERN_BYTES`]).
    pub pattern: String,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    /// The canonical text (lowercase scheme and host; the port as given): what `allows`
    /// returns, and what is stored.
    text: String,
    scheme: Scheme,
    host: Host,
    ports: Ports,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Scheme {
    Any,
    Is(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Any,
    /// `*.suffix`: names ending in `.suffix`, not `suffix` itself.
    Subdomains(String),
    Name(String),
    /// An address and prefix length (the host bits are zero).
    Net(IpAddr, u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ports {
    Any,
    /// `start..end`, end exclusive (a single port `p` is `p..p+1`).
    Range(u16, u32),
}

impl AllowedHosts {
    /// Parses every pattern; the first bad one is the error.
    pub fn parse(patterns: &[String]) -> Result<AllowedHosts, PatternError> {
        let patterns = patterns
            .iter()
            .map(|p| HostPattern::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowedHosts { patterns })
    }

    /// Allows nothing (no network).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The canonical texts of the patterns, in order (what to store and show).
    pub fn patterns(&self) -> Vec<String> {
        self.patterns.iter().map(|p| p.text.clone()).collect()
    }

    /// The first pattern that allows a request to `scheme://host:port`, for the audit trail;
    /// `None` when no pattern does. `host` may be a name (any case, trailing dot or not) or an
    /// IP address (IPv6 with or without brackets).
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> Option<&str> {
        let scheme = scheme.to_ascii_lowercase();
        let host = Destination::of(host);
        self.patterns
            .iter()
            .find(|p| p.allows(&scheme, &host, port))
            .map(|p| p.text.as_str())
    }

    /// Whether every pattern of `other` lies inside some pattern of `self` (a job's grant inside
    /// its tenant's ceiling). `Err` carries the first pattern of `other` that does not.
    ///
    /// Each pattern must fit inside one pattern: a range covered only by two patterns together
    /// (`:80..90` and `:90..100` for `:80..100`) is refused; grant it as two patterns.
    pub fn contains(&self, other: &AllowedHosts) -> Result<(), String> {
        match other
            .patterns
            .iter()
            .find(|inner| !self.patterns.iter().any(|outer| outer.contains(inner)))
        {
            Some(outside) => Err(outside.text.clone()),
            None => Ok(()),
        }
    }
}

impl fmt::Display for AllowedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<&str> = self.patterns.iter().map(|p| p.text.as_str()).collect();
        write!(f, "[{}]", texts.join(", "))
    }
}

/// A request's host, normalised once.
enum Destination {
    Ip(IpAddr),
    Name(String),
}

impl Destination {
    fn of(host: &str) -> Destination {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Destination::Ip(ip);
        }
        let name = host.strip_suffix('.').unwrap_or(host);
        Destination::Name(name.to_ascii_lowercase())
    }
}

fn problem(pattern: &str, problem: impl Into<String>) -> PatternError {
    let mut shown = pattern.to_string();
    if shown.len() > MAX_PATTERN_BYTES {
        let mut cut = MAX_PATTERN_BYTES;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push('…');
    }
    PatternError {
        pattern: shown,
        problem: problem.into(),
    }
}

const PATH: &str = "a path is not allowed: a pattern is scheme://host[:port]";

const FORM: &str =
    "use scheme://host[:port], e.g. https://api.example.com or https://*.example.com:8443";

impl HostPattern {
    fn parse(text: &str) -> Result<HostPattern, PatternError> {
        let err = |p: &str| problem(text, p);
        if text.is_empty() {
            return Err(err(&format!("the pattern is empty: {FORM}")));
        }
        if text.len() > MAX_PATTERN_BYTES {
            return Err(err(&format!(
                "the pattern is longer than {MAX_PATTERN_BYTES} bytes"
            )));
        }
        if text.contains("{{") || text.contains("}}") {
            return Err(err(
                "templates ({{ variable }}) are not supported: write the host out",
            ));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err("the pattern contains whitespace or control characters"));
        }
        let Some((scheme_text, rest)) = text.split_once("://") else {
            return Err(err(&format!("no scheme: {FORM}")));
        };
        let scheme = match scheme_text.to_ascii_lowercase().as_str() {
            "*" => Scheme::Any,
            "http" => Scheme::Is("http"),
            "https" => Scheme::Is("https"),
            "" => return Err(err(&format!("the scheme is empty: {FORM}"))),
            other => {
                return Err(err(&format!(
                    "scheme {other:?} is not supported: use http, https or *"
                )));
            }
        };
        if rest.contains('@') {
            return Err(err(
                "user info (user:password@) is not allowed: a pattern names a destination only",
            ));
        }
        if rest.contains('?') {
            return Err(err(
                "a query (?...) is not allowed: a pattern has no path or query",
            ));
        }
        if rest.contains('#') {
            return Err(err(
                "a fragment (#...) is not allowed: a pattern has no path",
            ));
        }
        if rest.contains('%') {
            return Err(err(
                "percent-encoding is not allowed: write the host as plain ASCII (punycode xn-- for international names)",
            ));
        }

        // Split the host (with its optional /prefix) from the port.
        let (host_text, prefix_text, port_text) = if let Some(inner) = rest.strip_prefix('[') {
            let Some((addr, after)) = inner.split_once(']') else {
                return Err(err(
                    "an IPv6 address opened with '[' is not closed with ']'",
                ));
            };
            let (prefix, after) = match after.strip_prefix('/') {
                Some(p) => {
                    let end = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
                    if end == 0 {
                        return Err(err(PATH));
                    }
                    (Some(&p[..end]), &p[end..])
                }
                None => (None, after),
            };
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None if after.starts_with('/') => {
                        return Err(err(PATH));
                    }
                    None => {
                        return Err(err(&format!(
                            "unexpected {after:?} after the IPv6 address: {FORM}"
                        )));
                    }
                },
            };
            (addr, prefix, port)
        } else {
            let end = rest.find([':', '/']).unwrap_or(rest.len());
            let (host, mut after) = rest.split_at(end);
            let mut prefix = None;
            if let Some(p) = after.strip_prefix('/') {
                let digits = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
                let (number, tail) = p.split_at(digits);
                let is_cidr = !number.is_empty()
                    && (tail.is_empty() || tail.starts_with(':'))
                    && host.parse::<Ipv4Addr>().is_ok();
                if !is_cidr {
                    return Err(err(PATH));
                }
                prefix = Some(number);
                after = tail;
            }
            if after.strip_prefix(':').is_some_and(|p| p.contains(':')) {
                return Err(err(
                    "an IPv6 address goes in brackets: https://[2001:db8::1]",
                ));
            }
            (host, prefix, after.strip_prefix(':'))
        };
        if port_text.is_some_and(|p| p.contains('/')) {
            return Err(err(PATH));
        }
        let bracketed = rest.starts_with('[');

        let host = parse_host(host_text, prefix_text, bracketed).map_err(|p| err(&p))?;
        let ports = match port_text {
            None => match scheme {
                Scheme::Is("http") => Ports::Range(80, 81),
                Scheme::Is(_) => Ports::Range(443, 444),
                Scheme::Any => {
                    return Err(err(
                        "a pattern with scheme * needs a port (e.g. *://example.com:* or :443)",
                    ));
                }
            },
            Some(p) => parse_ports(p).map_err(|p| err(&p))?,
        };

        let scheme_canon = match &scheme {
            Scheme::Any => "*",
            Scheme::Is(s) => s,
        };
        let host_canon = match &host {
            Host::Any => "*".to_string(),
            Host::Subdomains(s) => format!("*.{s}"),
            Host::Name(n) => n.clone(),
            Host::Net(IpAddr::V4(a), 32) => a.to_string(),
            Host::Net(IpAddr::V4(a), p) => format!("{a}/{p}"),
            Host::Net(IpAddr::V6(a), 128) => format!("[{a}]"),
            Host::Net(IpAddr::V6(a), p) => format!("[{a}]/{p}"),
        };
        let text = match port_text {
            Some(p) => format!("{scheme_canon}://{host_canon}:{p}"),
            None => format!("{scheme_canon}://{host_canon}"),
        };
        Ok(HostPattern {
            text,
            scheme,
            host,
            ports,
        })
    }

    fn allows(&self, scheme: &str, host: &Destination, port: u16) -> bool {
        let scheme_ok = match self.scheme {
            Scheme::Any => true,
            Scheme::Is(s) => s == scheme,
        };
        let port_ok = match self.ports {
            Ports::Any => true,
            Ports::Range(a, b) => a <= port && u32::from(port) < b,
        };
        let host_ok = match (&self.host, host) {
            (Host::Any, _) => true,
            (Host::Subdomains(suffix), Destination::Name(n)) => is_subdomain(n, suffix),
            (Host::Name(name), Destination::Name(n)) => name == n,
            (Host::Net(net, prefix), Destination::Ip(ip)) => in_net(*net, *prefix, *ip),
            _ => false,
        };
        scheme_ok && port_ok && host_ok
    }

    /// Every destination `inner` allows, `self` allows too.
    fn contains(&self, inner: &HostPattern) -> bool {
        let scheme_ok = match (&self.scheme, &inner.scheme) {
            (Scheme::Any, _) => true,
            (Scheme::Is(a), Scheme::Is(b)) => a == b,
            (Scheme::Is(_), Scheme::Any) => false,
        };
        let port_ok = match (self.ports, inner.ports) {
            (Ports::Any, _) => true,
            (Ports::Range(a, b), Ports::Range(c, d)) => a <= c && d <= b,
            (Ports::Range(..), Ports::Any) => false,
        };
        let host_ok = match (&self.host, &inner.host) {
            (Host::Any, _) => true,
            (_, Host::Any) => false,
            (Host::Subdomains(outer), Host::Subdomains(s)) => s == outer || is_subdomain(s, outer),
            (Host::Subdomains(outer), Host::Name(n)) => is_subdomain(n, outer),
            (Host::Name(a), Host::Name(b)) => a == b,
            (Host::Net(net, prefix), Host::Net(addr, inner_prefix)) => {
                inner_prefix >= prefix && in_net(*net, *prefix, *addr)
            }
            _ => false,
        };
        scheme_ok && port_ok && host_ok
    }
}

fn is_subdomain(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1
        && name.ends_with(suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

fn in_net(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => u32::from(ip) & mask32(prefix) == u32::from(net),
        (IpAddr::V6(net), IpAddr::V6(ip)) => u128::from(ip) & mask128(prefix) == u128::from(net),
        _ => false,
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

fn parse_host(text: &str, prefix: Option<&str>, bracketed: bool) -> Result<Host, String> {
    if bracketed {
        let addr: Ipv6Addr = text
            .parse()
            .map_err(|_| format!("{text:?} in brackets is not an IPv6 address"))?;
        return net(IpAddr::V6(addr), prefix, 128);
    }
    if text.is_empty() {
        return Err(format!("the host is empty: {FORM}"));
    }
    if text == "*" {
        return Ok(Host::Any);
    }
    if let Ok(addr) = text.parse::<Ipv4Addr>() {
        return net(IpAddr::V4(addr), prefix, 32);
    }
    let text = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    let (subdomains, name) = match text.strip_prefix("*.") {
        Some(suffix) => (true, suffix.to_string()),
        None => (false, text),
    };
    if name.contains('*') {
        return Err(
            "a wildcard is only allowed as the whole host (*) or as its first label (*.example.com)"
                .into(),
        );
    }
    check_dns_name(&name)?;
    Ok(if subdomains {
        Host::Subdomains(name)
    } else {
        Host::Name(name)
    })
}

fn net(addr: IpAddr, prefix: Option<&str>, bits: u8) -> Result<Host, String> {
    let prefix = match prefix {
        None => bits,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= bits)
            .ok_or_else(|| format!("/{p} is not a prefix length for {addr} (0-{bits})"))?,
    };
    let masked = match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(prefix))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(prefix))),
    };
    if masked != addr {
        return Err(format!(
            "{addr}/{prefix} has bits set beyond the prefix: did you mean {masked}/{prefix}?"
        ));
    }
    Ok(Host::Net(addr, prefix))
}

fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the host is empty: {FORM}"));
    }
    if name.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    if name
        .split('.')
        .all(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "{name:?} is neither an IPv4 address nor a host name"
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("{name:?} has an empty label (two dots in a row?)"));
        }
        if label.len() > 63 {
            return Err(format!("{name:?} has a label longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "{name:?} contains {c:?}: host names are ASCII letters, digits, '-' and '_' \
                 (punycode xn-- for international names)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("{name:?} has a label starting or ending with '-'"));
        }
    }
    Ok(())
}

fn parse_ports(text: &str) -> Result<Ports, String> {
    let number = |t: &str| -> Option<u32> {
        (!t.is_empty() && t.len() <= 5 && t.chars().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    if text == "*" {
        return Ok(Ports::Any);
    }
    if text.is_empty() {
        return Err("the port after ':' is empty: give a number, a range a..b or *".into());
    }
    if let Some((a, b)) = text.split_once("..") {
        let (Some(a), Some(b)) = (number(a), number(b)) else {
            return Err(format!(
                "port range {text:?} is not two numbers a..b (the end is exclusive)"
            ));
        };
        if a == 0 || a > 65535 || b > 65536 {
            return Err(format!(
                "port range {text:?} is out of range: ports are 1-65535 (the end is exclusive, up to 65536)"
            ));
        }
        if a >= b {
            return Err(format!(
                "port range {text:?} is empty: the end is exclusive, so it must be larger than the start"
            ));
        }
        return Ok(Ports::Range(a as u16, b));
    }
    match number(text) {
        Some(p) if (1..=65535).contains(&p) => Ok(Ports::Range(p as u16, p + 1)),
        Some(_) => Err(format!("port {text} is out of range: ports are 1-65535")),
        None => Err(format!("port {text:?} is not a number, a range a..b or *")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(p: &[&str]) -> Result<AllowedHosts, PatternError> {
        AllowedHosts::parse(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn one(p: &str) -> AllowedHosts {
        parse(&[p]).unwrap_or_else(|e| panic!("{p} should parse: {e}"))
    }

    #[test]
    fn accepts_the_grammar_and_canonicalises() {
        for (given, canonical) in [
            ("https://api.example.com", "https://api.example.com"),
            ("HTTPS://API.Example.COM", "https://api.example.com"),
            ("https://api.example.com.", "https://api.example.com"),
            ("http://example.com:8080", "http://example.com:8080"),
            ("https://*.example.com", "https://*.example.com"),
            ("*://*:*", "*://*:*"),
            ("*://example.com:443", "*://example.com:443"),
            (
                "https://example.com:8000..8100",
                "https://example.com:8000..8100",
            ),
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
            ("http://10.0.0.0/8", "http://10.0.0.0/8"),
            ("http://10.0.0.0/8:*", "http://10.0.0.0/8:*"),
            ("https://[2001:db8::1]", "https://[2001:db8::1]"),
            ("https://[2001:DB8::]/32:443", "https://[2001:db8::]/32:443"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("https://my_host.internal", "https://my_host.internal"),
            ("https://*:1..65536", "https://*:1..65536"),
        ] {
            assert_eq!(
                one(given).patterns(),
                vec![canonical.to_string()],
                "{given}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_the_grammar_and_says_why() {
        for (given, says) in [
            ("", "empty"),
            ("example.com", "no scheme"),
            ("://example.com", "scheme is empty"),
            ("ftp://example.com", "not supported"),
            ("postgres://db:5432", "not supported"),
            ("https://", "host is empty"),
            ("https://:443", "host is empty"),
            ("https://example.com/", "path"),
            ("https://example.com/api", "path"),
            ("https://example.com:443/api", "path"),
            ("https://example.com?key=1", "query"),
            ("https://example.com#top", "fragment"),
            ("https://user:pw@example.com", "user info"),
            ("https://{{ host }}", "templates"),
            ("https://example.com:0", "out of range"),
            ("https://example.com:65536", "out of range"),
            ("https://example.com:+80", "not a number"),
            ("https://example.com:http", "not a number"),
            ("https://example.com:", "empty"),
            ("https://example.com:90..80", "is empty"),
            ("https://example.com:80..80", "is empty"),
            ("https://example.com:0..80", "out of range"),
            ("https://example.com:1..65537", "out of range"),
            ("https://example.com:a..b", "two numbers"),
            ("*://example.com", "needs a port"),
            ("https://api.*.example.com", "wildcard"),
            ("https://*example.com", "wildcard"),
            ("https://**", "wildcard"),
            ("https://exa mple.com", "whitespace"),
            ("https://bücher.example", "punycode"),
            ("https://a..b", "empty label"),
            ("https://-a.example.com", "'-'"),
            ("https://999.1.1.1", "neither an IPv4"),
            ("https://10.0.0.1/8", "bits set"),
            ("https://10.0.0.0/33", "prefix length"),
            ("https://2001:db8::1", "in brackets"),
            ("https://[2001:db8::1", "not closed"),
            ("https://[example.com]", "not an IPv6"),
            ("https://[::1]/129", "prefix length"),
            ("https://[::1]/api", "path"),
            ("https://exa%6dple.com", "percent"),
        ] {
            let e = parse(&[given]).expect_err(given);
            assert!(
                e.problem.contains(says),
                "{given:?}: expected {says:?} in {:?}",
                e.problem
            );
            assert!(e.to_string().starts_with(&format!("{given:?}")), "{e}");
        }
        // The first bad pattern of a list is the one named.
        let e = parse(&["https://ok.example.com", "https://x.example.com/p", ""]).unwrap_err();
        assert_eq!(e.pattern, "https://x.example.com/p");
        assert!(parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn matches_scheme_host_and_port() {
        let cases: &[(&str, &str, &str, u16, bool)] = &[
            (
                "https://api.example.com",
                "https",
                "api.example.com",
                443,
                true,
            ),
            (
                "https://api.example.com",
                "HTTPS",
                "API.EXAMPLE.com.",
                443,
                true,
            ),
            (
                "https://api.example.com",
                "http",
                "api.example.com",
                443,
                false,
            ),
            (
                "https://api.example.com",
                "https",
                "api.example.com",
                80,
                false,
            ),
            (
                "https://api.example.com",
                "https",
                "x.api.example.com",
                443,
                false,
            ),
            ("http://example.com", "http", "example.com", 80, true),
            (
                "https://*.example.com",
                "https",
                "api.example.com",
                443,
                true,
            ),
            (
                "https://*.example.com",
                "https",
                "a.b.example.com",
                443,
                true,
            ),
            ("https://*.example.com", "https", "example.com", 443, false),
            (
                "https://*.example.com",
                "https",
                "badexample.com",
                443,
                false,
            ),
            (
                "https://*.example.com",
                "https",
                "example.com.evil.org",
                443,
                false,
            ),
            ("*://*:*", "http", "anything.test", 1, true),
            ("*://*:*", "https", "10.1.2.3", 65535, true),
            ("https://*:*", "http", "x.test", 80, false),
            (
                "http://example.com:8000..8100",
                "http",
                "example.com",
                8000,
                true,
            ),
            (
                "http://example.com:8000..8100",
                "http",
                "example.com",
                8099,
                true,
            ),
            (
                "http://example.com:8000..8100",
                "http",
                "example.com",
                8100,
                false,
            ),
            ("http://127.0.0.1:3000", "http", "127.0.0.1", 3000, true),
            ("http://127.0.0.1:3000", "http", "localhost", 3000, false),
            ("http://10.0.0.0/8:*", "http", "10.200.3.4", 9, true),
            ("http://10.0.0.0/8:*", "http", "11.0.0.1", 9, false),
            ("http://[::1]:8080", "http", "[::1]", 8080, true),
            ("http://[::1]:8080", "http", "::1", 8080, true),
            ("http://[2001:db8::]/32:*", "http", "2001:db8:1::5", 1, true),
            ("http://[2001:db8::]/32:*", "http", "2001:db9::5", 1, false),
            ("http://0.0.0.0/0:*", "http", "::1", 1, false),
            // A name pattern never matches an address and the other way round.
            ("http://10.0.0.0/8:*", "http", "ten.example", 1, false),
        ];
        for (pattern, scheme, host, port, allowed) in cases {
            let hosts = one(pattern);
            let got = hosts.allows(scheme, host, *port);
            assert_eq!(
                got.is_some(),
                *allowed,
                "{pattern} for {scheme}://{host}:{port}"
            );
            if *allowed {
                assert_eq!(got, Some(hosts.patterns()[0].as_str()));
            }
        }
        // The first matching pattern is the one named (for the audit line).
        let hosts = parse(&["https://a.example.com", "https://*.example.com"]).unwrap();
        assert_eq!(
            hosts.allows("https", "b.example.com", 443),
            Some("https://*.example.com")
        );
        assert_eq!(
            AllowedHosts::default().allows("https", "example.com", 443),
            None
        );
    }

    #[test]
    fn containment_of_a_grant_in_a_ceiling() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["https://*.example.com"], "https://api.example.com", true),
            (&["https://*.example.com"], "https://a.b.example.com", true),
            (
                &["https://*.example.com"],
                "https://*.api.example.com",
                true,
            ),
            (&["https://*.example.com"], "https://*.example.com", true),
            (&["https://*.example.com"], "https://example.com", false),
            (&["https://*.example.com"], "http://api.example.com", false),
            (
                &["https://*.example.com"],
                "https://api.example.com:8443",
                false,
            ),
            (&["https://*.example.com"], "https://*", false),
            (
                &["https://api.example.com"],
                "https://*.api.example.com",
                false,
            ),
            (&["*://*:*"], "https://api.example.com", true),
            (&["*://*:*"], "*://*:*", true),
            (&["*://*:*"], "http://10.0.0.0/8:1..2", true),
            (&["https://*:*"], "*://example.com:443", false),
            (
                &["https://example.com:*"],
                "https://example.com:8000..9000",
                true,
            ),
            (
                &["https://example.com:8000..9000"],
                "https://example.com:8000..9000",
                true,
            ),
            (
                &["https://example.com:8000..9000"],
                "https://example.com:8100..8200",
                true,
            ),
            (
                &["https://example.com:8000..9000"],
                "https://example.com:8999",
                true,
            ),
            (
                &["https://example.com:8000..9000"],
                "https://example.com:9000",
                false,
            ),
            (
                &["https://example.com:8000..9000"],
                "https://example.com:7999..8100",
                false,
            ),
            (
                &["https://example.com:8000..9000"],
                "https://example.com:*",
                false,
            ),
            (
                &["https://example.com:80..90", "https://example.com:90..100"],
                "https://example.com:80..100",
                false,
            ),
            (&["http://10.0.0.0/8:*"], "http://10.1.0.0/16:80", true),
            (&["http://10.0.0.0/8:*"], "http://10.1.2.3:80", true),
            (&["http://10.1.0.0/16:*"], "http://10.0.0.0/8:80", false),
            (
                &["http://[2001:db8::]/32:*"],
                "http://[2001:db8:5::1]:80",
                true,
            ),
            (&["http://10.0.0.0/8:*"], "http://ten.example:80", false),
            (&[], "https://example.com", false),
        ];
        for (ceiling, grant, inside) in cases {
            let ceiling = parse(ceiling).unwrap();
            let grant_hosts = one(grant);
            let got = ceiling.contains(&grant_hosts);
            assert_eq!(got.is_ok(), *inside, "{grant} in {ceiling}");
            if !inside {
                assert_eq!(got.unwrap_err(), grant_hosts.patterns()[0]);
            }
        }
        // The first pattern outside is the one named; an empty grant is inside anything.
        let ceiling = one("https://*.example.com");
        let grant = parse(&[
            "https://a.example.com",
            "https://example.org",
            "http://x.test",
        ])
        .unwrap();
        assert_eq!(
            ceiling.contains(&grant),
            Err("https://example.org".to_string())
        );
        assert_eq!(
            AllowedHosts::default().contains(&AllowedHosts::default()),
            Ok(())
        );
    }
}
