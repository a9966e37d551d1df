//! RecordUsageBatch in chunks. A batch's events are decided in transactions of about
//! [`CHUNK_EVENTS`] events, one after another; each chunk holds every event of its
//! customers, so a customer's events are still decided in order, in one transaction.
//! Concurrent batches then wait for the one chunk holding a customer they share, not for
//! the whole of another batch: batches of 1,000 random customers from 4 callers spent
//! most of their time waiting on each other's customer locks, and were slower than
//! batches of 100.
//!
//! Chunks take customers in id order, the order their locks are taken in: concurrent
//! batches then meet on the same chunk and follow each other through the id range,
//! several at work at once on different customers, where chunks in the order of the
//! events overlapped nearly every chunk of every other batch and ran one at a time.
//!
//! Nothing is lost or doubled between chunks: events are idempotent by id, and a chunk
//! that fails after others committed answers its events (and the ones after it) with
//! their own errors, so the caller knows exactly which were recorded.

use std::collections::HashMap;
use std::sync::Arc;

use super::usage::{EventInput, EventResult, only_result};
use super::{App, AppError};
use crate::db::DbError;
use crate::domain::ids::{CustomerId, OrgId};

/// Events a chunk takes before it closes (it always ends with a whole customer). Chunks
/// of 250 recorded batches of 1,000 from 4 callers faster than chunks of 25, 100 or 500
/// (docs/performance.md): smaller ones pay more transactions, larger ones overlap more.
pub const CHUNK_EVENTS: usize = 250;

/// Indices of `inputs` in chunks: the events of each customer together, customers in
/// id order, each chunk closed once it has at least `size` events.
/// Events that failed validation (no customer) go with the first chunk. A batch that
/// names one event id for two customers is one chunk: whichever comes first in the
/// request is the event recorded, the other its repeat, as in one transaction.
pub fn chunks(inputs: &[EventInput], size: usize) -> Vec<Vec<usize>> {
    let mut invalid = Vec::new();
    let mut customers: Vec<CustomerId> = Vec::new();
    let mut events_of: HashMap<CustomerId, Vec<usize>> = HashMap::new();
    let mut customer_of: HashMap<&str, CustomerId> = HashMap::new();
    let mut shared_id = false;
    for (i, input) in inputs.iter().enumerate() {
        let Ok(event) = &input.event else {
            invalid.push(i);
            continue;
        };
        let first = *customer_of.entry(&event.event_id).or_insert(event.customer_id);
        shared_id |= first != event.customer_id;
        events_of
            .entry(event.customer_id)
            .or_insert_with(|| {
                customers.push(event.customer_id);
                Vec::new()
            })
            .push(i);
    }
    if shared_id {
        // Two events at least: the whole batch, in request order.
        return vec![(0..inputs.len()).collect()];
    }
    customers.sort_unstable();
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    for customer in customers {
        let events = events_of.remove(&customer).unwrap_or_default();
        match chunks.last_mut() {
            Some(open) if open.len() < size => open.extend(events),
            _ => chunks.push(events),
        }
    }
    // They need no database: they must not hold a chunk of their own.
    match chunks.first_mut() {
        Some(first) => first.extend(invalid),
        None if !invalid.is_empty() => chunks.push(invalid),
        None => {}
    }
    for chunk in &mut chunks {
        chunk.sort_unstable();
    }
    chunks
}

