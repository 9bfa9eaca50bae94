//! Channel targets: the URIs [`ChannelBuilder::connect_to`] takes, as gRPC's
//! naming document spells them.
//!
//! [`ChannelBuilder::connect_to`]: super::ChannelBuilder::connect_to

use std::fmt;
use std::path::PathBuf;

/// Where a channel connects: parsed from `http://host:port`,
/// `https://host:port`, `dns:///host:port`, `unix:///path` or a bare
/// `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A host (a DNS name or an IP address) and port, resolved at every
    /// connection attempt.
    Host {
        host: String,
        port: u16,
        /// `https://`: TLS is asked for by the target itself.
        tls: bool,
    },
    /// A Unix domain socket.
    Unix(PathBuf),
}

/// A target that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadTarget {
    pub(crate) target: String,
    pub(crate) why: &'static str,
}

impl fmt::Display for BadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid target {:?}: {}", self.target, self.why)
    }
}

impl Target {
    pub(crate) fn parse(target: &str) -> Result<Target, BadTarget> {
        let bad = |why| BadTarget {
            target: target.to_owned(),
            why,
        };
        if let Some(path) = target.strip_prefix("unix://") {
            // `unix:///absolute/path`: the authority is empty.
            if !path.starts_with('/') {
                return Err(bad("unix:// needs an absolute path (unix:///path)"));
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if let Some(path) = target.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("no socket path"));
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        let (rest, default_port, tls) = if let Some(rest) = target.strip_prefix("http://") {
            (rest, 80, false)
        } else if let Some(rest) = target.strip_prefix("https://") {
            (rest, 443, true)
        } else if let Some(rest) = target.strip_prefix("dns:") {
            // `dns:host:port`, `dns:///host:port`, `dns://resolver/host:port`
            // (the resolver's address is not used: the system's is).
            let rest = match rest.strip_prefix("//") {
                Some(with_authority) => match with_authority.split_once('/') {
                    Some((_, name)) => name,
                    None => return Err(bad("dns://AUTHORITY/ needs a host after the slash")),
                },
                None => rest,
            };
            (rest, 443, false)
        } else if target.contains("://") {
            return Err(bad("the scheme is not one of http, https, dns, unix"));
        } else {
            (target, 443, false)
        };
        // A trailing slash of a URI is fine; a path is not.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(bad("a channel target has no path"));
        }
        let (host, port) = split_host_port(rest, default_port).map_err(bad)?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Target::Host { host, port, tls })
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(text: &str, default_port: u16) -> Result<(String, u16), &'static str> {
    let port_of = |port: &str| port.parse::<u16>().map_err(|_| "not a port number");
    if let Some(bracketed) = text.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or("an unclosed [")?;
        let port = match after {
            "" => default_port,
            after => port_of(after.strip_prefix(':').ok_or("junk after ]")?)?,
        };
        return Ok((host.to_owned(), port));
    }
    match text.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((host, _)) if host.contains(':') => Ok((text.to_owned(), default_port)),
        Some((host, port)) => Ok((host.to_owned(), port_of(port)?)),
        None => Ok((text.to_owned(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(host: &str, port: u16, tls: bool) -> Target {
        Target::Host {
            host: host.into(),
            port,
            tls,
        }
    }

    #[test]
    fn the_schemes_of_the_naming_document_parse() {
        let cases = [
            ("http://example.com:8080", host("example.com", 8080, false)),
            ("http://example.com", host("example.com", 80, false)),
            ("https://example.com", host("example.com", 443, true)),
            (
                "https://example.com:50051/",
                host("example.com", 50051, true),
            ),
            (
                "dns:///example.com:50051",
                host("example.com", 50051, false),
            ),
            ("dns://8.8.8.8/example.com:9", host("example.com", 9, false)),
            ("dns:example.com", host("example.com", 443, false)),
            ("localhost:50051", host("localhost", 50051, false)),
            ("127.0.0.1:1", host("127.0.0.1", 1, false)),
            ("[::1]:50051", host("::1", 50051, false)),
            ("http://[::1]", host("::1", 80, false)),
            ("::1", host("::1", 443, false)),
            (
                "unix:///run/grpc.sock",
                Target::Unix("/run/grpc.sock".into()),
            ),
            ("unix:relative.sock", Target::Unix("relative.sock".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(Target::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_targets_say_what_is_wrong() {
        let cases = [
            ("ftp://example.com", "scheme"),
            ("http://example.com:http", "port"),
            ("http://example.com:70000", "port"),
            ("http://example.com/path", "no path"),
            ("http://:80", "no host"),
            ("unix://relative", "absolute"),
            ("unix:", "no socket path"),
            ("[::1", "unclosed"),
            ("dns://resolver", "host after"),
        ];
        for (text, part) in cases {
            let err = Target::parse(text).unwrap_err();
            assert!(err.to_string().contains(part), "{text}: {err}");
            assert!(err.to_string().contains(text), "{text}: {err}");
        }
    }
}
