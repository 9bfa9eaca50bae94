//! Test certificates, made with rcgen at test time: a CA, server and client
//! certificates it issued, an expired one, and a stranger CA.

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate and its key, in PEM.
#[derive(Debug, Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A test certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A fresh CA named `name`, valid from 2020 to 2099.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2099, 12, 31);
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The CA's certificate, in PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose, valid: (i32, i32)) -> Pem {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![usage];
        params.not_before = date_time_ymd(valid.0, 1, 1);
        params.not_after = date_time_ymd(valid.1, 1, 1);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid
    /// until 2099.
    pub fn server(&self, names: &[&str]) -> Pem {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth, (2020, 2099))
    }

    /// A server certificate for `names` that expired in 2021.
    pub fn expired_server(&self, names: &[&str]) -> Pem {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth, (2020, 2021))
    }

    /// A client certificate named `name`, valid until 2099.
    pub fn client(&self, name: &str) -> Pem {
        self.issue(&[name], ExtendedKeyUsagePurpose::ClientAuth, (2020, 2099))
    }
}

/// The names the interop server's certificate carries: gRPC's interop
/// override name (`foo.test.google.fr` matches the wildcard) and loopback.
pub const INTEROP_SERVER_NAMES: &[&str] = &["*.test.google.fr", "localhost", "127.0.0.1", "::1"];
