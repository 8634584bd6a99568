//! Certificates for TLS tests (issue #18): a throw-away CA and a server certificate it
//! signs, generated with `rcgen` for each test, never written anywhere but a test's temp dir.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

/// A CA (its certificate, PEM) and a server certificate and key it signed.
#[derive(Clone)]
pub struct TestCa {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

impl TestCa {
    /// The server certificate is for `127.0.0.1` and `localhost`.
    pub fn generate() -> anyhow::Result<Self> {
        Self::generate_for("localhost", true)
    }

    /// The server certificate is for `dns_name` only, and for `127.0.0.1` too when
    /// `loopback_ip` (without it, a client connecting to 127.0.0.1 meets another name).
    pub fn generate_for(dns_name: &str, loopback_ip: bool) -> anyhow::Result<Self> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "credential-anchor test CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![dns_name.to_string()])?;
        if loopback_ip {
            params
                .subject_alt_names
                .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        }
        params
            .distinguished_name
            .push(DnType::CommonName, "credential-anchor test server");
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        Ok(TestCa {
            ca_pem: ca.pem(),
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
        })
    }

    /// Writes the CA certificate to `dir` and returns its path (for `sslrootcert`).
    pub fn write_ca(
        &self,
        dir: &std::path::Path,
        name: &str,
    ) -> anyhow::Result<std::path::PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, &self.ca_pem)?;
        Ok(path)
    }
}
