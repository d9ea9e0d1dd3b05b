//! What other transactions hold uncommitted, as far as an extension can tell. The C API v1
//! shows an extension nothing of the caller's transaction, so DuckDB's own conflict checks
//! are the probes: a CHECKPOINT fails while any transaction has uncommitted updates or schema
//! changes, and deleting rows fails while another transaction has uncommitted deletes of
//! them. Uncommitted inserts pass both (DuckDB checks them only at their COMMIT).

use crate::engine::catalog::TableRef;
use crate::engine::sql::{rolled_back, Sql};
use crate::error::{Error, Result};

/// DuckDB 2.0 ends a transaction at any error, and a COMMIT then silently rolls it back.
const ENDED: &str = " (if it is this connection's and DuckDB ended it at this error, ROLLBACK and redo it)";

/// Refuses while another transaction (the caller's own explicit one included) holds
/// uncommitted updates or schema changes in the database: an update committed onto rows
/// deleted meanwhile would vanish, a dropped table's pending changes would fail their COMMIT.
/// `what` names the refused action (`replace tables`, `drop table main.t`), `then` says what
/// to do after (`restore`, `drop it`).
pub fn no_pending_updates(db: &dyn Sql, what: &str, then: &str) -> Result<()> {
    match db.exec("CHECKPOINT") {
        Err(e) if e.one_line().contains("other write transactions") => Err(Error::Input(format!(
            "cannot {what}: another transaction (yours?) has uncommitted updates or schema changes in this database; COMMIT or ROLLBACK it, then {then}{ENDED}"
        ))),
        // anything else (a read-only or in-memory database) does not say: go on
        _ => Ok(()),
    }
}

/// Deletes every row of a table about to be replaced or dropped, inside the caller's
/// transaction; another transaction's uncommitted change to those rows is a conflict,
/// reported as what to do. `verb` is what is being done (`replace`, `drop`), `then` what to
/// do after (`restore`, `drop it`).
pub fn delete_all_rows(db: &dyn Sql, t: &TableRef, verb: &str, then: &str) -> Result<()> {
    db.exec(&format!("DELETE FROM {}", t.sql())).map(|_| ()).map_err(|err| {
        let text = err.one_line();
        if text.contains("Conflict") {
            Error::Input(format!(
                "cannot {verb} table {}: another transaction (yours?) has uncommitted changes to its rows; COMMIT or ROLLBACK it, then {then}{ENDED}",
                t.display()
            ))
        } else {
            Error::Input(format!("cannot {verb} table {}: {text}", t.display()))
        }
    })
}

/// Refuses while another transaction holds uncommitted deletes of the table's rows, without
/// changing anything (the probe's delete is rolled back).
pub fn no_pending_deletes(db: &dyn Sql, t: &TableRef, verb: &str, then: &str) -> Result<()> {
    rolled_back(db, || delete_all_rows(db, t, verb, then))
}
