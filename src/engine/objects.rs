//! Database objects other than tables — schemas, user types, sequences, views, macros —
//! captured with database- and schema-scope snapshots and recreated on restore, in
//! dependency order: schemas, types, sequences, (tables), views, macros.

use crate::engine::sql::{ident, literal, skip_qualified, Sql};
use crate::error::{Error, Result};
use crate::repo::manifest::DbObject;

pub const SCHEMA: &str = "schema";
pub const TYPE: &str = "type";
pub const SEQUENCE: &str = "sequence";
pub const VIEW: &str = "view";
pub const MACRO: &str = "macro";

/// Creation order of the kinds; tables come between sequences and views.
pub fn rank(kind: &str) -> u8 {
    match kind {
        SCHEMA => 0,
        TYPE => 1,
        SEQUENCE => 2,
        VIEW => 4,
        _ => 5,
    }
}

fn filter(catalog: &str, schema: Option<&str>) -> String {
    let mut f = format!("database_name = {} AND NOT internal", literal(catalog));
    if let Some(s) = schema {
        f.push_str(&format!(" AND schema_name = {}", literal(s)));
    }
    f
}

fn obj(kind: &str, catalog: &str, schema: &str, name: &str, sql: String, comment: Option<String>) -> DbObject {
    DbObject {
        kind: kind.into(),
        catalog: catalog.into(),
        schema: schema.into(),
        name: name.into(),
        sql,
        comment,
    }
}

