//! Reading the live DuckDB catalog: which tables a request names, and everything about a
//! table that an exact restore needs (columns and types, DDL, primary key, comment,
//! indexes). All look-ups go through DuckDB's own `duckdb_*()` catalog functions.

use crate::engine::sql::{ident, literal, split_qualified, Sql};
use crate::error::{Error, Result};
use crate::repo::manifest::Column;

/// A table in the live database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRef {
    pub catalog: String,
    pub schema: String,
    pub table: String,
}

impl TableRef {
    /// The quoted, fully qualified SQL name.
    pub fn sql(&self) -> String {
        format!("{}.{}.{}", ident(&self.catalog), ident(&self.schema), ident(&self.table))
    }

    /// `schema.table` as users write it (parts quoted only where needed).
    pub fn display(&self) -> String {
        format!("{}.{}", display_part(&self.schema), display_part(&self.table))
    }

    /// `catalog.schema.table` as users write it.
    pub fn full_display(&self) -> String {
        format!("{}.{}", display_part(&self.catalog), self.display())
    }
}

pub fn display_part(p: &str) -> String {
    if !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !p.starts_with(|c: char| c.is_ascii_digit()) {
        p.to_string()
    } else {
        ident(p)
    }
}

/// Everything recorded about one table.
#[derive(Debug, Clone)]
pub struct TableDef {
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub ddl: String,
    pub comment: Option<String>,
    pub indexes: Vec<String>,
}

pub fn current_database(db: &dyn Sql) -> Result<String> {
    db.query("SELECT current_database()")?
        .scalar()
        .map(str::to_string)
        .ok_or_else(|| Error::Internal("current_database() returned nothing".into()))
}

/// The file path of a database, or None for an in-memory one.
pub fn database_path(db: &dyn Sql, database: &str) -> Result<Option<String>> {
    let rows = db.query(&format!(
        "SELECT path FROM duckdb_databases() WHERE database_name = {}",
        literal(database)
    ))?;
    Ok(rows.scalar().filter(|p| !p.is_empty() && *p != ":memory:").map(str::to_string))
}

const TABLE_FILTER: &str = "NOT temporary AND NOT internal AND database_name NOT IN ('system', 'temp')";

fn tables_where(db: &dyn Sql, cond: &str) -> Result<Vec<TableRef>> {
    let rows = db.query(&format!(
        "SELECT database_name, schema_name, table_name FROM duckdb_tables() WHERE {TABLE_FILTER} AND {cond} \
         ORDER BY database_name, schema_name, table_name"
    ))?;
    Ok(rows
        .rows
        .into_iter()
        .map(|r| TableRef {
            catalog: r[0].clone().unwrap_or_default(),
            schema: r[1].clone().unwrap_or_default(),
            table: r[2].clone().unwrap_or_default(),
        })
        .collect())
}

/// Every base table of every schema of `database`.
/// Every attached database a snapshot can read: not DuckDB's own (`system`, `temp`).
pub fn databases(db: &dyn Sql) -> Result<Vec<String>> {
    Ok(db
        .query("SELECT database_name FROM duckdb_databases() WHERE NOT internal ORDER BY database_name")?
        .rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect())
}

pub fn all_tables(db: &dyn Sql, database: &str) -> Result<Vec<TableRef>> {
    tables_where(db, &format!("database_name = {}", literal(database)))
}

/// Every table of one schema (`schema` or `catalog.schema`).
pub fn schema_tables(db: &dyn Sql, database: &str, schema: &str) -> Result<Vec<TableRef>> {
    let (catalog, name) = match split_qualified(schema) {
        Some(parts) if parts.len() == 2 => (parts[0].clone(), parts[1].clone()),
        Some(parts) if parts.len() == 1 => (database.to_string(), parts[0].clone()),
        _ => (database.to_string(), schema.to_string()),
    };
    let exact = tables_where(db, &format!("database_name = {} AND schema_name = {}", literal(&catalog), literal(&name)))?;
    if !exact.is_empty() {
        return Ok(exact);
    }
    let loose = tables_where(
        db,
        &format!("lower(database_name) = lower({}) AND lower(schema_name) = lower({})", literal(&catalog), literal(&name)),
    )?;
    if loose.is_empty() {
        return Err(Error::SchemaNotFound { name: schema.to_string() });
    }
    Ok(loose)
}

