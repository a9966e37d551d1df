//! Code generated from `proto/` by build.rs: messages, servers and clients.

/// The `billing.commitments.v1` package.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("billing.commitments.v1");
}

/// Encoded descriptors of every proto file, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("billing_descriptor");

/// The `oneof customer { customer_id, customer_external_id }` that every message naming a
/// customer carries: one trait over the enum prost makes for each message, so the
/// conversion to the domain is written once.
pub trait CustomerOneof: Sized {
    /// The oneof naming the customer by id.
    fn by_id(id: String) -> Self;
    /// The oneof naming the customer by external id.
    fn by_external_id(external_id: String) -> Self;
    /// `(id, external id)`: exactly one is `Some`.
    fn parts(&self) -> (Option<&str>, Option<&str>);
}

/// `Some` oneof naming the customer `id`, for any message's `customer` field.
pub fn customer_id<T: CustomerOneof>(id: impl Into<String>) -> Option<T> {
    Some(T::by_id(id.into()))
}

/// `Some` oneof naming the customer by `external_id`, for any message's `customer` field.
pub fn customer_external_id<T: CustomerOneof>(external_id: impl Into<String>) -> Option<T> {
    Some(T::by_external_id(external_id.into()))
}

/// A message with a `customer` oneof.
pub trait NamesCustomer {
    type Oneof: CustomerOneof;
    /// The oneof, to read or to replace.
    fn customer_field(&mut self) -> &mut Option<Self::Oneof>;
}

macro_rules! customer_oneof {
    ($($message:ident :: $module:ident),* $(,)?) => {$(
        impl CustomerOneof for v1::$module::Customer {
            fn by_id(id: String) -> Self {
                Self::CustomerId(id)
            }
            fn by_external_id(external_id: String) -> Self {
                Self::CustomerExternalId(external_id)
            }
            fn parts(&self) -> (Option<&str>, Option<&str>) {
                match self {
                    Self::CustomerId(id) => (Some(id), None),
                    Self::CustomerExternalId(external_id) => (None, Some(external_id)),
                }
            }
        }

        impl NamesCustomer for v1::$message {
            type Oneof = v1::$module::Customer;
            fn customer_field(&mut self) -> &mut Option<Self::Oneof> {
                &mut self.customer
            }
        }

        impl v1::$message {
            /// The customer's id as named by `customer_id`; empty when the message names
            /// none or names it by external id (answers always carry the id).
            pub fn customer_id(&self) -> &str {
                self.customer.as_ref().and_then(|c| c.parts().0).unwrap_or_default()
            }
        }
    )*};
}

customer_oneof!(
    AllowanceLimits::allowance_limits,
    GetAllowanceLimitsRequest::get_allowance_limits_request,
    UpdateAllowanceLimitsRequest::update_allowance_limits_request,
    DeleteAllowanceLimitsRequest::delete_allowance_limits_request,
    Commit::commit,
    ListCommitsRequest::list_commits_request,
    PreviewDrawdownRequest::preview_drawdown_request,
    ApplyDrawdownRequest::apply_drawdown_request,
    Commitment::commitment,
    ListCommitmentsRequest::list_commitments_request,
    EvaluateBasketRequest::evaluate_basket_request,
    ListRewardsRequest::list_rewards_request,
    AppliedPromotion::applied_promotion,
    ListAppliedPromotionsRequest::list_applied_promotions_request,
    UsageEvent::usage_event,
    GetAllowanceUsageRequest::get_allowance_usage_request,
    ListUsageEventsRequest::list_usage_events_request,
    WatchViolationsRequest::watch_violations_request,
    ListViolationsRequest::list_violations_request,
    ReserveUsageRequest::reserve_usage_request,
    ListReservationsRequest::list_reservations_request,
    GetCustomerBalanceRequest::get_customer_balance_request,
    CreateBalanceAlertRequest::create_balance_alert_request,
    ListAlertStatesRequest::list_alert_states_request,
);
