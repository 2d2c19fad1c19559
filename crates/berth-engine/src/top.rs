//! `top`: a container's processes with their host PIDs, in `ps -ef`'s columns, or the host's
//! `ps` with the options given, filtered to the container's PIDs, as Docker's daemon does;
//! `tree` draws them under the container's monitor, as `ps auxf` shows a shim's children.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::Record;

/// Docker's `top` answer: column titles and one row of strings per process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// `top`: with no `ps_options`, `ps -ef`'s columns read from /proc; else the host's `ps` with
/// those options, its rows kept for the container's PIDs.
pub fn top(engine: &Engine, key: &str, ps_options: &[String]) -> Result<Top> {
    let (_, pids) = processes(engine, key)?;
    if !ps_options.is_empty() {
        return host_ps(ps_options, &pids);
    }
    let (clock, users) = (Clock::read(), user_names());
    Ok(Top {
        titles: HEADER.map(String::from).to_vec(),
        processes: pids
            .iter()
            .filter_map(|p| read_proc(*p))
            .map(|p| row(&p, &clock, &users, ""))
            .collect(),
    })
}

/// berth's `top --tree`: the processes under the container's monitor, in `ps -ef`'s columns.
pub fn tree(engine: &Engine, key: &str) -> Result<Top> {
    let (record, pids) = processes(engine, key)?;
    let procs = tree_procs(&record, &pids);
    Ok(Top {
        titles: HEADER.map(String::from).to_vec(),
        processes: tree_rows(&procs, record.state.monitor_pid),
    })
}

/// A running container's record and the host PIDs of its processes.
fn processes(engine: &Engine, key: &str) -> Result<(Record, Vec<i32>)> {
    let record = crate::lifecycle::refresh(engine, engine.containers.find(key)?)?;
    if crate::ns::live_pid(&record).is_none() {
        return Err(Error::state(&record.id, "is not running"));
    }
    let pids = berth_runtime::container::pids(&engine.runtime, &record.id)?;
    Ok((record, pids))
}

/// What `/proc/<pid>/stat`, `status` and `cmdline` say about a process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub tty: u64,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Clock ticks after boot.
    pub start_ticks: u64,
    pub comm: String,
    pub cmdline: Vec<String>,
}

impl Proc {
    /// `ps`'s CMD: the command line, or `[comm]` when it has none (a kernel thread, a zombie).
    pub fn command(&self) -> String {
        if self.cmdline.is_empty() {
            format!("[{}]", self.comm)
        } else {
            self.cmdline.join(" ")
        }
    }
}

/// Parses `/proc/<pid>/stat` (the name may hold spaces and parentheses: split at the last ')').
pub fn parse_stat(pid: i32, stat: &str) -> Option<Proc> {
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state).
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
    Some(Proc {
        pid,
        ppid: f.get(1)?.parse().ok()?,
        tty: num(4)?,
        cpu_ticks: num(11)? + num(12)?,
        start_ticks: num(19)?,
        comm,
        ..Proc::default()
    })
}

/// Reads one process; None once it is gone.
pub fn read_proc(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut p = parse_stat(pid, &stat)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    p.uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    p.cmdline = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(p)
}

/// `ps`'s TTY column from `tty_nr`: pts/N, ttyN, or `?`.
pub fn tty_name(tty_nr: u64) -> String {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        0 => "?".into(),
        4 => format!("tty{minor}"),
        136..=143 => format!("pts/{}", minor + (major - 136) * 256),
        _ => "?".into(),
    }
}

/// `ps`'s TIME column: `[DD-]HH:MM:SS`.
pub fn cpu_time(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// `ps`'s STIME column (UTC): `HH:MM` for a start today, `MonDD` before.
pub fn start_time(start: SystemTime, now: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let s = humantime::format_rfc3339_seconds(start).to_string();
    let today = humantime::format_rfc3339_seconds(now).to_string();
    if s.get(..10) == today.get(..10) {
        return s.get(11..16).unwrap_or("?").to_string();
    }
    let month: usize = s.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    format!(
        "{}{}",
        MONTHS[month.clamp(1, 12) - 1],
        s.get(8..10).unwrap_or("??")
    )
}

/// Host facts the columns need: clock ticks per second and the boot time.
pub struct Clock {
    pub ticks: u64,
    pub boot: SystemTime,
}

impl Clock {
    pub fn read() -> Clock {
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(100);
        let btime = std::fs::read_to_string("/proc/stat")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("btime ").and_then(|b| b.trim().parse().ok()))
            .unwrap_or(0);
        Clock {
            ticks,
            boot: SystemTime::UNIX_EPOCH + Duration::from_secs(btime),
        }
    }

    fn started(&self, p: &Proc) -> SystemTime {
        self.boot + Duration::from_millis(p.start_ticks * 1000 / self.ticks)
    }
}

/// User names from the host's /etc/passwd (the columns are the host's view, as in Docker).
fn user_names() -> BTreeMap<u32, String> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f.first()?.to_string()))
        })
        .collect()
}

/// One row of `ps -ef`'s columns, CMD prefixed by `indent`.
fn row(p: &Proc, clock: &Clock, users: &BTreeMap<u32, String>, indent: &str) -> Vec<String> {
    let now = SystemTime::now();
    let started = clock.started(p);
    let elapsed = now.duration_since(started).unwrap_or_default().as_secs();
    let cpu_secs = p.cpu_ticks / clock.ticks;
    let c = (cpu_secs * 100).checked_div(elapsed).unwrap_or(0);
    vec![
        users
            .get(&p.uid)
            .cloned()
            .unwrap_or_else(|| p.uid.to_string()),
        p.pid.to_string(),
        p.ppid.to_string(),
        c.to_string(),
        start_time(started, now),
        tty_name(p.tty),
        cpu_time(cpu_secs),
        format!("{indent}{}", p.command()),
    ]
}