impl App {
    /// Records a RecordUsageBatch: one result per input, in input order. A batch of one
    /// chunk is one transaction; a longer one is decided chunk by chunk (see the module).
    /// Fails as a whole only when nothing was recorded.
    pub async fn record_usage_batch(
        &self,
        org: OrgId,
        inputs: Arc<[EventInput]>,
    ) -> Result<Vec<EventResult>, AppError> {
        let chunks = chunks(&inputs, CHUNK_EVENTS);
        if chunks.len() <= 1 {
            return self.record_usage(org, inputs).await;
        }
        let mut answered: Vec<(usize, EventResult)> = Vec::with_capacity(inputs.len());
        let mut stopped: Option<DbError> = None;
        for chunk in chunks {
            let part: Arc<[EventInput]> = chunk.iter().map(|&i| inputs[i].clone()).collect();
            let answers = match &stopped {
                // The database failed earlier: the events from here on get its error
                // and are not tried.
                Some(e) => part.iter().map(|_| Err(AppError::Db(e.clone()))).collect(),
                None => match self.record_usage(org, Arc::clone(&part)).await {
                    Ok(answers) => answers,
                    Err(e) if answered.is_empty() => return Err(e),
                    // Down, timed out, shutting down: this chunk and the rest get its
                    // error; the earlier chunks stand.
                    Err(AppError::Db(e)) if e.is_transient() => {
                        let answers = part.iter().map(|_| Err(AppError::Db(e.clone()))).collect();
                        stopped = Some(e);
                        answers
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, events = part.len(), "usage chunk failed; recording its events one by one");
                        self.record_each(org, &part).await
                    }
                },
            };
            answered.extend(chunk.into_iter().zip(answers));
        }
        // The chunks hold every input once: in input order, these are the answers.
        answered.sort_unstable_by_key(|(i, _)| *i);
        Ok(answered.into_iter().map(|(_, answer)| answer).collect())
    }

    /// Each of `inputs` recorded in its own transaction, so one bad event cannot fail
    /// the others.
    pub(crate) async fn record_each(&self, org: OrgId, inputs: &[EventInput]) -> Vec<EventResult> {
        let singles = inputs.iter().map(|input| async move {
            self.record_usage(org, Arc::new([input.clone()])).await.and_then(only_result)
        });
        futures::future::join_all(singles).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::usage::InputError;
    use crate::domain::validation::Violations;

    fn input(customer: u128, event_id: &str) -> EventInput {
        use crate::domain::usage::{ProductRef, UsageEvent};
        EventInput {
            prefix: "event".into(),
            event: Ok(UsageEvent {
                event_id: event_id.into(),
                customer_id: CustomerId(uuid::Uuid::from_u128(customer)),
                product: ProductRef::Code("P".into()),
                quantity: 1.into(),
                amount: 1.into(),
                credit_type: "USD".into(),
                timestamp: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                group_values: Default::default(),
                contract_id: None,
            }),
        }
    }

    /// One event per customer named, each with its own id.
    fn batch(customers: &[u128]) -> Vec<EventInput> {
        customers.iter().enumerate().map(|(i, c)| input(*c, &format!("e{i}"))).collect()
    }

    fn invalid() -> EventInput {
        EventInput {
            prefix: "event".into(),
            event: Err(InputError::Invalid(Violations::single("event_id", "is required"))),
        }
    }

    #[test]
    fn a_customers_events_stay_in_one_chunk_in_their_order() {
        // Customers 1, 2, 1, 3, 2, 3 with chunks of 2 events: 1 and 2 fill the first.
        let inputs = batch(&[1, 2, 1, 3, 2, 3]);
        assert_eq!(chunks(&inputs, 2), [vec![0, 2], vec![1, 4], vec![3, 5]]);
        assert_eq!(chunks(&inputs, 3), [vec![0, 1, 2, 4], vec![3, 5]]);
        assert_eq!(chunks(&inputs, 100), [vec![0, 1, 2, 3, 4, 5]]);
    }

    #[test]
    fn chunks_take_customers_in_id_order_whatever_the_events_order() {
        // Customers 3, 1, 2, 1: customer 1's events first, then 2's, then 3's.
        let inputs = batch(&[3, 1, 2, 1]);
        assert_eq!(chunks(&inputs, 1), [vec![1, 3], vec![2], vec![0]]);
        assert_eq!(chunks(&inputs, 3), [vec![1, 2, 3], vec![0]]);
    }

    #[test]
    fn an_event_id_named_for_two_customers_keeps_the_batch_in_one_chunk() {
        // Customer 2's "e" comes first in the request; in id order customer 1's chunk
        // would record its "e" first and answer customer 2's as the repeat.
        let shared = vec![input(2, "e"), input(3, "f"), input(1, "e")];
        assert_eq!(chunks(&shared, 1), [vec![0, 1, 2]]);
        assert_eq!(chunks(&batch(&[2, 3, 1]), 1), [vec![2], vec![0], vec![1]]);
        // A repeat for the same customer stays with that customer's chunk.
        let repeat = vec![input(2, "e"), input(1, "f"), input(2, "e")];
        assert_eq!(chunks(&repeat, 1), [vec![1], vec![0, 2]]);
    }

    #[test]
    fn a_chunk_closes_only_after_a_whole_customer() {
        let inputs = batch(&[1, 1, 1, 2]);
        assert_eq!(chunks(&inputs, 2), [vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn invalid_events_go_with_the_first_chunk() {
        let inputs = vec![input(1, "a"), invalid(), input(2, "b"), invalid()];
        assert_eq!(chunks(&inputs, 1), [vec![0, 1, 3], vec![2]]);
        assert_eq!(chunks(&[invalid(), invalid()], 1), [vec![0, 1]]);
        assert!(chunks(&[], 1).is_empty());
    }
}