/// Resolves a user-supplied table name (`table`, `schema.table`, `catalog.schema.table`,
/// quoted parts allowed; a name that is not a well-formed qualified name is taken as one
/// table name in the default schema, so a table may be called `../x`).
pub fn resolve_table(db: &dyn Sql, database: &str, default_schema: &str, name: &str) -> Result<TableRef> {
    let mut candidates: Vec<(String, Option<String>, String)> = Vec::new();
    if let Some(parts) = split_qualified(name) {
        match parts.len() {
            1 => candidates.push((database.into(), None, parts[0].clone())),
            2 => {
                candidates.push((database.into(), Some(parts[0].clone()), parts[1].clone()));
                // `catalog.table` with the default schema
                candidates.push((parts[0].clone(), Some("main".into()), parts[1].clone()));
            }
            _ => candidates.push((parts[0].clone(), Some(parts[1].clone()), parts[2].clone())),
        }
    }
    candidates.push((database.into(), None, name.to_string()));
    for (catalog, schema, table) in &candidates {
        for exact in [true, false] {
            let eq = |col: &str, v: &str| {
                if exact {
                    format!("{col} = {}", literal(v))
                } else {
                    format!("lower({col}) = lower({})", literal(v))
                }
            };
            let mut cond = format!("{} AND {}", eq("database_name", catalog), eq("table_name", table));
            match schema {
                Some(s) => cond.push_str(&format!(" AND {}", eq("schema_name", s))),
                None => cond.push_str(&format!(" AND schema_name = {}", literal(default_schema))),
            }
            let found = tables_where(db, &cond)?;
            if found.len() == 1 {
                return Ok(found.into_iter().next().unwrap());
            }
            if schema.is_none() && found.is_empty() {
                // a bare name not in main: accept it when exactly one schema has it
                let any = tables_where(db, &format!("{} AND {}", eq("database_name", catalog), eq("table_name", table)))?;
                if any.len() == 1 {
                    return Ok(any.into_iter().next().unwrap());
                }
                if any.len() > 1 {
                    return Err(Error::Input(format!(
                        "table name {} is ambiguous ({} schemas have it); qualify it as schema.table",
                        display_part(table),
                        any.len()
                    )));
                }
            }
        }
    }
    Err(Error::TableNotFound { name: crate::repo::layout::printable(name) })
}

/// `resolve_table`, with a hint when the name is a schema rather than a table.
pub fn resolve_table_or_hint(db: &dyn Sql, database: &str, default_schema: &str, name: &str) -> Result<TableRef> {
    match resolve_table(db, database, default_schema, name) {
        Err(Error::TableNotFound { name: shown }) => {
            let schema = match split_qualified(name).as_deref() {
                Some([s]) => Some((database.to_string(), s.clone())),
                Some([c, s]) => Some((c.clone(), s.clone())),
                _ => None,
            };
            let view = match split_qualified(name).as_deref() {
                Some([v]) => Some((database.to_string(), default_schema.to_string(), v.clone())),
                Some([s, v]) => Some((database.to_string(), s.clone(), v.clone())),
                Some([c, s, v]) => Some((c.clone(), s.clone(), v.clone())),
                _ => None,
            };
            if let Some((c, s, v)) = view {
                let views = db.query(&format!(
                    "SELECT count(*) FROM duckdb_views() WHERE NOT internal AND lower(database_name) = lower({}) AND lower(schema_name) = lower({}) AND lower(view_name) = lower({})",
                    literal(&c),
                    literal(&s),
                    literal(&v)
                ))?;
                if views.scalar().is_some_and(|n| n != "0") {
                    return Err(Error::Input(format!(
                        "{shown} is a view, not a table; snapshot the tables it reads (views are kept by '*' and 'schema.*' snapshots)"
                    )));
                }
            }
            if let Some((c, s)) = schema {
                let found = db.query(&format!(
                    "SELECT schema_name FROM duckdb_schemas() WHERE lower(database_name) = lower({}) AND lower(schema_name) = lower({})",
                    literal(&c),
                    literal(&s)
                ))?;
                if let Some(actual) = found.scalar() {
                    return Err(Error::Input(format!(
                        "{shown} is a schema, not a table; use '{}.*' for the schema with its tables and objects",
                        display_part(actual)
                    )));
                }
            }
            Err(Error::TableNotFound { name: shown })
        }
        other => other,
    }
}

