//! `__snapshot_keep(version VARCHAR, layer INTEGER, key BIGINT) -> BOOLEAN`: internal. The
//! filter through which DuckDB reads an incremental version as plain SQL over its files
//! (`Version::layered_sql`): true when the row at `key` of `layer` survives in the version
//! the constant `version` describes. What survives is computed at bind, once per version
//! and process (`engine::survivors`).

use std::sync::Arc;

use crate::engine::survivors::{for_key, Survivors};
use crate::error::{Error, Result};
use crate::host::scalar::{ScalarBindArgs, ScalarFn, ScalarInput, ScalarOutput, ScalarType};
use crate::host::table_fn::Arg;

pub struct Keep;

impl ScalarFn for Keep {
    type Bind = Arc<Survivors>;
    const NAME: &'static str = crate::engine::layers::KEEP;

    fn params() -> &'static [ScalarType] {
        &[ScalarType::Varchar, ScalarType::Integer, ScalarType::BigInt]
    }

    fn returns() -> ScalarType {
        ScalarType::Boolean
    }

    fn bind(args: &ScalarBindArgs) -> Result<Arc<Survivors>> {
        let key = match args.constant(0, "__snapshot_keep's version")? {
            Arg::Str(s) => s,
            other => return Err(Error::Input(format!("__snapshot_keep: the version must be a constant VARCHAR, got {}", other.describe()))),
        };
        let reader = args.host.reader()?;
        for_key(reader.conn(), &key)
    }

    fn execute(bind: &Arc<Survivors>, input: &ScalarInput, output: &mut ScalarOutput) -> Result<()> {
        let n = input.len;
        let (layers, keys) = (input.i32s(1), input.i64s(2));
        let out = output.bools(n);
        for i in 0..n {
            out[i] = !input.is_null(1, i) && !input.is_null(2, i) && bind.keep(layers[i].max(0) as usize, keys[i]);
        }
        Ok(())
    }
}