const HEADER: [&str; 8] = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];

/// The container's processes and its monitor.
fn tree_procs(record: &Record, pids: &[i32]) -> Vec<Proc> {
    let mut all: BTreeSet<i32> = pids.iter().copied().collect();
    all.insert(record.state.monitor_pid);
    all.into_iter().filter_map(read_proc).collect()
}

/// The rows of the tree: each process under its parent, depth-first, the monitor first among
/// the roots (a process whose parent is not in the set, such as an `exec`'s).
pub fn tree_rows(procs: &[Proc], monitor: i32) -> Vec<Vec<String>> {
    let (clock, users) = (Clock::read(), user_names());
    let pids: BTreeSet<i32> = procs.iter().map(|p| p.pid).collect();
    let mut children: BTreeMap<i32, Vec<&Proc>> = BTreeMap::new();
    let mut roots: Vec<&Proc> = Vec::new();
    for p in procs {
        if pids.contains(&p.ppid) && p.pid != monitor {
            children.entry(p.ppid).or_default().push(p);
        } else {
            roots.push(p);
        }
    }
    roots.sort_by_key(|p| (p.pid != monitor, p.pid));
    let mut out = Vec::new();
    let mut stack: Vec<(&Proc, usize)> = roots.into_iter().rev().map(|p| (p, 0)).collect();
    while let Some((p, depth)) = stack.pop() {
        out.push(row(p, &clock, &users, &indent(depth)));
        for c in children.get(&p.pid).into_iter().flatten().rev() {
            stack.push((c, depth + 1));
        }
    }
    out
}

/// `ps f`'s branch: ` \_ ` under the parent's command, four columns further per level.
pub fn indent(depth: usize) -> String {
    if depth == 0 {
        String::new()
    } else {
        format!("{} \\_ ", "    ".repeat(depth - 1))
    }
}

/// Docker's way with ps options: the host's ps, its header split into titles and each row
/// into as many fields (the last takes the rest), the rows whose PID is the container's.
fn host_ps(options: &[String], pids: &[i32]) -> Result<Top> {
    let what = || format!("ps {}", options.join(" "));
    let out = Command::new("ps").args(options).output().map_err(|e| {
        Error::Invalid(format!(
            "run ps (install procps for top with ps options): {e}"
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "{}: {}",
            what(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let Some(col) = titles.iter().position(|h| h == "PID") else {
        return Err(Error::Invalid(format!(
            "{}: its output has no PID column",
            what()
        )));
    };
    let processes = lines
        .map(|line| split_row(line, titles.len()))
        .filter(|row| {
            row.get(col)
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|p| pids.contains(&p))
        })
        .collect();
    Ok(Top { titles, processes })
}

/// A ps row as `n` fields, the last one the rest of the line (a command with spaces).
fn split_row(line: &str, n: usize) -> Vec<String> {
    let mut fields = Vec::new();
    let mut rest = line.trim_start();
    while fields.len() + 1 < n {
        let Some((field, tail)) = rest.split_once(char::is_whitespace) else {
            break;
        };
        fields.push(field.to_string());
        rest = tail.trim_start();
    }
    if !rest.is_empty() {
        fields.push(rest.to_string());
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_keep_the_command_whole() {
        assert_eq!(split_row("  42 sleep 10 a", 2), ["42", "sleep 10 a"]);
        assert_eq!(split_row("1", 3), ["1"]);
    }

    #[test]
    fn stat_with_a_tricky_name() {
        let stat = "42 (a) b (c)) S 7 42 42 34816 42 4194560 1 0 0 0 250 50 0 0 20 0 1 0 12345 0 0";
        let p = parse_stat(42, stat).unwrap();
        assert_eq!(p.comm, "a) b (c)");
        assert_eq!(
            (p.ppid, p.tty, p.cpu_ticks, p.start_ticks),
            (7, 34816, 300, 12345)
        );
        assert_eq!(tty_name(34816), "pts/0");
        assert_eq!(tty_name(0), "?");
        assert!(parse_stat(1, "garbage").is_none());
    }

    #[test]
    fn columns_as_ps_prints_them() {
        assert_eq!(cpu_time(3725), "01:02:05");
        assert_eq!(cpu_time(90000), "1-01:00:00");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000); // 2023-11-14 22:13
        assert_eq!(start_time(t, t + Duration::from_secs(60)), "22:13");
        assert_eq!(start_time(t, t + Duration::from_secs(86400 * 3)), "Nov14");
    }

    #[test]
    fn tree_puts_the_monitor_first_and_children_under_parents() {
        let p = |pid, ppid| Proc {
            pid,
            ppid,
            cmdline: vec![format!("p{pid}")],
            ..Proc::default()
        };
        // 90: an exec'd process whose parent (the exec CLI) is not in the set.
        let procs = [p(90, 1), p(10, 5), p(20, 10), p(21, 10), p(30, 20), p(5, 1)];
        let cmds: Vec<String> = tree_rows(&procs, 5)
            .into_iter()
            .map(|r| r[7].clone())
            .collect();
        assert_eq!(
            cmds,
            [
                "p5",
                " \\_ p10",
                "     \\_ p20",
                "         \\_ p30",
                "     \\_ p21",
                "p90"
            ]
        );
    }
}
