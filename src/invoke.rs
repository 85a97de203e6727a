//! Invoke: a custom action on a resource, e.g. `Win32_Process.Create` or
//! `Win32_Service.StopService` ([MS-WSMV] §3.1.4.16).

use crate::client::{Call, Client, OnCancel, body};
use crate::resource::Resource;
use crate::soap::Instance;
use crate::soap::xml::ParseError;
use crate::transfer::resource_envelope;
use crate::transport::RequestKind;

impl Client {
    /// Invokes `method` on `resource` with the given input parameters (an instance whose
    /// properties are the parameters; its class name is ignored). Returns the
    /// `{method}_OUTPUT` instance, whose `ReturnValue` is the method's result.
    ///
    /// # Errors
    /// [`crate::Error::InvalidName`] (nothing sent) when `method` or a property name of
    /// `input` is not an XML name; [`crate::Error::InvalidText`] (nothing sent) when a
    /// value of `input`, the resource URI, a selector or an option holds a character
    /// XML cannot carry; a fault, transport errors, or an unreadable response
    /// ([`crate::Error::Parse`], also when the answer is not `{method}_OUTPUT`).
    ///
    /// # Cancel safety
    /// Invoke cannot be cancelled at the provider: cancelling abandons the request and
    /// returns [`crate::Error::Abandoned`], and the method may still run to completion on
    /// the server.
    pub fn invoke(&self, resource: &Resource, method: &str, input: &Instance) -> Call<Instance> {
        let resource = resource.clone();
        let method = method.to_string();
        let input = input.clone();
        Call::new(
            self,
            OnCancel::Abandoned,
            tracing::debug_span!("operation", operation = "invoke", resource = resource.uri(), method = %method),
            move |c| async move {
                // Element names, written as given: refused before anything is sent.
                crate::soap::cim::check_name("method name", &method)?;
                input.check_property_names()?;
                // Text XML cannot carry: refused before anything is sent.
                crate::transfer::check_resource_text(&resource)?;
                input.check_text()?;
                let action = format!("{}/{}", resource.uri(), method);
                let env = resource_envelope(&c, &action, &resource)
                    .write(|w| input.write(w, &format!("{method}_INPUT"), resource.uri()));
                let root = c
                    .exchange(RequestKind::Write, env, c.inner.operation_timeout)
                    .await?;
                // The answer must be this method's output (WMI names are case-blind), not
                // whatever element the body holds.
                let b = body(&root);
                let wanted = format!("{method}_OUTPUT");
                let local = |name: &str| name.rsplit_once(':').map_or(name, |(_, l)| l).to_string();
                let out = b
                    .children
                    .iter()
                    .find(|e| local(&e.name).eq_ignore_ascii_case(&wanted))
                    .ok_or_else(|| ParseError::Unexpected {
                        expected: "the method's <method>_OUTPUT element",
                        found: b
                            .children
                            .first()
                            .map_or_else(|| "an empty body".to_string(), |e| local(&e.name)),
                    })?;
                Ok(Instance::from_element(out))
            },
        )
    }
}
