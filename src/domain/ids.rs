//! Typed identifiers, so an org id can never be passed where a customer id is expected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered (v7) id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// The underlying UUID.
            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// An organization (tenant); every row belongs to one.
    OrgId
);
id_type!(
    /// An API key; the public half of a key string.
    ApiKeyId
);
id_type!(
    /// A customer account.
    CustomerId
);
id_type!(
    /// A catalog product.
    ProductId
);
id_type!(
    /// A commit.
    CommitId
);
id_type!(
    /// A billing promo.
    PromoId
);
id_type!(
    /// A reward granted by a promo.
    RewardId
);
id_type!(
    /// A credit promotion (the definition).
    CreditPromotionId
);
id_type!(
    /// A credit promotion applied to a customer.
    AppliedPromotionId
);
id_type!(
    /// A commitment.
    CommitmentId
);
id_type!(
    /// A reservation: a hold on a customer's allowance and balances.
    ReservationId
);
id_type!(
    /// A balance alert: a threshold on what a customer can still draw.
    BalanceAlertId
);
