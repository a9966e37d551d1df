//! Hand-written statements that each connection prepares once.
//!
//! Diesel never caches a `sql_query`: every run is sent unnamed, so PostgreSQL parses
//! and plans it again (0.1 to 0.3 ms of the server's CPU per statement on the usage
//! path, more than most of them take to execute). A statement made with [`prepared`]
//! has fixed text, so Diesel's statement cache keeps it under that text and its bind
//! types, as it does for its own query builder's statements: parsed once per
//! connection, and planned with PostgreSQL's plan cache.
//!
//! Only for text that never changes (a literal or an `include_str!`); a statement built
//! at run time would fill the cache with one entry per variant.

use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// A statement with fixed text, cached per connection; bind its parameters with
/// [`Prepared::bind`] in order, as with `sql_query`.
#[derive(Clone, Copy, Debug)]
#[must_use = "a statement runs only when loaded or executed"]
pub struct Prepared(&'static str);

/// The statement `sql`, prepared once per connection.
pub fn prepared(sql: &'static str) -> Prepared {
    Prepared(sql)
}

/// A statement with its parameters bound so far (Diesel's own such type for
/// `sql_query` is not nameable, and marks the statement unsafe to cache).
#[derive(Clone, Copy, Debug)]
#[must_use = "a statement runs only when loaded or executed"]
pub struct Bound<Q, V, ST> {
    query: Q,
    value: V,
    sql_type: PhantomData<ST>,
}

/// Binding parameters in order, `$1` first.
pub trait BindNext: Sized {
    /// Binds the next parameter as SQL type `ST`.
    fn bind<ST, V>(self, value: V) -> Bound<Self, V, ST> {
        Bound { query: self, value, sql_type: PhantomData }
    }
}

impl BindNext for Prepared {}
impl<Q, V, ST> BindNext for Bound<Q, V, ST> {}

impl<Q, V, ST> QueryFragment<Pg> for Bound<Q, V, ST>
where
    Q: QueryFragment<Pg>,
    V: ToSql<ST, Pg>,
    Pg: HasSqlType<ST>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        // The placeholder (`$n`) is already in the statement's text.
        out.push_bind_param_value_only(&self.value)
    }
}

impl<Q, V, ST> QueryId for Bound<Q, V, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, V, ST> Query for Bound<Q, V, ST> {
    type SqlType = Untyped;
}

impl<Q, V, ST, Conn> RunQueryDsl<Conn> for Bound<Q, V, ST> {}

impl QueryFragment<Pg> for Prepared {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Unlike `sql_query`, nothing here marks the statement unsafe to cache.
        out.push_sql(self.0);
        Ok(())
    }
}

impl QueryId for Prepared {
    type QueryId = ();
    // The text, not a type, identifies the statement in the cache.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_statement_is_cacheable_and_sql_query_is_not() {
        let backend = Pg;
        let bound = prepared("SELECT $1").bind::<diesel::sql_types::Integer, _>(1);
        assert!(bound.is_safe_to_cache_prepared(&backend).unwrap());
        let raw = diesel::sql_query("SELECT $1").bind::<diesel::sql_types::Integer, _>(1);
        assert!(!raw.is_safe_to_cache_prepared(&backend).unwrap());
    }
}
