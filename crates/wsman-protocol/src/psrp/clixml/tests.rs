//! Reader, writer and serde tests on hand-written and Windows-shaped CLIXML.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;
use crate::psrp::Error;

/// A `Get-Service` object as Windows sent it (test_psrp_multiple_commands.yml).
const SERVICE: &str = r#"<Obj RefId="0"><TN RefId="0"><T>System.ServiceProcess.ServiceController</T><T>System.ComponentModel.Component</T><T>System.MarshalByRefObject</T><T>System.Object</T></TN><ToString>winrm</ToString><Props><B N="CanPauseAndContinue">false</B><B N="CanShutdown">true</B><B N="CanStop">true</B><S N="DisplayName">Windows Remote Management (WS-Management)</S><Obj N="DependentServices" RefId="1"><TN RefId="1"><T>System.ServiceProcess.ServiceController[]</T><T>System.Array</T><T>System.Object</T></TN><LST /></Obj><S N="MachineName">.</S><S N="ServiceName">winrm</S><Obj N="ServicesDependedOn" RefId="2"><TNRef RefId="1" /><LST><S>RPCSS</S><S>HTTP</S></LST></Obj><S N="ServiceHandle">SafeServiceHandle</S><S N="Status">Running</S><S N="ServiceType">Win32OwnProcess</S><S N="StartType">Automatic</S><Nil N="Site" /><Nil N="Container" /></Props><MS><S N="Name">winrm</S><Ref N="RequiredServices" RefId="2" /></MS></Obj>"#;

#[test]
fn reads_a_service_object_with_refs() {
    let v = from_str(SERVICE).unwrap();
    let o = v.as_object().unwrap();
    assert_eq!(o.type_names[0], "System.ServiceProcess.ServiceController");
    assert_eq!(o.to_string.as_deref(), Some("winrm"));
    assert_eq!(o.adapted.len(), 14);
    assert_eq!(
        o.property("Status").and_then(PsValue::as_str),
        Some("Running")
    );
    assert_eq!(o.property("CanStop"), Some(&PsValue::Bool(true)));
    assert_eq!(o.property("Site"), Some(&PsValue::Null));
    let depended = o.property("ServicesDependedOn").unwrap();
    assert_eq!(
        depended.as_list().unwrap(),
        &[PsValue::from("RPCSS"), PsValue::from("HTTP")]
    );
    // TNRef resolved to the list's type names; Ref resolved to the same object.
    assert_eq!(
        depended.as_object().unwrap().type_names[0],
        "System.ServiceProcess.ServiceController[]"
    );
    assert_eq!(o.property("RequiredServices"), Some(depended));
}

#[test]
fn serde_reads_objects_into_structs() {
    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Service {
        name: String,
        display_name: String,
        status: String,
        can_stop: bool,
        services_depended_on: Vec<String>,
        required_services: Vec<String>,
        dependent_services: Vec<String>,
        site: Option<String>,
    }
    let v = from_str(SERVICE).unwrap();
    let s: Service = from_value(&v).unwrap();
    assert_eq!(
        s,
        Service {
            name: "winrm".into(),
            display_name: "Windows Remote Management (WS-Management)".into(),
            status: "Running".into(),
            can_stop: true,
            services_depended_on: vec!["RPCSS".into(), "HTTP".into()],
            required_services: vec!["RPCSS".into(), "HTTP".into()],
            dependent_services: vec![],
            site: None,
        }
    );
}

#[test]
fn serde_reads_enums_by_name_and_number() {
    #[derive(Deserialize, Debug, PartialEq)]
    enum State {
        Default,
        UseNewThread,
    }
    let e: PsValue = PsObject::enumeration(
        "System.Management.Automation.Runspaces.PSThreadOptions",
        "UseNewThread",
        1,
    )
    .into();
    assert_eq!(from_value::<State>(&e).unwrap(), State::UseNewThread);
    assert_eq!(from_value::<i32>(&e).unwrap(), 1);
    assert_eq!(from_value::<String>(&e).unwrap(), "UseNewThread");
    assert_eq!(e.as_object().unwrap().enum_value(), Some(1));
    assert!(from_value::<u8>(&PsValue::I32(-1)).is_err());
    assert_eq!(from_value::<u8>(&PsValue::I64(200)).unwrap(), 200);
    assert_eq!(from_value::<Vec<i32>>(&PsValue::I32(5)).unwrap(), vec![5]);
    assert_eq!(
        from_value::<Vec<i32>>(&PsValue::Null).unwrap(),
        Vec::<i32>::new()
    );
    let d: PsValue = PsObject::hashtable(vec![("a".into(), PsValue::I32(1))]).into();
    let m: HashMap<String, i32> = from_value(&d).unwrap();
    assert_eq!(m["a"], 1);
}

