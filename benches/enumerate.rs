//! Enumeration throughput: PullResponse bytes shaped like Windows' (Win32_Service items
//! of 25 properties, `xsi:type`, nil and datetime values) read into a serde struct, beside
//! the raw quick-xml event rate over the same bytes, with the ratio printed.
//!
//! `cargo bench --bench enumerate` (criterion), preceded by a one-core report:
//! items/s into the struct, raw events/s and MB/s, and ours/raw.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use quick_xml::Reader;
use quick_xml::events::Event;
use serde::Deserialize;
use tokio_winrm::{EnumItem, Page, from_instance, parse_page_as};

const ITEMS_PER_PAGE: usize = 100;

/// The target struct: what a caller would deserialize Win32_Service into.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
struct Win32Service {
    accept_pause: bool,
    accept_stop: bool,
    caption: String,
    check_point: u32,
    creation_class_name: String,
    delayed_auto_start: bool,
    description: String,
    desktop_interact: bool,
    display_name: String,
    error_control: String,
    exit_code: u32,
    install_date: Option<String>,
    name: String,
    path_name: String,
    process_id: u32,
    service_specific_exit_code: u32,
    service_type: String,
    started: bool,
    start_mode: String,
    start_name: String,
    state: String,
    status: String,
    system_creation_class_name: String,
    system_name: String,
    tag_id: u32,
    wait_hint: u32,
}

/// A PullResponse of `n` services, in the shape Windows writes them.
fn pull_response(n: usize) -> Vec<u8> {
    let mut s = String::with_capacity(n * 1800 + 1024);
    s.push_str(concat!(
        "<s:Envelope xml:lang=\"en-US\" xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\"",
        " xmlns:n=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\" xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\"",
        " xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\"><s:Header>",
        "<a:Action>http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse</a:Action>",
        "<a:MessageID>uuid:6528D6DD-E945-4CB9-BD87-BEF0CDAB8D3D</a:MessageID>",
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>",
        "<a:RelatesTo>uuid:5E6EE511-87B0-4C03-8084-15EEC39AD510</a:RelatesTo></s:Header><s:Body><n:PullResponse>",
        "<n:EnumerationContext>uuid:0C8CF5D3-6CB1-4F0F-9E4C-A8C6E3C3A0B1</n:EnumerationContext><n:Items>"
    ));
    for i in 0..n {
        let running = i % 3 != 0;
        s.push_str(&format!(
            concat!(
                "<p:Win32_Service xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service\"",
                " xmlns:cim=\"http://schemas.dmtf.org/wbem/wscim/1/common\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"",
                " xsi:type=\"p:Win32_Service_Type\" xml:lang=\"en-US\">",
                "<p:AcceptPause>false</p:AcceptPause><p:AcceptStop>{running}</p:AcceptStop>",
                "<p:Caption>Application Service {i:04}</p:Caption><p:CheckPoint>0</p:CheckPoint>",
                "<p:CreationClassName>Win32_Service</p:CreationClassName><p:DelayedAutoStart>false</p:DelayedAutoStart>",
                "<p:Description>Provides support for application service number {i} &amp; its dependent components.</p:Description>",
                "<p:DesktopInteract>false</p:DesktopInteract><p:DisplayName>Application Service {i:04}</p:DisplayName>",
                "<p:ErrorControl>Normal</p:ErrorControl><p:ExitCode>{exit}</p:ExitCode><p:InstallDate xsi:nil=\"true\"/>",
                "<p:Name>AppSvc{i:04}</p:Name><p:PathName>C:\\Windows\\system32\\svchost.exe -k netsvcs -p</p:PathName>",
                "<p:ProcessId>{pid}</p:ProcessId><p:ServiceSpecificExitCode>0</p:ServiceSpecificExitCode>",
                "<p:ServiceType>Share Process</p:ServiceType><p:Started>{running}</p:Started><p:StartMode>Auto</p:StartMode>",
                "<p:StartName>LocalSystem</p:StartName><p:State>{state}</p:State><p:Status>OK</p:Status>",
                "<p:SystemCreationClassName>Win32_ComputerSystem</p:SystemCreationClassName><p:SystemName>WIN-NNMU24VVKJ0</p:SystemName>",
                "<p:TagId>0</p:TagId><p:WaitHint>0</p:WaitHint></p:Win32_Service>"
            ),
            running = running,
            i = i,
            exit = if running { 0 } else { 1077 },
            pid = if running { 1000 + i * 4 } else { 0 },
            state = if running { "Running" } else { "Stopped" },
        ));
    }
    s.push_str("</n:Items></n:PullResponse></s:Body></s:Envelope>");
    s.into_bytes()
}