/// Everything but tables in `catalog` (optionally one schema), in creation order.
/// Runs inside the snapshot's transaction.
pub fn capture(db: &dyn Sql, catalog: &str, schema: Option<&str>) -> Result<Vec<DbObject>> {
    let mut out = Vec::new();
    let f = filter(catalog, schema);
    for r in db.query(&format!("SELECT schema_name, comment FROM duckdb_schemas() WHERE {f} ORDER BY schema_name"))?.rows {
        let s = r[0].clone().unwrap_or_default();
        if s == "main" || s == "pg_catalog" || s == "information_schema" {
            continue;
        }
        out.push(obj(SCHEMA, catalog, &s, &s, format!("CREATE SCHEMA IF NOT EXISTS {}", ident(&s)), r[1].clone()));
    }
    let types = db.query(&format!(
        "SELECT schema_name, type_name, to_json(labels), comment FROM duckdb_types() WHERE {f} ORDER BY type_oid"
    ))?;
    for r in types.rows {
        let (s, name) = (r[0].clone().unwrap_or_default(), r[1].clone().unwrap_or_default());
        let definition = match r[2].as_deref().filter(|l| *l != "null") {
            Some(labels) => {
                let labels: Vec<String> = serde_json::from_str(labels).map_err(|e| Error::Internal(format!("enum labels: {e}")))?;
                format!("ENUM ({})", labels.iter().map(|l| literal(l)).collect::<Vec<_>>().join(", "))
            }
            None => db
                .query(&format!("SELECT typeof(NULL::{}.{}.{})", ident(catalog), ident(&s), ident(&name)))?
                .scalar()
                .unwrap_or("VARCHAR")
                .to_string(),
        };
        out.push(obj(TYPE, catalog, &s, &name, format!("CREATE TYPE {{name}} AS {definition}"), r[3].clone()));
    }
    let seqs = db.query(&format!("SELECT schema_name, sequence_name, sql, comment FROM duckdb_sequences() WHERE {} ORDER BY sequence_oid",
        f.replace("NOT internal", "NOT temporary")))?;
    for r in seqs.rows {
        let sql = r[2].clone().unwrap_or_default();
        let rest = sql.strip_prefix("CREATE SEQUENCE ").and_then(skip_qualified).unwrap_or("");
        out.push(obj(SEQUENCE, catalog, r[0].as_deref().unwrap_or(""), r[1].as_deref().unwrap_or(""),
            format!("CREATE SEQUENCE {{name}}{rest}"), r[3].clone()));
    }
    let views = db.query(&format!("SELECT schema_name, view_name, sql, comment FROM duckdb_views() WHERE {f} AND NOT temporary ORDER BY view_oid"))?;
    for r in views.rows {
        let sql = r[2].clone().unwrap_or_default();
        let rest = sql.strip_prefix("CREATE VIEW ").and_then(skip_qualified).ok_or_else(|| Error::Internal(format!("unexpected view definition: {sql}")))?;
        out.push(obj(VIEW, catalog, r[0].as_deref().unwrap_or(""), r[1].as_deref().unwrap_or(""), format!("CREATE VIEW {{name}}{rest}"), r[3].clone()));
    }
    let macros = db.query(&format!(
        "SELECT schema_name, function_name, function_type, to_json(parameters), macro_definition, comment, to_json(parameter_types) FROM duckdb_functions() \
         WHERE {f} AND function_type IN ('macro', 'table_macro') ORDER BY function_oid"
    ))?;
    let mut grouped: Vec<(String, String, bool, Vec<String>, Option<String>)> = Vec::new();
    for r in macros.rows {
        let (s, name) = (r[0].clone().unwrap_or_default(), r[1].clone().unwrap_or_default());
        let table = r[2].as_deref() == Some("table_macro");
        let params: Vec<String> = serde_json::from_str(r[3].as_deref().unwrap_or("[]")).unwrap_or_default();
        let types: Vec<Option<String>> = serde_json::from_str(r[6].as_deref().unwrap_or("[]")).unwrap_or_default();
        let body = r[4].clone().unwrap_or_default();
        let params = params
            .iter()
            .enumerate()
            .map(|(i, p)| match types.get(i).cloned().flatten() {
                Some(ty) => format!("{} {ty}", ident(p)),
                None => ident(p),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let overload = format!("({params}) AS {}{body}", if table { "TABLE " } else { "" });
        match grouped.iter_mut().find(|g| g.0 == s && g.1 == name) {
            Some(g) => g.3.push(overload),
            None => grouped.push((s, name, table, vec![overload], r[5].clone())),
        }
    }
    for (s, name, _, overloads, comment) in grouped {
        out.push(obj(MACRO, catalog, &s, &name, format!("CREATE MACRO {{name}}{}", overloads.join(", ")), comment));
    }
    Ok(out)
}

/// The statement that creates `o` under `catalog.schema.name`.
pub fn create_sql(o: &DbObject, catalog: &str, schema: &str) -> String {
    if o.kind == SCHEMA {
        return format!("CREATE SCHEMA IF NOT EXISTS {}.{}", ident(catalog), ident(schema));
    }
    let full = format!("{}.{}.{}", ident(catalog), ident(schema), ident(&o.name));
    o.sql.replacen("{name}", &full, 1)
}

/// Whether an object of this kind and name exists.
pub fn exists(db: &dyn Sql, kind: &str, catalog: &str, schema: &str, name: &str) -> Result<bool> {
    let f = format!("database_name = {} AND schema_name = {}", literal(catalog), literal(schema));
    let q = match kind {
        SCHEMA => format!("SELECT count(*) FROM duckdb_schemas() WHERE database_name = {} AND schema_name = {}", literal(catalog), literal(name)),
        TYPE => format!("SELECT count(*) FROM duckdb_types() WHERE {f} AND type_name = {}", literal(name)),
        SEQUENCE => format!("SELECT count(*) FROM duckdb_sequences() WHERE {f} AND sequence_name = {}", literal(name)),
        VIEW => format!("SELECT count(*) FROM duckdb_views() WHERE {f} AND view_name = {}", literal(name)),
        _ => format!(
            "SELECT count(*) FROM duckdb_functions() WHERE {f} AND function_name = {} AND function_type IN ('macro', 'table_macro')",
            literal(name)
        ),
    };
    Ok(db.query(&q)?.scalar().is_some_and(|n| n != "0"))
}

/// The statement that drops an existing object before it is recreated.
pub fn drop_sql(kind: &str, catalog: &str, schema: &str, name: &str) -> Option<String> {
    let full = format!("{}.{}.{}", ident(catalog), ident(schema), ident(name));
    match kind {
        TYPE => Some(format!("DROP TYPE {full}")),
        SEQUENCE => Some(format!("DROP SEQUENCE {full}")),
        VIEW => Some(format!("DROP VIEW {full}")),
        MACRO => Some(format!("DROP MACRO {full}")),
        _ => None,
    }
}

/// `COMMENT ON` for an object, if it has a comment.
pub fn comment_sql(o: &DbObject, catalog: &str, schema: &str) -> Option<String> {
    let c = o.comment.as_ref()?;
    let what = match o.kind.as_str() {
        SCHEMA => return Some(format!("COMMENT ON SCHEMA {}.{} IS {}", ident(catalog), ident(schema), literal(c))),
        TYPE => "TYPE",
        SEQUENCE => "SEQUENCE",
        VIEW => "VIEW",
        _ => "MACRO",
    };
    Some(format!("COMMENT ON {what} {}.{}.{} IS {}", ident(catalog), ident(schema), ident(&o.name), literal(c)))
}

/// A view definition moved to another schema/catalog: references to tables of the source
/// schema inside its query are pointed at the target (rewritten on DuckDB's own parse tree
/// via `json_serialize_sql`). Anything it cannot parse is left as it was.
pub fn retarget_view(db: &dyn Sql, o: &DbObject, from_catalog: &str, to_catalog: &str, to_schema: &str) -> String {
    let original = o.sql.clone();
    let Some(pos) = original.find(" AS ") else { return original };
    let (head, body) = (&original[..pos], original[pos + 4..].trim().trim_end_matches(';'));
    let Ok(rows) = db.query(&format!("SELECT json_serialize_sql({})", literal(body))) else { return original };
    let Some(json) = rows.scalar() else { return original };
    let Ok(mut tree) = serde_json::from_str::<serde_json::Value>(json) else { return original };
    if tree.get("error").and_then(|e| e.as_bool()) != Some(false) {
        return original;
    }
    fn walk(v: &mut serde_json::Value, from_schema: &str, from_catalog: &str, to_catalog: &str, to_schema: &str) {
        match v {
            serde_json::Value::Object(map) => {
                if map.get("type").and_then(|t| t.as_str()) == Some("BASE_TABLE") {
                    let schema = map.get("schema_name").and_then(|s| s.as_str()).unwrap_or("").to_string();
                    let catalog = map.get("catalog_name").and_then(|s| s.as_str()).unwrap_or("").to_string();
                    let same_catalog = catalog.is_empty() || catalog.eq_ignore_ascii_case(from_catalog);
                    if same_catalog && schema.eq_ignore_ascii_case(from_schema) {
                        map.insert("schema_name".into(), serde_json::Value::String(to_schema.into()));
                        map.insert("catalog_name".into(), serde_json::Value::String(to_catalog.into()));
                        // DuckDB 2.0 also carries the name as a path, which wins when present
                        if map.contains_key("qualified_name") {
                            let table = map.get("table_name").cloned().unwrap_or(serde_json::Value::Null);
                            map.insert(
                                "qualified_name".into(),
                                serde_json::json!({ "path": [to_catalog, to_schema, table] }),
                            );
                        }
                    }
                }
                for child in map.values_mut() {
                    walk(child, from_schema, from_catalog, to_catalog, to_schema);
                }
            }
            serde_json::Value::Array(items) => {
                for child in items {
                    walk(child, from_schema, from_catalog, to_catalog, to_schema);
                }
            }
            _ => {}
        }
    }
    walk(&mut tree, &o.schema, from_catalog, to_catalog, to_schema);
    let Ok(rows) = db.query(&format!("SELECT json_deserialize_sql({}::JSON)", literal(&tree.to_string()))) else { return original };
    match rows.scalar() {
        Some(sql) => format!("{head} AS {sql}"),
        None => original,
    }
}

/// Restores what `duckdb_functions()` does not expose: the default values of macro
/// parameters (`CREATE MACRO f(a, b := 1)`). DuckDB prints full macro definitions only in
/// EXPORT DATABASE, so the catalog is copied without data (`COPY FROM DATABASE … (SCHEMA)`)
/// into a scratch in-memory database and that is exported; its `CREATE MACRO` lines replace
/// the captured ones. Any failure leaves the captured definitions as they were.
pub fn add_macro_defaults(db: &dyn Sql, catalog: &str, objects: &mut [DbObject]) {
    if !objects.iter().any(|o| o.kind == MACRO) {
        return;
    }
    let stamp = format!("{}_{}", std::process::id(), crate::engine::now_micros());
    let scratch = format!("__snapshot_macros_{stamp}");
    let dir = std::env::temp_dir().join(format!("snapshot-macros-{stamp}"));
    let exported = (|| -> Result<String> {
        db.exec(&format!("ATTACH ':memory:' AS {}", ident(&scratch)))?;
        let copied = db
            .exec(&format!("COPY FROM DATABASE {} TO {} (SCHEMA)", ident(catalog), ident(&scratch)))
            .and_then(|_| db.exec(&format!("EXPORT DATABASE {} TO {}", ident(&scratch), literal(&dir.to_string_lossy()))));
        let _ = db.exec(&format!("DETACH {}", ident(&scratch)));
        copied?;
        std::fs::read_to_string(dir.join("schema.sql")).map_err(|e| Error::io(dir.join("schema.sql"), e))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let Ok(schema_sql) = exported else { return };
    let mut statement = String::new();
    for line in schema_sql.lines() {
        if statement.is_empty() && !line.starts_with("CREATE MACRO ") {
            continue;
        }
        statement.push_str(line);
        statement.push('\n');
        if !line.trim_end().ends_with(';') {
            continue;
        }
        let full = std::mem::take(&mut statement);
        let text = full.trim().trim_end_matches(';');
        let Some(after) = text.strip_prefix("CREATE MACRO ") else { continue };
        let Some(rest) = skip_qualified(after) else { continue };
        let name_parts = crate::engine::sql::split_qualified(&after[..after.len() - rest.len()]).unwrap_or_default();
        let (schema, name) = match name_parts.as_slice() {
            [n] => ("main".to_string(), n.clone()),
            [s, n] => (s.clone(), n.clone()),
            [_, s, n] => (s.clone(), n.clone()),
            _ => continue,
        };
        if let Some(o) = objects.iter_mut().find(|o| o.kind == MACRO && o.schema == schema && o.name == name) {
            o.sql = format!("CREATE MACRO {{name}}{rest}");
        }
    }
}
