//! `snapshot_pin(id)` and `snapshot_unpin(id)`: a pinned snapshot is never pruned or dropped.

use std::sync::Arc;

use crate::engine::{Settings};
use crate::error::{Error, Result};
use crate::functions::common::{required_str, settings, with_ctx_light};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct Bind {
    settings: Settings,
    id: String,
}

fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
    let id = required_str(args.positional(0), "the snapshot id", "the id of a snapshot (list them with FROM snapshots())")?;
    crate::repo::layout::validate_id(&id)?;
    let schema = Schema::Simple(vec![("snapshot_id", ColType::Varchar), ("pinned", ColType::Boolean)]);
    Ok((Bind { settings: settings(args), id }, schema))
}

fn set(host: &Arc<Host>, bind: &Bind, pinned: bool) -> Result<Produce> {
    with_ctx_light(host, &bind.settings, |ctx| {
        if !ctx.repo.exists(&bind.id)? {
            return Err(Error::SnapshotNotFound { id: bind.id.clone(), repo: ctx.repo.dir.clone() });
        }
        let _lock = ctx.lock()?;
        ctx.repo.set_pinned(&bind.id, pinned)
    })?;
    Ok(Produce::Rows(vec![vec![Val::Str(bind.id.clone()), Val::Bool(pinned)]]))
}

/// `snapshot_pin` (PIN = true) and `snapshot_unpin` (PIN = false).
pub struct SnapshotPinning<const PIN: bool>;

pub type SnapshotPin = SnapshotPinning<true>;
pub type SnapshotUnpin = SnapshotPinning<false>;

impl<const PIN: bool> TableFn for SnapshotPinning<PIN> {
    type Bind = Bind;
    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar]
    }
    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        bind(args)
    }
    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        set(host, bind, PIN)
    }
}
