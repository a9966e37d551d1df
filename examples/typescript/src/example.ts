// A TypeScript client of billing-commitments: creates a customer with a per-call usage
// limit, records usage (one call within it, two past it), and follows the violation
// feed, resuming after a disconnect from the last cursor it kept.
//
//   BILLING_ADDRESS=http://127.0.0.1:50051 BILLING_API_KEY=bck_... npm start
//
// Progress goes to stderr; the last line on stdout is a JSON summary of what was seen.
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { type Interceptor, createClient } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";

import { AllowanceService } from "../gen/billing/commitments/v1/allowance_service_pb.js";
import { CustomerService } from "../gen/billing/commitments/v1/customer_service_pb.js";
import { ProductKind, ProductService } from "../gen/billing/commitments/v1/product_service_pb.js";
import {
  type UsageEvent,
  UsageDecision,
  UsageEventSchema,
  UsageService,
} from "../gen/billing/commitments/v1/usage_service_pb.js";
import { ViolationKind, type Violation } from "../gen/billing/commitments/v1/violation_pb.js";
import {
  ViolationService,
  type WatchViolationsRequest,
} from "../gen/billing/commitments/v1/violation_service_pb.js";

const address = process.env.BILLING_ADDRESS ?? "http://127.0.0.1:50051";
const apiKey = process.env.BILLING_API_KEY;
if (!apiKey) throw new Error("set BILLING_API_KEY (from `billing-commitments admin create-api-key`)");

// Every call carries the organization's API key.
const authenticate: Interceptor = (next) => (request) => {
  request.header.set("authorization", `Bearer ${apiKey}`);
  return next(request);
};
// One HTTP/2 connection for every call; closed at the end so the process can exit.
const sessionManager = new Http2SessionManager(address);
const transport = createGrpcTransport({ baseUrl: address, interceptors: [authenticate], sessionManager });
const customers = createClient(CustomerService, transport);
const products = createClient(ProductService, transport);
const allowances = createClient(AllowanceService, transport);
const usage = createClient(UsageService, transport);
const feed = createClient(ViolationService, transport);

const run = Date.now().toString(36); // keeps ids unique when the example runs again
const { customer } = await customers.createCustomer({
  customer: { externalId: `TS-${run}`, name: "TypeScript example", timeZone: "Europe/Athens" },
});
if (!customer) throw new Error("CreateCustomer answered no customer");
const productCode = `TSVOD-${run}`;
await products.createProduct({ product: { code: productCode, name: "Video on demand", kind: ProductKind.SERVICE } });
await allowances.replaceAllowanceLimits({
  limits: { customer: { case: "customerId", value: customer.id }, accumulatedMaximumUsagePerTransaction: "10" },
});
console.error(`customer ${customer.id}: at most 10 units a call`);

// Records one usage event; replaying the same event id would return this same answer.
async function record(eventId: string, quantity: string): Promise<string> {
  const event: UsageEvent = create(UsageEventSchema, {
    eventId,
    customer: { case: "customerId", value: customer!.id },
    product: { case: "productCode", value: productCode },
    quantity,
    ratedAmount: quantity,
    timestamp: timestampNow(),
  });
  const { outcome } = await usage.recordUsage({ event });
  const decision = UsageDecision[outcome?.decision ?? UsageDecision.UNSPECIFIED];
  console.error(`usage ${eventId} of ${quantity}: ${decision}`);
  return decision;
}

// The next violation of the feed from `start`; leaving the loop closes the stream.
async function nextViolation(start: WatchViolationsRequest["start"]): Promise<Violation> {
  for await (const { violation } of feed.watchViolations({
    start,
    customer: { case: "customerId", value: customer!.id },
  })) {
    if (violation) {
      console.error(`violation #${violation.sequence} ${ViolationKind[violation.kind]} for ${violation.eventId}`);
      return violation;
    }
  }
  throw new Error("the feed ended");
}

const decisions = [await record(`${run}-1`, "4"), await record(`${run}-2`, "25")];
const first = await nextViolation({ case: "fromBeginning", value: true });
const cursor = first.cursor; // what a consumer stores to resume from

// Disconnected: a violation happens meanwhile, and resuming after the cursor delivers it.
decisions.push(await record(`${run}-3`, "30"));
const resumed = await nextViolation({ case: "afterCursor", value: cursor });

console.log(
  JSON.stringify({
    customerId: customer.id,
    decisions,
    first: { eventId: first.eventId, kind: ViolationKind[first.kind], sequence: Number(first.sequence) },
    resumed: { eventId: resumed.eventId, kind: ViolationKind[resumed.kind], sequence: Number(resumed.sequence) },
  }),
);
sessionManager.abort();
