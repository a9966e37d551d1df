//! Whether the pool can fill. Every instance's pool draws on the one `max_connections`
//! of the server (less what is reserved for superusers and what other clients hold) and
//! on the service role's own connection limit, if it has one; a pool that cannot fill
//! fails calls with UNAVAILABLE under load, long after start, so the shortfall is said
//! at start instead.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::{Conn, DbError};

/// What the server allows, read over one of the pool's own connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, QueryableByName)]
pub struct ServerLimits {
    #[diesel(sql_type = BigInt)]
    pub max_connections: i64,
    /// `superuser_reserved_connections` plus (PostgreSQL 16+) `reserved_connections`.
    #[diesel(sql_type = BigInt)]
    pub reserved: i64,
    /// Client connections open now, this one included.
    #[diesel(sql_type = BigInt)]
    pub in_use: i64,
    /// The role's `CONNECTION LIMIT`; -1 for none.
    #[diesel(sql_type = BigInt)]
    pub role_limit: i64,
    /// The role's connections open now, this one included.
    #[diesel(sql_type = BigInt)]
    pub role_in_use: i64,
}

pub fn read(conn: &mut Conn) -> Result<ServerLimits, DbError> {
    Ok(diesel::sql_query(include_str!("sql/budget.sql")).get_result(conn)?)
}

/// Why a pool of `pool_size` cannot fill given `limits` (read while the pool held one
/// connection), or `None` when it can.
pub fn shortfall(pool_size: u32, limits: &ServerLimits) -> Option<String> {
    let wanted = i64::from(pool_size);
    // The connection that read the limits is the pool's own.
    let free = limits.max_connections - limits.reserved - (limits.in_use - 1);
    if wanted > free {
        return Some(format!(
            "the pool may open {wanted} connections but the server has {free} free \
             (max_connections {}, {} reserved, {} held by other clients): every instance's \
             --db-pool-size together must fit in max_connections",
            limits.max_connections,
            limits.reserved,
            limits.in_use - 1
        ));
    }
    let role_free = limits.role_limit - (limits.role_in_use - 1);
    if limits.role_limit >= 0 && wanted > role_free {
        return Some(format!(
            "the pool may open {wanted} connections but its role may open {role_free} more \
             (CONNECTION LIMIT {}, {} in use by other instances)",
            limits.role_limit,
            limits.role_in_use - 1
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: i64, in_use: i64, role_limit: i64, role_in_use: i64) -> ServerLimits {
        ServerLimits { max_connections, reserved: 3, in_use, role_limit, role_in_use }
    }

    #[test]
    fn a_pool_fits_in_what_the_server_and_the_role_leave_free() {
        // 100 - 3 reserved - 36 others = 61 free.
        assert_eq!(shortfall(61, &limits(100, 37, -1, 1)), None);
        let over = shortfall(62, &limits(100, 37, -1, 1)).expect("one connection too many");
        assert!(over.contains("62") && over.contains("61 free"), "{over}");
        // The role's limit: 20, of which 5 are other instances'.
        assert_eq!(shortfall(15, &limits(100, 6, 20, 6)), None);
        let over = shortfall(16, &limits(100, 6, 20, 6)).expect("past the role's limit");
        assert!(over.contains("CONNECTION LIMIT 20"), "{over}");
    }
}
