//! CIM intervals keep their precision through a Get then a Put: the client reads every
//! fraction digit Windows writes (100 ns ticks, microseconds) and writes them back, so
//! putting an instance back unchanged does not change its intervals.

use std::time::Duration;

use tokio_winrm::{Auth, Client, Instance, Resource, Value};
use winrm_simulator::{SimClass, Simulator};

#[tokio::test]
async fn intervals_survive_get_then_put() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let sim = Simulator::start().await.unwrap();
        let ticks = Duration::new(3 * 86_400 + 5, 123_456_700);
        let half_ms = Duration::from_micros(500);
        sim.register_class(
            SimClass::new("Esc_Span")
                .key("Name")
                .property("Span")
                .property("Short")
                .instance([
                    ("Name", Value::from("a")),
                    ("Span", Value::Interval(ticks)),
                    ("Short", Value::Interval(half_ms)),
                ]),
        );
        let client = Client::builder(sim.endpoint())
            .auth(Auth::basic(sim.user(), sim.password()))
            .allow_insecure_basic(true)
            .build()
            .unwrap();
        let res = Resource::new("wmicimv2/Esc_Span").selector("Name", "a");
        let got = client.get(&res).await.unwrap();
        assert_eq!(got.get("Span"), Some(&Value::Interval(ticks)));
        assert_eq!(got.get("Short"), Some(&Value::Interval(half_ms)));

        sim.clear_requests();
        client.put(&res, &got).await.unwrap();
        let put = sim
            .requests()
            .into_iter()
            .find(|r| r.action.ends_with("/Put"))
            .expect("a Put");
        assert!(put.body.contains("PT259205.1234567S"), "{}", put.body);
        assert!(put.body.contains("PT0.0005S"), "{}", put.body);

        let after: Instance = client.get(&res).await.unwrap();
        assert_eq!(after.get("Span"), Some(&Value::Interval(ticks)));
        assert_eq!(after.get("Short"), Some(&Value::Interval(half_ms)));
    })
    .await
    .expect("test timed out");
}
