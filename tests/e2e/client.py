"""A Python client generated from proto/ by grpcio-tools, used by the end-to-end tests.

Usage: client.py GENERATED_DIR ADDRESS API_KEY SCENARIO
Prints one JSON object with what it observed; the Rust test asserts on it.
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from billing.commitments.v1 import customer_service_pb2 as customers  # noqa: E402
from billing.commitments.v1 import customer_service_pb2_grpc as customers_grpc  # noqa: E402
from billing.commitments.v1 import violation_pb2  # noqa: E402


def catalog(channel, metadata):
    out = {}
    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(health_pb2.HealthCheckRequest(service="billing.commitments.v1.CustomerService"))
    out["health"] = health_pb2.HealthCheckResponse.ServingStatus.Name(status.status)

    stub = customers_grpc.CustomerServiceStub(channel)
    created = stub.CreateCustomer(
        customers.CreateCustomerRequest(
            customer=customers.Customer(external_id="PY-0001", name="Python Customer", time_zone="Europe/Athens")
        ),
        metadata=metadata,
    )
    out["created_id"] = created.customer.id
    listed = stub.ListCustomers(customers.ListCustomersRequest(external_id="PY-0001"), metadata=metadata)
    out["listed_ids"] = [c.id for c in listed.customers]

    try:
        stub.CreateCustomer(customers.CreateCustomerRequest(customer=customers.Customer()), metadata=metadata)
        out["invalid_code"] = "OK"
    except grpc.RpcError as e:
        out["invalid_code"] = e.code().name
    try:
        stub.ListCustomers(customers.ListCustomersRequest())
        out["no_key_code"] = "OK"
    except grpc.RpcError as e:
        out["no_key_code"] = e.code().name
    return out


def feed(channel, metadata):
    """Sets up a limit that blocks everything, records a usage, and receives the
    violation from WatchViolations."""
    from billing.commitments.v1 import allowance_service_pb2 as allowances
    from billing.commitments.v1 import allowance_service_pb2_grpc as allowances_grpc
    from billing.commitments.v1 import product_service_pb2 as products
    from billing.commitments.v1 import product_service_pb2_grpc as products_grpc
    from billing.commitments.v1 import usage_service_pb2 as usage
    from billing.commitments.v1 import usage_service_pb2_grpc as usage_grpc
    from billing.commitments.v1 import violation_service_pb2 as feed_pb
    from billing.commitments.v1 import violation_service_pb2_grpc as feed_grpc
    from google.protobuf.timestamp_pb2 import Timestamp

    customer = customers_grpc.CustomerServiceStub(channel).CreateCustomer(
        customers.CreateCustomerRequest(customer=customers.Customer(external_id="PY-FEED", name="Feed")),
        metadata=metadata,
    ).customer
    products_grpc.ProductServiceStub(channel).CreateProduct(
        products.CreateProductRequest(
            product=products.Product(code="PYVOD", name="VOD", kind=products.PRODUCT_KIND_SERVICE)
        ),
        metadata=metadata,
    )
    allowances_grpc.AllowanceServiceStub(channel).ReplaceAllowanceLimits(
        allowances.ReplaceAllowanceLimitsRequest(
            limits=allowances.AllowanceLimits(customer_id=customer.id, accumulated_maximum_usage_per_transaction="0")
        ),
        metadata=metadata,
    )
    stream = feed_grpc.ViolationServiceStub(channel).WatchViolations(
        feed_pb.WatchViolationsRequest(from_now=True), metadata=metadata, timeout=20
    )
    now = Timestamp()
    now.GetCurrentTime()
    outcome = usage_grpc.UsageServiceStub(channel).RecordUsage(
        usage.RecordUsageRequest(
            event=usage.UsageEvent(
                event_id="py-evt-1", customer_id=customer.id, product_code="PYVOD",
                quantity="1", rated_amount="1", timestamp=now,
            )
        ),
        metadata=metadata,
    ).outcome
    received = next(iter(stream)).violation
    stream.cancel()
    return {
        "decision": usage.UsageDecision.Name(outcome.decision),
        "kind": violation_pb2.ViolationKind.Name(received.kind),
        "event_id": received.event_id,
        "cursor": received.cursor,
        "sequence": received.sequence,
    }


def patch(channel, metadata):
    """Creates a commitment with two minimum spends and moves the second before the
    first with a JSON Patch `move`: its source is `from_path` in Python."""
    from billing.commitments.v1 import commitment_service_pb2 as commitments
    from billing.commitments.v1 import commitment_service_pb2_grpc as commitments_grpc
    from billing.commitments.v1 import common_pb2
    from google.protobuf.timestamp_pb2 import Timestamp

    customer = customers_grpc.CustomerServiceStub(channel).CreateCustomer(
        customers.CreateCustomerRequest(customer=customers.Customer(external_id="PY-PATCH", name="Patch")),
        metadata=metadata,
    ).customer
    start, end = Timestamp(), Timestamp()
    start.GetCurrentTime()
    start.seconds -= 86400
    end.seconds = start.seconds + 400 * 86400
    stub = commitments_grpc.CommitmentServiceStub(channel)
    created = stub.CreateCommitment(
        commitments.CreateCommitmentRequest(
            commitment=commitments.Commitment(
                customer_id=customer.id,
                time_range=common_pb2.TimeRange(start_time=start, end_time=end),
                customer_obligations=commitments.Obligations(
                    minimum_spend=[
                        commitments.MinimumSpend(period=commitments.OBLIGATION_PERIOD_MONTH, amount="100"),
                        commitments.MinimumSpend(period=commitments.OBLIGATION_PERIOD_YEAR, amount="1000"),
                    ]
                ),
            )
        ),
        metadata=metadata,
    ).commitment
    moved = stub.PatchCommitment(
        commitments.PatchCommitmentRequest(
            id=created.id,
            etag=created.etag,
            operations=[
                commitments.PatchOperation(
                    op="move",
                    from_path="/customer_obligations/minimum_spend/1",
                    path="/customer_obligations/minimum_spend/0",
                )
            ],
        ),
        metadata=metadata,
    ).commitment
    return {
        "before": [m.amount for m in created.customer_obligations.minimum_spend],
        "after": [m.amount for m in moved.customer_obligations.minimum_spend],
    }


SCENARIOS = {"catalog": catalog, "feed": feed, "patch": patch}


def main():
    _, _, address, key, scenario = sys.argv
    metadata = (("authorization", f"Bearer {key}"),)
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        print(json.dumps(SCENARIOS[scenario](channel, metadata)))


if __name__ == "__main__":
    main()
