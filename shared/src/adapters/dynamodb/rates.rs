//! Uses of each API token per minute, on the token's item (see [`RateStore`]): `useWindow` (the
//! minute), `windowUses` (its count), `issued` (JWTs ever reserved) and `lastUsedAt`.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::*;
use aws_sdk_dynamodb::types::{ConditionCheck, Update};

use crate::domain::usage::{Counts, Day, DayUsage, MinuteUsage, Refused};
use crate::ports::{RateStore, Reserved, UseWindow};

/// What one conditional update found.
enum Attempt {
    Reserved(Reserved),
    /// The condition failed on this stored minute and count of issued JWTs.
    Refused {
        minute: Option<i64>,
        issued: u64,
    },
    Gone,
}

/// A number attribute of `item`.
fn stored<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

impl DynamoStore {
    /// Reserves `n` uses in `minute`: a new window starts the count at `n`, the same window
    /// adds `n` within `limit`. One request; a refused one says what it found.
    async fn try_reserve(
        &self,
        client_id: &ClientId,
        minute: i64,
        new_window: bool,
        (n, limit): (u32, u32),
        at: Timestamp,
    ) -> Result<Attempt> {
        // The first use of a minute is the token's last use, to the minute.
        let (set, condition) = if new_window {
            (
                "useWindow = :w, windowUses = :n, lastUsedAt = :at",
                "attribute_not_exists(useWindow) OR useWindow < :w",
            )
        } else {
            (
                "windowUses = windowUses + :n",
                "useWindow = :w AND windowUses <= :room",
            )
        };
        let number = |v: String| AttributeValue::N(v);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(token_pk(client_id), "TOKEN".into())))
            .update_expression(format!(
                "SET {set}, issued = if_not_exists(issued, :zero) + :n"
            ))
            .condition_expression(format!("attribute_exists(pk) AND ({condition})"))
            .expression_attribute_values(":w", number(minute.to_string()))
            .expression_attribute_values(":n", number(n.to_string()))
            .expression_attribute_values(":zero", number("0".into()))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        update = if new_window {
            update.expression_attribute_values(":at", number(at.millis().to_string()))
        } else {
            update.expression_attribute_values(":room", number((limit - n).to_string()))
        };
        match update.send().await {
            Ok(out) => {
                let issued = out.attributes().and_then(|item| stored(item, "issued"));
                let last_serial = issued.ok_or_else(|| corrupt("token", "no issued count"))?;
                Ok(Attempt::Reserved(Reserved {
                    granted: n,
                    last_serial,
                }))
            }
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(refused)) => Ok(refused
                    .item()
                    .map_or(Attempt::Gone, |item| Attempt::Refused {
                        minute: stored(item, "useWindow"),
                        issued: stored(item, "issued").unwrap_or(0),
                    })),
                _ => Err(dynamo_error(e)),
            },
        }
    }
}

#[async_trait]
impl RateStore for DynamoStore {
    async fn reserve_uses(
        &self,
        client_id: &ClientId,
        window: UseWindow,
        want: u32,
        limit: u32,
        at: Timestamp,
    ) -> Result<Option<Reserved>> {
        let sizes: &[u32] = if want > 1 { &[want, 1] } else { &[1] };
        let mut new_window = window.new_window;
        let mut issued = 0;
        for &n in sizes.iter().filter(|&&n| n <= limit) {
            // The expected case first; the other only if the stored minute calls for it.
            for _ in 0..2 {
                let attempt =
                    self.try_reserve(client_id, window.minute, new_window, (n, limit), at);
                match attempt.await? {
                    Attempt::Reserved(reserved) => return Ok(Some(reserved)),
                    Attempt::Gone => return Ok(None),
                    Attempt::Refused {
                        minute,
                        issued: stored,
                    } => {
                        issued = stored;
                        let is_new = minute.is_none_or(|m| m < window.minute);
                        if is_new == new_window {
                            break; // the window is full for `n`
                        }
                        new_window = is_new;
                    }
                }
            }
        }
        Ok(Some(Reserved {
            granted: 0,
            last_serial: issued,
        }))
    }

