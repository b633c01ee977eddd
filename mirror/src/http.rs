//! The build host's one HTTP client builder: blocking reqwest with rustls, the web roots plus any extra CA
//! certificates, and kubeha's user agent. Each user adds its own timeouts (and redirect policy) and builds it.

use reqwest::blocking::ClientBuilder;

use crate::error::{format_err, Result};

/// kubeha's user agent on every request of the build host.
pub const USER_AGENT: &str = concat!("kubeha/", env!("CARGO_PKG_VERSION"));

/// A client builder with kubeha's user agent that trusts the web roots and the PEM certificates `ca_pem` (the
/// error names the one that does not parse, counting from 1).
pub fn client_builder(ca_pem: &[Vec<u8>]) -> Result<ClientBuilder> {
    let mut b = reqwest::blocking::Client::builder().user_agent(USER_AGENT);
    for (i, pem) in ca_pem.iter().enumerate() {
        let c = reqwest::Certificate::from_pem(pem)
            .map_err(|e| format_err(format!("CA certificate #{}", i + 1), e.to_string()))?;
        b = b.add_root_certificate(c);
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_certificates_are_trusted_and_a_bad_one_is_refused() {
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let pem = ca.cert.pem().into_bytes();
        assert!(client_builder(std::slice::from_ref(&pem))
            .unwrap()
            .build()
            .is_ok());
        // reqwest reads a PEM when the client is built.
        let bad = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_vec();
        assert!(client_builder(&[pem, bad]).is_ok_and(|b| b.build().is_err()));
    }
}