/// Ours: what `enumerate_as::<Win32Service>` does with each Pull response.
fn parse_into_structs(bytes: &[u8]) -> usize {
    let (items, _, _) = parse_page_as::<Win32Service>(bytes).expect("valid page");
    let mut n = 0;
    for item in items {
        black_box(item.expect("fits"));
        n += 1;
    }
    n
}

/// The generic path: `Instance`s (as `enumerate` yields), then `from_instance`.
fn parse_via_instances(bytes: &[u8]) -> usize {
    let page = Page::parse(bytes).expect("valid page");
    let mut n = 0;
    for item in &page.items {
        if let EnumItem::Object(inst) = item {
            let s: Win32Service = from_instance(inst).expect("fits");
            black_box(&s);
            n += 1;
        }
    }
    n
}

/// Raw: every quick-xml event over the same bytes, nothing kept.
fn raw_events(bytes: &[u8]) -> usize {
    let mut r = Reader::from_reader(bytes);
    let mut n = 0usize;
    loop {
        match r.read_event() {
            Ok(Event::Eof) => break,
            Ok(e) => {
                black_box(&e);
                n += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    n
}

/// Runs `f` for about `budget`, returning the time per call.
fn time_per_call(budget: Duration, mut f: impl FnMut() -> usize) -> Duration {
    for _ in 0..3 {
        black_box(f());
    }
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < budget {
        black_box(f());
        calls += 1;
    }
    start.elapsed() / calls
}

fn report(bytes: &[u8]) {
    let events = raw_events(bytes);
    let ours = time_per_call(Duration::from_secs(2), || parse_into_structs(bytes));
    let raw = time_per_call(Duration::from_secs(2), || raw_events(bytes));
    let generic = time_per_call(Duration::from_secs(1), || parse_via_instances(bytes));
    let mb = bytes.len() as f64 / 1e6;
    let items_per_s = ITEMS_PER_PAGE as f64 / ours.as_secs_f64();
    println!(
        "enumerate: {} items/page, {:.0} bytes/item, {} events/page",
        ITEMS_PER_PAGE,
        bytes.len() as f64 / ITEMS_PER_PAGE as f64,
        events
    );
    println!(
        "enumerate: ours {:.0} items/s into Win32Service ({:.1} MB/s); raw quick-xml {:.0} events/s ({:.1} MB/s, {:.0} items/s)",
        items_per_s,
        mb / ours.as_secs_f64(),
        events as f64 / raw.as_secs_f64(),
        mb / raw.as_secs_f64(),
        ITEMS_PER_PAGE as f64 / raw.as_secs_f64()
    );
    println!(
        "enumerate: ours/raw = {:.1}% (targets: >= 150000 items/s, >= 40%); via Instance + from_instance: {:.0} items/s",
        100.0 * raw.as_secs_f64() / ours.as_secs_f64(),
        ITEMS_PER_PAGE as f64 / generic.as_secs_f64()
    );
}

fn benches(c: &mut Criterion, bytes: &[u8]) {
    let mut g = c.benchmark_group("enumerate");
    g.throughput(Throughput::Elements(ITEMS_PER_PAGE as u64));
    g.bench_function("pull_page_into_structs", |b| {
        b.iter(|| parse_into_structs(black_box(bytes)))
    });
    g.bench_function("pull_page_via_instances", |b| {
        b.iter(|| parse_via_instances(black_box(bytes)))
    });
    g.bench_function("raw_quick_xml_events", |b| {
        b.iter(|| raw_events(black_box(bytes)))
    });
    g.finish();
}

fn main() {
    let bytes = pull_response(ITEMS_PER_PAGE);
    assert_eq!(parse_into_structs(&bytes), ITEMS_PER_PAGE);
    assert_eq!(parse_via_instances(&bytes), ITEMS_PER_PAGE);
    let test_mode = std::env::args().any(|a| a == "--test");
    if !test_mode {
        report(&bytes);
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &bytes);
    c.final_summary();
}
