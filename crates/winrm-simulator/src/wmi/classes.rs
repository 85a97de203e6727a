//! The simulated classes of `root/cimv2`: Win32_OperatingSystem (a singleton),
//! Win32_Service (real Windows services, then generated `SimSvc0001`...) and
//! Win32_Process (a plausible process tree, plus processes made by `Create`).
//! Everything is derived from the simulator's seed; properties are in schema order.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::{Rng, datetime, lock};
use crate::ClassSource;
use crate::soap::{Instance, Value};

fn build(class: &str, props: Vec<(&'static str, Value)>) -> Instance {
    Instance {
        class_name: class.to_string(),
        namespace: Some(super::class_uri(class)),
        properties: props.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

/// Facts shared by the classes: host name and boot time.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub name: String,
    /// Seconds since the Unix epoch.
    pub boot: i64,
    pub install: i64,
    pub started: Instant,
}

impl Host {
    pub(crate) fn new(rng: &Rng) -> Host {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let name: String = (0..11)
            .map(|i| ALNUM[(rng.at(900 + i) % ALNUM.len() as u64) as usize] as char)
            .collect();
        // Booted some day in March 2025, installed months earlier.
        let boot = 1_740_787_200 + (rng.at(1) % (30 * 86_400)) as i64;
        Host {
            name: format!("WIN-{name}"),
            boot,
            install: boot - 86_400 * (60 + (rng.at(2) % 300) as i64),
            started: Instant::now(),
        }
    }

    fn now(&self) -> i64 {
        self.boot + 600 + self.started.elapsed().as_secs() as i64
    }
}

// ---------------------------------------------------------------------------------------
// Win32_OperatingSystem

#[rustfmt::skip]
const OS_PROPERTIES: &[&str] = &[
    "BootDevice", "BuildNumber", "BuildType", "Caption", "CodeSet", "CountryCode", "CreationClassName",
    "CSCreationClassName", "CSDVersion", "CSName", "CurrentTimeZone",
    "DataExecutionPrevention_32BitApplications", "DataExecutionPrevention_Available",
    "DataExecutionPrevention_Drivers", "DataExecutionPrevention_SupportPolicy", "Debug", "Description",
    "Distributed", "EncryptionLevel", "ForegroundApplicationBoost", "FreePhysicalMemory",
    "FreeSpaceInPagingFiles", "FreeVirtualMemory", "InstallDate", "LastBootUpTime", "LocalDateTime", "Locale",
    "Manufacturer", "MaxNumberOfProcesses", "MaxProcessMemorySize", "MUILanguages", "Name",
    "NumberOfLicensedUsers", "NumberOfProcesses", "NumberOfUsers", "OperatingSystemSKU", "Organization",
    "OSArchitecture", "OSLanguage", "OSProductSuite", "OSType", "OtherTypeDescription",
    "PortableOperatingSystem", "Primary", "ProductType", "RegisteredUser", "SerialNumber",
    "ServicePackMajorVersion", "ServicePackMinorVersion", "SizeStoredInPagingFiles", "Status", "SuiteMask",
    "SystemDevice", "SystemDirectory", "SystemDrive", "TotalVirtualMemorySize", "TotalVisibleMemorySize",
    "Version", "WindowsDirectory",
];

/// Win32_OperatingSystem: one instance, no selectors needed.
pub(crate) struct OperatingSystem {
    host: Host,
    total_kb: u64,
    free_kb: u64,
    processes: u64,
}

impl OperatingSystem {
    pub(crate) fn new(rng: &Rng, host: &Host, processes: u64) -> OperatingSystem {
        let total_kb = [4u64, 8, 16, 32][(rng.at(3) % 4) as usize] * 1024 * 1024 - 4 * 1024 * 10;
        OperatingSystem {
            host: host.clone(),
            total_kb,
            free_kb: total_kb / 4 + rng.at(4) % (total_kb / 3),
            processes,
        }
    }
}

impl ClassSource for OperatingSystem {
    fn name(&self) -> &str {
        "Win32_OperatingSystem"
    }
    fn properties(&self) -> Vec<&str> {
        OS_PROPERTIES.to_vec()
    }
    fn keys(&self) -> Vec<&str> {
        Vec::new()
    }
    fn count(&self) -> u64 {
        1
    }
    fn instance(&self, _index: u64) -> Instance {
        let caption = "Microsoft Windows Server 2022 Datacenter";
        let paging = 1_310_720u64;
        let props = vec![
            ("BootDevice", s("\\Device\\HarddiskVolume1")),
            ("BuildNumber", s("20348")),
            ("BuildType", s("Multiprocessor Free")),
            ("Caption", s(caption)),
            ("CodeSet", s("1252")),
            ("CountryCode", s("1")),
            ("CreationClassName", s("Win32_OperatingSystem")),
            ("CSCreationClassName", s("Win32_ComputerSystem")),
            ("CSDVersion", Value::Null),
            ("CSName", s(&self.host.name)),
            ("CurrentTimeZone", Value::Int(0)),
            (
                "DataExecutionPrevention_32BitApplications",
                Value::Bool(true),
            ),
            ("DataExecutionPrevention_Available", Value::Bool(true)),
            ("DataExecutionPrevention_Drivers", Value::Bool(true)),
            ("DataExecutionPrevention_SupportPolicy", Value::UInt(3)),
            ("Debug", Value::Bool(false)),
            ("Description", s("")),
            ("Distributed", Value::Bool(false)),
            ("EncryptionLevel", Value::UInt(256)),
            ("ForegroundApplicationBoost", Value::UInt(2)),
            ("FreePhysicalMemory", Value::UInt(self.free_kb)),
            ("FreeSpaceInPagingFiles", Value::UInt(paging - paging / 10)),
            ("FreeVirtualMemory", Value::UInt(self.free_kb + paging / 2)),
            ("InstallDate", datetime(self.host.install, 0)),
            ("LastBootUpTime", datetime(self.host.boot, 500_000)),
            ("LocalDateTime", datetime(self.host.now(), 0)),
            ("Locale", s("0409")),
            ("Manufacturer", s("Microsoft Corporation")),
            ("MaxNumberOfProcesses", Value::UInt(4_294_967_295)),
            ("MaxProcessMemorySize", Value::UInt(137_438_953_344)),
            ("MUILanguages", s("en-US")),
            (
                "Name",
                s(&format!(
                    "{caption}|C:\\Windows|\\Device\\Harddisk0\\Partition2"
                )),
            ),
            ("NumberOfLicensedUsers", Value::UInt(0)),
            ("NumberOfProcesses", Value::UInt(self.processes)),
            ("NumberOfUsers", Value::UInt(1)),
            ("OperatingSystemSKU", Value::UInt(8)),
            ("Organization", s("")),
            ("OSArchitecture", s("64-bit")),
            ("OSLanguage", Value::UInt(1033)),
            ("OSProductSuite", Value::UInt(400)),
            ("OSType", Value::UInt(18)),
            ("OtherTypeDescription", Value::Null),
            ("PortableOperatingSystem", Value::Bool(false)),
            ("Primary", Value::Bool(true)),
            ("ProductType", Value::UInt(3)),
            ("RegisteredUser", s("Windows User")),
            ("SerialNumber", s("00454-60000-00001-AA917")),
            ("ServicePackMajorVersion", Value::UInt(0)),
            ("ServicePackMinorVersion", Value::UInt(0)),
            ("SizeStoredInPagingFiles", Value::UInt(paging)),
            ("Status", s("OK")),
            ("SuiteMask", Value::UInt(400)),
            ("SystemDevice", s("\\Device\\HarddiskVolume2")),
            ("SystemDirectory", s("C:\\Windows\\system32")),
            ("SystemDrive", s("C:")),
            (
                "TotalVirtualMemorySize",
                Value::UInt(self.total_kb + paging),
            ),
            ("TotalVisibleMemorySize", Value::UInt(self.total_kb)),
            ("Version", s("10.0.20348")),
            ("WindowsDirectory", s("C:\\Windows")),
        ];
        build(self.name(), props)
    }
}

// ---------------------------------------------------------------------------------------
// Win32_Service

#[rustfmt::skip]
const SERVICE_PROPERTIES: &[&str] = &[
    "AcceptPause", "AcceptStop", "Caption", "CheckPoint", "CreationClassName", "DelayedAutoStart",
    "Description", "DesktopInteract", "DisplayName", "ErrorControl", "ExitCode", "InstallDate", "Name",
    "PathName", "ProcessId", "ServiceSpecificExitCode", "ServiceType", "Started", "StartMode", "StartName",
    "State", "Status", "SystemCreationClassName", "SystemName", "TagId", "WaitHint",
];

const NETSVC: &str = "NT AUTHORITY\\NetworkService";
const LOCALSVC: &str = "NT AUTHORITY\\LocalService";
const SYSTEM: &str = "LocalSystem";

/// Real services: name, display name, path, start mode, running, account, can stop.
#[rustfmt::skip]
const REAL_SERVICES: &[(&str, &str, &str, &str, bool, &str, bool)] = &[
    ("WinRM", "Windows Remote Management (WS-Management)", "C:\\Windows\\System32\\svchost.exe -k NetworkService -p", "Auto", true, NETSVC, true),
    ("Dnscache", "DNS Client", "C:\\Windows\\system32\\svchost.exe -k NetworkService -p", "Auto", true, NETSVC, false),
    ("EventLog", "Windows Event Log", "C:\\Windows\\System32\\svchost.exe -k LocalServiceNetworkRestricted -p", "Auto", true, LOCALSVC, true),
    ("Spooler", "Print Spooler", "C:\\Windows\\System32\\spoolsv.exe", "Auto", true, SYSTEM, true),
    ("W32Time", "Windows Time", "C:\\Windows\\system32\\svchost.exe -k LocalService", "Manual", true, LOCALSVC, true),
    ("BITS", "Background Intelligent Transfer Service", "C:\\Windows\\System32\\svchost.exe -k netsvcs -p", "Manual", false, SYSTEM, true),
    ("CryptSvc", "Cryptographic Services", "C:\\Windows\\system32\\svchost.exe -k NetworkService -p", "Auto", true, NETSVC, true),
    ("DcomLaunch", "DCOM Server Process Launcher", "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p", "Auto", true, SYSTEM, false),
    ("Dhcp", "DHCP Client", "C:\\Windows\\system32\\svchost.exe -k LocalServiceNetworkRestricted -p", "Auto", true, LOCALSVC, true),
    ("LanmanServer", "Server", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p", "Auto", true, SYSTEM, true),
    ("LanmanWorkstation", "Workstation", "C:\\Windows\\System32\\svchost.exe -k NetworkService -p", "Auto", true, NETSVC, true),
    ("MpsSvc", "Windows Defender Firewall", "C:\\Windows\\system32\\svchost.exe -k LocalServiceNoNetworkFirewall -p", "Auto", true, LOCALSVC, false),
    ("Netlogon", "Netlogon", "C:\\Windows\\system32\\lsass.exe", "Manual", false, SYSTEM, true),
    ("PlugPlay", "Plug and Play", "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p", "Manual", true, SYSTEM, false),
    ("RemoteRegistry", "Remote Registry", "C:\\Windows\\system32\\svchost.exe -k localService -p", "Auto", false, LOCALSVC, true),
    ("RpcSs", "Remote Procedure Call (RPC)", "C:\\Windows\\system32\\svchost.exe -k rpcss -p", "Auto", true, NETSVC, false),
    ("SamSs", "Security Accounts Manager", "C:\\Windows\\system32\\lsass.exe", "Auto", true, SYSTEM, false),
    ("Schedule", "Task Scheduler", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p", "Auto", true, SYSTEM, false),
    ("seclogon", "Secondary Logon", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p", "Manual", false, SYSTEM, true),
    ("TermService", "Remote Desktop Services", "C:\\Windows\\System32\\svchost.exe -k NetworkService", "Manual", true, NETSVC, true),
    ("Themes", "Themes", "C:\\Windows\\System32\\svchost.exe -k netsvcs -p", "Manual", false, SYSTEM, true),
    ("TrustedInstaller", "Windows Modules Installer", "C:\\Windows\\servicing\\TrustedInstaller.exe", "Manual", false, SYSTEM, true),
    ("Winmgmt", "Windows Management Instrumentation", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p", "Auto", true, SYSTEM, true),
    ("wuauserv", "Windows Update", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p", "Manual", false, SYSTEM, true),
    ("RemoteAccess", "Routing and Remote Access", "C:\\Windows\\System32\\svchost.exe -k netsvcs", "Disabled", false, SYSTEM, true),
];

/// What a service control request did, as `Win32_Service` method return values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// 0: done.
    Done = 0,
    /// 5: the service cannot accept control messages at this time.
    CannotAccept = 5,
    /// 6: the service has not been started.
    NotActive = 6,
    /// 10: the service is already running.
    AlreadyRunning = 10,
    /// 14: the service is disabled.
    Disabled = 14,
}

/// Win32_Service, keyed by Name. Started/stopped states changed through
/// `StartService`/`StopService` are kept in an override map.
pub(crate) struct Services {
    host: Host,
    count: u64,
    rng: Rng,
    running: Mutex<HashMap<u64, bool>>,
}

impl Services {
    pub(crate) fn new(rng: &Rng, host: &Host, count: usize) -> Services {
        Services {
            host: host.clone(),
            count: count as u64,
            rng: rng.fork(0x5e41),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The index of the service `name` (case-insensitive).
    pub(crate) fn index_of(&self, name: &str) -> Option<u64> {
        let real = REAL_SERVICES.len() as u64;
        if let Some(i) = REAL_SERVICES
            .iter()
            .position(|r| r.0.eq_ignore_ascii_case(name))
        {
            return ((i as u64) < self.count).then_some(i as u64);
        }
        let digits = name
            .get(..6)
            .filter(|p| p.eq_ignore_ascii_case("SimSvc"))
            .and(name.get(6..))?;
        let n: u64 = digits.parse().ok()?;
        let index = real + n.checked_sub(1)?;
        (index < self.count && generated_name(n).eq_ignore_ascii_case(name)).then_some(index)
    }

    fn start_mode(&self, index: u64) -> &'static str {
        match REAL_SERVICES.get(index as usize) {
            Some(r) => r.3,
            None => ["Auto", "Auto", "Manual", "Manual", "Manual", "Disabled"]
                [(self.rng.at(index) % 6) as usize],
        }
    }

    fn is_running(&self, index: u64) -> bool {
        if let Some(v) = lock(&self.running).get(&index) {
            return *v;
        }
        match REAL_SERVICES.get(index as usize) {
            Some(r) => r.4,
            None => self.start_mode(index) == "Auto" && !self.rng.at(index + 7).is_multiple_of(10),
        }
    }

    /// StartService (`run`) or StopService on the service at `index`.
    pub(crate) fn control(&self, index: u64, run: bool) -> Control {
        let running = self.is_running(index);
        let can_stop = REAL_SERVICES.get(index as usize).is_none_or(|r| r.6);
        let result = match (run, running) {
            (true, true) => Control::AlreadyRunning,
            (true, false) if self.start_mode(index) == "Disabled" => Control::Disabled,
            (false, false) => Control::NotActive,
            (false, true) if !can_stop => Control::CannotAccept,
            _ => Control::Done,
        };
        if result == Control::Done {
            lock(&self.running).insert(index, run);
        }
        result
    }
}

fn generated_name(n: u64) -> String {
    format!("SimSvc{n:04}")
}

impl ClassSource for Services {
    fn name(&self) -> &str {
        "Win32_Service"
    }
    fn properties(&self) -> Vec<&str> {
        SERVICE_PROPERTIES.to_vec()
    }
    fn keys(&self) -> Vec<&str> {
        ["Name"].to_vec()
    }
    fn count(&self) -> u64 {
        self.count
    }
    fn instance(&self, index: u64) -> Instance {
        let real = REAL_SERVICES.get(index as usize);
        let n = (index + 1).saturating_sub(REAL_SERVICES.len() as u64);
        let (name, display, path, account, can_stop) = match real {
            Some(r) => (r.0.to_string(), r.1.to_string(), r.2.to_string(), r.5, r.6),
            None => (
                generated_name(n),
                format!("Simulated Service {n:04}"),
                format!("\"C:\\Program Files\\Sim\\simsvc.exe\" -n {n:04}"),
                SYSTEM,
                true,
            ),
        };
        let description = match real {
            Some(r) => format!("Provides the {} service.", r.1),
            None => format!("Simulated service number {n} of the tokio-winrm simulator."),
        };
        let running = self.is_running(index);
        let own = !path.contains("svchost.exe") && !path.contains("lsass.exe");
        let pid = if running {
            1000 + (self.rng.at(index + 1000) % 9000) * 4
        } else {
            0
        };
        let props = vec![
            (
                "AcceptPause",
                Value::Bool(
                    running
                        && matches!(
                            name.as_str(),
                            "LanmanServer" | "LanmanWorkstation" | "Winmgmt"
                        ),
                ),
            ),
            ("AcceptStop", Value::Bool(running && can_stop)),
            ("Caption", s(&display)),
            ("CheckPoint", Value::UInt(0)),
            ("CreationClassName", s("Win32_Service")),
            (
                "DelayedAutoStart",
                Value::Bool(matches!(
                    name.as_str(),
                    "BITS" | "wuauserv" | "RemoteRegistry"
                )),
            ),
            ("Description", s(&description)),
            ("DesktopInteract", Value::Bool(false)),
            ("DisplayName", s(&display)),
            (
                "ErrorControl",
                s(if matches!(name.as_str(), "RpcSs" | "DcomLaunch") {
                    "Critical"
                } else {
                    "Normal"
                }),
            ),
            ("ExitCode", Value::UInt(if running { 0 } else { 1077 })),
            ("InstallDate", Value::Null),
            ("Name", s(&name)),
            ("PathName", s(&path)),
            ("ProcessId", Value::UInt(pid)),
            ("ServiceSpecificExitCode", Value::UInt(0)),
            (
                "ServiceType",
                s(if own { "Own Process" } else { "Share Process" }),
            ),
            ("Started", Value::Bool(running)),
            ("StartMode", s(self.start_mode(index))),
            ("StartName", s(account)),
            ("State", s(if running { "Running" } else { "Stopped" })),
            ("Status", s("OK")),
            ("SystemCreationClassName", s("Win32_ComputerSystem")),
            ("SystemName", s(&self.host.name)),
            ("TagId", Value::UInt(0)),
            ("WaitHint", Value::UInt(0)),
        ];
        build(self.name(), props)
    }
    fn find(&self, selectors: &[(String, String)]) -> Option<Instance> {
        let (_, name) = selectors
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Name"))?;
        self.index_of(name).map(|i| self.instance(i))
    }
}
