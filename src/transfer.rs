//! WS-Transfer: Get, Put, Create, Delete ([MS-WSMV] §3.1.4.1-4).

use serde::de::DeserializeOwned;

use crate::client::{Call, Client, OnCancel, body};
use crate::error::Result;
use crate::resource::Resource;
use crate::soap::cim::EndpointReference;
use crate::soap::envelope::{InvalidText, XmlWriter, check_options, check_selectors, check_text};
use crate::soap::xml::{Element, ParseError};
use crate::soap::{Instance, de, ns};
use crate::transport::RequestKind;

/// The first element child of a body: the instance of a Get or Put response.
pub(crate) fn first_instance(body: &Element, what: &'static str) -> Result<Instance, ParseError> {
    body.children
        .first()
        .map(Instance::from_element)
        .ok_or(ParseError::Missing(what))
}

/// Reads `x:ResourceCreated` (an EPR).
pub(crate) fn resource_created(body: &Element) -> Result<EndpointReference, ParseError> {
    let rc = body
        .child(ns::TRANSFER, "ResourceCreated")
        .ok_or(ParseError::Missing("x:ResourceCreated"))?;
    EndpointReference::from_element(rc)
        .ok_or(ParseError::Missing("ResourceCreated endpoint reference"))
}

/// The element name of a Put or Create body: the instance's class, else the resource's.
fn element_name<'a>(resource: &'a Resource, inst: &'a Instance) -> &'a str {
    if inst.class_name.is_empty() {
        resource.class_name()
    } else {
        &inst.class_name
    }
}

/// Refuses what XML cannot carry in the resource's URI, selectors and options, before
/// anything is sent.
pub(crate) fn check_resource_text(r: &Resource) -> Result<(), InvalidText> {
    check_text("resource URI", "", r.uri())?;
    check_selectors(r.selectors())?;
    check_options(r.options())
}

fn write_instance(w: &mut XmlWriter, resource: &Resource, inst: &Instance) {
    let uri = inst.namespace.as_deref().unwrap_or(resource.uri());
    inst.write(w, element_name(resource, inst), uri);
}

impl Client {
    /// WS-Transfer Get of one instance.
    ///
    /// # Errors
    /// [`crate::Error::InvalidText`] (nothing sent) when the resource URI, a selector
    /// or an option holds a character XML cannot carry; a fault (e.g. invalid selectors
    /// 2150858843 for an unknown instance), transport errors, or an unreadable response.
    ///
    /// # Cancel safety
    /// Cancelling abandons the request ([`crate::Error::Cancelled`]); Get changes nothing.
    pub fn get(&self, resource: &Resource) -> Call<Instance> {
        let resource = resource.clone();
        Call::new(
            self,
            OnCancel::Cancelled,
            tracing::debug_span!("operation", operation = "get", resource = resource.uri()),
            move |c| async move {
                check_resource_text(&resource)?;
                let env = resource_envelope(&c, ns::action::GET, &resource).write(|_| {});
                let root = c
                    .exchange(RequestKind::Read, env, c.inner.operation_timeout)
                    .await?;
                Ok(first_instance(body(&root), "the GetResponse instance")?)
            },
        )
    }

