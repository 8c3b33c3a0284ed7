//! One SQL interface over the two databases dispatch runs on: SQLite (the embedded default) and
//! PostgreSQL (several instances on one shared database).
//!
//! The request logic (`devices`, `enrolment`, `ingest`, `jobs`, `service`) is written once, against
//! [`Tx`], in SQL that both databases read the same way: `?N` placeholders, `ON CONFLICT`,
//! `CASE` instead of SQLite's two-argument `min`/`max`. This module is the only place that knows
//! the difference: it rewrites placeholders and blob literals for PostgreSQL, converts every value
//! through one neutral [`Value`] (integers are 64-bit on both sides, bytes are `BLOB`/`BYTEA`), and
//! classifies failures: a PostgreSQL that cannot be reached is [`DbError::is_unavailable`] (the
//! request gets a 503 and changes nothing), a serialization conflict between two instances is
//! [`DbError::is_retryable`] (`crate::store` runs the whole transaction again).
//!
//! Errors never carry parameter values or row contents: a PostgreSQL error is reduced to its
//! SQLSTATE and primary message (its `DETAIL`, which can quote a key, is dropped), so nothing a
//! request brought can reach a log through a storage failure.

use std::cell::RefCell;

/// A column or parameter value, the same on both databases.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer (`INTEGER` in SQLite, `BIGINT` in PostgreSQL; booleans are 0/1).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes (`BLOB` / `BYTEA`).
    Blob(Vec<u8>),
}

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL answered with an error (SQLSTATE and primary message only).
    #[error("postgres {code}: {message}")]
    Postgres {
        /// The SQLSTATE, e.g. `40001`.
        code: String,
        /// The server's primary message, without its detail.
        message: String,
    },
    /// PostgreSQL could not be reached, or the connection broke.
    #[error("postgres unavailable: {0}")]
    Unavailable(String),
    /// The PostgreSQL driver refused a value (a type this module does not convert): a bug, not an
    /// outage.
    #[error("postgres driver: {0}")]
    Driver(String),
    /// A query that must return a row returned none.
    #[error("query returned no rows")]
    NoRows,
    /// A value did not fit the type asked for (column `index`).
    #[error("column {index}: {what}")]
    Conversion {
        /// The column's position in the row.
        index: usize,
        /// What did not fit (types only, never the value).
        what: &'static str,
    },
    /// A parameter could not be represented (an unsigned integer above `i64::MAX`).
    #[error("parameter out of range")]
    ParameterRange,
}

impl DbError {
    /// The database cannot be reached: answer 503 and let the client retry.
    pub(crate) fn is_unavailable(&self) -> bool {
        match self {
            DbError::Unavailable(_) => true,
            // Connection exceptions; the server shutting down, starting up, or out of resources
            // (class 53); a statement or lock wait that ran out of time (57014, 55P03).
            DbError::Postgres { code, .. } => {
                code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(code.as_str(), "57P01" | "57P02" | "57P03" | "57014" | "55P03")
            }
            _ => false,
        }
    }

    /// Two transactions conflicted (PostgreSQL's serializable isolation, or a deadlock): running
    /// the transaction again from the start is correct and will eventually succeed. A unique
    /// violation counts too: under serializable isolation it means a concurrent transaction
    /// inserted the same key after this one looked for it (the logic inserts only what it did not
    /// find, or with `ON CONFLICT`), so the retry sees the row.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(self, DbError::Postgres { code, .. } if matches!(code.as_str(), "40001" | "40P01" | "23505"))
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            return DbError::Postgres { code: db.code().code().to_owned(), message: db.message().to_owned() };
        }
        // No answer from the server: the connection is closed, broke, timed out or never opened.
        // Anything else the driver raises itself (a value it cannot convert) is a bug.
        let text = e.to_string();
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if e.is_closed()
            || io
            || text.starts_with("error connecting")
            || text.starts_with("error communicating")
            || text.contains("timeout")
        {
            DbError::Unavailable(if e.is_closed() { "connection closed".into() } else { text })
        } else {
            DbError::Driver(text)
        }
    }
}

impl From<r2d2::Error> for DbError {
    fn from(e: r2d2::Error) -> Self {
        DbError::Unavailable(e.to_string())
    }
}

/// `Result` with [`DbError`].
pub(crate) type Result<T> = std::result::Result<T, DbError>;