#[test]
fn serde_writes_parameters() {
    #[derive(Serialize)]
    struct Params<'a> {
        name: &'a str,
        count: u32,
        tags: Vec<&'a str>,
        missing: Option<i32>,
        mode: Mode,
    }
    #[derive(Serialize)]
    enum Mode {
        Fast,
    }
    let v = to_value(&Params {
        name: "x_y",
        count: 3,
        tags: vec!["a", "b"],
        missing: None,
        mode: Mode::Fast,
    })
    .unwrap();
    let o = v.as_object().unwrap();
    assert!(o.is_type("System.Management.Automation.PSCustomObject"));
    assert_eq!(o.property("count"), Some(&PsValue::U32(3)));
    assert_eq!(o.property("missing"), Some(&PsValue::Null));
    assert_eq!(o.property("mode"), Some(&PsValue::from("Fast")));
    assert_eq!(
        o.property("tags").unwrap().as_list().unwrap(),
        &[PsValue::from("a"), PsValue::from("b")]
    );
    let map: HashMap<&str, i32> = [("k", 1)].into_iter().collect();
    let m = to_value(&map).unwrap();
    assert!(matches!(
        m.as_object().unwrap().collection,
        Some(Collection::Dictionary(ref e)) if e == &vec![(PsValue::from("k"), PsValue::I32(1))]
    ));
}

fn all_primitives() -> Vec<PsValue> {
    vec![
        PsValue::Null,
        PsValue::Bool(true),
        PsValue::Bool(false),
        PsValue::Char(97),
        PsValue::I8(-5),
        PsValue::U8(250),
        PsValue::I16(-300),
        PsValue::U16(60000),
        PsValue::I32(i32::MIN),
        PsValue::U32(u32::MAX),
        PsValue::I64(i64::MIN),
        PsValue::U64(u64::MAX),
        PsValue::F32(1.5),
        PsValue::F64(-2.25e-10),
        PsValue::F64(f64::INFINITY),
        PsValue::Decimal("79228162514264337593543950335".into()),
        PsValue::String("a <b> & \"c\" \n\t_x000A_ \u{10437} é".into()),
        PsValue::String(String::new()),
        PsValue::DateTime("2018-05-31T10:43:12.5391049+10:00".into()),
        PsValue::Duration("PT9.0269S".into()),
        PsValue::Bytes(vec![0, 1, 2, 255]),
        PsValue::Guid(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff)),
        PsValue::Uri("http://h/a?b=1&c=2".into()),
        PsValue::Version("10.0.14393.2248".into()),
        PsValue::XmlDocument("<a>b</a>".into()),
        PsValue::ScriptBlock("Get-Date | % { $_ }".into()),
        PsValue::SecureString(EncryptedString::from_ciphertext(vec![9; 32])),
    ]
}

#[test]
fn writer_then_reader_round_trips_every_kind() {
    let mut values = all_primitives();
    let prims = values.clone();
    values.push(
        PsObject::new()
            .with_type_names(["My.Type", "System.Object"])
            .with_to_string("text")
            .with_adapted("A", PsValue::I32(1))
            .with_property("weird name_x\n", PsValue::from("v"))
            .with_property("Nested", PsObject::list(["System.Object[]"], prims.clone()))
            .into(),
    );
    for (kind, c) in [
        ("stack", Collection::Stack(prims.clone())),
        ("queue", Collection::Queue(prims.clone())),
        ("ie", Collection::Enumerable(vec![])),
        (
            "dict",
            Collection::Dictionary(
                prims
                    .iter()
                    .cloned()
                    .map(|v| (PsValue::from("k"), v))
                    .collect(),
            ),
        ),
    ] {
        values.push(
            PsObject::new()
                .with_to_string(kind)
                .with_collection(c)
                .into(),
        );
    }
    values.push(PsObject::enumeration("E", "B", 2).into());
    for v in values {
        let text = to_string(&v);
        let back = from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        // NaN aside (none here), equal values.
        assert_eq!(back, v, "{text}");
    }
}

