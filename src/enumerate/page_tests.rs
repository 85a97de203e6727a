use super::*;

const HEAD: &str = concat!(
    "<s:Envelope xml:lang=\"en-US\" xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"",
    " xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\"",
    " xmlns:n=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\"",
    " xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\">",
    "<s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse</a:Action></s:Header><s:Body>"
);
const TAIL: &str = "</s:Body></s:Envelope>";

const SVC: &str = concat!(
    "<p:Win32_Service xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service\"",
    " xmlns:cim=\"http://schemas.dmtf.org/wbem/wscim/1/common\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"",
    " xsi:type=\"p:Win32_Service_Type\" xml:lang=\"en-US\">",
    "<p:AcceptPause>false</p:AcceptPause><p:Caption>Windows Remote Management &amp; co</p:Caption>",
    "<p:InstallDate xsi:nil=\"true\"/><p:Deps>RPCSS</p:Deps><p:Deps>HTTP</p:Deps>",
    "<p:Started><cim:Datetime>2024-01-31T12:34:56Z</cim:Datetime></p:Started>",
    "<p:Up><cim:Interval>PT5S</cim:Interval></p:Up><p:Empty/><p:Name>WinRM</p:Name>",
    "</p:Win32_Service>"
);

const EPR: &str = concat!(
    "<a:EndpointReference><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address>",
    "<a:ReferenceParameters><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service</w:ResourceURI>",
    "<w:SelectorSet><w:Selector Name=\"Name\">WinRM</w:Selector></w:SelectorSet></a:ReferenceParameters></a:EndpointReference>"
);

fn page(body: &str) -> Page {
    Page::parse(format!("{HEAD}{body}{TAIL}").as_bytes()).unwrap()
}

/// The fast reader and the tree reader agree on an instance.
fn tree_instance(xml: &str) -> Instance {
    Instance::from_element(&xml::parse(xml.as_bytes()).unwrap())
}

#[test]
fn pull_response_with_typed_items() {
    let p = page(&format!(
        "<n:PullResponse><n:EnumerationContext>uuid:AB</n:EnumerationContext><n:Items>{SVC}{SVC}</n:Items></n:PullResponse>"
    ));
    assert_eq!(p.context.as_deref(), Some("uuid:AB"));
    assert!(!p.end_of_sequence);
    assert_eq!(p.items.len(), 2);
    let inst = p.items[0].instance().unwrap();
    assert_eq!(inst, &tree_instance(SVC));
    assert_eq!(inst.class_name, "Win32_Service");
    assert_eq!(
        inst.get_str("Caption"),
        Some("Windows Remote Management & co")
    );
    assert!(inst.get("InstallDate").unwrap().is_null());
    assert_eq!(inst.get("Deps").unwrap().as_slice().len(), 2);
    assert_eq!(
        inst.get("Started").unwrap().as_datetime().unwrap().year,
        2024
    );
    assert_eq!(
        inst.get("Up"),
        Some(&Value::Interval(std::time::Duration::from_secs(5)))
    );
    assert_eq!(inst.get_str("Empty"), Some(""));
}

#[test]
fn end_of_sequence_in_either_namespace_and_empty_context() {
    let p = page("<n:PullResponse><n:Items/><n:EndOfSequence/></n:PullResponse>");
    assert!(p.end_of_sequence && p.context.is_none() && p.items.is_empty());
    let p = page(
        "<n:EnumerateResponse><n:EnumerationContext></n:EnumerationContext><w:Items></w:Items><w:EndOfSequence/></n:EnumerateResponse>",
    );
    assert!(p.end_of_sequence && p.context.is_none());
    let p = page(
        "<n:EnumerateResponse><n:EnumerationContext>uuid:1</n:EnumerationContext></n:EnumerateResponse>",
    );
    assert!(!p.end_of_sequence);
    assert_eq!(p.context.as_deref(), Some("uuid:1"));
}