/// A Rust value that can be bound as a parameter.
pub(crate) trait ToValue {
    /// The neutral value; fails only for an unsigned integer above `i64::MAX`.
    fn to_value(&self) -> Result<Value>;
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Result<Value> {
                i64::try_from(*self).map(Value::Int).map_err(|_| DbError::ParameterRange)
            }
        }
    )*};
}
int_to_value!(i64, i32, u32, u64, usize, u16, u8);

impl ToValue for bool {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Int(i64::from(*self)))
    }
}
impl ToValue for str {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Text(self.to_owned()))
    }
}
impl ToValue for String {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Text(self.clone()))
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Blob(self.to_vec()))
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Blob(self.clone()))
    }
}
impl<const N: usize> ToValue for [u8; N] {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Blob(self.to_vec()))
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Result<Value> {
        match self {
            Some(v) => v.to_value(),
            None => Ok(Value::Null),
        }
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Result<Value> {
        (**self).to_value()
    }
}

/// The parameters of a statement: `[]`, an array of values of one type, or [`params!`].
pub(crate) trait Params {
    /// The values, in placeholder order.
    fn values(&self) -> Result<Vec<Value>>;
}

impl Params for [&dyn ToValue; 0] {
    fn values(&self) -> Result<Vec<Value>> {
        Ok(Vec::new())
    }
}
impl Params for &[&dyn ToValue] {
    fn values(&self) -> Result<Vec<Value>> {
        self.iter().map(|v| v.to_value()).collect()
    }
}
macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToValue> Params for [T; $n] {
            fn values(&self) -> Result<Vec<Value>> {
                self.iter().map(ToValue::to_value).collect()
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8);

/// Parameters of mixed types: `params![a, b, c]`.
macro_rules! params {
    ($($v:expr),* $(,)?) => {
        &[$(&$v as &dyn $crate::db::ToValue),*] as &[&dyn $crate::db::ToValue]
    };
}
pub(crate) use params;

/// A value read from a column.
pub(crate) trait FromValue: Sized {
    /// Converts column `index`'s value.
    fn from_value(value: &Value, index: usize) -> Result<Self>;
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: &Value, index: usize) -> Result<Self> {
                match value {
                    Value::Int(i) => <$t>::try_from(*i).map_err(|_| DbError::Conversion { index, what: "integer out of range" }),
                    _ => Err(DbError::Conversion { index, what: "not an integer" }),
                }
            }
        }
    )*};
}
int_from_value!(i64, i32, u32, u64, usize);

