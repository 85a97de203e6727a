//! Win32_Process: a seeded process tree like a fresh Windows Server 2022 host (the
//! system processes, one svchost per service, a session with explorer), keyed by
//! Handle, plus the processes `Win32_Process.Create` starts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::classes::Host;
use super::{Rng, datetime, lock};
use crate::ClassSource;
use crate::soap::{Instance, Value};

/// How many processes the generated tree has.
pub(crate) const BASE_PROCESSES: usize = 80;
/// The most processes `Create` may add (then it returns 8, "unknown failure").
const MAX_CREATED: usize = 10_000;

#[rustfmt::skip]
const PROPERTIES: &[&str] = &[
    "Caption", "CommandLine", "CreationClassName", "CreationDate", "CSCreationClassName", "CSName",
    "Description", "ExecutablePath", "ExecutionState", "Handle", "HandleCount", "InstallDate",
    "KernelModeTime", "MaximumWorkingSetSize", "MinimumWorkingSetSize", "Name", "OSCreationClassName",
    "OSName", "OtherOperationCount", "OtherTransferCount", "PageFaults", "PageFileUsage", "ParentProcessId",
    "PeakPageFileUsage", "PeakVirtualSize", "PeakWorkingSetSize", "Priority", "PrivatePageCount", "ProcessId",
    "QuotaNonPagedPoolUsage", "QuotaPagedPoolUsage", "QuotaPeakNonPagedPoolUsage", "QuotaPeakPagedPoolUsage",
    "ReadOperationCount", "ReadTransferCount", "SessionId", "Status", "TerminationDate", "ThreadCount",
    "UserModeTime", "VirtualSize", "WindowsVersion", "WorkingSetSize", "WriteOperationCount",
    "WriteTransferCount",
];

const SYSTEM32: &str = "C:\\Windows\\system32\\";

/// `(group, service)` pairs of the svchost processes.
#[rustfmt::skip]
const SVCHOSTS: &[(&str, &str)] = &[
    ("DcomLaunch", "DcomLaunch"),
    ("RPCSS", "RpcSs"),
    ("DcomLaunch", "LSM"),
    ("netsvcs", "gpsvc"),
    ("LocalServiceNetworkRestricted", "EventLog"),
    ("NetworkService", "Dnscache"),
    ("NetworkService", "WinRM"),
    ("NetworkService", "CryptSvc"),
    ("netsvcs", "Schedule"),
    ("netsvcs", "Winmgmt"),
    ("netsvcs", "LanmanServer"),
    ("NetworkService", "LanmanWorkstation"),
    ("LocalServiceNetworkRestricted", "Dhcp"),
    ("LocalServiceNoNetworkFirewall", "MpsSvc"),
    ("LocalService", "W32Time"),
    ("netsvcs", "ProfSvc"),
    ("netsvcs", "UserManager"),
    ("LocalSystemNetworkRestricted", "NcbService"),
    ("netsvcs", "SENS"),
    ("LocalService", "nsi"),
    ("LocalServiceNetworkRestricted", "lmhosts"),
    ("netsvcs", "Themes"),
    ("LocalSystemNetworkRestricted", "TrkWks"),
    ("NetworkService", "TermService"),
    ("utcsvc", "DiagTrack"),
    ("LocalServiceNoNetwork", "DPS"),
    ("netsvcs", "iphlpsvc"),
    ("LocalService", "EventSystem"),
    ("appmodel", "StateRepository"),
    ("netsvcs", "ShellHWDetection"),
];

#[derive(Debug, Clone)]
struct Proc {
    name: String,
    pid: u64,
    ppid: u64,
    command_line: Option<String>,
    path: Option<String>,
    created: i64,
    session: u32,
    threads: u64,
    working_set: u64,
    handles: u64,
    cpu: u64,
}

/// Win32_Process, keyed by Handle (the process id as text).
pub(crate) struct Processes {
    host: Host,
    base: Vec<Proc>,
    created: Mutex<Vec<Proc>>,
    next_pid: AtomicU64,
    wmiprvse: u64,
}

