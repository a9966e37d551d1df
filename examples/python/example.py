"""A Python client of billing-commitments: creates a customer with a per-call usage
limit, records usage (one call within it, two past it), and follows the violation feed,
resuming after a disconnect from the last cursor it kept.

    scripts/gen-clients python
    BILLING_ADDRESS=127.0.0.1:50051 BILLING_API_KEY=bck_... .tools/venv/bin/python examples/python/example.py

Progress goes to stderr; the last line on stdout is a JSON summary of what was seen.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))

import grpc  # noqa: E402
from google.protobuf.timestamp_pb2 import Timestamp  # noqa: E402

from billing.commitments.v1 import allowance_service_pb2 as allowances  # noqa: E402
from billing.commitments.v1 import allowance_service_pb2_grpc as allowances_grpc  # noqa: E402
from billing.commitments.v1 import customer_service_pb2 as customers  # noqa: E402
from billing.commitments.v1 import customer_service_pb2_grpc as customers_grpc  # noqa: E402
from billing.commitments.v1 import product_service_pb2 as products  # noqa: E402
from billing.commitments.v1 import product_service_pb2_grpc as products_grpc  # noqa: E402
from billing.commitments.v1 import usage_service_pb2 as usage  # noqa: E402
from billing.commitments.v1 import usage_service_pb2_grpc as usage_grpc  # noqa: E402
from billing.commitments.v1 import violation_pb2  # noqa: E402
from billing.commitments.v1 import violation_service_pb2 as feed  # noqa: E402
from billing.commitments.v1 import violation_service_pb2_grpc as feed_grpc  # noqa: E402


def log(line: str) -> None:
    print(line, file=sys.stderr)


def main() -> None:
    address = os.environ.get("BILLING_ADDRESS", "127.0.0.1:50051")
    key = os.environ["BILLING_API_KEY"]  # from `billing-commitments admin create-api-key`
    metadata = (("authorization", f"Bearer {key}"),)
    run = format(time.time_ns() // 1_000_000, "x")  # keeps ids unique when run again

    with grpc.insecure_channel(address) as channel:
        customer = customers_grpc.CustomerServiceStub(channel).CreateCustomer(
            customers.CreateCustomerRequest(
                customer=customers.Customer(external_id=f"PY-{run}", name="Python example", time_zone="Europe/Athens")
            ),
            metadata=metadata,
        ).customer
        product_code = f"PYVOD-{run}"
        products_grpc.ProductServiceStub(channel).CreateProduct(
            products.CreateProductRequest(
                product=products.Product(code=product_code, name="Video on demand", kind=products.PRODUCT_KIND_SERVICE)
            ),
            metadata=metadata,
        )
        allowances_grpc.AllowanceServiceStub(channel).ReplaceAllowanceLimits(
            allowances.ReplaceAllowanceLimitsRequest(
                limits=allowances.AllowanceLimits(customer_id=customer.id, accumulated_maximum_usage_per_transaction="10")
            ),
            metadata=metadata,
        )
        log(f"customer {customer.id}: at most 10 units a call")
        usage_stub = usage_grpc.UsageServiceStub(channel)
        feed_stub = feed_grpc.ViolationServiceStub(channel)

        def record(event_id: str, quantity: str) -> str:
            """Records one usage event; replaying the event id would return this answer."""
            now = Timestamp()
            now.GetCurrentTime()
            event = usage.UsageEvent(
                event_id=event_id,
                customer_id=customer.id,
                product_code=product_code,
                quantity=quantity,
                rated_amount=quantity,
                timestamp=now,
            )
            outcome = usage_stub.RecordUsage(usage.RecordUsageRequest(event=event), metadata=metadata).outcome
            decision = usage.UsageDecision.Name(outcome.decision)
            log(f"usage {event_id} of {quantity}: {decision}")
            return decision

        def next_violation(**start) -> violation_pb2.Violation:
            """The next violation of the feed from `start`; the stream is closed after it."""
            stream = feed_stub.WatchViolations(
                feed.WatchViolationsRequest(customer_id=customer.id, **start), metadata=metadata
            )
            try:
                violation = next(iter(stream)).violation
            finally:
                stream.cancel()
            kind = violation_pb2.ViolationKind.Name(violation.kind)
            log(f"violation #{violation.sequence} {kind} for {violation.event_id}")
            return violation

        decisions = [record(f"{run}-1", "4"), record(f"{run}-2", "25")]
        first = next_violation(from_beginning=True)
        cursor = first.cursor  # what a consumer stores to resume from

        # Disconnected: a violation happens meanwhile, and resuming after the cursor delivers it.
        decisions.append(record(f"{run}-3", "30"))
        resumed = next_violation(after_cursor=cursor)

    def seen(v: violation_pb2.Violation) -> dict:
        kind = violation_pb2.ViolationKind.Name(v.kind).removeprefix("VIOLATION_KIND_")
        return {"eventId": v.event_id, "kind": kind, "sequence": v.sequence}

    print(
        json.dumps(
            {
                "customerId": customer.id,
                "decisions": [d.removeprefix("USAGE_DECISION_") for d in decisions],
                "first": seen(first),
                "resumed": seen(resumed),
            }
        )
    )


if __name__ == "__main__":
    main()
