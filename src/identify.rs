//! Identify (DSP0226 §11): what the endpoint is, without or with authentication.

use crate::client::{Call, Client, OnCancel, body};
use crate::error::Result;
use crate::soap::xml::{Element, ParseError};
use crate::soap::{envelope, ns};

/// The `wsmid:IdentifyResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct IdentifyResponse {
    /// `ProtocolVersion`, e.g. `http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd`.
    pub protocol_version: String,
    /// `ProductVendor`, e.g. `Microsoft Corporation`.
    pub product_vendor: String,
    /// `ProductVersion`, e.g. `OS: 10.0.14393 SP: 0.0 Stack: 3.0`.
    pub product_version: String,
    /// `SecurityProfiles/SecurityProfileName` (present when authenticated).
    pub security_profiles: Vec<String>,
}

impl IdentifyResponse {
    /// Reads the response body.
    ///
    /// # Errors
    /// [`ParseError`] when the body holds no IdentifyResponse.
    pub fn from_body(body: &Element) -> Result<IdentifyResponse, ParseError> {
        let r = body
            .child(ns::IDENTITY, "IdentifyResponse")
            .ok_or(ParseError::Missing("wsmid:IdentifyResponse"))?;
        let text = |n: &str| r.child_text(ns::IDENTITY, n).unwrap_or("").to_string();
        Ok(IdentifyResponse {
            protocol_version: text("ProtocolVersion"),
            product_vendor: text("ProductVendor"),
            product_version: text("ProductVersion"),
            security_profiles: r
                .child(ns::IDENTITY, "SecurityProfiles")
                .map(|p| {
                    p.children_named(ns::IDENTITY, "SecurityProfileName")
                        .map(|e| e.text.trim().to_string())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// The `Stack: x.y` part of ProductVersion.
    pub fn stack_version(&self) -> Option<&str> {
        self.product_version.split("Stack:").nth(1).map(str::trim)
    }
}

impl Client {
    /// Identify with the client's credentials.
    ///
    /// # Errors
    /// Transport errors, a fault, or an unreadable response.
    ///
    /// # Cancel safety
    /// Cancelling abandons the request; Identify changes nothing on the server.
    pub fn identify(&self) -> Call<IdentifyResponse> {
        self.identify_inner(false)
    }

    /// Identify without credentials (`WSMANIDENTIFY: unauthenticated`), as Windows
    /// allows before any authentication.
    ///
    /// # Errors
    /// As [`Client::identify`].
    ///
    /// # Cancel safety
    /// As [`Client::identify`].
    pub fn identify_unauthenticated(&self) -> Call<IdentifyResponse> {
        self.identify_inner(true)
    }

    fn identify_inner(&self, unauthenticated: bool) -> Call<IdentifyResponse> {
        Call::new(
            self,
            OnCancel::Cancelled,
            tracing::debug_span!("operation", operation = "identify", unauthenticated),
            move |c| async move {
                let root = c
                    .exchange_raw(envelope::identify(), unauthenticated)
                    .await?;
                Ok(IdentifyResponse::from_body(body(&root))?)
            },
        )
    }
}
