//! Which scope each RPC needs. The auth layer checks it before any service runs, so a
//! handler never sees a call its key may not make.

use crate::domain::scope::Scope;

/// Package of every service here.
const PACKAGE: &str = "billing.commitments.v1.";

/// The scope `path` (`/<package>.<Service>/<Method>`) needs; `None` for a method not in
/// this table. The auth layer asks ADMIN for those, so a service added without an entry
/// here is closed to ordinary keys rather than open to all (a test walks the
/// descriptors to keep the table complete).
pub fn required_scope(path: &str) -> Option<Scope> {
    let (service, method) = path.strip_prefix('/')?.strip_prefix(PACKAGE)?.split_once('/')?;
    use Scope::*;
    let scope = match (service, method) {
        ("ApiKeyService", _) => Admin,
        ("ViolationService", "WatchViolations" | "ListViolations") => Feed,
        ("UsageService", "RecordUsage" | "RecordUsageBatch" | "CheckUsage" | "VoidUsageEvent")
        | ("CommitService", "PreviewDrawdown" | "ApplyDrawdown")
        | ("PromoService", "EvaluateBasket" | "RedeemReward")
        | (
            "ReservationService",
            "ReserveUsage" | "ExtendReservation" | "CommitReservation" | "ReleaseReservation",
        ) => Usage,
        ("UsageService", "GetAllowanceUsage" | "ListUsageEvents")
        | ("CommitService", "GetCommitBalance" | "ListCommitLedger")
        | ("CommitmentService", "EvaluateCommitment" | "ListCompensations" | "ListCommitmentEdits")
        | ("PromoService", "ListRewards")
        | ("ReservationService", "GetReservation" | "ListReservations" | "GetCustomerBalance")
        | ("AlertService", "ListAlertStates") => Read,
        (
            "CustomerService" | "ProductService" | "CreditTypeService" | "CommitService"
            | "CommitmentService" | "PromoService" | "AllowanceService",
            m,
        ) if m.starts_with("Get") || m.starts_with("List") => Read,
        ("CustomerService", "CreateCustomer" | "UpdateCustomer" | "DeleteCustomer")
        | ("ProductService", "CreateProduct" | "UpdateProduct" | "DeleteProduct")
        | ("CreditTypeService", "CreateCreditType")
        | ("AlertService", "CreateBalanceAlert" | "DeleteBalanceAlert")
        | ("CommitService", "CreateCommit" | "UpdateCommit" | "VoidCommit" | "AdjustCommitBalance")
        | ("CommitmentService", "CreateCommitment" | "PatchCommitment" | "TerminateCommitment")
        | (
            "PromoService",
            "CreateBillingPromo"
            | "UpdateBillingPromo"
            | "DeleteBillingPromo"
            | "CreateCreditPromotion"
            | "ApplyPromotion"
            | "RemoveAppliedPromotion",
        )
        | (
            "AllowanceService",
            "ReplaceAllowanceLimits" | "UpdateAllowanceLimits" | "DeleteAllowanceLimits",
        ) => Write,
        _ => return None,
    };
    Some(scope)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// Every method the server's descriptors declare in our package.
    fn every_method() -> Vec<String> {
        let set =
            prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        set.file
            .iter()
            .filter(|f| f.package() == "billing.commitments.v1")
            .flat_map(|f| f.service.iter())
            .flat_map(|s| s.method.iter().map(move |m| format!("/{PACKAGE}{}/{}", s.name(), m.name())))
            .collect()
    }

    #[test]
    fn every_method_of_every_service_has_a_scope() {
        let methods = every_method();
        assert!(methods.len() > 50, "descriptors read: {}", methods.len());
        let missing: Vec<_> = methods.iter().filter(|m| required_scope(m).is_none()).collect();
        assert!(missing.is_empty(), "methods without a scope: {missing:?}");
    }

    #[test]
    fn paths_outside_the_package_or_malformed_have_none() {
        assert_eq!(required_scope("/grpc.health.v1.Health/Check"), None);
        assert_eq!(required_scope("/billing.commitments.v1.CustomerService/DropEverything"), None);
        assert_eq!(required_scope("billing.commitments.v1.CustomerService/GetCustomer"), None);
        assert_eq!(required_scope("/billing.commitments.v1.NewService/GetThing"), None);
    }
}
