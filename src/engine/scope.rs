//! What a scope argument names, and matching it against tables: a table name, a list of
//! names, `'*'` (the whole database with its objects; NULL is an alias), `'s.*'` (schema `s`
//! with its objects), or globs with `*` and `?` in either part (`'in_c_*.*'`,
//! `'main.fact_*'`: the matching tables), minus `exclude := [...]` (names or globs).
//!
//! Parsing and matching are plain Rust; which live tables or snapshot entries exist is the
//! caller's business (`create` resolves against the catalog, `restore` against a manifest).

use crate::engine::sql::ident;
use crate::error::{Error, Result};
use crate::repo::layout::printable;

/// One part of a name: literal (quoted, or without glob characters) or a glob.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Literal(String),
    Glob(String),
}

impl Part {
    /// Case-insensitive, as DuckDB resolves unquoted names.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Part::Literal(l) => l.to_lowercase() == name.to_lowercase(),
            Part::Glob(g) => glob_match(&g.to_lowercase(), &name.to_lowercase()),
        }
    }

    fn text(&self) -> String {
        match self {
            Part::Literal(l) if needs_quotes(l) => ident(l),
            Part::Literal(l) | Part::Glob(l) => l.clone(),
        }
    }
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty() || !s.chars().all(|c| c.is_alphanumeric() || c == '_') || s.contains(['*', '?'])
}

/// One element of a scope.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    /// `'*'` or NULL: the whole (current) database, with its objects.
    Database,
    /// `'s.*'` or `'catalog.s.*'`: one schema with its objects.
    Schema { catalog: Option<String>, schema: String },
    /// Globs: the matching tables. Without a schema part, the caller's default schema; without
    /// a database part, the current database (`'*.*.*'`: every attached database).
    Glob { catalog: Option<Part>, schema: Option<Part>, table: Part },
    /// One table, as the user wrote it (resolved like any table name).
    Table(String),
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector> {
        let trimmed = text.trim();
        if trimmed == "*" {
            return Ok(Selector::Database);
        }
        let Some(parts) = split_pattern(trimmed) else {
            // not a well-formed name (e.g. `../x`): one table name, as typed
            return Ok(Selector::Table(text.to_string()));
        };
        if !parts.iter().any(|p| matches!(p, Part::Glob(_))) {
            return Ok(Selector::Table(text.to_string()));
        }
        let literal = |p: &Part| match p {
            Part::Literal(l) => Some(l.clone()),
            Part::Glob(_) => None,
        };
        let star = |p: &Part| *p == Part::Glob("*".into());
        Ok(match parts.as_slice() {
            [s, t] if star(t) && literal(s).is_some() => Selector::Schema { catalog: None, schema: literal(s).unwrap() },
            [c, s, t] if star(t) && literal(s).is_some() && literal(c).is_some() => {
                Selector::Schema { catalog: literal(c), schema: literal(s).unwrap() }
            }
            [t] => Selector::Glob { catalog: None, schema: None, table: t.clone() },
            [s, t] => Selector::Glob { catalog: None, schema: Some(s.clone()), table: t.clone() },
            [c, s, t] => Selector::Glob { catalog: Some(c.clone()), schema: Some(s.clone()), table: t.clone() },
            _ => unreachable!("split_pattern gives 1-3 parts"),
        })
    }

    /// Whether the selector covers a table at `catalog.schema.table`; `database` is the
    /// caller's current database, `default_schema` the schema of unqualified names. A
    /// `Table` is compared by its name parts (for exclusions; inclusion resolves it properly).
    pub fn covers(&self, database: &str, default_schema: &str, catalog: &str, schema: &str, table: &str) -> bool {
        let same = |a: &str, b: &str| Part::Literal(a.to_string()).matches(b);
        let in_catalog = |c: &Option<String>| c.as_deref().map_or(same(catalog, database), |c| same(c, catalog));
        match self {
            Selector::Database => same(catalog, database),
            Selector::Schema { catalog: c, schema: s } => in_catalog(c) && same(s, schema),
            Selector::Glob { catalog: c, schema: s, table: t } => {
                c.as_ref().map_or(same(catalog, database), |c| c.matches(catalog))
                    && s.as_ref().map_or(same(default_schema, schema), |s| s.matches(schema))
                    && t.matches(table)
            }
            Selector::Table(name) => match crate::engine::sql::split_qualified(name).as_deref() {
                Some([t]) => same(default_schema, schema) && same(t, table) && same(catalog, database),
                Some([s, t]) => same(s, schema) && same(t, table) && same(catalog, database),
                Some([c, s, t]) => same(c, catalog) && same(s, schema) && same(t, table),
                _ => same(name, table),
            },
        }
    }

    /// Whether it covers database objects (views, macros, ...) of `schema`.
    pub fn covers_objects_of(&self, schema: &str) -> bool {
        match self {
            Selector::Database => true,
            Selector::Schema { schema: s, .. } => Part::Literal(s.clone()).matches(schema),
            _ => false,
        }
    }

    /// The selector as the user would write it (recorded in manifests).
    pub fn text(&self) -> String {
        match self {
            Selector::Database => "*".into(),
            Selector::Schema { catalog, schema } => {
                let mut s = catalog.as_ref().map(|c| format!("{}.", Part::Literal(c.clone()).text())).unwrap_or_default();
                s.push_str(&Part::Literal(schema.clone()).text());
                s + ".*"
            }
            Selector::Glob { catalog, schema, table } => {
                let mut s = catalog.as_ref().map(|c| format!("{}.", c.text())).unwrap_or_default();
                if let Some(p) = schema {
                    s.push_str(&p.text());
                    s.push('.');
                }
                s + &table.text()
            }
            Selector::Table(t) => t.clone(),
        }
    }
}

