//! `schedules.json`: the repository's scheduled snapshots, beside its snapshot folders, so a
//! schedule survives restarts and every process using the repository sees the same one.
//! Each schedule carries its state (last run, last error, and the claim of the process
//! running it now, so two processes never run one schedule at once). Rewritten whole
//! (temp file, fsync, rename; a bucket: one PUT) under the writer lock; its own
//! `format_version`. Due times are plain arithmetic here, tested without a clock.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::repo::layout::Repo;
use crate::repo::manifest::{civil, days_from_civil, format_timestamp, parse_timestamp, Scope};

pub const SCHEDULES_FILE: &str = "schedules.json";
/// The newest schedules.json layout this build reads and writes.
pub const SCHEDULES_FORMAT_VERSION: u32 = 1;

/// A claim older than this is taken over even when its owner cannot be checked (another host).
const CLAIM_STALE_MICROS: i64 = 6 * 3600 * 1_000_000;

/// An INTERVAL as DuckDB holds it: months and days are calendar units.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Every {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl Every {
    /// The shortest period a schedule may have: the scheduler looks once a second.
    pub const MIN_MICROS: i64 = 1_000_000;

    /// A period that always moves forward and is at least a second long.
    pub fn validate(self) -> Result<Every> {
        let negative = self.months < 0 || self.days < 0 || self.micros < 0;
        if negative || (self.months == 0 && self.days == 0 && self.micros < Self::MIN_MICROS) {
            return Err(Error::Input(format!(
                "every := {} is too short: a schedule runs at most once a second; give a positive INTERVAL such as INTERVAL 1 HOUR",
                self.text()
            )));
        }
        Ok(self)
    }

    /// `t + self`, calendar-correct for months (the 31st plus a month is the month's last day).
    pub fn after(self, t: i64) -> i64 {
        let secs = t.div_euclid(1_000_000);
        let frac = t.rem_euclid(1_000_000);
        let (y, mo, d, h, mi, s) = civil(secs);
        let total = y * 12 + (mo as i64 - 1) + self.months as i64;
        let (ny, nmo) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
        let next_month = if nmo == 12 { days_from_civil(ny + 1, 1, 1) } else { days_from_civil(ny, nmo + 1, 1) };
        let month_len = next_month - days_from_civil(ny, nmo, 1);
        let nd = (d as i64).min(month_len) as u32;
        let base = (days_from_civil(ny, nmo, nd) * 86_400 + h as i64 * 3600 + mi as i64 * 60 + s as i64) * 1_000_000 + frac;
        base + self.days as i64 * 86_400_000_000 + self.micros
    }

    /// How DuckDB prints it: `1 day 02:00:00`, `00:05:00`, `1 month`.
    pub fn text(self) -> String {
        let mut parts = Vec::new();
        let (years, months) = (self.months / 12, self.months % 12);
        let unit = |n: i32, one: &str| format!("{n} {one}{}", if n.abs() == 1 { "" } else { "s" });
        if years != 0 {
            parts.push(unit(years, "year"));
        }
        if months != 0 {
            parts.push(unit(months, "month"));
        }
        if self.days != 0 {
            parts.push(unit(self.days, "day"));
        }
        if self.micros != 0 || parts.is_empty() {
            let us = self.micros.abs();
            let (h, m, s, f) = (us / 3_600_000_000, us / 60_000_000 % 60, us / 1_000_000 % 60, us % 1_000_000);
            let sign = if self.micros < 0 { "-" } else { "" };
            parts.push(if f == 0 { format!("{sign}{h:02}:{m:02}:{s:02}") } else { format!("{sign}{h:02}:{m:02}:{s:02}.{f:06}") });
        }
        parts.join(" ")
    }
}

/// The keep rules applied to a schedule's own snapshots after each run (snapshot_prune's).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Retention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<u64>,
}