impl FromValue for bool {
    fn from_value(value: &Value, index: usize) -> Result<Self> {
        match value {
            Value::Int(i) => Ok(*i != 0),
            _ => Err(DbError::Conversion { index, what: "not a boolean" }),
        }
    }
}
impl FromValue for String {
    fn from_value(value: &Value, index: usize) -> Result<Self> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(DbError::Conversion { index, what: "not text" }),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(value: &Value, index: usize) -> Result<Self> {
        match value {
            Value::Blob(b) => Ok(b.clone()),
            _ => Err(DbError::Conversion { index, what: "not bytes" }),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value, index: usize) -> Result<Self> {
        match value {
            Value::Null => Ok(None),
            v => T::from_value(v, index).map(Some),
        }
    }
}

/// One result row.
pub(crate) struct Row {
    values: Vec<Value>,
}

impl Row {
    /// Column `index` as `T` (the first type parameter mirrors `rusqlite::Row::get`, so a call
    /// reads `r.get::<_, String>(0)`).
    pub(crate) fn get<I: ColumnIndex, T: FromValue>(&self, index: I) -> Result<T> {
        let index = index.position();
        let value = self.values.get(index).ok_or(DbError::Conversion { index, what: "no such column" })?;
        T::from_value(value, index)
    }
}

/// A column position. Only `usize` is one, so that a literal `r.get(0)` needs no suffix.
pub(crate) trait ColumnIndex {
    /// The zero-based position.
    fn position(self) -> usize;
}
impl ColumnIndex for usize {
    fn position(self) -> usize {
        self
    }
}

/// `query_row(..).optional()`: no row becomes `None`.
pub(crate) trait OptionalExtension<T> {
    /// `Ok(None)` for [`DbError::NoRows`].
    fn optional(self) -> Result<Option<T>>;
}
impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// An open transaction on either database. Every request's SQL runs through one of these;
/// `crate::store::Store` opens, commits and (on PostgreSQL) retries them.
pub(crate) enum Tx<'a> {
    /// A SQLite transaction (its connection, inside `BEGIN`).
    Sqlite(&'a rusqlite::Connection),
    /// A PostgreSQL transaction and the connection's prepared statements.
    Postgres(RefCell<&'a mut PgConn>, RefCell<postgres::Transaction<'a>>),
}

/// A PostgreSQL connection with its statement cache: each distinct SQL text is prepared once per
/// connection, then only bound and executed (one round trip instead of two).
pub(crate) struct PgConn {
    /// Statements prepared on this connection, by their SQL as the request logic wrote it.
    pub(crate) statements: std::collections::HashMap<String, postgres::Statement>,
}

impl<'a> Tx<'a> {
    /// Runs a statement that returns no rows; the number of rows it changed.
    pub(crate) fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        let values = params.values()?;
        match self {
            Tx::Sqlite(tx) => {
                let mut stmt = tx.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(values.iter().map(sqlite_value)))?)
            }
            Tx::Postgres(..) => {
                let n = self.pg(sql, &values, |tx, stmt, p| tx.execute(stmt, p))?;
                usize::try_from(n).map_err(|_| DbError::Conversion { index: 0, what: "row count" })
            }
        }
    }

    /// Runs several statements with no parameters (schema set-up in tests).
    #[cfg(test)]
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.execute_batch(sql)?),
            Tx::Postgres(_, tx) => Ok(tx.borrow_mut().batch_execute(&pg_sql(sql))?),
        }
    }

    /// All rows of a query.
    pub(crate) fn rows<P: Params>(&self, sql: &str, params: P) -> Result<Vec<Row>> {
        let values = params.values()?;
        match self {
            Tx::Sqlite(tx) => {
                let mut stmt = tx.prepare_cached(sql)?;
                let n = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(values.iter().map(sqlite_value)))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let mut values = Vec::with_capacity(n);
                    for i in 0..n {
                        values.push(from_sqlite(row.get_ref(i)?));
                    }
                    out.push(Row { values });
                }
                Ok(out)
            }
            Tx::Postgres(..) => {
                let rows = self.pg(sql, &values, |tx, stmt, p| tx.query(stmt, p))?;
                rows.iter()
                    .map(|row| {
                        let values = (0..row.len())
                            .map(|i| row.try_get::<_, PgValue>(i).map(|v| v.0))
                            .collect::<std::result::Result<_, _>>()?;
                        Ok(Row { values })
                    })
                    .collect()
            }
        }
    }

    /// The first row of a query mapped by `f`; [`DbError::NoRows`] when there is none.
    pub(crate) fn query_row<P: Params, T>(&self, sql: &str, params: P, f: impl FnOnce(&Row) -> Result<T>) -> Result<T> {
        let rows = self.rows(sql, params)?;
        f(rows.first().ok_or(DbError::NoRows)?)
    }

    /// A statement to run with [`Stmt::query`] or [`Stmt::query_map`] (the shape of rusqlite's
    /// prepared statements; statements are cached per connection on both databases).
    pub(crate) fn prepare_cached<'t>(&'t self, sql: &str) -> Result<Stmt<'t, 'a>> {
        Ok(Stmt { tx: self, sql: sql.to_owned() })
    }

    /// The same as [`Tx::prepare_cached`].
    #[cfg(test)]
    pub(crate) fn prepare<'t>(&'t self, sql: &str) -> Result<Stmt<'t, 'a>> {
        self.prepare_cached(sql)
    }

    /// The SQLite transaction underneath, for the SQLite-only checks of unit tests (counting
    /// virtual machine steps); `None` on PostgreSQL.
    #[cfg(test)]
    pub(crate) fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Tx::Sqlite(tx) => Some(tx),
            Tx::Postgres(..) => None,
        }
    }

    fn pg<T>(
        &self,
        sql: &str,
        values: &[Value],
        run: impl FnOnce(
            &mut postgres::Transaction<'_>,
            &postgres::Statement,
            &[&(dyn postgres::types::ToSql + Sync)],
        ) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let Tx::Postgres(conn, tx) = self else { unreachable!("pg() is called on PostgreSQL transactions only") };
        let mut tx = tx.borrow_mut();
        let mut conn = conn.borrow_mut();
        // Rewritten for PostgreSQL only the first time this connection sees the statement.
        let stmt = match conn.statements.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = tx.prepare(&pg_sql(sql))?;
                conn.statements.insert(sql.to_owned(), s.clone());
                s
            }
        };
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn postgres::types::ToSql + Sync)).collect();
        Ok(run(&mut tx, &stmt, &params)?)
    }
}