    /// Get, deserialized into the caller's type.
    ///
    /// # Errors
    /// As [`Client::get`], plus [`crate::Error::Deserialize`].
    ///
    /// # Cancel safety
    /// As [`Client::get`].
    pub fn get_as<T: DeserializeOwned + Send + 'static>(&self, resource: &Resource) -> Call<T> {
        let call = self.get(resource);
        Call::new(
            self,
            OnCancel::Cancelled,
            tracing::Span::none(),
            move |_| async move {
                let inst = call.await?;
                Ok(de::from_instance(&inst)?)
            },
        )
    }

    /// WS-Transfer Put: replaces (the given properties of) an instance. Returns the
    /// instance the server sends back, if any.
    ///
    /// # Errors
    /// [`crate::Error::InvalidName`] (nothing sent) when the class name or a property
    /// name is not an XML name; [`crate::Error::InvalidText`] (nothing sent) when a
    /// property value, the resource URI, a selector or an option holds a character XML
    /// cannot carry; a fault, transport errors, or an unreadable response.
    ///
    /// # Cancel safety
    /// Cancelling abandons the request ([`crate::Error::Abandoned`]): the server may
    /// still apply the change.
    pub fn put(&self, resource: &Resource, instance: &Instance) -> Call<Option<Instance>> {
        let resource = resource.clone();
        let instance = instance.clone();
        Call::new(
            self,
            OnCancel::Abandoned,
            tracing::debug_span!("operation", operation = "put", resource = resource.uri()),
            move |c| async move {
                // Element names, written as given, and text XML cannot carry: refused
                // before anything is sent.
                instance.check_names(element_name(&resource, &instance))?;
                check_resource_text(&resource)?;
                instance.check_text()?;
                let env = resource_envelope(&c, ns::action::PUT, &resource)
                    .write(|w| write_instance(w, &resource, &instance));
                let root = c
                    .exchange(RequestKind::Write, env, c.inner.operation_timeout)
                    .await?;
                Ok(body(&root).children.first().map(Instance::from_element))
            },
        )
    }

    /// WS-Transfer Create: creates an instance and returns its endpoint reference.
    ///
    /// # Errors
    /// [`crate::Error::InvalidName`] (nothing sent) when the class name or a property
    /// name is not an XML name; [`crate::Error::InvalidText`] (nothing sent) when a
    /// property value, the resource URI, a selector or an option holds a character XML
    /// cannot carry; a fault, transport errors, or an unreadable response.
    ///
    /// # Cancel safety
    /// Cancelling abandons the request ([`crate::Error::Abandoned`]): the instance may
    /// still be created.
    pub fn create(&self, resource: &Resource, instance: &Instance) -> Call<EndpointReference> {
        let resource = resource.clone();
        let instance = instance.clone();
        Call::new(
            self,
            OnCancel::Abandoned,
            tracing::debug_span!("operation", operation = "create", resource = resource.uri()),
            move |c| async move {
                // Element names, written as given, and text XML cannot carry: refused
                // before anything is sent.
                instance.check_names(element_name(&resource, &instance))?;
                check_resource_text(&resource)?;
                instance.check_text()?;
                let env = resource_envelope(&c, ns::action::CREATE, &resource)
                    .write(|w| write_instance(w, &resource, &instance));
                let root = c
                    .exchange(RequestKind::Write, env, c.inner.operation_timeout)
                    .await?;
                Ok(resource_created(body(&root))?)
            },
        )
    }

    /// WS-Transfer Delete.
    ///
    /// # Errors
    /// [`crate::Error::InvalidText`] (nothing sent) as for [`Client::get`]; a fault,
    /// transport errors, or an unreadable response.
    ///
    /// # Cancel safety
    /// Cancelling abandons the request ([`crate::Error::Abandoned`]): the instance may
    /// still be deleted.
    pub fn delete(&self, resource: &Resource) -> Call<()> {
        let resource = resource.clone();
        Call::new(
            self,
            OnCancel::Abandoned,
            tracing::debug_span!("operation", operation = "delete", resource = resource.uri()),
            move |c| async move {
                check_resource_text(&resource)?;
                let env = resource_envelope(&c, ns::action::DELETE, &resource).write(|_| {});
                c.exchange(RequestKind::Write, env, c.inner.operation_timeout)
                    .await?;
                Ok(())
            },
        )
    }
}

/// The request headers for an operation on a resource: the client's headers plus the
/// resource's URI, selectors and options.
pub(crate) fn resource_envelope<'a>(
    c: &'a Client,
    action: &'a str,
    r: &'a Resource,
) -> crate::soap::Envelope<'a> {
    crate::soap::Envelope {
        selectors: r.selectors(),
        options: r.options(),
        ..c.envelope(action, Some(r.uri()))
    }
}