    async fn add_usage(&self, usage: &MinuteUsage) -> Result<()> {
        let day = Day::of(usage.minute);
        let (counts, refused) = (&usage.counts, &usage.counts.refused);
        let n = |value: u64| AttributeValue::N(value.to_string());
        let add = Update::builder()
            .table_name(&self.table)
            .set_key(Some(usage_key(&usage.client_id, day)))
            .update_expression(
                "ADD issued :issued, secret :secret, allowList :allow, rateLimit :rate, \
                 disabled :disabled SET #ttl = :ttl, #v = :v",
            )
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#v", FORMAT_FIELD)
            .expression_attribute_values(":issued", n(counts.issued))
            .expression_attribute_values(":secret", n(refused.secret))
            .expression_attribute_values(":allow", n(refused.allow_list))
            .expression_attribute_values(":rate", n(refused.rate_limit))
            .expression_attribute_values(":disabled", n(refused.disabled))
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N(day.kept_until().seconds().to_string()),
            )
            .expression_attribute_values(":v", AttributeValue::N(RECORD_FORMAT.to_string()))
            .build()
            .map_err(Error::internal)?;
        // The token gone, its counts go with it.
        let add = TransactWriteItem::builder().update(add).build();
        self.with_token(&usage.client_id, add).await.map(|_| ())
    }

    async fn import_usage(&self, client_id: &ClientId, usage: DayUsage) -> Result<bool> {
        let (counts, refused) = (&usage.counts, &usage.counts.refused);
        let n = |value: u64| AttributeValue::N(value.to_string());
        let mut item = usage_key(client_id, usage.day);
        for (name, value) in [
            ("issued", counts.issued),
            ("secret", refused.secret),
            ("allowList", refused.allow_list),
            ("rateLimit", refused.rate_limit),
            ("disabled", refused.disabled),
        ] {
            item.insert(name.into(), n(value));
        }
        let ttl = usage.day.kept_until().seconds();
        item.insert("ttl".into(), AttributeValue::N(ttl.to_string()));
        stamp(&mut item);
        let put = put_if_absent(&self.table, item)?;
        let put = TransactWriteItem::builder().put(put).build();
        self.with_token(client_id, put).await
    }

    async fn usage_since(&self, client_id: &ClientId, from: Day) -> Result<Vec<DayUsage>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(token_pk(client_id)))
            .expression_attribute_values(":from", s(usage_sk(from)))
            .expression_attribute_values(":to", s("USAGE#~"))
            .consistent_read(true);
        let mut days = Vec::new();
        for item in self.all_items(query).await? {
            days.push(day_usage(&item)?);
        }
        Ok(days)
    }
}

impl DynamoStore {
    /// Writes `write` in one transaction with the check that `client_id`'s token exists:
    /// false, with nothing written, if that or `write`'s own condition fails.
    async fn with_token(&self, client_id: &ClientId, write: TransactWriteItem) -> Result<bool> {
        let written = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(token_exists(&self.table, client_id)?)
                    .build(),
            )
            .transact_items(write)
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(e) if !failed_conditions(&e).is_empty() => Ok(false),
            Err(e) => Err(dynamo_error(e)),
        }
    }
}

/// A token's counts of a day, as stored.
pub(super) fn day_usage(item: &Item) -> Result<DayUsage> {
    check_format("usage", item)?;
    let number = |name: &str| stored::<u64>(item, name).unwrap_or_default();
    let sk = item.get("sk").and_then(|v| v.as_s().ok());
    let day = sk
        .and_then(|sk| sk.strip_prefix("USAGE#"))
        .and_then(|d| d.parse::<i64>().ok());
    let Some(day) = day else {
        return Err(corrupt("usage", format!("item {sk:?}")));
    };
    let refused = Refused {
        secret: number("secret"),
        allow_list: number("allowList"),
        rate_limit: number("rateLimit"),
        disabled: number("disabled"),
    };
    let counts = Counts {
        issued: number("issued"),
        refused,
    };
    Ok(DayUsage {
        day: Day(day),
        counts,
    })
}

/// The condition that `client_id`'s token exists.
fn token_exists(table: &str, client_id: &ClientId) -> Result<ConditionCheck> {
    ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key(token_pk(client_id), "TOKEN".into())))
        .condition_expression("attribute_exists(pk)")
        .build()
        .map_err(Error::internal)
}

/// The sort key of a token's counts of `day`, in its partition (so deleted with it).
fn usage_sk(day: Day) -> String {
    format!("USAGE#{:08}", day.0.max(0))
}

fn usage_key(client_id: &ClientId, day: Day) -> Item {
    key(token_pk(client_id), usage_sk(day))
}
