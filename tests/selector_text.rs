//! Selector values are text compared as written: Windows keeps a key's leading and
//! trailing spaces, so a value read from a selector set (the simulator's request
//! reader, an endpoint reference the client receives) is not trimmed.

use tokio_winrm::{Auth, Client, Resource, Value};
use winrm_simulator::{SimClass, Simulator};

#[tokio::test]
async fn a_key_with_spaces_names_its_own_instance() {
    let sim = Simulator::start().await.unwrap();
    sim.register_class(
        SimClass::new("Test_Spaced")
            .key("Name")
            .instance([
                ("Name", Value::from("  spaced  ")),
                ("Which", Value::from("padded")),
            ])
            .instance([
                ("Name", Value::from("spaced")),
                ("Which", Value::from("plain")),
            ]),
    );
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .build()
        .unwrap();
    for (name, which) in [("  spaced  ", "padded"), ("spaced", "plain")] {
        let got = client
            .get(&Resource::new("wmicimv2/Test_Spaced").selector("Name", name))
            .await
            .unwrap();
        assert_eq!(got.get_str("Which"), Some(which), "{name:?}");
        assert_eq!(got.get_str("Name"), Some(name));
    }
}

#[test]
fn a_selector_set_is_read_as_written() {
    let xml = r#"<w:SelectorSet xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><w:Selector Name="Name">  spaced  </w:Selector></w:SelectorSet>"#;
    let root = wsman_protocol::xml::parse(xml.as_bytes()).unwrap();
    let set = wsman_protocol::cim::read_selector_set(&root);
    assert_eq!(set.len(), 1);
    assert_eq!(
        set[0].value,
        wsman_protocol::envelope::SelectorValue::Text("  spaced  ".into())
    );
}
