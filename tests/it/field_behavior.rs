//! `google.api.field_behavior` (AIP-203) on the contract is true: every field a request
//! can carry declares its behavior, "Output only." in a comment is OUTPUT_ONLY and the
//! reverse, and every REQUIRED field left out of a request is refused by the server,
//! named in the BadRequest, for every RPC.

use std::collections::BTreeSet;

use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, Value,
};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;

use crate::support::{Key, TestServer, bad_fields};

const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;

struct Contract {
    pool: DescriptorPool,
    behavior: ExtensionDescriptor,
}

impl Contract {
    fn load() -> Self {
        let pool =
            DescriptorPool::decode(billing::proto::FILE_DESCRIPTOR_SET).expect("the descriptor set decodes");
        let behavior =
            pool.get_extension_by_name("google.api.field_behavior").expect("field_behavior is imported");
        Self { pool, behavior }
    }

    fn behaviors(&self, field: &FieldDescriptor) -> Vec<i32> {
        match field.options().get_extension(&self.behavior).as_ref() {
            Value::List(items) => items.iter().filter_map(Value::as_enum_number).collect(),
            _ => Vec::new(),
        }
    }

    fn methods(&self) -> Vec<MethodDescriptor> {
        self.pool
            .services()
            .filter(|s| s.package_name() == "billing.commitments.v1")
            .flat_map(|s| s.methods().collect::<Vec<_>>())
            .collect()
    }

    /// Our messages a request can carry, from every method's input, transitively.
    fn request_messages(&self) -> Vec<MessageDescriptor> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<_> = self.methods().iter().map(MethodDescriptor::input).collect();
        let mut out = Vec::new();
        while let Some(m) = todo.pop() {
            // Map entries are the map field's: their key and value have no options.
            if !m.full_name().starts_with("billing.")
                || m.is_map_entry()
                || !seen.insert(m.full_name().to_owned())
            {
                continue;
            }
            for f in m.fields() {
                if let Kind::Message(inner) = f.kind() {
                    todo.push(inner);
                }
            }
            out.push(m);
        }
        out
    }

    /// The leading comment of `field`.
    fn comment(&self, field: &FieldDescriptor) -> String {
        let file = field.parent_file().file_descriptor_proto().clone();
        file.source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .find(|l| l.path == field.path())
            .and_then(|l| l.leading_comments.clone())
            .unwrap_or_default()
    }
}

#[test]
fn every_field_a_request_can_carry_declares_its_behavior() {
    let contract = Contract::load();
    let mut missing = Vec::new();
    let mut contradicted = Vec::new();
    for m in contract.request_messages() {
        for f in m.fields() {
            let behaviors = contract.behaviors(&f);
            if behaviors.is_empty() {
                missing.push(f.full_name().to_owned());
            }
            let says_output_only = contract.comment(&f).trim_start().starts_with("Output only.");
            if says_output_only != behaviors.contains(&OUTPUT_ONLY) {
                contradicted.push(f.full_name().to_owned());
            }
        }
    }
    assert!(missing.is_empty(), "fields without google.api.field_behavior: {missing:#?}");
    assert!(
        contradicted.is_empty(),
        "'Output only.' in the comment but not OUTPUT_ONLY, or the reverse: {contradicted:#?}"
    );
}

/// A request with every REQUIRED message field present but empty (so the server looks
/// inside it), and the paths of the REQUIRED fields it leaves out.
fn request_without_required(
    contract: &Contract,
    message: &MessageDescriptor,
    prefix: &str,
    nested: bool,
    missing: &mut Vec<String>,
) -> DynamicMessage {
    let mut out = DynamicMessage::new(message.clone());
    for f in message.fields() {
        if !contract.behaviors(&f).contains(&REQUIRED) {
            continue;
        }
        let path = format!("{prefix}{}", f.name());
        match f.kind() {
            Kind::Message(inner)
                if nested && !f.is_list() && !f.is_map() && !inner.full_name().starts_with("google.") =>
            {
                let inner_message =
                    request_without_required(contract, &inner, &format!("{path}."), nested, missing);
                out.set_field(&f, Value::Message(inner_message));
            }
            _ => missing.push(path),
        }
    }
    out
}

/// Whether the server named `path`, or a field inside it.
fn named(reported: &[String], path: &str) -> bool {
    reported
        .iter()
        .any(|r| r == path || r.starts_with(&format!("{path}.")) || r.starts_with(&format!("{path}[")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_refuses_a_request_without_its_required_fields_and_names_them() {
    let contract = Contract::load();
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let channel = server.channel().await;
    let mut failures = Vec::new();
    for method in contract.methods() {
        // An update changes only what its mask names: the resource's REQUIRED fields are
        // required on create (AIP-203), so only the request's own are checked.
        let nested = !method.name().starts_with("Update");
        let mut missing = Vec::new();
        let request = request_without_required(&contract, &method.input(), "", nested, &mut missing);
        if missing.is_empty() {
            continue;
        }
        let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
        let mut grpc = tonic::client::Grpc::new(InterceptedService::new(channel.clone(), Key::bearer(&key)));
        grpc.ready().await.unwrap();
        let call = tonic::Request::new(request);
        let codec = tonic_prost::ProstCodec::<DynamicMessage, ()>::default();
        let route = http::uri::PathAndQuery::try_from(path.as_str()).unwrap();
        let status = if method.is_server_streaming() {
            grpc.server_streaming(call, route, codec).await.err()
        } else {
            grpc.unary(call, route, codec).await.err()
        };
        let reported = status.as_ref().map(bad_fields).unwrap_or_default();
        let code = status.as_ref().map(|s| s.code());
        if code != Some(Code::InvalidArgument) {
            failures.push(format!("{path}: {code:?} without {missing:?}"));
            continue;
        }
        let unnamed: Vec<_> = missing.iter().filter(|p| !named(&reported, p)).collect();
        if !unnamed.is_empty() {
            failures
                .push(format!("{path}: REQUIRED {unnamed:?} left out but not named (named {reported:?})"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
