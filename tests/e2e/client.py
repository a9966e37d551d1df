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


SCENARIOS = {"catalog": catalog}


def main():
    _, _, address, key, scenario = sys.argv
    metadata = (("authorization", f"Bearer {key}"),)
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        print(json.dumps(SCENARIOS[scenario](channel, metadata)))


if __name__ == "__main__":
    main()