/// Whether a table exists (exact name match).
pub fn table_exists(db: &dyn Sql, t: &TableRef) -> Result<bool> {
    Ok(!tables_where(
        db,
        &format!(
            "database_name = {} AND schema_name = {} AND table_name = {}",
            literal(&t.catalog),
            literal(&t.schema),
            literal(&t.table)
        ),
    )?
    .is_empty())
}

/// Whether a foreign key of another table points at this one (DuckDB keeps keys within a
/// schema).
pub fn is_referenced(db: &dyn Sql, t: &TableRef) -> Result<bool> {
    let n = db
        .query(&format!(
            "SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY' AND database_name = {} AND schema_name = {} AND referenced_table = {} AND table_name <> {}",
            literal(&t.catalog),
            literal(&t.schema),
            literal(&t.table),
            literal(&t.table)
        ))?
        .scalar()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(n > 0)
}

/// The WHERE condition selecting one table's rows in DuckDB's catalog functions.
fn table_filter(t: &TableRef) -> String {
    format!("database_name = {} AND schema_name = {} AND table_name = {}", literal(&t.catalog), literal(&t.schema), literal(&t.table))
}

/// Describes one table. Must run in the same transaction as the data copy.
pub fn describe(db: &dyn Sql, t: &TableRef) -> Result<TableDef> {
    let filter = table_filter(t);
    let table = db.query(&format!("SELECT sql, comment FROM duckdb_tables() WHERE {filter}"))?;
    let row = table.rows.first().ok_or_else(|| Error::TableNotFound { name: t.display() })?;
    let ddl = row[0].clone().unwrap_or_default();
    let comment = row[1].clone();
    let cols = db.query(&format!(
        "SELECT column_name, data_type, to_json(c)->>'is_generated', comment FROM duckdb_columns() c WHERE {filter} ORDER BY column_index"
    ))?;
    // DuckDB 1.5 has no is_generated column: fall back to the definition itself
    let generated_in_ddl = generated_columns(&ddl);
    let columns = cols
        .rows
        .into_iter()
        .map(|r| {
            let ty = r[1].clone().unwrap_or_default();
            let stored_as = crate::engine::types::stored_as(&ty).map(str::to_string);
            Column {
                name: r[0].clone().unwrap_or_default(),
                ty,
                stored_as,
                generated: match r[2].as_deref() {
                    Some(flag) => flag == "true",
                    None => generated_in_ddl.iter().any(|g| Some(g) == r[0].as_ref()),
                },
                comment: r[3].clone(),
            }
        })
        .collect();
    let pk = db.query(&format!(
        "SELECT to_json(constraint_column_names) FROM duckdb_constraints() WHERE {filter} AND constraint_type = 'PRIMARY KEY'"
    ))?;
    let primary_key = match pk.scalar() {
        Some(json) => serde_json::from_str(json).map_err(|e| Error::Internal(format!("primary key list: {e}")))?,
        None => Vec::new(),
    };
    let idx = db.query(&format!("SELECT sql FROM duckdb_indexes() WHERE {filter} AND sql IS NOT NULL ORDER BY index_name"))?;
    let indexes = idx.rows.into_iter().filter_map(|r| r[0].clone()).collect();
    Ok(TableDef { columns, primary_key, ddl, comment, indexes })
}

