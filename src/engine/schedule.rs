//! Scheduled snapshots: `snapshot_schedule`, `snapshot_unschedule`, `snapshot_schedules` and
//! one scheduled run. A run claims its schedule under the writer lock (so two processes never
//! run one schedule at once), writes the snapshot holding the lock only to publish it, then
//! records the outcome and applies the schedule's retention to that schedule's snapshots
//! only. The clock is the caller's (`now`), so the background thread and tests agree.

use crate::engine::create::{create_publish_locked, recorded_scope, requested_scope, resolve_targets, CreateRequest};
use crate::engine::prune::{prune_locked, Policy};
use crate::engine::scope::ScopeSpec;
use crate::engine::{now_micros, os_user, Ctx};
use crate::error::{Error, Result};
use crate::repo::manifest::{format_timestamp, parse_timestamp, SnapshotKind};
use crate::repo::schedule::{self, validate_name, Claim, Every, Retention, Schedule};

pub struct ScheduleRequest {
    pub name: String,
    pub scope: ScopeSpec,
    /// The scope was not given (NULL): the locked scope, or the whole database.
    pub default_scope: bool,
    pub every: Every,
    pub retention: Retention,
}

/// Stores a schedule (replacing one of the same name, whose run history it keeps); returns
/// it and whether it replaced one.
pub fn schedule(ctx: &Ctx, req: &ScheduleRequest) -> Result<(Schedule, bool)> {
    validate_name(&req.name)?;
    let every = req.every.validate()?;
    req.retention.validate()?;
    let (spec, _) = requested_scope(ctx, &req.scope, req.default_scope)?;
    // the scope must name something now; it is resolved again at every run
    let (targets, scope) = resolve_targets(ctx, &spec)?;
    let scope = recorded_scope(ctx, &targets, scope);
    crate::engine::create::ensure_repo_dir(ctx)?;
    let _lock = ctx.lock()?;
    if let Some(l) = crate::repo::config::load(&ctx.repo)? {
        l.admits(&scope, &ctx.repo.dir.display().to_string())?;
    }
    let mut file = schedule::load(&ctx.repo)?;
    let now = now_micros();
    let fresh = Schedule {
        name: req.name.clone(),
        database: ctx.database.clone(),
        scope,
        every,
        retention: req.retention.clone(),
        created_at: format_timestamp(now),
        created_by: os_user(),
        last_run: None,
        last_snapshot_id: None,
        last_error: None,
        last_attempt: None,
        running: None,
    };
    let replaced = match file.get_mut(&req.name) {
        Some(old) => {
            // a changed schedule keeps its history: the next run is one new period after the last
            *old = Schedule {
                last_run: old.last_run.clone(),
                last_snapshot_id: old.last_snapshot_id.clone(),
                running: old.running.clone(),
                ..fresh.clone()
            };
            true
        }
        None => {
            file.schedules.push(fresh);
            false
        }
    };
    schedule::save(&ctx.repo, &file)?;
    let stored = file.get(&req.name).cloned().expect("just stored");
    Ok((stored, replaced))
}

/// Removes a schedule; its snapshots stay. Returns it as it was.
pub fn unschedule(ctx: &Ctx, name: &str) -> Result<Schedule> {
    let missing = |names: Vec<String>| {
        Error::Input(format!(
            "no schedule named '{}' in {}{}",
            crate::repo::layout::printable(name),
            ctx.repo.dir.display(),
            if names.is_empty() { String::from(" (it has none)") } else { format!("; its schedules: {}", names.join(", ")) }
        ))
    };
    let file = schedule::load(&ctx.repo)?;
    if file.get(name).is_none() {
        return Err(missing(file.schedules.iter().map(|s| s.name.clone()).collect()));
    }
    let _lock = ctx.lock()?;
    let mut file = schedule::load(&ctx.repo)?;
    let Some(i) = file.schedules.iter().position(|s| s.name == name) else {
        return Err(missing(file.schedules.iter().map(|s| s.name.clone()).collect()));
    };
    let removed = file.schedules.remove(i);
    schedule::save(&ctx.repo, &file)?;
    Ok(removed)
}

