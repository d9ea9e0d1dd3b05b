//! `snapshot_prune`: tiered retention with the semantics of backup tools (restic, borg).
//! For each period kind, the newest snapshot of each of the N most recent periods that have
//! one is kept; `keep_last` keeps the N newest; a snapshot kept by any rule stays, and so
//! does a pinned one. Without keep rules, `older_than` deletes what is older; with them,
//! only what no rule keeps and is older. The decision is plain data, so a dry run explains
//! itself with the same reasons a real run acts on.

use crate::engine::drop::{drop_all_locked, preview_drops};
use crate::engine::{Ctx};
use crate::error::{Error, Result};
use crate::repo::manifest::civil;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub keep_last: Option<u64>,
    pub keep_hourly: Option<u64>,
    pub keep_daily: Option<u64>,
    pub keep_weekly: Option<u64>,
    pub keep_monthly: Option<u64>,
    pub keep_yearly: Option<u64>,
    /// Cut-off in microseconds since the epoch: only snapshots created before it may go.
    pub older_than: Option<i64>,
    /// Only snapshots of this type are considered.
    pub kind: Option<crate::repo::manifest::SnapshotKind>,
    /// Only snapshots this schedule took are considered.
    pub schedule: Option<String>,
    pub dry_run: bool,
}

impl Policy {
    /// A policy of these keep rules alone.
    pub fn keeping(r: &crate::repo::schedule::Retention) -> Policy {
        Policy {
            keep_last: r.keep_last,
            keep_hourly: r.keep_hourly,
            keep_daily: r.keep_daily,
            keep_weekly: r.keep_weekly,
            keep_monthly: r.keep_monthly,
            keep_yearly: r.keep_yearly,
            ..Policy::default()
        }
    }

    fn has_keep_rule(&self) -> bool {
        [self.keep_last, self.keep_hourly, self.keep_daily, self.keep_weekly, self.keep_monthly, self.keep_yearly]
            .iter()
            .any(Option::is_some)
    }
}

/// What happens to one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub snapshot_id: String,
    pub created_at: i64,
    pub keep: bool,
    pub reasons: Vec<String>,
    pub bytes: u64,
}

/// A snapshot as retention sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: String,
    pub created_at: i64,
    pub pinned: bool,
    pub bytes: u64,
}

/// The period label of a timestamp for each period kind.
pub fn period(kind: &str, micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let (y, mo, d, h, _, _) = civil(secs);
    match kind {
        "hourly" => format!("{y:04}-{mo:02}-{d:02}T{h:02}"),
        "daily" => format!("{y:04}-{mo:02}-{d:02}"),
        "weekly" => {
            let days = secs.div_euclid(86_400);
            let weekday = (days + 3).rem_euclid(7); // Monday = 0; 1970-01-01 was a Thursday
            let thursday = days - weekday + 3;
            let (ty, _, _, _, _, _) = civil(thursday * 86_400);
            let jan1 = crate::repo::manifest::days_from_civil(ty, 1, 1);
            format!("{ty:04}-W{:02}", (thursday - jan1) / 7 + 1)
        }
        "monthly" => format!("{y:04}-{mo:02}"),
        _ => format!("{y:04}"),
    }
}

/// Decides keep/delete for every candidate; pure, so it is tested on its own.
pub fn decide(mut candidates: Vec<Candidate>, policy: &Policy) -> Result<Vec<Decision>> {
    if !policy.has_keep_rule() && policy.older_than.is_none() {
        return Err(Error::Input(
            "give at least one of keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly or older_than".into(),
        ));
    }
    // newest first; ties broken by id so the outcome is deterministic
    candidates.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); candidates.len()];
    for (i, c) in candidates.iter().enumerate() {
        if c.pinned {
            reasons[i].push("pinned".into());
        }
    }
    if let Some(n) = policy.keep_last {
        for r in reasons.iter_mut().take(n as usize) {
            r.push("last".into());
        }
    }
    for (kind, n) in [
        ("hourly", policy.keep_hourly),
        ("daily", policy.keep_daily),
        ("weekly", policy.keep_weekly),
        ("monthly", policy.keep_monthly),
        ("yearly", policy.keep_yearly),
    ] {
        let Some(n) = n else { continue };
        let mut seen: Vec<String> = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            if seen.len() as u64 >= n {
                break;
            }
            let p = period(kind, c.created_at);
            if !seen.contains(&p) {
                reasons[i].push(format!("{kind} {p}"));
                seen.push(p);
            }
        }
    }
    Ok(candidates
        .into_iter()
        .zip(reasons)
        .map(|(c, mut reasons)| {
            let kept_by_rule = !reasons.is_empty();
            let old_enough = policy.older_than.is_none_or(|cut| c.created_at < cut);
            let keep = kept_by_rule || !old_enough;
            if !keep {
                reasons.push(match policy.older_than {
                    Some(_) if policy.has_keep_rule() => "no keep rule; older than cut-off".into(),
                    Some(_) => "older than cut-off".into(),
                    None => "no keep rule".into(),
                });
            } else if !kept_by_rule {
                reasons.push("newer than cut-off".into());
            }
            Decision { snapshot_id: c.id, created_at: c.created_at, keep, reasons, bytes: c.bytes }
        })
        .collect())
}

