//! The wire: proto in, proto out. Each service converts its request into domain values
//! (collecting every bad field), calls the application, and maps the answer back.
//! Nothing is decided here.

pub mod alert;
pub mod allowance;
pub mod api_key;
pub mod auth;
pub mod commit;
pub mod commitment;
pub mod convert;
pub mod credit_type;
pub mod customer;
pub mod customer_ref;
pub mod deadline;
pub mod entry;
pub mod json_value;
pub mod limit_ref;
pub mod message_limit;
pub mod observe;
pub mod product;
pub mod promo;
pub mod request_id;
pub mod reservation;
pub mod scopes;
pub mod shutdown;
pub mod status;
pub mod usage;
pub mod violation;
