//! TLS on the gRPC listener: clients that trust the certificate connect and call; a
//! plaintext client cannot.

use std::sync::Arc;
use std::time::Duration;

use billing::proto::v1 as pb;
use billing::server::{ServerConfig, TlsPem};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::server::test_server_config;
use crate::support::{Key, TestDb, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_trust_the_certificate_call_over_tls_and_plaintext_is_refused() {
    let signed = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = signed.cert.pem();
    let tls =
        TlsPem { cert: cert_pem.clone().into_bytes(), key: signed.signing_key.serialize_pem().into_bytes() };
    let config = ServerConfig { tls: Some(tls), ..test_server_config() };
    let server = TestServer::start_with(Arc::new(TestDb::create()), config, |c| c).await;
    let (_, key) = server.org("Acme").await;

    let endpoint = Endpoint::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&cert_pem)).domain_name("localhost"),
        )
        .unwrap()
        .connect_timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.expect("TLS handshake with the trusted certificate");
    let mut health = HealthClient::new(channel.clone());
    let mut serving = false;
    for _ in 0..100 {
        let s = health.check(HealthCheckRequest::default()).await.unwrap().into_inner().status;
        if s == ServingStatus::Serving as i32 {
            serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(serving, "health over TLS reports SERVING");
    let mut customers =
        pb::customer_service_client::CustomerServiceClient::with_interceptor(channel, Key::bearer(&key));
    customers
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .expect("an authenticated call over TLS");

    // A plaintext HTTP/2 client gets no gRPC answer from the TLS listener.
    let plain =
        Endpoint::from_shared(format!("http://{}", server.addr)).unwrap().timeout(Duration::from_secs(2));
    let refused = match plain.connect().await {
        Err(_) => true,
        Ok(ch) => HealthClient::new(ch).check(HealthCheckRequest::default()).await.is_err(),
    };
    assert!(refused, "plaintext is not served on the TLS listener");
}
