//! `FROM '<table>@<snapshot>'`: a replacement scan turns the string into DuckDB's own
//! `query()` over `__snapshot_scan_sql('<table>@<snapshot>')`, a scalar function folded at
//! bind time into the SELECT that reads the version straight from its Parquet files (see
//! `engine::travel::at_sql`). DuckDB then plans an ordinary `read_parquet`: projection and
//! filter pushdown, row-group skipping, every thread. Errors read as read_snapshot's.

use crate::engine::sql::literal;
use crate::error::{Error, Result};
use crate::functions::common::{settings, with_ctx_light};
use crate::host::scalar::{ScalarBindArgs, ScalarFn, ScalarInput, ScalarOutput, ScalarType};
use crate::host::table_fn::Arg;

pub const SCAN_SQL: &str = "__snapshot_scan_sql";

/// The SQL a claimed table reference becomes (run by DuckDB's `query()`).
pub fn replacement_sql(reference: &str) -> String {
    format!("FROM query({SCAN_SQL}({}))", literal(reference))
}

/// Whether a table reference that DuckDB could not find is ours: it has an `@` and is not a
/// path to an existing file or a URL (those stay DuckDB's). A malformed one (`'t@'`) gets
/// the extension's error saying what the form is.
pub fn claims(reference: &str) -> bool {
    reference.contains('@') && !reference.contains("://") && !std::path::Path::new(reference).exists()
}

pub struct ScanSql;

impl ScalarFn for ScanSql {
    type Bind = String;
    const NAME: &'static str = SCAN_SQL;

    fn params() -> &'static [ScalarType] {
        &[ScalarType::Varchar]
    }

    fn returns() -> ScalarType {
        ScalarType::Varchar
    }

    fn bind(args: &ScalarBindArgs) -> Result<String> {
        let reference = match args.constant(0, "the table reference")? {
            Arg::Str(s) => s,
            other => return Err(Error::Input(format!("the table reference must be a VARCHAR, got {}", other.describe()))),
        };
        let settings = settings(args);
        with_ctx_light(args.host, &settings, |ctx| crate::engine::travel::at_sql(ctx, &reference))
            .map_err(|e| Error::Input(format!("read_snapshot: {}", e.one_line())))
    }

    fn execute(sql: &String, input: &ScalarInput, output: &mut ScalarOutput) -> Result<()> {
        for row in 0..input.len {
            if input.is_null(0, row) {
                output.set_null(row);
            } else {
                output.set_str(row, sql);
            }
        }
        Ok(())
    }
}