/// A statement of a transaction ([`Tx::prepare_cached`]).
pub(crate) struct Stmt<'t, 'a> {
    tx: &'t Tx<'a>,
    sql: String,
}

impl Stmt<'_, '_> {
    /// The rows, to walk with [`Rows::next`].
    pub(crate) fn query<P: Params>(&mut self, params: P) -> Result<Rows> {
        Ok(Rows { rows: self.tx.rows(&self.sql, params)?.into_iter(), current: None })
    }

    /// Each row mapped by `f`, as an iterator of results (collect it into a `Result<Vec<_>>`).
    pub(crate) fn query_map<P: Params, T>(
        &mut self,
        params: P,
        f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        Ok(self.tx.rows(&self.sql, params)?.iter().map(f).collect::<Vec<_>>().into_iter())
    }
}

/// The rows of [`Stmt::query`].
pub(crate) struct Rows {
    rows: std::vec::IntoIter<Row>,
    current: Option<Row>,
}

impl Rows {
    /// The next row, or `None` after the last.
    #[allow(clippy::should_implement_trait)] // Lends the row, which Iterator cannot.
    pub(crate) fn next(&mut self) -> Result<Option<&Row>> {
        self.current = self.rows.next();
        Ok(self.current.as_ref())
    }
}

fn sqlite_value(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Null => rusqlite::types::Value::Null,
        Value::Int(i) => rusqlite::types::Value::Integer(*i),
        Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Value::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
    }
}

fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        // No column of dispatch's holds a float; one read anyway is text, which no integer
        // column conversion accepts (a typed error, never a silent truncation).
        ValueRef::Real(f) => Value::Text(f.to_string()),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// Rewrites SQLite-flavoured SQL for PostgreSQL: `?N` placeholders become `$N` and blob literals
/// `x'..'` become `'\x..'::bytea`. Quoted text is copied as it is.
pub(crate) fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' {
            // A quoted string, with '' as an escaped quote.
            let start = i;
            i += 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(bytes.len());
            out.push_str(&sql[start..i]);
        } else if (c == b'x' || c == b'X')
            && bytes.get(i + 1) == Some(&b'\'')
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'))
        {
            let end = sql[i + 2..].find('\'').map_or(bytes.len(), |e| i + 2 + e);
            out.push_str("'\\x");
            out.push_str(&sql[i + 2..end]);
            out.push_str("'::bytea");
            i = (end + 1).min(bytes.len());
        } else if c == b'?' {
            out.push('$');
            i += 1;
        } else {
            let ch = sql[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// A PostgreSQL column read into a [`Value`], whatever its type.
struct PgValue(Value);

impl<'a> postgres::types::FromSql<'a> for PgValue {
    fn from_sql(
        ty: &postgres::types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        let v = match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            _ => Value::Text(String::from_sql(ty, raw)?),
        };
        Ok(PgValue(v))
    }

    fn from_sql_null(_: &postgres::types::Type) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        use postgres::types::Type;
        matches!(*ty, Type::INT8 | Type::INT4 | Type::INT2 | Type::BOOL | Type::BYTEA)
            || <String as postgres::types::FromSql>::accepts(ty)
    }
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ => Err(format!("an integer parameter cannot be sent as {ty}").into()),
            },
            Value::Text(s) => s.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_blob_literals_are_rewritten_outside_quotes() {
        assert_eq!(
            pg_sql("UPDATE t SET e = x'', h = X'00ff' WHERE a = ?1 AND b = '?2 x''y' AND hex = ?12"),
            "UPDATE t SET e = '\\x'::bytea, h = '\\x00ff'::bytea WHERE a = $1 AND b = '?2 x''y' AND hex = $12"
        );
        // An identifier ending in x is not a blob literal.
        assert_eq!(pg_sql("SELECT max'a'"), "SELECT max'a'");
    }

    #[test]
    fn values_convert_both_ways_and_refuse_what_does_not_fit() {
        assert_eq!(u64::MAX.to_value().unwrap_err().to_string(), "parameter out of range");
        let row = Row { values: vec![Value::Int(-1), Value::Null, Value::Text("t".into())] };
        assert!(row.get::<_, u32>(0).is_err());
        assert_eq!(row.get::<_, i64>(0).unwrap(), -1);
        assert_eq!(row.get::<_, Option<i64>>(1).unwrap(), None);
        assert!(row.get::<_, i64>(1).is_err());
        assert!(row.get::<_, Vec<u8>>(2).is_err());
        assert!(row.get::<_, String>(3).is_err());
    }
}
