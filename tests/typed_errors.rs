//! A value that does not fit the caller's type: the error names the property and says
//! what is wrong ("-5 is out of range for u32"), from `get_as` and from the streaming
//! reader of `enumerate_as` alike.

use serde::Deserialize;
use tokio_winrm::{Auth, Client, Resource, Value};
use winrm_simulator::{SimClass, Simulator};

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Item {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Count")]
    count: u32,
}

#[tokio::test]
async fn a_value_that_does_not_fit_names_its_property() {
    let sim = Simulator::start().await.unwrap();
    sim.register_class(
        SimClass::new("Test_Counts")
            .key("Name")
            .instance([("Name", Value::from("a")), ("Count", Value::from("-5"))]),
    );
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .build()
        .unwrap();
    let res = Resource::new("wmicimv2/Test_Counts");
    let e = client
        .get_as::<Item>(&res.clone().selector("Name", "a"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("property Count") && e.contains("-5 is out of range for u32"),
        "{e}"
    );
    let e = client
        .enumerate_as::<Item>(&res)
        .start()
        .collect_items()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("property Count") && e.contains("-5 is out of range for u32"),
        "{e}"
    );
}
