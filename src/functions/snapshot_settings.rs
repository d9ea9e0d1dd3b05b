//! `snapshot_settings()`: the extension's settings as they take effect for the calling
//! connection — the effective value (defaults resolved: the repository folder beside the
//! database file, the project named after the database…) and where it came from — plus the
//! repository folder they add up to. `current_setting()` shows only what was SET.

use std::sync::Arc;

use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{settings, with_ctx_light};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotSettings;

impl TableFn for SnapshotSettings {
    type Bind = Settings;

    fn params() -> &'static [ParamType] {
        &[]
    }

    fn bind(args: &BindArgs) -> Result<(Settings, Schema)> {
        let columns = vec![
            ("name", ColType::Varchar),
            ("value", ColType::Varchar),
            ("source", ColType::Varchar),
            ("description", ColType::Varchar),
        ];
        Ok((settings(args), Schema::Simple(columns)))
    }

    fn produce(host: &Arc<Host>, bind: &Settings, _columns: &[usize]) -> Result<Produce> {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        let rows = with_ctx_light(host, bind, |ctx| {
            let source = |given: bool, default: &str| if given { "SET".to_string() } else { format!("default: {default}") };
            let option = |name: &str| {
                crate::host::settings::names().find(|(n, _)| *n == name).map(|(_, d)| d.to_string()).unwrap_or_default()
            };
            let mut rows = vec![
                vec![
                    Val::Str("snapshot_directory".into()),
                    Val::Str(ctx.repo.root.to_string_lossy().into_owned()),
                    Val::Str(source(set(&bind.directory), "a snapshots folder beside the database file (./snapshots in memory)")),
                    Val::Str(option("snapshot_directory")),
                ],
                vec![
                    Val::Str("snapshot_project".into()),
                    Val::Str(ctx.repo.project_id.clone()),
                    Val::Str(source(set(&bind.project), "the database name")),
                    Val::Str(option("snapshot_project")),
                ],
                vec![
                    Val::Str("snapshot_branch".into()),
                    Val::Str(ctx.branch.clone()),
                    Val::Str(source(set(&bind.branch), "main")),
                    Val::Str(option("snapshot_branch")),
                ],
                vec![
                    Val::Str("snapshot_lock_timeout".into()),
                    Val::Str(format!("{}", ctx.lock_timeout.as_secs_f64())),
                    // a number option reads back its default: SET means another value
                    Val::Str(source(ctx.lock_timeout != crate::engine::DEFAULT_LOCK_TIMEOUT, "30 seconds")),
                    Val::Str(option("snapshot_lock_timeout")),
                ],
                vec![
                    Val::Str("repository".into()),
                    Val::Str(ctx.repo.dir.to_string_lossy().into_owned()),
                    Val::Str("snapshot_directory / snapshot_project".into()),
                    Val::Str("The folder this connection's snapshots are written to and read from".into()),
                ],
            ];
            // bucket settings: shown for a bucket repository, secrets never
            let s3 = &bind.s3;
            let remote = ctx.repo.is_remote();
            for (name, value) in [
                ("snapshot_s3_endpoint", &s3.endpoint),
                ("snapshot_s3_region", &s3.region),
                ("snapshot_s3_url_style", &s3.url_style),
                ("snapshot_s3_use_ssl", &s3.use_ssl),
                ("snapshot_s3_access_key_id", &s3.access_key_id),
                ("snapshot_s3_secret_access_key", &s3.secret_access_key),
                ("snapshot_s3_session_token", &s3.session_token),
                ("snapshot_cache_directory", &bind.cache_directory),
                ("snapshot_cache_size", &bind.cache_size),
            ] {
                let given = set(value);
                let cache_setting = name.starts_with("snapshot_cache_");
                let shown = if !remote {
                    String::new()
                } else if crate::host::settings::SECRET_OPTIONS.contains(&name) {
                    if given { "***".into() } else { String::new() }
                } else if given {
                    value.clone().unwrap_or_default()
                } else if name == "snapshot_cache_directory" {
                    ctx.cache.dir.to_string_lossy().into_owned()
                } else if name == "snapshot_cache_size" {
                    format!("{} bytes", ctx.cache.limit)
                } else {
                    String::new()
                };
                let src = if !remote {
                    "not used: the repository is a local folder".to_string()
                } else if given {
                    "SET".into()
                } else if cache_setting {
                    "default".into()
                } else {
                    "default (AWS environment, ~/.aws profile or built-in)".into()
                };
                rows.push(vec![Val::Str(name.into()), Val::Str(shown), Val::Str(src), Val::Str(option(name))]);
            }
            Ok(rows)
        })?;
        Ok(Produce::Rows(rows))
    }
}