#[test]
fn writer_emits_tnref_for_repeated_type_names() {
    let item = || -> PsValue { PsObject::enumeration("E", "A", 0).into() };
    let v: PsValue = PsObject::new()
        .with_property("x", item())
        .with_property("y", item())
        .into();
    let text = to_string(&v);
    assert_eq!(text.matches("<TN RefId=\"0\">").count(), 1, "{text}");
    assert_eq!(text.matches("<TNRef RefId=\"0\" />").count(), 1, "{text}");
    assert!(text.contains("<Obj N=\"y\" RefId=\"2\">"), "{text}");
    assert_eq!(from_str(&text).unwrap(), v);
}

#[test]
fn secure_string_is_opaque_and_refused_as_text() {
    let v = from_str("\u{feff}<SS>rTm4n3bxaFOIgdjhDDV5OA==</SS>").unwrap();
    let PsValue::SecureString(s) = &v else {
        panic!("{v:?}")
    };
    assert_eq!(s.ciphertext().len(), 16);
    assert_eq!(format!("{s:?}"), "EncryptedString(16 bytes)");
    assert_eq!(
        from_value::<String>(&v).unwrap_err(),
        Error::SecureStringWithoutKey
    );
}

#[test]
fn objs_documents_read_all_values() {
    let text = r#"<?xml version="1.0"?><Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">
      <S>a</S>
      <I32>2</I32>
    </Objs>"#;
    assert_eq!(
        from_str_all(text, ReadLimits::default()).unwrap(),
        vec![PsValue::from("a"), PsValue::I32(2)]
    );
}

#[test]
fn bad_documents_are_typed_errors() {
    type Check = fn(&Error) -> bool;
    let cases: &[(&str, Check)] = &[
        ("", |e| matches!(e, Error::Empty)),
        ("<I32>x</I32>", |e| {
            matches!(e, Error::InvalidValue { element: "I32", .. })
        }),
        ("<U8>1</U8>", |e| {
            matches!(e, Error::UnexpectedElement { .. })
        }),
        ("<Obj><Foo/></Obj>", |e| {
            matches!(e, Error::UnexpectedElement { .. })
        }),
        ("<Ref RefId=\"3\" />", |e| {
            matches!(e, Error::UnknownRef { kind: "Ref", .. })
        }),
        ("<Obj><TNRef RefId=\"0\" /></Obj>", |e| {
            matches!(e, Error::UnknownRef { kind: "TNRef", .. })
        }),
        ("<S>a</S><S>b</S>", |e| {
            matches!(e, Error::UnexpectedElement { .. })
        }),
        ("<S>a", |e| matches!(e, Error::Xml { .. })),
        ("<S>a</I32>", |e| matches!(e, Error::Xml { .. })),
        ("<S><S>a</S></S>", |e| {
            matches!(e, Error::UnexpectedElement { .. })
        }),
        ("<BA>!!</BA>", |e| {
            matches!(e, Error::InvalidValue { element: "BA", .. })
        }),
        ("<B>yes</B>", |e| {
            matches!(e, Error::InvalidValue { element: "B", .. })
        }),
        ("<G>nope</G>", |e| {
            matches!(e, Error::InvalidValue { element: "G", .. })
        }),
        ("<Obj><DCT><En><S N=\"Value\">v</S></En></DCT></Obj>", |e| {
            matches!(
                e,
                Error::MissingProperty {
                    property: "Key",
                    ..
                }
            )
        }),
        ("<S>&bogus;</S>", |e| matches!(e, Error::Xml { .. })),
        (
            "<S a0=\"\" a1=\"\" a2=\"\" a3=\"\" a4=\"\" a5=\"\" a6=\"\" a7=\"\" a8=\"\" a9=\"\" b0=\"\" b1=\"\" b2=\"\" b3=\"\" b4=\"\" b5=\"\" b6=\"\">x</S>",
            |e| matches!(e, Error::Xml { .. }),
        ),
    ];
    for (text, check) in cases {
        let err = from_str(text).unwrap_err();
        assert!(check(&err), "{text}: {err:?}");
    }
}

