// Compiled by `go tool task openapi-lint` against the types that
// openapi-typescript generates from docs/event-types.example.openapi.json:
// a receiver's handler of the example catalog's events.
import type { components } from "./catalog-example.gen";

type OrderCreated = components["schemas"]["event-order.created"];
type OrderCancelled = components["schemas"]["event-order.cancelled"];

export const created: OrderCreated = {
  id: "evt_1",
  type: "order.created",
  timestamp: "2026-01-01T00:00:00Z",
  data: { id: "ord_1", amount: 1250, currency: "EUR", customer: { email: "ada@example.com" } },
};

export const cancelled: OrderCancelled = {
  id: "evt_2",
  type: "order.cancelled",
  timestamp: "2026-01-01T00:00:00Z",
  data: { id: "ord_1" },
};

export function amountOf(e: OrderCreated): number {
  return e.data.amount;
}

// @ts-expect-error: currency is an enum of the schema.
export const wrongCurrency: OrderCreated["data"]["currency"] = "GBP";