/// A whole scope argument.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeSpec {
    pub selectors: Vec<Selector>,
    pub exclude: Vec<Selector>,
}

/// What a scope amounts to, for recording and for choosing a snapshot by time.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// The whole database (objects included).
    Database,
    /// One schema (objects included).
    Schema { catalog: Option<String>, schema: String },
    /// Named tables only.
    Tables,
    /// Globs (and maybe names): the tables matching at the time.
    Pattern,
}

impl Default for ScopeSpec {
    fn default() -> Self {
        ScopeSpec::everything()
    }
}

impl ScopeSpec {
    /// The whole database.
    pub fn everything() -> ScopeSpec {
        ScopeSpec { selectors: vec![Selector::Database], exclude: Vec::new() }
    }

    /// Parses a scope from its texts (None: the whole database) and `exclude` texts.
    pub fn parse(items: Option<Vec<String>>, exclude: Vec<String>) -> Result<ScopeSpec> {
        let selectors = match items {
            None => vec![Selector::Database],
            Some(items) if items.is_empty() => {
                return Err(Error::Input("the scope list is empty; name at least one table, or '*' for the whole database".into()))
            }
            Some(items) => items.iter().map(|i| Selector::parse(i)).collect::<Result<Vec<_>>>()?,
        };
        if selectors.len() > 1 && selectors.iter().any(|s| matches!(s, Selector::Database | Selector::Schema { .. })) {
            return Err(Error::Input(
                "'*' and 'schema.*' stand alone: give one of them, or a list of tables and table patterns".into(),
            ));
        }
        let exclude = exclude.iter().map(|e| Selector::parse(e)).collect::<Result<Vec<_>>>()?;
        if exclude.contains(&Selector::Database) {
            return Err(Error::Input("exclude := '*' would leave nothing; exclude tables, patterns or 'schema.*'".into()));
        }
        Ok(ScopeSpec { selectors, exclude })
    }

