//! Objects per second for `Get-Process`-shaped CLIXML: the raw quick-xml event rate,
//! the CLIXML reader ([`clixml::from_str`]), reader plus serde into a struct, and
//! [`clixml::from_str_as`] (what `Pipeline::invoke_as` uses) into the same struct.
//! Run: `cargo bench -p wsman-protocol --bench clixml_rate`. Not a test: prints rates.

use std::hint::black_box;
use std::time::Instant;

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use wsman_protocol::psrp::{PsValue, clixml, from_value};

fn process_object(i: usize) -> String {
    let mut props = String::new();
    let s = |n: &str, v: &str| format!("<S N=\"{n}\">{v}</S>");
    props += &s("Name", &format!("svchost{i}"));
    props += &format!("<I32 N=\"Id\">{}</I32>", 1000 + i);
    props += &format!("<I32 N=\"Handles\">{}</I32>", 300 + i % 50);
    for n in [
        "WorkingSet64",
        "PagedMemorySize64",
        "PrivateMemorySize64",
        "VirtualMemorySize64",
        "PeakWorkingSet64",
        "NonpagedSystemMemorySize64",
    ] {
        props += &format!("<I64 N=\"{n}\">{}</I64>", 12_345_678 + i);
    }
    props += &format!("<Db N=\"CPU\">{}.015625</Db>", i % 100);
    props += "<DT N=\"StartTime\">2018-06-13T23:46:27.9270288+00:00</DT>";
    props += "<TS N=\"TotalProcessorTime\">PT1.5S</TS>";
    for n in [
        "Path",
        "Company",
        "Description",
        "FileVersion",
        "ProductVersion",
        "Product",
        "MainWindowTitle",
        "ProcessName",
        "MachineName",
    ] {
        props += &s(n, "C:\\Windows\\system32\\svchost.exe");
    }
    for n in ["HasExited", "Responding", "EnableRaisingEvents"] {
        props += &format!("<B N=\"{n}\">true</B>");
    }
    for n in [
        "ExitCode",
        "ExitTime",
        "StandardInput",
        "Site",
        "Container",
        "SynchronizingObject",
    ] {
        props += &format!("<Nil N=\"{n}\" />");
    }
    for n in [
        "BasePriority",
        "SessionId",
        "HandleCount",
        "PriorityClassValue",
    ] {
        props += &format!("<I32 N=\"{n}\">8</I32>");
    }
    props += "<Obj N=\"PriorityClass\" RefId=\"1\"><TN RefId=\"1\"><T>System.Diagnostics.ProcessPriorityClass</T><T>System.Enum</T><T>System.ValueType</T><T>System.Object</T></TN><ToString>Normal</ToString><I32>32</I32></Obj>";
    props += "<Obj N=\"Threads\" RefId=\"2\"><TN RefId=\"2\"><T>System.Diagnostics.ProcessThreadCollection</T><T>System.Object</T></TN><LST><S>1</S><S>2</S><S>3</S></LST></Obj>";
    format!(
        "<Obj RefId=\"0\"><TN RefId=\"0\"><T>System.Diagnostics.Process</T><T>System.ComponentModel.Component</T><T>System.MarshalByRefObject</T><T>System.Object</T></TN><ToString>System.Diagnostics.Process (svchost)</ToString><Props>{props}</Props><MS><S N=\"Name\">svchost{i}</S><I32 N=\"SI\">0</I32></MS></Obj>"
    )
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
struct Process {
    name: String,
    id: i32,
    handles: i32,
    working_set64: i64,
    #[serde(rename = "CPU")]
    cpu: Option<f64>,
    path: Option<String>,
    priority_class: String,
    start_time: Option<String>,
}

fn rate(label: &str, docs: &[String], mut f: impl FnMut(&str) -> usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0;
        for d in docs {
            n += f(d);
        }
        black_box(n);
        best = best.min(start.elapsed().as_secs_f64());
    }
    let per_sec = docs.len() as f64 / best;
    println!("{label:<40} {per_sec:>12.0} objects/s");
    per_sec
}

fn main() {
    let docs: Vec<String> = (0..20_000).map(process_object).collect();
    let bytes: usize = docs.iter().map(String::len).sum();
    println!(
        "{} objects, {} bytes each on average",
        docs.len(),
        bytes / docs.len()
    );
    let raw = rate("quick-xml events (unescaped text)", &docs, |d| {
        let mut r = Reader::from_str(d);
        let mut n = 0;
        loop {
            match r.read_event() {
                Ok(Event::Eof) => break,
                Ok(Event::Text(t)) => n += t.decode().map(|s| s.len()).unwrap_or(0),
                Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                    n += e.attributes().count();
                }
                Ok(_) => n += 1,
                Err(_) => break,
            }
        }
        n
    });
    let tree = rate("clixml::from_str", &docs, |d| {
        usize::from(matches!(clixml::from_str(d), Ok(PsValue::Object(_))))
    });
    let typed = rate("clixml::from_str + from_value::<Process>", &docs, |d| {
        let v = clixml::from_str(d).unwrap();
        let p: Process = from_value(&v).unwrap();
        p.name.len()
    });
    let direct = rate("clixml::from_str_as::<Process>", &docs, |d| {
        let p: Process = clixml::from_str_as(d).unwrap();
        p.name.len()
    });
    println!(
        "reader {:.0}% of raw, reader+serde {:.0}% of raw, from_str_as {:.0}% of raw",
        tree / raw * 100.0,
        typed / raw * 100.0,
        direct / raw * 100.0
    );
}