impl Processes {
    pub(crate) fn new(rng: &Rng, host: &Host) -> Processes {
        let rng = rng.fork(0x9e0c);
        let mut base: Vec<Proc> = Vec::with_capacity(BASE_PROCESSES);
        let mut pid = 88u64;
        let mut push =
            |name: &str, ppid: u64, cmd: Option<String>, path: Option<&str>, session: u32| -> u64 {
                let i = base.len() as u64;
                let this = match base.len() {
                    0 => 0,
                    1 => 4,
                    _ => {
                        pid += 4 * (1 + rng.at(i) % 60);
                        pid
                    }
                };
                base.push(Proc {
                    name: name.to_string(),
                    pid: this,
                    ppid,
                    command_line: cmd,
                    path: path.map(str::to_string),
                    created: host.boot + (i as i64) * 3 + (rng.at(i + 500) % 3) as i64,
                    session,
                    threads: 2 + rng.at(i + 1000) % 40,
                    working_set: 4096 * (1000 + rng.at(i + 2000) % 20_000),
                    handles: 80 + rng.at(i + 3000) % 1500,
                    cpu: 100_000 * (1 + rng.at(i + 4000) % 5000),
                });
                this
            };
        let sys = |exe: &str| format!("{SYSTEM32}{exe}");
        push("System Idle Process", 0, None, None, 0);
        let system = push("System", 0, None, None, 0);
        push("Registry", system, None, None, 0);
        let smss = push(
            "smss.exe",
            system,
            Some("\\SystemRoot\\System32\\smss.exe".into()),
            Some(&sys("smss.exe")),
            0,
        );
        let csrss = "%SystemRoot%\\system32\\csrss.exe ObjectDirectory=\\Windows SharedSection=1024,20480,768 Windows=On SubSystemType=Windows ServerDll=basesrv,1 ServerDll=winsrv:UserServerDllInitialization,3 ServerDll=sxssrv,4 ProfileControl=Off MaxRequestThreads=16";
        push(
            "csrss.exe",
            smss + 8,
            Some(csrss.into()),
            Some(&sys("csrss.exe")),
            0,
        );
        let wininit = push(
            "wininit.exe",
            smss + 8,
            Some("wininit.exe".into()),
            Some(&sys("wininit.exe")),
            0,
        );
        push(
            "csrss.exe",
            smss + 12,
            Some(csrss.into()),
            Some(&sys("csrss.exe")),
            1,
        );
        let services = push(
            "services.exe",
            wininit,
            Some(sys("services.exe")),
            Some(&sys("services.exe")),
            0,
        );
        push(
            "lsass.exe",
            wininit,
            Some(sys("lsass.exe")),
            Some(&sys("lsass.exe")),
            0,
        );
        let winlogon = push(
            "winlogon.exe",
            smss + 12,
            Some("winlogon.exe".into()),
            Some(&sys("winlogon.exe")),
            1,
        );
        push(
            "fontdrvhost.exe",
            wininit,
            Some("\"fontdrvhost.exe\"".into()),
            Some(&sys("fontdrvhost.exe")),
            0,
        );
        push(
            "fontdrvhost.exe",
            winlogon,
            Some("\"fontdrvhost.exe\"".into()),
            Some(&sys("fontdrvhost.exe")),
            1,
        );
        push(
            "dwm.exe",
            winlogon,
            Some("\"dwm.exe\"".into()),
            Some(&sys("dwm.exe")),
            1,
        );
        let mut dcom = services;
        for (group, svc) in SVCHOSTS {
            let cmd = format!("{SYSTEM32}svchost.exe -k {group} -p -s {svc}");
            let p = push(
                "svchost.exe",
                services,
                Some(cmd),
                Some(&sys("svchost.exe")),
                0,
            );
            if *svc == "DcomLaunch" {
                dcom = p;
            }
        }
        push(
            "spoolsv.exe",
            services,
            Some(sys("spoolsv.exe")),
            Some(&sys("spoolsv.exe")),
            0,
        );
        push(
            "msdtc.exe",
            services,
            Some(sys("msdtc.exe")),
            Some(&sys("msdtc.exe")),
            0,
        );
        let defender =
            "C:\\ProgramData\\Microsoft\\Windows Defender\\platform\\4.18.25010.11-0\\MsMpEng.exe";
        push(
            "MsMpEng.exe",
            services,
            Some(format!("\"{defender}\"")),
            Some(defender),
            0,
        );
        let wmiprvse = push(
            "WmiPrvSE.exe",
            dcom,
            Some(sys("wbem\\wmiprvse.exe")),
            Some(&sys("wbem\\wmiprvse.exe")),
            0,
        );
        push(
            "sihost.exe",
            dcom,
            Some("sihost.exe".into()),
            Some(&sys("sihost.exe")),
            1,
        );
        push(
            "taskhostw.exe",
            dcom,
            Some("taskhostw.exe {222A245B-E637-4AE9-A93F-A59CA119A75E}".into()),
            Some(&sys("taskhostw.exe")),
            1,
        );
        let explorer = push(
            "explorer.exe",
            winlogon,
            Some("C:\\Windows\\Explorer.EXE".into()),
            Some("C:\\Windows\\Explorer.EXE"),
            1,
        );
        push(
            "ctfmon.exe",
            dcom,
            Some("\"ctfmon.exe\"".into()),
            Some(&sys("ctfmon.exe")),
            1,
        );
        push(
            "ServerManager.exe",
            explorer,
            Some("\"C:\\Windows\\system32\\ServerManager.exe\"".into()),
            Some(&sys("ServerManager.exe")),
            1,
        );
        let fillers = [
            (
                "RuntimeBroker.exe",
                "C:\\Windows\\System32\\RuntimeBroker.exe -Embedding",
                1,
            ),
            (
                "dllhost.exe",
                "C:\\Windows\\system32\\DllHost.exe /Processid:{AB8902B4-09CA-4BB6-B78D-A8F59079A8D5}",
                1,
            ),
            (
                "conhost.exe",
                "\\??\\C:\\Windows\\system32\\conhost.exe 0x4",
                0,
            ),
        ];
        let mut i = 0usize;
        while base.len() < BASE_PROCESSES {
            let (name, cmd, session) = fillers[i % fillers.len()];
            let index = base.len() as u64;
            pid += 4 * (1 + rng.at(index) % 60);
            let path = cmd
                .trim_start_matches("\\??\\")
                .split(' ')
                .next()
                .unwrap_or(cmd)
                .to_string();
            base.push(Proc {
                name: name.to_string(),
                pid,
                ppid: if session == 1 { dcom } else { services },
                command_line: Some(cmd.to_string()),
                path: Some(path),
                created: host.boot + 600 + (rng.at(index + 500) % 7200) as i64,
                session,
                threads: 2 + rng.at(index + 1000) % 12,
                working_set: 4096 * (1000 + rng.at(index + 2000) % 5000),
                handles: 80 + rng.at(index + 3000) % 400,
                cpu: 100_000 * (1 + rng.at(index + 4000) % 500),
            });
            i += 1;
        }
        Processes {
            host: host.clone(),
            next_pid: AtomicU64::new(pid + 4 * 16),
            base,
            created: Mutex::new(Vec::new()),
            wmiprvse,
        }
    }

