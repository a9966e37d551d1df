//! Structure-aware fuzzing of every RPC's decode-and-validate path, through the real
//! server: requests are generated from the service descriptors (every field of every
//! request message, nested messages, repeated fields, out-of-range enums, hostile
//! strings and timestamps), sent as raw protobuf, and every answer must be a clean
//! status: INVALID_ARGUMENT always names the bad fields, and nothing is ever UNKNOWN or
//! INTERNAL. `FUZZ_CASES` sets the cases per method (the test command runs a smoke size).

use std::collections::HashMap;
use std::time::Duration;

use billing::proto::FILE_DESCRIPTOR_SET;
use bytes::{Buf, BufMut};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic_types::StatusExt;

use crate::support::TestServer;
use crate::support::fixtures::Tenant;

/// Passes request and response bodies through as bytes.
#[derive(Default, Clone)]
struct RawCodec;

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Self;
    type Decoder = Self;
    fn encoder(&mut self) -> Self {
        Self
    }
    fn decoder(&mut self) -> Self {
        Self
    }
}

/// Generates wire-format messages from descriptors.
struct Generator<'a> {
    messages: HashMap<String, &'a DescriptorProto>,
    strings: Vec<String>,
    rng: StdRng,
}

impl Generator<'_> {
    fn string(&mut self) -> String {
        match self.rng.random_range(0..10) {
            0..=5 => self.strings[self.rng.random_range(0..self.strings.len())].clone(),
            6 => "x".repeat(self.rng.random_range(0..20_000)),
            7 => (0..self.rng.random_range(1..40)).map(|_| self.rng.random_range(' '..='~')).collect(),
            8 => format!("{}.{}", self.rng.random::<i64>(), self.rng.random::<u32>()),
            _ => (0..self.rng.random_range(1..8)).map(|_| self.rng.random::<char>()).collect(),
        }
    }

    fn varint(&mut self) -> u64 {
        match self.rng.random_range(0..6) {
            0 => 0,
            1 => self.rng.random_range(1..6),
            2 => u64::MAX,
            3 => i32::MIN as i64 as u64,
            4 => self.rng.random_range(0..1000),
            _ => self.rng.random(),
        }
    }

    fn message(&mut self, type_name: &str, depth: usize, buf: &mut Vec<u8>) {
        let Some(desc) = self.messages.get(type_name.trim_start_matches('.')).copied() else {
            return;
        };
        if type_name == ".google.protobuf.Timestamp" {
            let seconds: i64 = match self.rng.random_range(0..5) {
                0 => 253_402_300_800 + self.rng.random_range(0..1_000_000_000), // past year 9999
                1 => -62_135_596_801 - self.rng.random_range(0..1_000_000),     // before year 1
                2 => 1_790_000_000 + self.rng.random_range(-100_000_000..100_000_000),
                3 => i64::MAX,
                _ => self.rng.random(),
            };
            encode_key(1, WireType::Varint, buf);
            encode_varint(seconds as u64, buf);
            encode_key(2, WireType::Varint, buf);
            encode_varint(self.varint(), buf);
            return;
        }
        for field in &desc.field {
            if self.rng.random_range(0..4) == 0 {
                continue;
            }
            let repeats = if field.label() == Label::Repeated { self.rng.random_range(0..4) } else { 1 };
            for _ in 0..repeats {
                self.field(field, depth, buf);
            }
        }
    }

    fn field(&mut self, field: &prost_types::FieldDescriptorProto, depth: usize, buf: &mut Vec<u8>) {
        let tag = field.number() as u32;
        match field.r#type() {
            Type::String | Type::Bytes => {
                let s = self.string();
                encode_key(tag, WireType::LengthDelimited, buf);
                encode_varint(s.len() as u64, buf);
                buf.extend_from_slice(s.as_bytes());
            }
            Type::Message => {
                if depth > 6 {
                    return;
                }
                let mut inner = Vec::new();
                self.message(field.type_name(), depth + 1, &mut inner);
                encode_key(tag, WireType::LengthDelimited, buf);
                encode_varint(inner.len() as u64, buf);
                buf.extend_from_slice(&inner);
            }
            Type::Double | Type::Fixed64 | Type::Sfixed64 => {
                encode_key(tag, WireType::SixtyFourBit, buf);
                buf.put_u64_le(self.rng.random());
            }
            Type::Float | Type::Fixed32 | Type::Sfixed32 => {
                encode_key(tag, WireType::ThirtyTwoBit, buf);
                buf.put_u32_le(self.rng.random());
            }
            _ => {
                encode_key(tag, WireType::Varint, buf);
                let v = self.varint();
                encode_varint(if field.r#type() == Type::Bool { v % 2 } else { v }, buf);
            }
        }
    }
}