impl Retention {
    pub fn rules(&self) -> [(&'static str, Option<u64>); 6] {
        [
            ("keep_last", self.keep_last),
            ("keep_hourly", self.keep_hourly),
            ("keep_daily", self.keep_daily),
            ("keep_weekly", self.keep_weekly),
            ("keep_monthly", self.keep_monthly),
            ("keep_yearly", self.keep_yearly),
        ]
    }

    pub fn is_empty(&self) -> bool {
        self.rules().iter().all(|(_, n)| n.is_none())
    }

    /// A rule of 0 would delete each snapshot as soon as its run took it.
    pub fn validate(&self) -> Result<()> {
        match self.rules().iter().find(|(_, n)| *n == Some(0)) {
            Some((rule, _)) => Err(Error::Input(format!(
                "{rule} := 0 would delete each scheduled snapshot as soon as it is taken; give 1 or more, or leave it out (without keep rules every scheduled snapshot is kept)"
            ))),
            None => Ok(()),
        }
    }

    /// `keep_last=24, keep_daily=7`; None when every snapshot is kept.
    pub fn text(&self) -> Option<String> {
        let parts: Vec<String> = self.rules().iter().filter_map(|(k, n)| n.map(|n| format!("{k}={n}"))).collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// The process running a schedule now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claim {
    pub pid: u32,
    pub host: String,
    /// RFC 3339, UTC.
    pub since: String,
}

impl Claim {
    pub fn mine(since: i64) -> Claim {
        Claim { pid: std::process::id(), host: host_name(), since: format_timestamp(since) }
    }

    pub fn is_mine(&self) -> bool {
        self.pid == std::process::id() && self.host == host_name()
    }

    /// True when its owner is gone (a dead process on this host) or it is very old.
    pub fn is_stale(&self, now: i64) -> bool {
        if parse_timestamp(&self.since).is_none_or(|t| now - t > CLAIM_STALE_MICROS) {
            return true;
        }
        self.host == host_name() && !process_alive(self.pid)
    }
}

fn process_alive(pid: u32) -> bool {
    // signal 0 only checks; EPERM means it exists under another user
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Schedule {
    pub name: String,
    /// The database (catalog) the scope is read in.
    pub database: String,
    /// The scope as snapshots record theirs (a table list: sorted names).
    pub scope: Scope,
    pub every: Every,
    #[serde(default)]
    pub retention: Retention,
    /// RFC 3339, UTC: when the schedule was made (or last changed); the first run is one
    /// period later.
    pub created_at: String,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_snapshot_id: Option<String>,
    /// The last attempt's error; cleared by a successful run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the last attempt ended (successful or not): a failed run is retried a few
    /// seconds after it, not in a tight loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Claim>,
}

/// How long after a failed attempt the next one is made.
pub const RETRY_MICROS: i64 = 5_000_000;

impl Schedule {
    /// When the next snapshot is due: one period after the last run (or after the schedule
    /// was made).
    pub fn next_run(&self) -> i64 {
        let from = self.last_run.as_deref().or(Some(self.created_at.as_str())).and_then(parse_timestamp).unwrap_or(0);
        self.every.after(from)
    }

    /// Whether a run is due at `now`: a period after the last run, and not failed moments ago.
    /// Claims are not looked at (see `claimed_elsewhere`).
    pub fn is_due(&self, now: i64) -> bool {
        if now < self.next_run() {
            return false;
        }
        if self.last_error.is_some() {
            if let Some(t) = self.last_attempt.as_deref().and_then(parse_timestamp) {
                if now >= t && now - t < RETRY_MICROS {
                    return false;
                }
            }
        }
        true
    }

    /// Whether a live run holds the schedule. `running_here` says whether this process is
    /// running it now (a claim of this process that is not running was cut short).
    pub fn claimed(&self, now: i64, running_here: bool) -> bool {
        match &self.running {
            None => false,
            Some(c) if c.is_mine() => running_here,
            Some(c) => !c.is_stale(now),
        }
    }

    /// Generated snapshot ids start with this.
    pub fn id_prefix(&self) -> &str {
        &self.name
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ScheduleFile {
    pub format_version: u32,
    pub schedules: Vec<Schedule>,
}

impl ScheduleFile {
    pub fn get(&self, name: &str) -> Option<&Schedule> {
        self.schedules.iter().find(|s| s.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Schedule> {
        self.schedules.iter_mut().find(|s| s.name == name)
    }
}

/// A schedule name: it starts the ids of its snapshots, so it follows the id rules.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "schedule name '{}' is not usable: it starts the snapshot ids (<name>_YYYYMMDD_HHMMSS), so use a letter followed by letters, digits, '_' or '-' (at most 64)",
            crate::repo::layout::printable(name)
        )))
    }
}

/// The repository's schedules; empty when it has none.
pub fn load(repo: &Repo) -> Result<ScheduleFile> {
    let read = repo.read_top_json(SCHEDULES_FILE, SCHEDULES_FORMAT_VERSION, "restore it from a backup or remove it to drop every schedule")?;
    Ok(read.unwrap_or(ScheduleFile { format_version: SCHEDULES_FORMAT_VERSION, schedules: Vec::new() }))
}

/// Replaces the schedules. The caller holds the writer lock.
pub fn save(repo: &Repo, file: &ScheduleFile) -> Result<()> {
    let file = ScheduleFile { format_version: SCHEDULES_FORMAT_VERSION, schedules: file.schedules.clone() };
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| Error::Internal(format!("{SCHEDULES_FILE}: {e}")))?;
    repo.replace_top(SCHEDULES_FILE, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::manifest::ScopeKind;

    fn t(s: &str) -> i64 {
        parse_timestamp(s).unwrap()
    }

    fn schedule(every: Every) -> Schedule {
        Schedule {
            name: "hourly".into(),
            database: "db".into(),
            scope: Scope { kind: ScopeKind::Database, ..Scope::tables() },
            every,
            retention: Retention::default(),
            created_at: "2026-01-31T10:00:00Z".into(),
            created_by: "me".into(),
            last_run: None,
            last_snapshot_id: None,
            last_error: None,
            last_attempt: None,
            running: None,
        }
    }

    #[test]
    fn periods_add_calendar_correctly_and_print_like_duckdb() {
        let hour = Every { micros: 3_600_000_000, ..Default::default() };
        assert_eq!(hour.after(t("2026-01-31T10:00:00Z")), t("2026-01-31T11:00:00Z"));
        let month = Every { months: 1, ..Default::default() };
        assert_eq!(month.after(t("2026-01-31T10:00:00Z")), t("2026-02-28T10:00:00Z"));
        assert_eq!(Every { months: 14, ..Default::default() }.text(), "1 year 2 months");
        assert_eq!(Every { days: 1, micros: 7_200_000_000, ..Default::default() }.text(), "1 day 02:00:00");
        assert_eq!(Every { micros: 300_000_000, ..Default::default() }.text(), "00:05:00");
        assert!(Every { micros: 999_999, ..Default::default() }.validate().is_err());
        assert!(Every { days: -1, micros: 7_200_000_000, ..Default::default() }.validate().is_err());
        assert!(Every { days: 1, ..Default::default() }.validate().is_ok());
    }

    #[test]
    fn due_one_period_after_the_last_run_with_retry_pause_and_claims() {
        let mut s = schedule(Every { micros: 3_600_000_000, ..Default::default() });
        assert!(!s.is_due(t("2026-01-31T10:59:59Z")));
        assert!(s.is_due(t("2026-01-31T11:00:00Z")));
        s.last_run = Some("2026-01-31T11:00:03Z".into());
        assert_eq!(s.next_run(), t("2026-01-31T12:00:03Z"));
        // a failed attempt waits a few seconds before the next
        s.last_error = Some("boom".into());
        s.last_attempt = Some("2026-01-31T12:00:04Z".into());
        assert!(!s.is_due(t("2026-01-31T12:00:05Z")));
        assert!(s.is_due(t("2026-01-31T12:00:10Z")));
        // this process's claim holds while it runs; a dead process's claim does not
        let now = t("2026-01-31T12:00:10Z");
        s.running = Some(Claim::mine(t("2026-01-31T12:00:09Z")));
        assert!(s.claimed(now, true) && !s.claimed(now, false));
        s.running = Some(Claim { pid: i32::MAX as u32, ..Claim::mine(t("2026-01-31T12:00:09Z")) });
        assert!(!s.claimed(now, false));
        // a live process's claim holds; another host's lapses only with age
        s.running = Some(Claim { pid: 1, ..Claim::mine(t("2026-01-31T12:00:09Z")) });
        assert!(s.claimed(now, false));
        s.running = Some(Claim { host: "elsewhere".into(), pid: 1, since: "2026-01-31T12:00:09Z".into() });
        assert!(s.claimed(t("2026-01-31T13:00:10Z"), false));
        assert!(!s.claimed(t("2026-01-31T19:00:10Z"), false));
    }

    #[test]
    fn names_and_retention_text() {
        assert!(validate_name("hourly_db").is_ok());
        assert!(validate_name("1x").is_err() && validate_name("a/b").is_err() && validate_name("").is_err());
        let r = Retention { keep_last: Some(24), keep_daily: Some(7), ..Default::default() };
        assert_eq!(r.text().as_deref(), Some("keep_last=24, keep_daily=7"));
        assert_eq!(Retention::default().text(), None);
        assert!(r.validate().is_ok());
        assert!(Retention { keep_daily: Some(0), ..Default::default() }.validate().unwrap_err().to_string().contains("keep_daily := 0"));
    }

    #[test]
    fn saved_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let repo = Repo::new(d.path(), "p");
        assert!(load(&repo).unwrap().schedules.is_empty());
        let file = ScheduleFile { format_version: SCHEDULES_FORMAT_VERSION, schedules: vec![schedule(Every { days: 1, ..Default::default() })] };
        save(&repo, &file).unwrap();
        assert_eq!(load(&repo).unwrap(), file);
        std::fs::write(d.path().join("p").join(SCHEDULES_FILE), br#"{"format_version": 7, "schedules": []}"#).unwrap();
        assert!(load(&repo).unwrap_err().to_string().contains("newer than this extension reads"));
    }
}