#[test]
fn limits_bound_depth_values_and_length() {
    let deep = format!("{}{}", "<Obj><MS>".repeat(100), "</MS></Obj>".repeat(100));
    assert_eq!(from_str(&deep).unwrap_err(), Error::TooDeep(64));
    let mut limits = ReadLimits {
        max_values: 10,
        ..ReadLimits::default()
    };
    let many = format!("<Obj><LST>{}</LST></Obj>", "<I32>1</I32>".repeat(20));
    assert_eq!(
        from_str_with(&many, limits).unwrap_err(),
        Error::TooManyValues(10)
    );
    limits.max_len = 5;
    assert_eq!(
        from_str_with("<S>abcdef</S>", limits).unwrap_err(),
        Error::TooLong(5)
    );
}

#[test]
fn powershell_stderr_clixml_with_streams_and_progress() {
    // The shape `powershell.exe -EncodedCommand` writes to stderr after `#< CLIXML`.
    let text = concat!(
        r#"<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">"#,
        r#"<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN>"#,
        r#"<MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil />"#,
        r#"<PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>"#,
        r#"<S S="Error">At line:1 char:1_x000D__x000A_</S></Objs>"#,
    );
    let values = from_str_streams(text, ReadLimits::default()).unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(values[0].0.as_deref(), Some("progress"));
    let record = values[0].1.property("Record").unwrap();
    assert_eq!(
        record.property("Activity").and_then(PsValue::as_str),
        Some("Preparing modules for first use.")
    );
    assert_eq!(record.property("CurrentOperation"), Some(&PsValue::Null));
    assert_eq!(record.property("PercentComplete"), Some(&PsValue::I32(-1)));
    assert_eq!(
        record.property("Type").and_then(PsValue::as_str),
        Some("Completed")
    );
    assert_eq!(
        values[1],
        (Some("Error".into()), PsValue::from("At line:1 char:1\r\n"))
    );
    assert!(matches!(
        from_str("<PR><XX>1</XX></PR>").unwrap_err(),
        Error::UnexpectedElement { .. }
    ));
    assert!(matches!(
        from_str("<PR><AI>x</AI></PR>").unwrap_err(),
        Error::InvalidValue { element: "PR", .. }
    ));
}

#[test]
fn extended_properties_hide_adapted_ones_of_the_same_name() {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Named {
        name: String,
        id: i32,
    }
    let v: PsValue = PsObject::new()
        .with_adapted("Name", "adapted")
        .with_adapted("Id", 4)
        .with_property("Name", "extended")
        .into();
    let n: Named = from_value(&v).unwrap();
    assert_eq!((n.name.as_str(), n.id), ("extended", 4));
    assert_eq!(v.as_object().unwrap().properties().count(), 2);
    assert_eq!(v.property("Name"), Some(&PsValue::from("extended")));
}

#[test]
fn property_lookup_falls_back_to_ascii_case() {
    let v: PsValue = PsObject::new()
        .with_property("CI", PsValue::I64(3))
        .with_property("ci2", PsValue::I64(4))
        .with_property("Ci2", PsValue::I64(5))
        .into();
    assert_eq!(v.property("ci"), Some(&PsValue::I64(3)));
    // An exact match wins over a case-insensitive one.
    assert_eq!(v.property("Ci2"), Some(&PsValue::I64(5)));
    assert_eq!(v.property("nope"), None);
}

#[test]
fn serde_errors_name_the_property() {
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Wrong {
        #[serde(rename = "ServiceName")]
        service_name: u32,
    }
    // The object tree's reader and the direct (fast) reader say the same.
    let v = from_str(SERVICE).unwrap();
    let e = from_value::<Wrong>(&v).unwrap_err().to_string();
    assert!(e.contains("property ServiceName:"), "{e}");
    let e = from_str_as::<Wrong>(SERVICE).unwrap_err().to_string();
    assert!(e.contains("property ServiceName:"), "{e}");
}