    /// The scope a snapshot recorded, as an argument again (`snapshot_create(NULL)` on a
    /// locked repository means its locked scope).
    pub fn recorded(scope: &crate::repo::manifest::Scope) -> Result<ScopeSpec> {
        use crate::repo::manifest::ScopeKind;
        let quote = |name: &str| crate::engine::sql::ident(name);
        let items = match scope.kind {
            ScopeKind::Database => vec!["*".to_string()],
            ScopeKind::Schema => vec![format!("{}.*", quote(scope.schema.as_deref().unwrap_or("main")))],
            ScopeKind::Tables => scope.tables.clone(),
            ScopeKind::Pattern => scope.patterns.clone(),
        };
        ScopeSpec::parse(Some(items), scope.exclude.clone())
    }

    pub fn shape(&self) -> Shape {
        match self.selectors.as_slice() {
            [Selector::Database] => Shape::Database,
            [Selector::Schema { catalog, schema }] => Shape::Schema { catalog: catalog.clone(), schema: schema.clone() },
            s if s.iter().any(|x| matches!(x, Selector::Glob { .. })) => Shape::Pattern,
            _ => Shape::Tables,
        }
    }

    /// Whether `exclude` removes a table.
    pub fn excluded(&self, database: &str, default_schema: &str, catalog: &str, schema: &str, table: &str) -> bool {
        self.exclude.iter().any(|e| e.covers(database, default_schema, catalog, schema, table))
    }

    /// Whether `exclude` removes the objects of a schema (only `'s.*'` does).
    pub fn excludes_objects_of(&self, schema: &str) -> bool {
        self.exclude.iter().any(|e| matches!(e, Selector::Schema { .. }) && e.covers_objects_of(schema))
    }

    /// The selector texts, as recorded in a manifest's scope.
    pub fn texts(&self) -> Vec<String> {
        self.selectors.iter().map(Selector::text).collect()
    }

    pub fn exclude_texts(&self) -> Vec<String> {
        self.exclude.iter().map(Selector::text).collect()
    }

    /// How the scope reads in an error message.
    pub fn describe(&self) -> String {
        let list = self.texts().iter().map(|t| format!("'{}'", printable(t))).collect::<Vec<_>>().join(", ");
        if self.exclude.is_empty() {
            list
        } else {
            format!("{list} without {}", self.exclude_texts().iter().map(|t| format!("'{}'", printable(t))).collect::<Vec<_>>().join(", "))
        }
    }
}

/// Splits a dotted name into parts; unquoted parts with `*` or `?` are globs. None when the
/// text is not a well-formed name of 1-3 parts.
pub fn split_pattern(name: &str) -> Option<Vec<Part>> {
    let parts = crate::engine::sql::split_name(name)?;
    Some(
        parts
            .into_iter()
            .map(|(p, quoted)| if !quoted && p.contains(['*', '?']) { Part::Glob(p) } else { Part::Literal(p) })
            .collect(),
    )
}