struct Method {
    path: String,
    input: String,
    streaming: bool,
}

fn methods(set: &FileDescriptorSet) -> Vec<Method> {
    let mut out = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == "billing.commitments.v1") {
        for service in &file.service {
            for m in &service.method {
                out.push(Method {
                    path: format!("/billing.commitments.v1.{}/{}", service.name(), m.name()),
                    input: m.input_type().to_owned(),
                    streaming: m.server_streaming(),
                });
            }
        }
    }
    out
}

fn all_messages(set: &FileDescriptorSet) -> HashMap<String, &DescriptorProto> {
    fn add<'a>(prefix: &str, d: &'a DescriptorProto, out: &mut HashMap<String, &'a DescriptorProto>) {
        let name = format!("{prefix}.{}", d.name());
        for nested in &d.nested_type {
            add(&name, nested, out);
        }
        out.insert(name, d);
    }
    let mut out = HashMap::new();
    for file in &set.file {
        for d in &file.message_type {
            add(file.package(), d, &mut out);
        }
    }
    out
}

/// Checks one answer: a clean status, with field paths when the input was refused.
fn check(path: &str, status: &tonic::Status) {
    match status.code() {
        Code::InvalidArgument => {
            let fields: Vec<String> = status
                .get_error_details()
                .bad_request()
                .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
                .unwrap_or_default();
            assert!(
                !fields.is_empty() && fields.iter().all(|f| !f.is_empty()),
                "{path}: INVALID_ARGUMENT without field paths: {status:?}"
            );
        }
        Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::ResourceExhausted => {}
        other => panic!("{path}: unexpected {other:?}: {status:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_message_decodes_and_validates_without_panic_into_clean_statuses() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
    let cases: usize = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(25);
    let seed: u64 = std::env::var("FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("fuzz seed {seed} (FUZZ_SEED reproduces it), {cases} cases per method");
    let strings = [
        "",
        " ",
        "0",
        "1",
        "-1",
        "12.50",
        "1e5",
        "12,50",
        "NaN",
        "-0",
        "0.0000000000000000000000000001",
        "79228162514264337593543950336",
        "99999999999999999999999999999.5",
        "USD",
        "EUR",
        "CREED",
        "EXXON",
        "' OR 1=1 --",
        "\u{0}",
        "ü💥",
        "day",
        "MONTH",
        "customer",
        "2026-01-01T00:00:00Z",
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
        "[{\"op\":\"replace\",\"path\":\"/name\",\"value\":\"x\"}]",
        "{\"a\":",
        "/",
        "~1",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([t.customer_id.clone(), t.vod.clone(), t.fuel.clone(), uuid::Uuid::now_v7().to_string()])
    .collect();
    let mut generator = Generator { messages: all_messages(&set), strings, rng: StdRng::seed_from_u64(seed) };
    let channel = server.channel().await;
    let bearer: tonic::metadata::AsciiMetadataValue = format!("Bearer {}", t.key).parse().unwrap();
    let methods = methods(&set);
    assert!(methods.len() >= 30, "found the services' methods: {}", methods.len());
    let mut answered: HashMap<Code, usize> = HashMap::new();
    for method in &methods {
        for _ in 0..cases {
            let mut body = Vec::new();
            generator.message(&method.input, 0, &mut body);
            let body_len = body.len();
            let mut client = tonic::client::Grpc::new(channel.clone());
            client.ready().await.unwrap();
            let mut req = tonic::Request::new(body);
            req.metadata_mut().insert("authorization", bearer.clone());
            req.set_timeout(Duration::from_secs(10));
            let path = http::uri::PathAndQuery::from_maybe_shared(method.path.clone()).unwrap();
            let outcome = if method.streaming {
                match client.server_streaming(req, path, RawCodec).await {
                    Ok(response) => {
                        let mut stream = response.into_inner();
                        match tokio::time::timeout(Duration::from_millis(100), stream.message()).await {
                            Ok(Err(status)) => Err(status),
                            _ => Ok(()),
                        }
                    }
                    Err(status) => Err(status),
                }
            } else {
                client.unary(req, path, RawCodec).await.map(|_| ())
            };
            let code = match outcome {
                Ok(()) => Code::Ok,
                Err(status) => {
                    check(&format!("{} ({} bytes)", method.path, body_len), &status);
                    status.code()
                }
            };
            *answered.entry(code).or_default() += 1;
        }
    }
    eprintln!("answers by code: {answered:?}");
    // Still serving after all of it.
    server.wait_serving().await;
    assert!(answered.get(&Code::InvalidArgument).copied().unwrap_or(0) > 0, "the fuzzer reached validation");
}
