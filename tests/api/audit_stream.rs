//! The audit trail's SIEM stream on AWS: the `audit-stream` function reads the table's stream
//! and puts each event, once, on the audit bus, as `GET /audits` shows it; what the bus did not
//! take is handed back to Lambda. On moto: the stream's records are made from the table's items
//! as DynamoDB Streams makes them, and a rule on the bus sends what arrives to a queue.

use std::collections::BTreeMap;

use aws_lambda_events::event::dynamodb::Event;
use m2m_shared::audit_stream::{DETAIL_TYPE, Publisher, SOURCE, STREAMED_PREFIX};
use serde_json::{Value, json};

use crate::support::*;

/// The stream's record of inserting (or, by TTL, removing) `item`, as Lambda delivers it.
fn record(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    name: &str,
    sequence: usize,
) -> Value {
    let image: serde_dynamo::Item = item.clone().into();
    let image = serde_json::to_value(image).unwrap();
    let keys = json!({"pk": image["pk"], "sk": image["sk"]});
    let (new, old) = match name {
        "INSERT" => (image, Value::Null),
        _ => (Value::Null, image),
    };
    json!({
        "eventID": sequence.to_string(),
        "eventName": name,
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": keys, "NewImage": new, "OldImage": old,
            "SequenceNumber": format!("{sequence:021}"), "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE",
        },
    })
}

/// Every item of `table`, as the stream would carry their inserts, and the removal of the
/// first event copy (as TTL makes it), in one batch.
async fn stream_of(table: &str) -> (Event, usize) {
    let dynamo = aws_sdk_dynamodb::Client::new(&aws_config().await);
    let items: Vec<_> = dynamo
        .scan()
        .table_name(table)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let pk = |item: &std::collections::HashMap<_, _>| {
        item.get("pk")
            .and_then(|v: &aws_sdk_dynamodb::types::AttributeValue| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let copies = items
        .iter()
        .filter(|i| pk(i).starts_with(STREAMED_PREFIX))
        .count();
    let mut records: Vec<Value> = (items.iter().enumerate())
        .map(|(n, item)| record(item, "INSERT", n))
        .collect();
    let expired = items.iter().find(|i| pk(i).starts_with("AUDIT#")).unwrap();
    records.push(record(expired, "REMOVE", records.len()));
    let event = serde_json::from_value(json!({ "Records": records })).unwrap();
    (event, copies)
}

/// A bus whose events (from the trail's source) reach a new queue; the bus's name and the
/// queue's URL.
async fn bus_to_queue() -> (String, String) {
    let config = aws_config().await;
    let (bridge, sqs) = (
        aws_sdk_eventbridge::Client::new(&config),
        aws_sdk_sqs::Client::new(&config),
    );
    let bus = unique("audit");
    bridge.create_event_bus().name(&bus).send().await.unwrap();
    let queue = sqs.create_queue().queue_name(&bus).send().await.unwrap();
    let url = queue.queue_url().unwrap().to_owned();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = &attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn];
    let pattern = json!({"source": [SOURCE], "detail-type": [DETAIL_TYPE]});
    (bridge.put_rule())
        .name("to-queue")
        .event_bus_name(&bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("queue")
        .arn(arn)
        .build()
        .unwrap();
    (bridge.put_targets())
        .rule("to-queue")
        .event_bus_name(&bus)
        .targets(target)
        .send()
        .await
        .unwrap();
    (bus, url)
}

/// Everything the queue holds: each message's body.
async fn drained(url: &str) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(&aws_config().await);
    let mut bodies = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = received.messages();
        if messages.is_empty() {
            return bodies;
        }
        for message in messages {
            bodies.push(serde_json::from_str(message.body().unwrap()).unwrap());
            (sqs.delete_message())
                .queue_url(url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn each_event_reaches_the_audit_bus_once_as_the_api_shows_it() {
    let t = spawn_app(Backing::Moto).await;
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    let bot = acme.token(json!({"description": "bot"})).await;
    acme.delete_token(&bot.client_id).await;
    let reply = t
        .get("/audits?count=1000", &[("x-access-token", &vendor.token)])
        .await;
    let trail: BTreeMap<String, Value> = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap().to_owned(), e.clone()))
        .collect();
    assert!(trail.len() >= 4, "{trail:?}");

    let (batch, copies) = stream_of(t.table.as_deref().unwrap()).await;
    assert_eq!(copies, trail.len(), "one vendor-wide copy per event");
    let (bus, queue) = bus_to_queue().await;
    let config = aws_config().await;
    let publisher = Publisher::new(aws_sdk_eventbridge::Client::new(&config), &bus);
    let answered = publisher.publish(batch.clone()).await;
    assert!(answered.batch_item_failures.is_empty(), "{answered:?}");

    let arrived = drained(&queue).await;
    let mut details = BTreeMap::new();
    for envelope in &arrived {
        assert_eq!(
            (&envelope["source"], &envelope["detail-type"]),
            (&json!(SOURCE), &json!(DETAIL_TYPE))
        );
        let detail = envelope["detail"].clone();
        let id = detail["id"].as_str().unwrap().to_owned();
        assert!(details.insert(id, detail).is_none(), "each event once");
    }
    assert_eq!(details, trail, "every event, as GET /audits shows it");

    // A bus that takes nothing: every event is handed back to Lambda to try again.
    let gone = Publisher::new(aws_sdk_eventbridge::Client::new(&config), unique("no-bus"));
    let answered = gone.publish(batch).await;
    assert_eq!(answered.batch_item_failures.len(), trail.len());
}
