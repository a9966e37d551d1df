//! The rules of the service, pure: no tonic, no diesel, no clock, no I/O.
//!
//! Every function here takes what it decides on (including `now`) as arguments, so each
//! rule is a plain unit test. Validation collects every bad field before failing.

pub mod allowance;
pub mod api_key;
pub mod authorship;
pub mod backdating;
pub mod balance_alert;
pub mod commit;
pub mod commitment;
pub mod credit;
pub mod credit_type;
pub mod customer;
pub mod drawdown;
pub mod etag;
pub mod fingerprint;
pub mod ids;
pub mod limits;
pub mod money;
pub mod page;
pub mod product;
pub mod promo;
pub mod reservation;
pub mod scope;
pub mod seal;
pub mod text;
pub mod usage;
pub mod validation;
pub mod violation;
pub mod void;
pub mod windows;
