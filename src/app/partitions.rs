//! The months of the tables partitioned by month (see `db::partitions`).

use super::{App, AppError};
use crate::db;

impl App {
    /// Makes the missing months of every table partitioned by month, from this one to a
    /// few ahead; returns their names. Spans organizations.
    pub async fn make_months_ahead(&self) -> Result<Vec<String>, AppError> {
        let mut made = Vec::new();
        for table in db::partitions::Partitioned::ALL {
            made.extend(self.db().run(move |conn| db::partitions::make_months_ahead(conn, table)).await?);
        }
        Ok(made)
    }
}