/// `*` matches any run of characters, `?` one character; everything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("fact_*", "fact_sales"));
        assert!(glob_match("fact_*", "fact_"));
        assert!(!glob_match("fact_*", "dim_x"));
        assert!(glob_match("in_c_*", "in_c_customers"));
        assert!(glob_match("t?", "t1"));
        assert!(!glob_match("t?", "t12"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(Selector::parse("*").unwrap(), Selector::Database);
        assert_eq!(Selector::parse("hr.*").unwrap(), Selector::Schema { catalog: None, schema: "hr".into() });
        assert_eq!(Selector::parse("db.hr.*").unwrap(), Selector::Schema { catalog: Some("db".into()), schema: "hr".into() });
        assert_eq!(Selector::parse("\"my s\".*").unwrap(), Selector::Schema { catalog: None, schema: "my s".into() });
        assert_eq!(
            Selector::parse("main.fact_*").unwrap(),
            Selector::Glob { catalog: None, schema: Some(Part::Literal("main".into())), table: Part::Glob("fact_*".into()) }
        );
        assert_eq!(
            Selector::parse("in_c_*.*").unwrap(),
            Selector::Glob { catalog: None, schema: Some(Part::Glob("in_c_*".into())), table: Part::Glob("*".into()) }
        );
        assert_eq!(Selector::parse("fact_?").unwrap(), Selector::Glob { catalog: None, schema: None, table: Part::Glob("fact_?".into()) });
        assert_eq!(Selector::parse("main.orders").unwrap(), Selector::Table("main.orders".into()));
        // quoted parts are literal, even with glob characters
        assert_eq!(Selector::parse("\"a*b\"").unwrap(), Selector::Table("\"a*b\"".into()));
        assert_eq!(Selector::parse("../x").unwrap(), Selector::Table("../x".into()));
        // a pattern in the database part reaches every attached database it matches
        let all = Selector::parse("*.*.*").unwrap();
        assert_eq!(all, Selector::Glob { catalog: Some(Part::Glob("*".into())), schema: Some(Part::Glob("*".into())), table: Part::Glob("*".into()) });
        assert!(all.covers("db", "main", "sales", "eu", "orders") && all.covers("db", "main", "db", "main", "t"));
        let sales = Selector::parse("sales.*.*").unwrap();
        assert!(sales.covers("db", "main", "SALES", "eu", "orders") && !sales.covers("db", "main", "db", "eu", "orders"));
        assert_eq!(sales.text(), "sales.*.*");
    }

    #[test]
    fn covers_tables() {
        let g = Selector::parse("main.fact_*").unwrap();
        assert!(g.covers("db", "main", "db", "main", "FACT_sales"));
        assert!(!g.covers("db", "main", "db", "other", "fact_sales"));
        assert!(!g.covers("db", "main", "other_db", "main", "fact_sales"));
        let s = Selector::parse("hr.*").unwrap();
        assert!(s.covers("db", "main", "db", "HR", "x"));
        assert!(s.covers_objects_of("hr") && !s.covers_objects_of("main"));
        let bare = Selector::parse("fact_*").unwrap();
        assert!(bare.covers("db", "main", "db", "main", "fact_a") && !bare.covers("db", "main", "db", "s", "fact_a"));
        let t = Selector::parse("orders").unwrap();
        assert!(t.covers("db", "main", "db", "main", "Orders") && !t.covers("db", "main", "db", "s", "orders"));
    }

    #[test]
    fn scopes_and_shapes() {
        assert_eq!(ScopeSpec::parse(None, vec![]).unwrap().shape(), Shape::Database);
        assert_eq!(ScopeSpec::parse(Some(vec!["a".into(), "b".into()]), vec![]).unwrap().shape(), Shape::Tables);
        assert_eq!(ScopeSpec::parse(Some(vec!["a".into(), "f_*".into()]), vec![]).unwrap().shape(), Shape::Pattern);
        assert!(ScopeSpec::parse(Some(vec!["*".into(), "b".into()]), vec![]).is_err());
        assert!(ScopeSpec::parse(Some(vec![]), vec![]).is_err());
        assert!(ScopeSpec::parse(None, vec!["*".into()]).is_err());
        let s = ScopeSpec::parse(None, vec!["staging.*".into(), "main.tmp_*".into()]).unwrap();
        assert!(s.excluded("db", "main", "db", "staging", "x"));
        assert!(s.excluded("db", "main", "db", "main", "tmp_1"));
        assert!(!s.excluded("db", "main", "db", "main", "orders"));
        assert!(s.excludes_objects_of("staging") && !s.excludes_objects_of("main"));
        assert_eq!(s.exclude_texts(), vec!["staging.*".to_string(), "main.tmp_*".to_string()]);
        assert_eq!(Selector::parse("\"my s\".*").unwrap().text(), "\"my s\".*");
    }
}
