// A Go client of billing-commitments: creates a customer with a per-call usage limit,
// records usage (one call within it, two past it), and follows the violation feed,
// resuming after a disconnect from the last cursor it kept.
//
//	scripts/gen-clients go
//	BILLING_ADDRESS=127.0.0.1:50051 BILLING_API_KEY=bck_... examples/go/run.sh
//
// Progress goes to stderr; the last line on stdout is a JSON summary of what was seen.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "billingexample/gen/billing/commitments/v1"
)

// seen is what the summary reports of one violation.
type seen struct {
	EventID  string `json:"eventId"`
	Kind     string `json:"kind"`
	Sequence int64  `json:"sequence"`
}

func main() {
	address := os.Getenv("BILLING_ADDRESS")
	if address == "" {
		address = "127.0.0.1:50051"
	}
	key := os.Getenv("BILLING_API_KEY") // from `billing-commitments admin create-api-key`
	if key == "" {
		log.Fatal("set BILLING_API_KEY")
	}
	conn, err := grpc.Dial(address, grpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	// Every call carries the organization's API key.
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
	run := strconv.FormatInt(time.Now().UnixMilli(), 36) // keeps ids unique when run again

	created, err := v1.NewCustomerServiceClient(conn).CreateCustomer(ctx, &v1.CreateCustomerRequest{
		Customer: &v1.Customer{ExternalId: "GO-" + run, Name: "Go example", TimeZone: "Europe/Athens"},
	})
	must(err)
	customerID := created.GetCustomer().GetId()
	productCode := "GOVOD-" + run
	_, err = v1.NewProductServiceClient(conn).CreateProduct(ctx, &v1.CreateProductRequest{
		Product: &v1.Product{Code: productCode, Name: "Video on demand", Kind: v1.ProductKind_PRODUCT_KIND_SERVICE},
	})
	must(err)
	limit := "10"
	_, err = v1.NewAllowanceServiceClient(conn).ReplaceAllowanceLimits(ctx, &v1.ReplaceAllowanceLimitsRequest{
		Limits: &v1.AllowanceLimits{
			Customer:                              &v1.AllowanceLimits_CustomerId{CustomerId: customerID},
			AccumulatedMaximumUsagePerTransaction: &limit,
		},
	})
	must(err)
	log.Printf("customer %s: at most 10 units a call", customerID)

	usage := v1.NewUsageServiceClient(conn)
	// record records one usage event; replaying the event id would return this answer.
	record := func(eventID, quantity string) string {
		answer, err := usage.RecordUsage(ctx, &v1.RecordUsageRequest{Event: &v1.UsageEvent{
			EventId:     eventID,
			Customer:    &v1.UsageEvent_CustomerId{CustomerId: customerID},
			Product:     &v1.UsageEvent_ProductCode{ProductCode: productCode},
			Quantity:    quantity,
			RatedAmount: quantity,
			Timestamp:   timestamppb.Now(),
		}})
		must(err)
		decision := strings.TrimPrefix(answer.GetOutcome().GetDecision().String(), "USAGE_DECISION_")
		log.Printf("usage %s of %s: %s", eventID, quantity, decision)
		return decision
	}

	feed := v1.NewViolationServiceClient(conn)
	// nextViolation is the next violation of the feed from start; the stream is closed after it.
	nextViolation := func(start *v1.WatchViolationsRequest) *v1.Violation {
		streamCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		start.Customer = &v1.WatchViolationsRequest_CustomerId{CustomerId: customerID}
		stream, err := feed.WatchViolations(streamCtx, start)
		must(err)
		message, err := stream.Recv()
		must(err)
		v := message.GetViolation()
		log.Printf("violation #%d %s for %s", v.GetSequence(), v.GetKind(), v.GetEventId())
		return v
	}

	decisions := []string{record(run+"-1", "4"), record(run+"-2", "25")}
	first := nextViolation(&v1.WatchViolationsRequest{Start: &v1.WatchViolationsRequest_FromBeginning{FromBeginning: true}})
	cursor := first.GetCursor() // what a consumer stores to resume from

	// Disconnected: a violation happens meanwhile, and resuming after the cursor delivers it.
	decisions = append(decisions, record(run+"-3", "30"))
	resumed := nextViolation(&v1.WatchViolationsRequest{Start: &v1.WatchViolationsRequest_AfterCursor{AfterCursor: cursor}})

	summary, err := json.Marshal(map[string]any{
		"customerId": customerID,
		"decisions":  decisions,
		"first":      summarize(first),
		"resumed":    summarize(resumed),
	})
	must(err)
	fmt.Println(string(summary))
}

func summarize(v *v1.Violation) seen {
	kind := strings.TrimPrefix(v.GetKind().String(), "VIOLATION_KIND_")
	return seen{EventID: v.GetEventId(), Kind: kind, Sequence: v.GetSequence()}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
