//! How the engine talks to DuckDB: a minimal `Sql` trait (so the engine holds no FFI
//! types) and the quoting rules. Every name and value pasted into SQL goes through
//! `ident` or `literal`; nothing user-supplied is ever spliced in raw.

use crate::error::Result;

/// A fully materialized query result, every value rendered as text (NULL = None).
#[derive(Debug, Default, Clone)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// The single value of a one-row, one-column result.
    pub fn scalar(&self) -> Option<&str> {
        self.rows.first().and_then(|r| r.first()).and_then(|v| v.as_deref())
    }
}

pub trait Sql {
    fn query(&self, sql: &str) -> Result<Rows>;
    fn exec(&self, sql: &str) -> Result<()> {
        self.query(sql).map(|_| ())
    }
    /// The first `columns` columns of a query whose columns are all BIGINT, column by
    /// column (NULL reads as -1). Connections read them without going through text.
    fn query_i64s(&self, sql: &str, columns: usize) -> Result<Vec<Vec<i64>>> {
        let rows = self.query(sql)?;
        Ok((0..columns)
            .map(|c| rows.rows.iter().map(|r| r.get(c).cloned().flatten().and_then(|v| v.parse().ok()).unwrap_or(-1)).collect())
            .collect())
    }
}

/// A quoted identifier: `"a""b"`.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted string literal: `'it''s'`.
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Splits a possibly quoted, dot-separated SQL name (`a."b.c"`) into its parts.
/// Returns None when the text is not a well-formed qualified name.
pub fn split_qualified(name: &str) -> Option<Vec<String>> {
    Some(split_name(name)?.into_iter().map(|(part, _)| part).collect())
}

/// `split_qualified`, telling for each part whether it was quoted.
pub fn split_name(name: &str) -> Option<Vec<(String, bool)>> {
    split_name_parts(name).filter(|p| (1..=3).contains(&p.len()))
}

/// How many parts a well-formed dotted name has (any number); None when malformed.
pub fn part_count(name: &str) -> Option<usize> {
    split_name_parts(name).map(|p| p.len())
}

fn split_name_parts(name: &str) -> Option<Vec<(String, bool)>> {
    let mut parts = Vec::new();
    let mut chars = name.trim().chars().peekable();
    loop {
        let mut part = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return None,
                }
            }
            if part.is_empty() {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' || c == '"' {
                    break;
                }
                part.push(c);
                chars.next();
            }
            if part.is_empty() || part.trim() != part {
                return None;
            }
        }
        parts.push((part, quoted));
        match chars.next() {
            None => break,
            Some('.') => continue,
            Some(_) => return None,
        }
    }
    Some(parts)
}

/// Skips a qualified name at the start of `s`; returns the rest.
pub fn skip_qualified(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match b.get(i) {
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                    None => return None,
                }
            }
        } else {
            let start = i;
            while let Some(&c) = b.get(i) {
                if c == b'.' || c == b'(' || c == b' ' || c == b'"' {
                    break;
                }
                i += 1;
            }
            if i == start {
                return None;
            }
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
        } else {
            return s.get(i..);
        }
    }
}

/// Runs `f` inside one transaction on the extension's connection: COMMIT when it succeeds,
/// ROLLBACK when it or the COMMIT fails. Every multi-statement change goes through here.
pub fn in_transaction<T>(db: &dyn Sql, f: impl FnOnce() -> Result<T>) -> Result<T> {
    db.exec("BEGIN TRANSACTION")?;
    match f() {
        Ok(v) => match db.exec("COMMIT") {
            Ok(_) => Ok(v),
            Err(e) => {
                let _ = db.exec("ROLLBACK");
                Err(e)
            }
        },
        Err(e) => {
            let _ = db.exec("ROLLBACK");
            Err(e)
        }
    }
}

/// Runs `f` in a transaction that is always rolled back: a probe that must change nothing.
pub fn rolled_back<T>(db: &dyn Sql, f: impl FnOnce() -> Result<T>) -> Result<T> {
    db.exec("BEGIN TRANSACTION")?;
    let out = f();
    let _ = db.exec("ROLLBACK");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn qualified_names() {
        assert_eq!(split_qualified("a.b.c").unwrap(), ["a", "b", "c"]);
        assert_eq!(split_qualified("\"my s\".\"t.x\"").unwrap(), ["my s", "t.x"]);
        assert_eq!(split_qualified("\"a\"\"b\"").unwrap(), ["a\"b"]);
        assert_eq!(split_qualified("tbl").unwrap(), ["tbl"]);
        assert!(split_qualified("../x").is_none());
        assert!(split_qualified("a.b.c.d").is_none());
        assert_eq!(part_count("a.b.c.d"), Some(4));
        assert_eq!(part_count("\"a.b\".c"), Some(2));
        assert!(split_qualified("\"open").is_none());
        assert!(split_qualified("").is_none());
    }

    #[test]
    fn skipping_names() {
        assert_eq!(skip_qualified("\"my s\".\"t.x\"(id INTEGER)"), Some("(id INTEGER)"));
        assert_eq!(skip_qualified("t(id INTEGER)"), Some("(id INTEGER)"));
        assert_eq!(skip_qualified("main.t (x)"), Some(" (x)"));
        assert_eq!(skip_qualified("\"a\"\"(b\"(x)"), Some("(x)"));
    }
}
