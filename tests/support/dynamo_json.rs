//! DynamoDB items as the AWS CLI prints them (`aws dynamodb scan`): each attribute a one-key
//! object naming its type (`{"S": "..."}`, `{"N": "12"}`, `{"SS": [...]}`, `{"M": {...}}`, ...).
//! Lossless, so that items written as JSON load back as they were.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

pub type Item = HashMap<String, AttributeValue>;

pub fn item_to_json(item: &Item) -> Value {
    let mut names: Vec<&String> = item.keys().collect();
    names.sort();
    Value::Object(
        names
            .into_iter()
            .map(|name| (name.clone(), attribute_to_json(&item[name])))
            .collect(),
    )
}

fn attribute_to_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::B(b) => json!({"B": STANDARD.encode(b.as_ref())}),
        AttributeValue::Ss(ss) => json!({"SS": ss}),
        AttributeValue::Ns(ns) => json!({"NS": ns}),
        AttributeValue::Bs(bs) => {
            json!({"BS": bs.iter().map(|b| STANDARD.encode(b.as_ref())).collect::<Vec<_>>()})
        }
        AttributeValue::L(list) => {
            json!({"L": list.iter().map(attribute_to_json).collect::<Vec<_>>()})
        }
        AttributeValue::M(map) => json!({"M": item_to_json(map)}),
        other => panic!("an attribute type this format does not know: {other:?}"),
    }
}

pub fn json_to_item(json: &Value) -> Item {
    (json.as_object().expect("an item is an object"))
        .iter()
        .map(|(name, value)| (name.clone(), json_to_attribute(value)))
        .collect()
}

fn json_to_attribute(json: &Value) -> AttributeValue {
    let typed: &Map<String, Value> = json.as_object().expect("a typed attribute");
    let (kind, value) = typed.iter().next().expect("one type");
    let text = |v: &Value| v.as_str().expect("text").to_owned();
    let texts = |v: &Value| v.as_array().expect("a list").iter().map(text).collect();
    let blob = |v: &Value| Blob::new(STANDARD.decode(v.as_str().expect("base64")).unwrap());
    match kind.as_str() {
        "S" => AttributeValue::S(text(value)),
        "N" => AttributeValue::N(text(value)),
        "BOOL" => AttributeValue::Bool(value.as_bool().unwrap()),
        "NULL" => AttributeValue::Null(true),
        "B" => AttributeValue::B(blob(value)),
        "SS" => AttributeValue::Ss(texts(value)),
        "NS" => AttributeValue::Ns(texts(value)),
        "BS" => AttributeValue::Bs(value.as_array().unwrap().iter().map(blob).collect()),
        "L" => AttributeValue::L(
            value
                .as_array()
                .unwrap()
                .iter()
                .map(json_to_attribute)
                .collect(),
        ),
        "M" => AttributeValue::M(json_to_item(value)),
        other => panic!("unknown attribute type {other}"),
    }
}