    /// Starts a process for `Win32_Process.Create`; `None` when the table is full.
    pub(crate) fn spawn(&self, command_line: &str) -> Option<u64> {
        let mut created = lock(&self.created);
        if created.len() >= MAX_CREATED {
            return None;
        }
        let pid = self.next_pid.fetch_add(4, Ordering::SeqCst);
        let exe = first_token(command_line);
        let name = exe.rsplit(['\\', '/']).next().unwrap_or(exe).to_string();
        let path = if exe.contains('\\') {
            exe.to_string()
        } else {
            format!("{SYSTEM32}{name}")
        };
        created.push(Proc {
            name,
            pid,
            ppid: self.wmiprvse,
            command_line: Some(command_line.to_string()),
            path: Some(path),
            created: self.host.boot + 600 + self.host.started.elapsed().as_secs() as i64,
            session: 0,
            threads: 1,
            working_set: 4096 * 1200,
            handles: 40,
            cpu: 0,
        });
        Some(pid)
    }

    fn proc_at(&self, index: u64) -> Option<Proc> {
        let i = usize::try_from(index).ok()?;
        match self.base.get(i) {
            Some(p) => Some(p.clone()),
            None => lock(&self.created).get(i - self.base.len()).cloned(),
        }
    }

    fn to_instance(&self, p: &Proc) -> Instance {
        let s = |v: &str| Value::String(v.to_string());
        let opt = |v: &Option<String>| v.as_deref().map_or(Value::Null, s);
        let n = |v: u64| Value::UInt(v);
        let created = if p.pid <= 4 {
            Value::Null
        } else {
            datetime(p.created, ((p.pid % 1_000_000) as u32 * 37) % 1_000_000)
        };
        let props: Vec<(&'static str, Value)> = vec![
            ("Caption", s(&p.name)),
            ("CommandLine", opt(&p.command_line)),
            ("CreationClassName", s("Win32_Process")),
            ("CreationDate", created),
            ("CSCreationClassName", s("Win32_ComputerSystem")),
            ("CSName", s(&self.host.name)),
            ("Description", s(&p.name)),
            ("ExecutablePath", opt(&p.path)),
            ("ExecutionState", Value::Null),
            ("Handle", s(&p.pid.to_string())),
            ("HandleCount", n(p.handles)),
            ("InstallDate", Value::Null),
            ("KernelModeTime", s(&(p.cpu / 3).to_string())),
            ("MaximumWorkingSetSize", n(1380)),
            ("MinimumWorkingSetSize", n(200)),
            ("Name", s(&p.name)),
            ("OSCreationClassName", s("Win32_OperatingSystem")),
            (
                "OSName",
                s(
                    "Microsoft Windows Server 2022 Datacenter|C:\\Windows|\\Device\\Harddisk0\\Partition2",
                ),
            ),
            ("OtherOperationCount", s(&(p.handles * 31).to_string())),
            ("OtherTransferCount", s(&(p.handles * 977).to_string())),
            ("PageFaults", n(p.working_set / 4096 + p.handles)),
            ("PageFileUsage", n(p.working_set / 2048)),
            ("ParentProcessId", n(p.ppid)),
            ("PeakPageFileUsage", n(p.working_set / 1536)),
            ("PeakVirtualSize", s(&(p.working_set * 24).to_string())),
            ("PeakWorkingSetSize", n(p.working_set / 896)),
            ("Priority", n(8)),
            ("PrivatePageCount", s(&(p.working_set / 2).to_string())),
            ("ProcessId", n(p.pid)),
            ("QuotaNonPagedPoolUsage", n(8 + p.threads)),
            ("QuotaPagedPoolUsage", n(60 + p.handles / 8)),
            ("QuotaPeakNonPagedPoolUsage", n(10 + p.threads)),
            ("QuotaPeakPagedPoolUsage", n(70 + p.handles / 8)),
            ("ReadOperationCount", s(&(p.handles * 7).to_string())),
            ("ReadTransferCount", s(&(p.handles * 4093).to_string())),
            ("SessionId", n(p.session.into())),
            ("Status", Value::Null),
            ("TerminationDate", Value::Null),
            ("ThreadCount", n(p.threads)),
            ("UserModeTime", s(&(p.cpu - p.cpu / 3).to_string())),
            ("VirtualSize", s(&(p.working_set * 20).to_string())),
            ("WindowsVersion", s("10.0.20348")),
            ("WorkingSetSize", s(&p.working_set.to_string())),
            ("WriteOperationCount", s(&(p.handles * 3).to_string())),
            ("WriteTransferCount", s(&(p.handles * 1531).to_string())),
        ];
        Instance {
            class_name: "Win32_Process".into(),
            namespace: Some(super::class_uri("Win32_Process")),
            properties: props.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }
}

/// The executable of a command line: the quoted first token, or up to the first space.
fn first_token(cmd: &str) -> &str {
    let cmd = cmd.trim_start();
    match cmd.strip_prefix('"') {
        Some(rest) => rest.split('"').next().unwrap_or(rest),
        None => cmd.split(char::is_whitespace).next().unwrap_or(cmd),
    }
}

impl ClassSource for Processes {
    fn name(&self) -> &str {
        "Win32_Process"
    }
    fn properties(&self) -> Vec<&str> {
        PROPERTIES.to_vec()
    }
    fn keys(&self) -> Vec<&str> {
        ["Handle"].to_vec()
    }
    fn count(&self) -> u64 {
        (self.base.len() + lock(&self.created).len()) as u64
    }
    fn instance(&self, index: u64) -> Instance {
        match self.proc_at(index) {
            Some(p) => self.to_instance(&p),
            None => Instance::new("Win32_Process"),
        }
    }
    fn find(&self, selectors: &[(String, String)]) -> Option<Instance> {
        let (_, handle) = selectors
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Handle"))?;
        let pid: u64 = handle.trim().parse().ok()?;
        if let Some(p) = self.base.iter().find(|p| p.pid == pid) {
            return Some(self.to_instance(p));
        }
        let created = lock(&self.created);
        created
            .iter()
            .find(|p| p.pid == pid)
            .map(|p| self.to_instance(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_tokens() {
        assert_eq!(
            first_token("  \"C:\\Program Files\\x.exe\" -a"),
            "C:\\Program Files\\x.exe"
        );
        assert_eq!(first_token("notepad.exe foo"), "notepad.exe");
        assert_eq!(first_token("\"unterminated"), "unterminated");
    }
}
