//! TLS to PostgreSQL (issue #18): the database URL's `sslmode` and `sslrootcert`, honoured
//! as libpq does, over rustls.
//!
//! `tokio-postgres` knows `disable`, `prefer` and `require` but neither `verify-ca` nor
//! `verify-full`, nor `sslrootcert`, and encrypts only with a TLS connector (the store used
//! none: `sslmode=require` failed to connect). So the two parameters are taken out of the URL
//! here and turned into a rustls client configuration:
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` (libpq's default) | if the server offers it | as `require` |
//! | `require` | always, plaintext refused | not checked, unless `sslrootcert` is given: then as `verify-ca` (libpq's rule) |
//! | `verify-ca` | always | signed by a CA in `sslrootcert` |
//! | `verify-full` | always | signed by a CA in `sslrootcert` and issued for the host connected to |
//!
//! `verify-ca` and `verify-full` without `sslrootcert` are a configuration error, not a
//! silent fallback: the operator asked for verification.

use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// What the URL asks of TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for TlsMode {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "disable" => TlsMode::Disable,
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => {
                return Err(StoreError::Config(format!(
                    "database url: sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )))
            }
        })
    }
}

/// A database URL made ready to connect: the `tokio-postgres` configuration (without the
/// two parameters it does not know) and the TLS connector its `sslmode` asks for.
pub struct Connect {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
    pub mode: TlsMode,
}

/// Reads `url` (a `postgres://` URL or a libpq `key=value` string).
pub fn connect_config(url: &str) -> Result<Connect, StoreError> {
    let (rest, sslmode, rootcert) = take_tls_params(url)?;
    let mut config = tokio_postgres::Config::from_str(&rest)
        .map_err(|e| StoreError::Config(format!("database url: {e}")))?;
    let mode = match sslmode {
        Some(m) => m.parse()?,
        None => TlsMode::Prefer,
    };
    let roots = match &rootcert {
        Some(path) => Some(read_roots(path)?),
        None => None,
    };
    let verify = match (mode, roots) {
        (TlsMode::VerifyCa | TlsMode::VerifyFull, None) => return Err(StoreError::Config(
            "database url: sslmode=verify-ca and verify-full need sslrootcert (the CA's PEM file)"
                .into(),
        )),
        (TlsMode::VerifyFull, Some(roots)) => Verify::Full(roots),
        (_, Some(roots)) => Verify::Ca(roots),
        (_, None) => Verify::Nothing,
    };
    config.ssl_mode(match mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
    });
    Ok(Connect {
        config,
        tls: MakeRustlsConnect::new(client_config(verify)?),
        mode,
    })
}

enum Verify {
    Nothing,
    Ca(RootCertStore),
    Full(RootCertStore),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(verify: Verify) -> Result<rustls::ClientConfig, StoreError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("tls: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::Full(roots) => webpki(roots)?,
        Verify::Ca(roots) => Arc::new(AnyName(webpki(roots)?)),
        Verify::Nothing => Arc::new(Unverified(provider())),
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn webpki(roots: RootCertStore) -> Result<Arc<WebPkiServerVerifier>, StoreError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| StoreError::Config(format!("tls: {e}")))
}

fn read_roots(path: &str) -> Result<RootCertStore, StoreError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| StoreError::Config(format!("database url: sslrootcert {path}: {e}")))?;
    for cert in certs {
        let cert =
            cert.map_err(|e| StoreError::Config(format!("database url: sslrootcert {path}: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| StoreError::Config(format!("database url: sslrootcert {path}: {e}")))?;
    }
    if roots.is_empty() {
        return Err(StoreError::Config(format!(
            "database url: sslrootcert {path} holds no certificate"
        )));
    }
    Ok(roots)
}

/// `verify-ca`: the chain must verify, the name is not checked.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without `sslrootcert`: encrypted, the certificate not checked
/// (libpq's meaning; a passive eavesdropper learns nothing, an active one in the middle can).
/// The handshake's own signatures are still checked.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Splits `sslmode` and `sslrootcert` off `url`: the rest, and their values.
fn take_tls_params(url: &str) -> Result<(String, Option<String>, Option<String>), StoreError> {
    let (mut mode, mut root) = (None, None);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_string(), None, None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)?;
            match key {
                "sslmode" => mode = Some(value),
                "sslrootcert" => root = Some(value),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, mode, root));
    }
    // key=value form; values with spaces are quoted ('...') in libpq, which these two never
    // need: a path with a space must use the URL form.
    let mut kept = Vec::new();
    for word in url.split_whitespace() {
        match word.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.trim_matches('\'').to_string()),
            Some(("sslrootcert", v)) => root = Some(v.trim_matches('\'').to_string()),
            _ => kept.push(word),
        }
    }
    Ok((kept.join(" "), mode, root))
}

fn percent_decode(s: &str) -> Result<String, StoreError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| StoreError::Config("database url: bad percent-encoding".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| StoreError::Config("database url: not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_both_url_forms() {
        let (rest, mode, root) = take_tls_params(
            "postgres://u:p@db:5432/x?application_name=a&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p@db:5432/x?application_name=a");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (rest, mode, root) =
            take_tls_params("host=db user=u sslmode=require dbname=x").unwrap();
        assert_eq!(rest, "host=db user=u dbname=x");
        assert_eq!(mode.as_deref(), Some("require"));
        assert_eq!(root, None);
        let (rest, mode, _) = take_tls_params("postgres://db/x").unwrap();
        assert_eq!((rest.as_str(), mode), ("postgres://db/x", None));
    }

    #[test]
    fn verification_without_a_ca_or_an_unknown_mode_is_a_configuration_error() {
        for url in [
            "postgres://db/x?sslmode=verify-full",
            "postgres://db/x?sslmode=verify-ca",
            "postgres://db/x?sslmode=bogus",
            "postgres://db/x?sslmode=require&sslrootcert=/nonexistent/ca.pem",
        ] {
            assert!(
                matches!(connect_config(url), Err(StoreError::Config(_))),
                "{url}"
            );
        }
        let c = connect_config("postgres://db/x?sslmode=require").unwrap();
        assert_eq!(c.mode, TlsMode::Require);
        assert_eq!(c.config.get_ssl_mode(), SslMode::Require);
        let c = connect_config("postgres://db/x").unwrap();
        assert_eq!(c.mode, TlsMode::Prefer);
        let c = connect_config("postgres://db/x?sslmode=disable").unwrap();
        assert_eq!(c.config.get_ssl_mode(), SslMode::Disable);
    }
}
