//! The request bodies of Enumerate, Pull and Release (pure: strings in, strings out),
//! and the exchange that reads the response with the streaming page reader.

use bytes::Bytes;

use super::page::Batch;
use super::{EnumerationMode, Filter, ReadPage, Request};
use crate::client::{Client, read_envelope};
use crate::error::Result;
use crate::soap::envelope::{
    InvalidText, XmlWriter, check_selectors, check_text as check_text_of, write_selector_set,
};
use crate::soap::ns;
use crate::soap::xml::ParseError;
use crate::transfer::resource_envelope;
use crate::transport::RequestKind;

const NAMESPACES: &[(&str, &str)] = &[("n", ns::ENUMERATION)];

/// The body of `n:Enumerate`, in the order of DSP0226: Filter, EnumerationMode,
/// OptimizeEnumeration, MaxElements.
pub(crate) fn write_enumerate(w: &mut XmlWriter, r: &Request) {
    w.raw("<n:Enumerate>");
    match &r.filter {
        Some(Filter::Wql(q)) => {
            w.raw("<w:Filter Dialect=\"");
            w.raw(ns::DIALECT_WQL);
            w.raw("\">");
            w.text(q);
            w.raw("</w:Filter>");
        }
        Some(Filter::Selectors(s)) => {
            w.raw("<w:Filter Dialect=\"");
            w.raw(ns::DIALECT_SELECTOR);
            w.raw("\">");
            write_selector_set(w, s);
            w.raw("</w:Filter>");
        }
        None => {}
    }
    match r.mode {
        EnumerationMode::Objects => {}
        EnumerationMode::References => w.element("w:EnumerationMode", "EnumerateEPR"),
        EnumerationMode::ObjectsAndReferences => {
            w.element("w:EnumerationMode", "EnumerateObjectAndEPR")
        }
    }
    if r.optimize {
        w.raw("<w:OptimizeEnumeration/>");
        w.element("w:MaxElements", &r.max_elements.to_string());
    }
    w.raw("</n:Enumerate>");
}

/// Refuses what XML cannot carry in the request (resource URI, selectors, options, the
/// filter's query or selectors), before the Enumerate is sent.
pub(crate) fn check_text(r: &Request) -> std::result::Result<(), InvalidText> {
    crate::transfer::check_resource_text(&r.resource)?;
    match &r.filter {
        Some(Filter::Wql(q)) => check_text_of("WQL filter", "", q),
        Some(Filter::Selectors(s)) => check_selectors(s),
        None => Ok(()),
    }
}

/// The body of `n:Pull`.
pub(crate) fn write_pull(w: &mut XmlWriter, context: &str, max_elements: u32) {
    w.raw("<n:Pull>");
    w.element("n:EnumerationContext", context);
    w.element("n:MaxElements", &max_elements.to_string());
    w.raw("</n:Pull>");
}

/// The body of `n:Release`.
pub(crate) fn write_release(w: &mut XmlWriter, context: &str) {
    w.raw("<n:Release>");
    w.element("n:EnumerationContext", context);
    w.raw("</n:Release>");
}

/// A whole envelope for `action` on the request's resource.
pub(crate) fn envelope(
    c: &Client,
    action: &str,
    r: &Request,
    body: impl FnOnce(&mut XmlWriter),
) -> String {
    crate::soap::Envelope {
        namespaces: NAMESPACES,
        ..resource_envelope(c, action, &r.resource)
    }
    .write(body)
}

/// Sends an Enumerate ([`RequestKind::Write`]) or a Pull ([`RequestKind::LongPoll`])
/// and reads the response with `read`. A fault becomes [`crate::Error::Fault`]. Dropping the future abandons the request and closes its connection.
pub(crate) async fn exchange_page<T>(
    c: &Client,
    kind: RequestKind,
    body: String,
    read: ReadPage<T>,
) -> Result<Batch<Result<T>>> {
    let resp = c
        .send(kind, Bytes::from(body), false, c.inner.operation_timeout)
        .await?;
    if resp.status == 200 {
        return read(&resp.body);
    }
    // Anything but 200 is read by the reader the other operations share, so faults and
    // HTTP errors surface the same way.
    read_envelope(resp)?;
    Err(ParseError::Missing("n:EnumerateResponse or n:PullResponse").into())
}

/// Sends a Release; an already ended or expired context counts as released.
pub(crate) async fn release(c: &Client, r: &Request, context: &str) -> Result<()> {
    let env = envelope(c, ns::action::RELEASE, r, |w| write_release(w, context));
    match c
        .exchange(RequestKind::Write, env, c.inner.operation_timeout)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if super::is_invalid_context(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::soap::envelope::Selector;
    use crate::soap::xml::parse;

    fn request(filter: Option<Filter>, mode: EnumerationMode, optimize: bool) -> Request {
        Request {
            resource: Resource::wmi("root/cimv2", "*"),
            filter,
            max_elements: 50,
            optimize,
            mode,
        }
    }

    #[test]
    fn enumerate_bodies() {
        let mut w = XmlWriter::default();
        write_enumerate(
            &mut w,
            &request(
                Some(Filter::Wql("SELECT * FROM X WHERE a < 'b&c'".into())),
                EnumerationMode::ObjectsAndReferences,
                true,
            ),
        );
        assert_eq!(
            w.as_str(),
            "<n:Enumerate><w:Filter Dialect=\"http://schemas.microsoft.com/wbem/wsman/1/WQL\">SELECT * FROM X WHERE a &lt; 'b&amp;c'</w:Filter><w:EnumerationMode>EnumerateObjectAndEPR</w:EnumerationMode><w:OptimizeEnumeration/><w:MaxElements>50</w:MaxElements></n:Enumerate>"
        );
        let mut w = XmlWriter::default();
        write_enumerate(
            &mut w,
            &request(
                Some(Filter::Selectors(vec![Selector::new("ShellId", "A")])),
                EnumerationMode::Objects,
                false,
            ),
        );
        assert_eq!(
            w.as_str(),
            "<n:Enumerate><w:Filter Dialect=\"http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter\"><w:SelectorSet><w:Selector Name=\"ShellId\">A</w:Selector></w:SelectorSet></w:Filter></n:Enumerate>"
        );
    }

    #[test]
    fn pull_and_release_envelopes_are_well_formed() {
        let c = Client::builder("http://h:5985/wsman").build().unwrap();
        let r = request(None, EnumerationMode::References, true);
        let env = envelope(&c, ns::action::PULL, &r, |w| write_pull(w, "uuid:1", 7));
        let root = parse(env.as_bytes()).unwrap();
        let pull = root
            .path(&[(ns::SOAP, "Body"), (ns::ENUMERATION, "Pull")])
            .unwrap();
        assert_eq!(
            pull.child_text(ns::ENUMERATION, "EnumerationContext"),
            Some("uuid:1")
        );
        assert_eq!(pull.child_text(ns::ENUMERATION, "MaxElements"), Some("7"));
        let header = root.child(ns::SOAP, "Header").unwrap();
        assert_eq!(
            header.child_text(ns::WSMAN, "ResourceURI"),
            Some(r.resource.uri())
        );
        let env = envelope(&c, ns::action::RELEASE, &r, |w| write_release(w, "uuid:2"));
        let root = parse(env.as_bytes()).unwrap();
        let rel = root
            .path(&[(ns::SOAP, "Body"), (ns::ENUMERATION, "Release")])
            .unwrap();
        assert_eq!(
            rel.child_text(ns::ENUMERATION, "EnumerationContext"),
            Some("uuid:2")
        );
    }
}
