//! How DuckDB types are stored in Parquet. Most types round-trip through DuckDB's Parquet
//! writer and reader exactly (the reader casts back to the recorded type). The ones that do
//! not are stored as their exact text form and cast back on read and restore:
//! HUGEINT/UHUGEINT (Parquet holds them as DOUBLE), INTERVAL (Parquet keeps milliseconds),
//! TIME WITH TIME ZONE (Parquet drops the offset), and any nested type containing one.

use crate::engine::sql::ident;
use crate::repo::manifest::Column;

const LOSSY: &[&str] = &["HUGEINT", "UHUGEINT", "INTERVAL", "TIME WITH TIME ZONE", "TIMETZ"];

/// The Parquet stand-in type for a DuckDB type, when the type cannot be stored as itself.
pub fn stored_as(ty: &str) -> Option<&'static str> {
    let upper = ty.to_ascii_uppercase();
    let lossy = LOSSY.iter().any(|t| contains_word(&upper, t)) || upper.contains("STRUCT()") || upper == "STRUCT";
    lossy.then_some("VARCHAR")
}

/// True when `word` occurs in `s` as a whole type name (not inside a quoted field name).
fn contains_word(s: &str, word: &str) -> bool {
    let mut in_quote = false;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' || c == b'\'' {
            in_quote = !in_quote;
        } else if !in_quote && s[i..].starts_with(word) {
            let before_ok = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
            let after = i + word.len();
            let after_ok = after >= bytes.len() || !(bytes[after].is_ascii_alphanumeric() || bytes[after] == b'_');
            if before_ok && after_ok {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// The SELECT list that writes a table's columns in their stored form.
pub fn write_list(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| match &c.stored_as {
            Some(st) => format!("CAST({} AS {st}) AS {}", ident(&c.name), ident(&c.name)),
            None => ident(&c.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The expression that reads one stored column back as its original type.
pub fn read_expr(c: &Column) -> String {
    format!("CAST({} AS {}) AS {}", ident(&c.name), c.ty, ident(&c.name))
}

/// The query that reads the stored columns at `indexes` back in their original types.
/// An index past the stored columns is a virtual column (e.g. the row id asked for by
/// `count(*)`): any constant will do there.
pub fn select_sql(all: &[Column], indexes: &[usize], from: &str) -> String {
    format!("SELECT {} FROM {from}", read_list(all, indexes))
}

/// The SELECT list of `select_sql`.
pub fn read_list(all: &[Column], indexes: &[usize]) -> String {
    let list: Vec<String> = indexes
        .iter()
        .map(|&i| match all.get(i) {
            Some(c) => read_expr(c),
            None => "NULL::BIGINT".to_string(),
        })
        .collect();
    if list.is_empty() {
        "1".to_string()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_types_are_detected() {
        assert_eq!(stored_as("HUGEINT"), Some("VARCHAR"));
        assert_eq!(stored_as("STRUCT(a UHUGEINT)"), Some("VARCHAR"));
        assert_eq!(stored_as("INTERVAL[]"), Some("VARCHAR"));
        assert_eq!(stored_as("TIME WITH TIME ZONE"), Some("VARCHAR"));
        assert_eq!(stored_as("BIGINT"), None);
        assert_eq!(stored_as("STRUCT(\"hugeint\" INTEGER)"), None);
        assert_eq!(stored_as("ENUM('INTERVAL', 'x')"), None);
        assert_eq!(stored_as("TIMESTAMP WITH TIME ZONE"), None);
    }
}