#[test]
fn items_with_references_and_fragments() {
    let p = page(&format!(
        "<n:PullResponse><n:EnumerationContext>c</n:EnumerationContext><w:Items><w:Item>{SVC}{EPR}</w:Item>{EPR}<w:XmlFragment><Name>WinRM</Name><State>Running</State></w:XmlFragment></w:Items></n:PullResponse>"
    ));
    assert_eq!(p.items.len(), 3);
    match &p.items[0] {
        EnumItem::ObjectAndReference(i, r) => {
            assert_eq!(i.get_str("Name"), Some("WinRM"));
            assert_eq!(r.selector("name"), Some("WinRM"));
            assert!(r.resource_uri.ends_with("Win32_Service"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&p.items[1], EnumItem::Reference(r) if r.selector("Name") == Some("WinRM")));
    let frag = p.items[2].instance().unwrap();
    assert_eq!(frag.get_str("State"), Some("Running"));
}

#[test]
fn faults_and_garbage_are_typed() {
    let fault = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/recorded/WinRb-WinRM/soap_fault_v2.xml"
    ))
    .unwrap();
    let err = Page::parse(&fault).unwrap_err();
    let f = err.fault().expect("a fault");
    assert!(f.is_bad_filter());
    assert_eq!(
        f.code(),
        Some(crate::soap::fault::code::CANNOT_PROCESS_FILTER)
    );
    for bad in [
        "",
        "<x/>",
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body><n:PullResponse xmlns:n=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\"><n:Items><p:X xmlns:p=\"u\"><p:A>1</p:B>",
    ] {
        assert!(
            matches!(Page::parse(bad.as_bytes()), Err(Error::Parse(_))),
            "{bad}"
        );
    }
    // Duplicated attributes are malformed XML (as the tree reader says): on an item, on a
    // property, and a namespace declared twice on one element.
    for dup in [
        "<p:X xmlns:p=\"u\" a=\"1\" a=\"2\"><p:A>1</p:A></p:X>",
        "<p:X xmlns:p=\"u\"><p:A b=\"1\" b=\"1\">1</p:A></p:X>",
        "<p:X xmlns:p=\"u\" xmlns:p=\"v\"><p:A>1</p:A></p:X>",
    ] {
        let xml = format!("{HEAD}<n:PullResponse><n:Items>{dup}</n:Items></n:PullResponse>{TAIL}");
        assert!(
            matches!(
                Page::parse(xml.as_bytes()),
                Err(Error::Parse(ParseError::Syntax { .. }))
            ),
            "{dup}"
        );
        assert!(xml::parse(xml.as_bytes()).is_err(), "{dup}");
    }
    let deep = format!(
        "{HEAD}<n:PullResponse><n:Items><p:X xmlns:p=\"u\"><p:A>{}{}</p:A></p:X></n:Items></n:PullResponse>{TAIL}",
        "<p:B>".repeat(200),
        "</p:B>".repeat(200)
    );
    assert!(matches!(
        Page::parse(deep.as_bytes()),
        Err(Error::Parse(ParseError::TooDeep))
    ));
}

#[derive(Debug, serde::Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Svc {
    name: String,
    caption: String,
    accept_pause: bool,
    install_date: Option<String>,
    deps: Vec<String>,
    started: String,
    up: f64,
}

#[test]
fn typed_items_stream_structured_values_and_recover_from_misfits() {
    // The same class under two different prefix bindings (the declaration memo must
    // not reuse the first item's), then an item that does not fit, then a good one.
    let other = SVC
        .replace("<p:", "<q:")
        .replace("</p:", "</q:")
        .replace("\"p:", "\"q:")
        .replace("xmlns:p=", "xmlns:p=\"urn:x\" xmlns:q=");
    let misfit = SVC.replace("<p:AcceptPause>false", "<p:AcceptPause>maybe");
    let body = format!(
        "<n:PullResponse><n:Items>{SVC}{other}{misfit}{SVC}</n:Items><n:EndOfSequence/></n:PullResponse>"
    );
    let doc = format!("{HEAD}{body}{TAIL}");
    let ns = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service";
    let generic = Page::parse(doc.as_bytes()).unwrap();
    let sources = [SVC, &other, &misfit, SVC];
    assert_eq!(generic.items.len(), sources.len());
    for (item, src) in generic.items.iter().zip(sources) {
        let inst = item.instance().unwrap();
        assert_eq!(inst.namespace.as_deref(), Some(ns));
        assert_eq!(inst, &tree_instance(src));
    }
    let (items, ctx, end) = crate::parse_page_as::<Svc>(doc.as_bytes()).unwrap();
    assert!(end);
    assert_eq!(ctx, None);
    let want = Svc {
        name: "WinRM".into(),
        caption: "Windows Remote Management & co".into(),
        accept_pause: false,
        install_date: None,
        deps: vec!["RPCSS".into(), "HTTP".into()],
        started: "2024-01-31T12:34:56Z".into(),
        up: 5.0,
    };
    assert_eq!(items.len(), 4);
    assert_eq!(items[0].as_ref().unwrap(), &want);
    assert!(items[2].is_err(), "{:?}", items[2]);
    assert_eq!(items[3].as_ref().unwrap(), &want);
    // Each agrees with deserializing the instance the tree reader builds.
    let via_tree: Svc = crate::from_instance(&tree_instance(SVC)).unwrap();
    assert_eq!(via_tree, want);
    let via_tree = crate::from_instance::<Svc>(&tree_instance(&other));
    assert_eq!(
        via_tree.as_ref().ok(),
        items[1].as_ref().ok(),
        "{via_tree:?} {other}"
    );

    // A malformed item fails the page even though serde stopped reading early.
    let broken = misfit.replace("</p:Name>", "</p:Nome>");
    let doc = format!("{HEAD}<n:PullResponse><n:Items>{broken}</n:Items></n:PullResponse>{TAIL}");
    assert!(crate::parse_page_as::<Svc>(doc.as_bytes()).is_err());
}