/// The definition of only some columns of a table (`snapshot_create(…, columns := […])`), in
/// table order: its `CREATE TABLE` keeps each column's type, NOT NULL and DEFAULT, and the
/// primary key when every key column is kept; generated columns become plain ones (their
/// values are stored), indexes are left out. Unknown names are an error naming the table.
pub fn subset(db: &dyn Sql, t: &TableRef, def: TableDef, names: &[String]) -> Result<TableDef> {
    let mut wanted: Vec<&Column> = Vec::new();
    for n in names {
        match def.columns.iter().find(|c| c.name.eq_ignore_ascii_case(n)) {
            Some(c) if !wanted.iter().any(|w| w.name == c.name) => wanted.push(c),
            Some(_) => {}
            None => {
                return Err(Error::Input(format!(
                    "table {} has no column {}; its columns: {}",
                    t.display(),
                    crate::repo::layout::printable(n),
                    def.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                )))
            }
        }
    }
    let kept: Vec<Column> =
        def.columns.iter().filter(|c| wanted.iter().any(|w| w.name == c.name)).cloned().map(|c| Column { generated: false, ..c }).collect();
    let filter = table_filter(t);
    let meta = db.query(&format!("SELECT column_name, is_nullable, column_default FROM duckdb_columns() WHERE {filter}"))?;
    let mut parts: Vec<String> = kept
        .iter()
        .map(|c| {
            let row = meta.rows.iter().find(|r| r[0].as_deref() == Some(c.name.as_str()));
            let not_null = row.and_then(|r| r[1].as_deref()).is_some_and(|v| v == "false");
            let default = row.and_then(|r| r[2].clone()).filter(|_| !def.columns.iter().any(|d| d.name == c.name && d.generated));
            format!(
                "{} {}{}{}",
                crate::engine::sql::ident(&c.name),
                c.ty,
                if not_null { " NOT NULL" } else { "" },
                default.map(|d| format!(" DEFAULT({d})")).unwrap_or_default()
            )
        })
        .collect();
    let primary_key = if !def.primary_key.is_empty() && def.primary_key.iter().all(|k| kept.iter().any(|c| &c.name == k)) {
        parts.push(format!("PRIMARY KEY({})", def.primary_key.iter().map(|k| crate::engine::sql::ident(k)).collect::<Vec<_>>().join(", ")));
        def.primary_key.clone()
    } else {
        Vec::new()
    };
    Ok(TableDef {
        ddl: format!("CREATE TABLE {}({});", t.sql(), parts.join(", ")),
        columns: kept,
        primary_key,
        comment: def.comment,
        indexes: Vec::new(),
    })
}

/// Names of the generated columns in a `CREATE TABLE` statement as DuckDB prints it.
pub fn generated_columns(ddl: &str) -> Vec<String> {
    let Some(open) = ddl.find('(') else { return Vec::new() };
    let body = &ddl[open + 1..];
    let mut defs = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0usize);
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"') | (None, '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') if depth == 0 => {
                defs.push(&body[start..i]);
                break;
            }
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                defs.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    defs.into_iter()
        .filter(|d| unquoted(d).contains(" GENERATED ALWAYS AS"))
        .filter_map(|d| {
            let d = d.trim();
            let rest = crate::engine::sql::skip_qualified(d)?;
            split_qualified(&d[..d.len() - rest.len()]).and_then(|p| p.into_iter().next())
        })
        .collect()
}

/// The text with every quoted part ('...' or "...") removed.
fn unquoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut quote = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_generated_columns() {
        let ddl = "CREATE TABLE t(id INTEGER, \"a b\" INTEGER GENERATED ALWAYS AS((id * 2)), s VARCHAR DEFAULT('x, GENERATED ALWAYS AS'), CHECK((id > 0)));";
        assert_eq!(generated_columns(ddl), vec!["a b".to_string()]);
        assert!(generated_columns("CREATE TABLE t(i INTEGER);").is_empty());
    }
}
