// @generated automatically by Diesel CLI.

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        org_id -> Uuid,
        secret_sha256 -> Bytea,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    customers (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        external_id -> Text,
        name -> Text,
        time_zone -> Text,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    organizations (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    products (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        code -> Text,
        name -> Text,
        tags -> Array<Text>,
        service_type -> Nullable<Text>,
        service_family -> Nullable<Text>,
        kind -> Text,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> organizations (org_id));
diesel::joinable!(customers -> organizations (org_id));
diesel::joinable!(products -> organizations (org_id));

diesel::allow_tables_to_appear_in_same_query!(api_keys, customers, organizations, products,);
