//! A node config served over HTTP(S): `kubeha.config=http://...` (placeholders already substituted).
//!
//! 404 means "not there (yet)" and is `Ok(None)`; connection errors, timeouts and 5xx are retried by
//! [`crate::retry::Client`] and end in [`crate::retry::Unavailable`], which the source loop also treats as "try again
//! later"; any other status is an error.

use anyhow::Result;

use super::{Fetched, Provider};
use crate::retry::Client;

/// Fetches one URL.
#[derive(Debug, Clone)]
pub struct HttpProvider {
    /// The URL.
    pub url: String,
    /// The client (timeouts and retries).
    pub client: Client,
}

impl HttpProvider {
    /// A provider with the agent's default client.
    pub fn new(url: String) -> Result<Self> {
        Ok(HttpProvider {
            url,
            client: Client::new()?.return_on_404(true),
        })
    }
}

impl Provider for HttpProvider {
    fn describe(&self) -> String {
        format!(
            "{} (kernel command line {})",
            self.url,
            kubeha_model::kernel_args::Key::Config
        )
    }

    fn fetch(&self) -> Result<Option<Fetched>> {
        Ok(self.client.get(&self.url)?.map(|data| Fetched {
            data,
            source: self.describe(),
        }))
    }

    fn uses_network(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod mock_tests;