/// Every schedule of the repository, by name.
pub fn list(ctx: &Ctx) -> Result<Vec<Schedule>> {
    let mut all = schedule::load(&ctx.repo)?.schedules;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

/// What one scheduled run did.
#[derive(Debug)]
pub enum RunOutcome {
    /// Not due (any more): another process ran it, or it was removed or changed.
    NotDue,
    Created { snapshot_id: String },
    Failed { error: String },
}

/// Runs schedule `name` if it is due at `now`. `stopping` tells whether the database is
/// closing: a run cut short by that is not the schedule's error (it stays due).
pub fn run_due(ctx: &Ctx, name: &str, now: i64, stopping: &dyn Fn() -> bool) -> Result<RunOutcome> {
    let key = format!("{}\n{name}", ctx.repo.dir.display());
    let claimed = {
        let _lock = ctx.lock()?;
        let mut file = schedule::load(&ctx.repo)?;
        let Some(s) = file.get_mut(name) else { return Ok(RunOutcome::NotDue) };
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        if !s.is_due(now) || s.claimed(now, running.contains(&key)) {
            return Ok(RunOutcome::NotDue);
        }
        s.running = Some(Claim::mine(now));
        let claimed = s.clone();
        schedule::save(&ctx.repo, &file)?;
        running.insert(key.clone());
        claimed
    };
    let outcome = run_claimed(ctx, &claimed, stopping);
    RUNNING.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
    outcome
}

/// Schedules this process is running now (`<repository>\n<name>`).
static RUNNING: std::sync::Mutex<std::collections::BTreeSet<String>> = std::sync::Mutex::new(std::collections::BTreeSet::new());

fn run_claimed(ctx: &Ctx, claimed: &Schedule, stopping: &dyn Fn() -> bool) -> Result<RunOutcome> {
    let name = claimed.name.as_str();
    let req = CreateRequest {
        scope: ScopeSpec::recorded(&claimed.scope)?,
        description: Some(format!("scheduled: {} every {}", claimed.name, claimed.every.text())),
        kind: SnapshotKind::Scheduled,
        id_prefix: "scheduled",
        schedule: Some(claimed.name.clone()),
        ..Default::default()
    };
    let created = create_publish_locked(ctx, &req);
    let _lock = ctx.lock()?;
    let mut file = schedule::load(&ctx.repo)?;
    let ended = now_micros();
    let mut outcome = match &created {
        Ok(m) => RunOutcome::Created { snapshot_id: m.snapshot_id.clone() },
        Err(e) => RunOutcome::Failed { error: e.one_line() },
    };
    // removed or replaced while it ran: the snapshot stays, nothing else is recorded
    let Some(s) = file.get_mut(name).filter(|s| s.running.as_ref().is_some_and(|c| c.is_mine())) else { return Ok(outcome) };
    s.running = None;
    s.last_attempt = Some(format_timestamp(ended));
    match &created {
        Ok(m) => {
            s.last_run = Some(m.created_at.clone());
            s.last_snapshot_id = Some(m.snapshot_id.clone());
            s.last_error = None;
            if !s.retention.is_empty() {
                let policy = Policy {
                    kind: Some(SnapshotKind::Scheduled),
                    schedule: Some(name.to_string()),
                    ..Policy::keeping(&s.retention)
                };
                if let Err(e) = prune_locked(ctx, &policy) {
                    let error = format!("retention: {}", e.one_line());
                    s.last_error = Some(error.clone());
                    outcome = RunOutcome::Failed { error };
                }
            }
        }
        Err(e) if !stopping() => s.last_error = Some(e.one_line()),
        Err(_) => {}
    }
    schedule::save(&ctx.repo, &file)?;
    Ok(outcome)
}

/// A stored time as microseconds (listings).
pub fn stored_time(text: Option<&str>) -> Option<i64> {
    text.and_then(parse_timestamp)
}
