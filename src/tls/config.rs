//! The TLS material and settings of each role: [`Certificate`],
//! [`Identity`], [`ServerTlsConfig`], [`ClientTlsConfig`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use futures_rustls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use super::error::{TlsError, TlsErrorKind};

/// The ALPN protocol gRPC runs on (RFC 9113 section 3.2).
pub(crate) const ALPN_H2: &[u8] = b"h2";

/// One X.509 certificate, DER-encoded: a CA to trust, or one a peer
/// presented.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: CertificateDer<'static>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("der_len", &self.der.len())
            .finish()
    }
}

impl Certificate {
    /// A certificate from its DER bytes (not checked until it is used).
    pub fn from_der(der: impl Into<Vec<u8>>) -> Self {
        Certificate {
            der: CertificateDer::from(der.into()),
        }
    }

    /// Every certificate in a PEM text (a CA bundle may hold several); an
    /// error when there is none or one is malformed.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Vec<Certificate>, TlsError> {
        let certs = CertificateDer::pem_slice_iter(pem.as_ref())
            .map(|cert| cert.map(|der| Certificate { der }))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| TlsError::pem("reading PEM certificates", err))?;
        if certs.is_empty() {
            return Err(TlsError::new(
                TlsErrorKind::Pem,
                "no CERTIFICATE block in the PEM text",
                None,
            ));
        }
        Ok(certs)
    }

    /// Every certificate in a PEM file.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Vec<Certificate>, TlsError> {
        Certificate::from_pem(read(path.as_ref())?)
    }

    /// The DER bytes.
    pub fn as_der(&self) -> &[u8] {
        &self.der
    }

    pub(crate) fn from_rustls(der: &CertificateDer<'_>) -> Self {
        Certificate {
            der: der.clone().into_owned(),
        }
    }
}

/// A certificate chain and its private key: what a server presents, or a
/// client for mutual TLS.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A chain (leaf first) and a private key (PKCS#8, PKCS#1 or SEC1), both
    /// in PEM.
    pub fn from_pem(chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<Self, TlsError> {
        let chain = Certificate::from_pem(chain)?
            .into_iter()
            .map(|cert| cert.der)
            .collect();
        let key = PrivateKeyDer::from_pem_slice(key.as_ref())
            .map_err(|err| TlsError::pem("reading the PEM private key", err))?;
        Ok(Identity { chain, key })
    }

    /// [`from_pem`](Self::from_pem), from two files.
    pub fn from_pem_files(
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        Identity::from_pem(read(chain.as_ref())?, read(key.as_ref())?)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|err| {
        TlsError::new(
            TlsErrorKind::Pem,
            format!("reading {}", path.display()),
            Some(Box::new(err)),
        )
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // Named explicitly rather than the process default, so that another
    // crate enabling a second provider cannot make config building panic.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(cas: &[Certificate]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for ca in cas {
        store
            .add(ca.der.clone())
            .map_err(|err| TlsError::config("adding a CA certificate", err))?;
    }
    Ok(store)
}

/// Whether and how a TLS server asks for client certificates.
#[derive(Debug, Clone)]
enum ClientAuth {
    None,
    Optional(Vec<Certificate>),
    Required(Vec<Certificate>),
}

/// A server's TLS settings: its identity, and whether clients must present
/// a certificate signed by a given CA (mutual TLS).
///
/// ```no_run
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use p2p_grpc::tls::{Certificate, Identity, ServerTlsConfig};
///
/// let tls = ServerTlsConfig::new(Identity::from_pem_files("server.pem", "server.key")?)
///     .require_client_certificates(Certificate::from_pem_file("ca.pem")?);
/// let server = p2p_grpc::Server::builder().tls(tls).build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ServerTlsConfig {
    identity: Identity,
    client_auth: ClientAuth,
}

impl ServerTlsConfig {
    /// TLS with `identity`, client certificates not asked for.
    pub fn new(identity: Identity) -> Self {
        ServerTlsConfig {
            identity,
            client_auth: ClientAuth::None,
        }
    }

    /// Mutual TLS: every client must present a certificate issued by one of
    /// `cas`; a client without one fails the handshake.
    pub fn require_client_certificates(mut self, cas: Vec<Certificate>) -> Self {
        self.client_auth = ClientAuth::Required(cas);
        self
    }

    /// Asks for a client certificate issued by one of `cas`, and accepts
    /// clients that present none (a certificate that is presented must
    /// still be valid).
    pub fn accept_client_certificates(mut self, cas: Vec<Certificate>) -> Self {
        self.client_auth = ClientAuth::Optional(cas);
        self
    }

    /// The rustls configuration: ALPN `h2` only.
    pub(crate) fn build(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsError::config("TLS versions", err))?;
        let builder = match &self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(cas) | ClientAuth::Required(cas) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots(cas)?), provider);
                let verifier = match &self.client_auth {
                    ClientAuth::Optional(_) => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                let verifier = verifier.build().map_err(|err| {
                    TlsError::new(
                        TlsErrorKind::Config,
                        "the client certificate verifier",
                        Some(Box::new(err)),
                    )
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(self.identity.chain.clone(), self.identity.key.clone_key())
            .map_err(|err| TlsError::config("the server certificate and key", err))?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(config))
    }
}

/// Which certificate authorities a TLS client trusts.
#[derive(Debug, Clone)]
enum Trust {
    WebPki,
    Cas(Vec<Certificate>),
}

/// A client's TLS settings: the CAs it trusts, the name it checks the
/// server's certificate against, and its own identity for mutual TLS.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use p2p_grpc::tls::{Certificate, ClientTlsConfig};
///
/// let tls = ClientTlsConfig::new()
///     .ca_certificates(Certificate::from_pem_file("ca.pem")?)
///     .server_name("foo.test.google.fr");
/// let channel = p2p_grpc::Channel::builder()
///     .tls(tls)
///     .connect_tcp("127.0.0.1:50051".parse()?)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientTlsConfig {
    trust: Trust,
    server_name: Option<String>,
    identity: Option<Identity>,
}

impl Default for ClientTlsConfig {
    fn default() -> Self {
        ClientTlsConfig::new()
    }
}

impl ClientTlsConfig {
    /// Trusts the Mozilla root CAs (the `webpki-roots` set) and checks the
    /// server's certificate against the host the channel dials.
    pub fn new() -> Self {
        ClientTlsConfig {
            trust: Trust::WebPki,
            server_name: None,
            identity: None,
        }
    }

    /// Trusts exactly `cas` instead of the Mozilla roots (a private CA, a
    /// test CA).
    pub fn ca_certificates(mut self, cas: Vec<Certificate>) -> Self {
        self.trust = Trust::Cas(cas);
        self
    }

    /// The name sent as SNI and checked against the server's certificate,
    /// in place of the host dialed (gRPC's `--server_host_override`). An IP
    /// address checks the certificate's IP entries.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Presents `identity` when the server asks for a client certificate.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The name to verify: the override, else `host`.
    pub(crate) fn name_for(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(name.to_owned()).map_err(|err| {
            TlsError::new(
                TlsErrorKind::Config,
                format!("{name:?} is not a DNS name or IP address"),
                Some(Box::new(err)),
            )
        })
    }

    /// The rustls configuration: ALPN `h2` only.
    pub(crate) fn build(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let roots = match &self.trust {
            Trust::WebPki => {
                let mut store = RootCertStore::empty();
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                store
            }
            Trust::Cas(cas) => roots(cas)?,
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsError::config("TLS versions", err))?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(identity) => builder
                .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
                .map_err(|err| TlsError::config("the client certificate and key", err))?,
        };
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(config))
    }
}