/// Applies a policy to the repository (under the writer lock); returns every decision.
pub fn prune(ctx: &Ctx, policy: &Policy) -> Result<Vec<Decision>> {
    crate::engine::create::ensure_repo_dir(ctx)?;
    let _lock = ctx.lock()?;
    prune_locked(ctx, policy)
}

/// `prune` for a caller that holds the writer lock.
pub fn prune_locked(ctx: &Ctx, policy: &Policy) -> Result<Vec<Decision>> {
    let manifests = crate::repo::list::manifests(&ctx.repo)?;
    let candidates = manifests
        .iter()
        .filter(|m| policy.kind.is_none_or(|k| m.kind == k))
        .filter(|m| policy.schedule.is_none() || m.schedule == policy.schedule)
        .map(|m| Candidate {
            id: m.snapshot_id.clone(),
            created_at: m.created_at_micros(),
            pinned: ctx.repo.is_pinned(&m.snapshot_id),
            bytes: 0,
        })
        .collect();
    let mut decisions = decide(candidates, policy)?;
    // a dry run reports the plan the real run carries out: the same bytes, on the same rows
    let doomed: Vec<String> = decisions.iter().filter(|d| !d.keep).map(|d| d.snapshot_id.clone()).collect();
    let dropped = if policy.dry_run { preview_drops(ctx, &doomed)? } else { drop_all_locked(ctx, &doomed)? };
    for d in decisions.iter_mut() {
        d.bytes = dropped.iter().find(|x| x.snapshot_id == d.snapshot_id).map_or(0, |x| x.bytes_freed);
    }
    Ok(decisions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::manifest::parse_timestamp;

    fn c(id: &str, ts: &str) -> Candidate {
        Candidate { id: id.into(), created_at: parse_timestamp(ts).unwrap(), pinned: false, bytes: 10 }
    }

    fn kept(d: &[Decision]) -> Vec<&str> {
        d.iter().filter(|d| d.keep).map(|d| d.snapshot_id.as_str()).collect()
    }

    #[test]
    fn periods() {
        let t = parse_timestamp("2024-12-11T14:30:22Z").unwrap();
        assert_eq!(period("hourly", t), "2024-12-11T14");
        assert_eq!(period("daily", t), "2024-12-11");
        assert_eq!(period("weekly", t), "2024-W50");
        assert_eq!(period("monthly", t), "2024-12");
        assert_eq!(period("yearly", t), "2024");
        // ISO weeks at year boundaries
        assert_eq!(period("weekly", parse_timestamp("2021-01-03T00:00:00Z").unwrap()), "2020-W53");
        assert_eq!(period("weekly", parse_timestamp("2024-12-30T00:00:00Z").unwrap()), "2025-W01");
    }

    #[test]
    fn daily_keeps_newest_of_each_recent_day() {
        let cands = vec![
            c("d1a", "2024-12-11T08:00:00Z"),
            c("d1b", "2024-12-11T20:00:00Z"),
            c("d2", "2024-12-10T10:00:00Z"),
            c("d3", "2024-12-08T10:00:00Z"),
        ];
        let d = decide(cands, &Policy { keep_daily: Some(2), ..Default::default() }).unwrap();
        assert_eq!(kept(&d), ["d1b", "d2"]);
        assert_eq!(d[0].reasons, ["daily 2024-12-11"]);
        assert_eq!(d[3].reasons, ["no keep rule"]);
    }

    #[test]
    fn rules_combine_and_pins_win() {
        let mut cands = vec![
            c("a", "2024-12-11T14:00:00Z"),
            c("b", "2024-12-04T14:00:00Z"),
            c("c", "2024-11-20T14:00:00Z"),
            c("old", "2023-01-01T00:00:00Z"),
        ];
        cands[3].pinned = true;
        let p = Policy { keep_last: Some(1), keep_weekly: Some(2), keep_monthly: Some(2), ..Default::default() };
        let d = decide(cands, &p).unwrap();
        assert_eq!(kept(&d), ["a", "b", "c", "old"]);
        assert_eq!(d[0].reasons, ["last", "weekly 2024-W50", "monthly 2024-12"]);
        assert_eq!(d[2].reasons, ["monthly 2024-11"]);
        assert_eq!(d[3].reasons, ["pinned"]);
    }

    #[test]
    fn older_than_alone_and_with_rules() {
        let cands = || vec![c("new", "2024-12-11T00:00:00Z"), c("mid", "2024-12-01T00:00:00Z"), c("old", "2024-11-01T00:00:00Z")];
        let cut = parse_timestamp("2024-12-05T00:00:00Z").unwrap();
        let d = decide(cands(), &Policy { older_than: Some(cut), ..Default::default() }).unwrap();
        assert_eq!(kept(&d), ["new"]);
        let d = decide(cands(), &Policy { older_than: Some(cut), keep_last: Some(2), ..Default::default() }).unwrap();
        assert_eq!(kept(&d), ["new", "mid"]);
        assert!(decide(cands(), &Policy::default()).is_err());
    }
}
