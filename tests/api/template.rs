//! `template.yaml` deploys exactly the code's route table, with least-privilege permissions.

use std::collections::{BTreeMap, BTreeSet};

use m2m_shared::http::ENDPOINTS;
use yaml_rust2::{Yaml, YamlLoader};

struct Deployed {
    binary: String,
    routes: BTreeSet<(String, String)>,
    /// The actions of its own (inline) policies.
    actions: BTreeSet<String>,
    /// Managed policies attached only under a condition: (condition, policy).
    conditional: BTreeSet<(String, String)>,
}

fn template() -> Yaml {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn text(yaml: &Yaml) -> String {
    yaml.as_str().map(str::to_owned).unwrap_or_default()
}

fn deployed_functions() -> BTreeMap<String, Deployed> {
    let template = template();
    let resources = template["Resources"].as_hash().unwrap();
    let mut functions = BTreeMap::new();
    for (name, resource) in resources {
        if text(&resource["Type"]) != "AWS::Serverless::Function" {
            continue;
        }
        assert_eq!(
            text(&resource["Metadata"]["BuildMethod"]),
            "rust-cargolambda"
        );
        let props = &resource["Properties"];
        let routes = props["Events"]
            .as_hash()
            .unwrap()
            .values()
            .filter(|event| text(&event["Type"]) == "HttpApi")
            .map(|event| {
                (
                    text(&event["Properties"]["Method"]),
                    text(&event["Properties"]["Path"]),
                )
            })
            .collect();
        let mut actions = BTreeSet::new();
        let mut conditional = BTreeSet::new();
        for policy in props["Policies"].as_vec().unwrap() {
            // `!If [Condition, !Ref Policy, !Ref AWS::NoValue]`, read without its tags.
            if let Some([condition, then, otherwise]) = policy.as_vec().map(Vec::as_slice) {
                assert_eq!(text(otherwise), "AWS::NoValue");
                conditional.insert((text(condition), text(then)));
                continue;
            }
            for statement in policy["Statement"].as_vec().unwrap() {
                assert_eq!(text(&statement["Effect"]), "Allow");
                for action in statement["Action"].as_vec().unwrap() {
                    actions.insert(text(action));
                }
            }
        }
        functions.insert(
            text(name),
            Deployed {
                binary: text(&resource["Metadata"]["BuildProperties"]["Binary"]),
                routes,
                actions,
                conditional,
            },
        );
    }
    functions
}

#[test]
fn template_routes_equal_the_route_table() {
    let deployed: BTreeSet<(String, String, String)> = deployed_functions()
        .into_values()
        .flat_map(|f| {
            let binary = f.binary.clone();
            f.routes
                .into_iter()
                .map(move |(method, path)| (binary.clone(), method, path))
        })
        .collect();
    let coded: BTreeSet<(String, String, String)> = ENDPOINTS
        .iter()
        .map(|e| {
            (
                e.function.binary().to_owned(),
                e.method.to_string(),
                e.path.to_owned(),
            )
        })
        .collect();
    assert_eq!(deployed, coded);
}

/// The functions that verify or sign JWTs: all but the audit stream, which only carries
/// events from the table to the audit bus.
fn key_readers() -> BTreeMap<String, Deployed> {
    let mut functions = deployed_functions();
    functions.retain(|_, f| f.binary != "audit-stream");
    functions
}

#[test]
fn every_function_has_its_own_binary() {
    let deployed: BTreeSet<String> = deployed_functions()
        .into_values()
        .map(|f| f.binary)
        .collect();
    let mut coded: BTreeSet<String> = m2m_shared::http::endpoints::functions()
        .into_iter()
        .map(|f| f.binary().to_owned())
        .collect();
    // The functions that serve no route: directory events from SQS, audit events from the
    // table's stream.
    coded.insert("provisioning".to_owned());
    coded.insert("audit-stream".to_owned());
    assert_eq!(deployed, coded);
    for binary in coded {
        let path = format!(
            "{}/../functions/src/bin/{binary}.rs",
            env!("CARGO_MANIFEST_DIR")
        );
        assert!(std::path::Path::new(&path).exists(), "{path}");
    }
}

#[test]
fn only_token_issuing_functions_may_sign_and_readers_cannot_write() {
    // The discovery function signs the list of revoked JWTs.
    let issuers: BTreeSet<&str> =
        ["vendor-auth", "exchange", "refresh", "portal", "discovery"].into();
    let writes = [
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:UpdateItem",
    ];
    for (name, function) in deployed_functions() {
        let signs = function.actions.contains("kms:Sign");
        assert_eq!(
            signs,
            issuers.contains(function.binary.as_str()),
            "{name}: kms:Sign"
        );
        for action in &function.actions {
            assert!(
                !action.contains('*'),
                "{name}: no wildcard actions, got {action}"
            );
            assert_ne!(action, "dynamodb:Scan", "{name}: nothing scans the table");
        }
        if function.binary == "discovery" {
            let table: Vec<&String> = function
                .actions
                .iter()
                .filter(|a| a.starts_with("dynamodb:"))
                .collect();
            assert_eq!(
                table,
                ["dynamodb:Query"],
                "{name} only reads the revoked JWTs"
            );
        }
        if function.binary == "vendor-auth" {
            // It may move its vendor's hash to the configured cost and record logins (an
            // audit event's copies and counts), and write nothing else.
            let written = writes.iter().filter(|w| function.actions.contains(**w));
            assert_eq!(
                written.collect::<Vec<_>>(),
                [&"dynamodb:PutItem", &"dynamodb:UpdateItem"],
                "{name}"
            );
        }
    }
}

#[test]
fn directory_events_flow_from_the_bus_through_a_queue_with_a_dead_letter_queue() {
    let template = template();
    let resources = &template["Resources"];
    let rule = &resources["DirectoryEventsRule"];
    assert_eq!(text(&rule["Type"]), "AWS::Events::Rule");
    let detail_types: BTreeSet<String> = rule["Properties"]["EventPattern"]["detail-type"]
        .as_vec()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    for kind in ["tenant", "user", "role", "permission"] {
        for change in ["upserted", "deleted"] {
            assert!(detail_types.contains(&format!("{kind}.{change}")));
        }
    }
    let queue = &resources["ProvisioningQueue"]["Properties"];
    assert!(queue["RedrivePolicy"]["maxReceiveCount"].as_i64().is_some());
    assert_eq!(
        text(&resources["ProvisioningDeadLetterQueue"]["Type"]),
        "AWS::SQS::Queue"
    );
    let event = &resources["ProvisioningFunction"]["Properties"]["Events"]["Queue"];
    assert_eq!(text(&event["Type"]), "SQS");
    let response_types = event["Properties"]["FunctionResponseTypes"]
        .as_vec()
        .unwrap();
    assert_eq!(
        text(&response_types[0]),
        "ReportBatchItemFailures",
        "partial batch responses"
    );
}

/// The account is protected: every route is throttled by default, each token has its limit of
/// JWTs a minute, and the functions that run bcrypt have a ceiling on their instances, each
/// from a parameter (`!Ref` reads as its name).
#[test]
fn routes_are_throttled_tokens_rate_limited_and_credential_checks_have_reserved_concurrency() {
    let template = template();
    let api = &template["Resources"]["Api"]["Properties"]["DefaultRouteSettings"];
    assert_eq!(api["ThrottlingRateLimit"].as_str(), Some("ApiRateLimit"));
    assert_eq!(api["ThrottlingBurstLimit"].as_str(), Some("ApiBurstLimit"));
    let environment = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        environment["M2M_TOKEN_RATE_LIMIT_PER_MINUTE"].as_str(),
        Some("TokenRateLimitPerMinute"),
        "the per-token limit is a parameter"
    );
    for (name, function) in deployed_functions() {
        let reserved =
            &template["Resources"][name.as_str()]["Properties"]["ReservedConcurrentExecutions"];
        let checks_credentials = ["vendor-auth", "exchange"].contains(&function.binary.as_str());
        assert_eq!(
            reserved.as_str() == Some("CredentialCheckConcurrency"),
            checks_credentials,
            "{name}: reserved concurrency"
        );
    }
}

/// Every HTTP function may run past the request budget (after which it answers 503 itself),
/// but not by much; the provisioning queue hides a message for six times its function's timeout,
/// so a batch still running is never delivered twice.
#[test]
fn function_timeouts_leave_room_for_the_request_budget_and_no_more() {
    let template = template();
    let resources = &template["Resources"];
    let global = template["Globals"]["Function"]["Timeout"].as_i64().unwrap();
    let budget = i64::try_from(m2m_shared::config::DEFAULT_REQUEST_BUDGET_SECONDS).unwrap();
    assert!(
        (budget + 1..=budget + 5).contains(&global),
        "function timeout {global} s against a request budget of {budget} s"
    );
    let provisioning = resources["ProvisioningFunction"]["Properties"]["Timeout"]
        .as_i64()
        .unwrap();
    let per_call = i64::try_from(m2m_shared::adapters::aws::OPERATION_TIMEOUT.as_secs()).unwrap();
    assert!(
        provisioning >= 2 * per_call,
        "provisioning timeout {provisioning} s"
    );
    let visibility = resources["ProvisioningQueue"]["Properties"]["VisibilityTimeout"]
        .as_i64()
        .unwrap();
    assert!(
        visibility >= 6 * provisioning,
        "visibility timeout {visibility} s"
    );
}

/// Where audit events are written: their copies and their counts.
const AUDIT_PARTITIONS: [&str; 2] = ["AUDIT#*", "AUDITCOUNT#*"];

/// The texts of a YAML list.
fn texts(list: &Yaml) -> Vec<String> {
    list.as_vec().unwrap().iter().map(text).collect()
}

/// Graviton by default (cheaper per GB-second), x86_64 on request.
#[test]
fn the_functions_run_on_arm64_unless_the_stack_says_x86_64() {
    let template = template();
    let architecture = &template["Parameters"]["Architecture"];
    assert_eq!(text(&architecture["Default"]), "arm64");
    assert_eq!(texts(&architecture["AllowedValues"]), ["arm64", "x86_64"]);
    let chosen = &template["Globals"]["Function"]["Architectures"];
    assert_eq!(texts(chosen), ["Architecture"]);
}

/// The wrapped-key signing mode: off by default; its key is symmetric; every function may read
/// (and the first to start, create) the stored key's item and nothing else of the table through
/// it; only the functions that sign may decrypt it.
#[test]
fn the_wrapped_key_mode_reaches_only_its_item_and_only_signers_decrypt() {
    let template = template();
    let mode = &template["Parameters"]["SigningMode"];
    assert_eq!(text(&mode["Default"]), "kms");
    assert_eq!(texts(&mode["AllowedValues"]), ["kms", "wrapped"]);
    let resources = &template["Resources"];
    let key = &resources["WrappingKey"];
    assert_eq!(text(&key["Condition"]), "WrappedSigning");
    assert_eq!(text(&key["Properties"]["KeySpec"]), "SYMMETRIC_DEFAULT");
    let env = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert!(!env["M2M_WRAPPING_KEY_ID"].is_badvalue());

    let statements = |policy: &str| {
        assert_eq!(text(&resources[policy]["Condition"]), "WrappedSigning");
        resources[policy]["Properties"]["PolicyDocument"]["Statement"]
            .as_vec()
            .unwrap()
            .clone()
    };
    for statement in statements("WrappedKeyPublishing") {
        let actions = texts(&statement["Action"]);
        if actions.iter().any(|a| a.starts_with("dynamodb:")) {
            assert_eq!(actions, ["dynamodb:GetItem", "dynamodb:PutItem"]);
            let leading =
                &statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"];
            assert_eq!(
                leading.as_vec().unwrap(),
                &[Yaml::String("SIGNING_KEY".into())]
            );
        } else {
            assert_eq!(actions, ["kms:Encrypt"]);
        }
    }
    let signing = statements("WrappedKeySigning");
    assert_eq!(signing.len(), 1);
    assert_eq!(text(&signing[0]["Action"][0]), "kms:Decrypt");

    let when = |policy: &str| ("WrappedSigning".to_owned(), policy.to_owned());
    for (name, function) in key_readers() {
        assert!(
            function.conditional.contains(&when("WrappedKeyPublishing")),
            "{name}"
        );
        assert_eq!(
            function.conditional.contains(&when("WrappedKeySigning")),
            function.actions.contains("kms:Sign"),
            "{name}: only the functions that sign may decrypt"
        );
    }
}

/// `scripts/sam-build.sh` builds the functions exactly as `[profile.aws-lambda]` says: one
/// `CARGO_PROFILE_RELEASE_*` variable per setting, with its value.
#[test]
fn sam_builds_the_functions_with_the_aws_lambda_profile() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let manifest = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let profile: BTreeMap<String, String> = manifest
        .split("[profile.aws-lambda]")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|line| !line.starts_with('['))
        .filter_map(|line| line.split_once(" = "))
        .filter(|(key, _)| *key != "inherits")
        .map(|(key, value)| {
            let name = format!(
                "CARGO_PROFILE_RELEASE_{}",
                key.replace('-', "_").to_uppercase()
            );
            (name, value.trim_matches('"').to_owned())
        })
        .collect();
    assert!(
        profile.contains_key("CARGO_PROFILE_RELEASE_PANIC"),
        "{profile:?}"
    );
    let script = std::fs::read_to_string(format!("{root}/scripts/sam-build.sh")).unwrap();
    let exported: BTreeMap<String, String> = script
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    assert_eq!(exported, profile);
    assert!(script.contains("exec sam build"));
}

/// The functions anyone with credentials reaches may write their own kind of credential only:
/// the exchange and refresh token items (partitions `TOKEN#<clientId>`: uses, spent refresh
/// tokens, a hash moved to the configured cost), the vendor login vendor items (a hash moved to
/// the configured cost); never a directory record or the other kind.
#[test]
fn credential_checks_may_write_only_their_own_credentials() {
    let template = template();
    let writes = [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
    ];
    let own = [
        ("ExchangeFunction", "TOKEN#*"),
        ("RefreshFunction", "TOKEN#*"),
        ("VendorAuthFunction", "VENDOR"),
    ];
    for (name, partitions) in own {
        let policies = &template["Resources"][name]["Properties"]["Policies"];
        let mut wrote = false;
        for policy in policies.as_vec().unwrap() {
            for statement in policy["Statement"].as_vec().into_iter().flatten() {
                let actions = texts(&statement["Action"]);
                if !actions.iter().any(|a| writes.contains(&a.as_str())) {
                    continue;
                }
                wrote = true;
                let leading = texts(
                    &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
                );
                if leading != AUDIT_PARTITIONS {
                    assert_eq!(leading, [partitions], "{name}: {actions:?}");
                }
            }
        }
        assert!(wrote, "{name} writes its credentials");
    }
}

/// Signing-key rotation: every function signs with the current key (the stack's own, or
/// `CurrentSigningKeyArn`) and, while `PreviousSigningKeyArn` is set, publishes the previous
/// one; only the refresh function may also sign with it (the key of its refresh tokens).
#[test]
fn a_rotation_publishes_the_previous_key_everywhere_and_signs_nothing_new_with_it() {
    let template = template();
    let variables = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        text(&variables["M2M_PREVIOUS_KMS_KEY_ID"]),
        "PreviousSigningKeyArn"
    );
    let current = texts(&variables["M2M_KMS_KEY_ID"]);
    assert_eq!(current[0], "OwnSigningKey", "{current:?}");
    let resources = &template["Resources"];
    for (policy, action) in [
        ("PreviousKeyPublishing", "kms:GetPublicKey"),
        ("PreviousKeyRefreshing", "kms:Sign"),
    ] {
        assert_eq!(text(&resources[policy]["Condition"]), "RotatingSigningKey");
        let statements = &resources[policy]["Properties"]["PolicyDocument"]["Statement"];
        let statements = statements.as_vec().unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(texts(&statements[0]["Action"]), [action]);
        assert_eq!(text(&statements[0]["Resource"]), "PreviousSigningKeyArn");
    }
    let when = |policy: &str| ("RotatingSigningKey".to_owned(), policy.to_owned());
    for (name, function) in key_readers() {
        assert!(
            function
                .conditional
                .contains(&when("PreviousKeyPublishing")),
            "{name}"
        );
        assert_eq!(
            function
                .conditional
                .contains(&when("PreviousKeyRefreshing")),
            function.binary == "refresh",
            "{name}"
        );
    }
}

/// Every function reached with a vendor token reads that token's credential (a revoked one's
/// tokens are refused there); the vendor's credentials function touches only the vendor's items
/// and, for its revocations, the revocation list.
#[test]
fn vendor_routes_confirm_the_credential_and_its_function_reaches_only_vendor_items() {
    use m2m_shared::http::caller::Access;
    let functions = deployed_functions();
    for endpoint in ENDPOINTS {
        if matches!(endpoint.access(), Access::Anyone | Access::Session) {
            continue;
        }
        let function = functions
            .values()
            .find(|f| f.binary == endpoint.function.binary())
            .unwrap();
        assert!(
            function.actions.contains("dynamodb:GetItem"),
            "{}: reads the vendor token's credential",
            endpoint.function.binary()
        );
    }
    let template = template();
    let policies = &template["Resources"]["VendorCredentialsFunction"]["Properties"]["Policies"];
    let mut partitions = BTreeSet::new();
    for policy in policies.as_vec().unwrap() {
        for statement in policy["Statement"].as_vec().into_iter().flatten() {
            let actions = texts(&statement["Action"]);
            if !actions.iter().any(|a| a.starts_with("dynamodb:")) {
                continue;
            }
            let condition = &statement["Condition"];
            let like = &condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
            if !like.is_badvalue() {
                assert_eq!(texts(like), AUDIT_PARTITIONS, "{actions:?}");
                continue;
            }
            let leading = texts(&condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]);
            if actions.contains(&"dynamodb:BatchWriteItem".to_owned()) {
                assert_eq!(leading, ["REVOKED"], "{actions:?}");
            } else {
                assert_eq!(leading, ["VENDOR"], "{actions:?}");
            }
            partitions.extend(leading);
        }
    }
    assert_eq!(
        partitions,
        BTreeSet::from(["REVOKED".into(), "VENDOR".into()])
    );
}

/// The audit trail reaches a SIEM: the table streams its new images; the stream's function
/// receives only the inserts of the events' vendor-wide copies, reports partial batches, and
/// may only put events on the stack's own audit bus (an output) and name a failed batch in its
/// dead-letter queue.
#[test]
fn the_audit_trail_streams_from_the_table_to_its_own_bus() {
    let template = template();
    let resources = &template["Resources"];
    let table = &resources["TokensTable"]["Properties"];
    assert_eq!(
        text(&table["StreamSpecification"]["StreamViewType"]),
        "NEW_IMAGE"
    );
    assert_eq!(
        text(&resources["AuditBus"]["Type"]),
        "AWS::Events::EventBus"
    );
    let function = &resources["AuditStreamFunction"]["Properties"];
    let stream = &function["Events"]["Stream"];
    assert_eq!(text(&stream["Type"]), "DynamoDB");
    let properties = &stream["Properties"];
    assert_eq!(
        texts(&properties["FunctionResponseTypes"]),
        ["ReportBatchItemFailures"]
    );
    let pattern = text(&properties["FilterCriteria"]["Filters"][0]["Pattern"]);
    let pattern: serde_json::Value = serde_json::from_str(&pattern).unwrap();
    assert_eq!(pattern["eventName"], serde_json::json!(["INSERT"]));
    let prefix = &pattern["dynamodb"]["Keys"]["pk"]["S"][0]["prefix"];
    assert_eq!(prefix, m2m_shared::audit_stream::STREAMED_PREFIX);
    let failed = &properties["DestinationConfig"]["OnFailure"]["Destination"];
    assert!(
        format!("{failed:?}").contains("AuditStreamDeadLetterQueue"),
        "{failed:?}"
    );
    assert_eq!(
        text(&function["Environment"]["Variables"]["M2M_AUDIT_BUS"]),
        "AuditBus"
    );
    let mut actions = BTreeSet::new();
    for policy in function["Policies"].as_vec().unwrap() {
        for statement in policy["Statement"].as_vec().into_iter().flatten() {
            actions.extend(texts(&statement["Action"]));
        }
    }
    let expected = ["events:PutEvents", "sqs:SendMessage"].map(String::from);
    assert_eq!(actions, BTreeSet::from(expected));
    assert_eq!(
        text(&template["Outputs"]["AuditBusName"]["Value"]),
        "AuditBus"
    );
}

/// The resources of `kind`, by name.
fn resources_of(template: &Yaml, kind: &str) -> BTreeMap<String, Yaml> {
    let resources = template["Resources"].as_hash().unwrap();
    (resources.iter())
        .filter(|(_, resource)| text(&resource["Type"]) == kind)
        .map(|(name, resource)| (text(name), resource["Properties"].clone()))
        .collect()
}

/// An alarm's single metric: (namespace, name, dimensions as `name=value`).
fn watched(alarm: &Yaml) -> (String, String, BTreeSet<String>) {
    let dimensions = (alarm["Dimensions"].as_vec().into_iter().flatten())
        .map(|d| format!("{}={}", text(&d["Name"]), text(&d["Value"])))
        .collect();
    (
        text(&alarm["Namespace"]),
        text(&alarm["MetricName"]),
        dimensions,
    )
}

/// The template watches itself: each function has an alarm on its errors and one on its
/// throttles, and a log group kept `LogRetentionDays`; each dead-letter queue an alarm on its
/// depth; the API's 5xx, every dependency's 503s and the exchange's p99 have theirs, read from
/// the metrics the functions write; every alarm notifies the one topic, in alarm and back to OK.
#[test]
fn every_function_and_queue_is_watched_and_its_logs_kept() {
    let template = template();
    let alarms = resources_of(&template, "AWS::CloudWatch::Alarm");
    let topic = ["OwnAlarmTopic", "AlarmTopic", "AlarmTopicArn"].map(String::from);
    for (name, alarm) in &alarms {
        for actions in ["AlarmActions", "OKActions"] {
            assert_eq!(texts(&alarm[actions][0]), topic, "{name} {actions}");
        }
    }
    let watching: BTreeSet<_> = alarms.values().map(watched).collect();
    let lambda = |metric: &str, function: &str| {
        let dimension = BTreeSet::from([format!("FunctionName={function}")]);
        ("AWS/Lambda".to_owned(), metric.to_owned(), dimension)
    };
    let groups = resources_of(&template, "AWS::Logs::LogGroup");
    let functions = resources_of(&template, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 19);
    for (function, properties) in &functions {
        for metric in ["Errors", "Throttles"] {
            assert!(
                watching.contains(&lambda(metric, function)),
                "{function} {metric}"
            );
        }
        let group = text(&properties["LoggingConfig"]["LogGroup"]);
        let retention = &groups[&group]["RetentionInDays"];
        assert_eq!(text(retention), "LogRetentionDays", "{function}");
    }
    for (queue, _) in resources_of(&template, "AWS::SQS::Queue") {
        if queue.ends_with("DeadLetterQueue") {
            let depth = "ApproximateNumberOfMessagesVisible".to_owned();
            let dimension = BTreeSet::from([format!("QueueName={queue}.QueueName")]);
            assert!(
                watching.contains(&("AWS/SQS".into(), depth, dimension)),
                "{queue}"
            );
        }
    }
    let api = BTreeSet::from(["ApiId=Api".to_owned(), "Stage=$default".to_owned()]);
    assert!(watching.contains(&("AWS/ApiGateway".into(), "5xx".into(), api)));
}

/// The alarms on the service's own metrics read them in the namespace the functions are given,
/// under the names and labels the code writes: the exchange's p99, and 503s of every dependency.
#[test]
fn the_alarms_on_our_metrics_read_what_the_functions_write() {
    let template = template();
    let alarms = resources_of(&template, "AWS::CloudWatch::Alarm");
    let namespace =
        text(&template["Globals"]["Function"]["Environment"]["Variables"]["M2M_METRICS_NAMESPACE"]);
    assert_eq!(namespace, "m2m-auth/${AWS::StackName}");
    let latency = &alarms["ExchangeLatencyAlarm"];
    let exchange = format!("endpoint={}", m2m_shared::http::Function::Exchange.binary());
    let metric = m2m_shared::metrics::REQUEST_SECONDS.to_owned();
    assert_eq!(
        watched(latency),
        (namespace.clone(), metric, BTreeSet::from([exchange]))
    );
    assert_eq!(text(&latency["ExtendedStatistic"]), "p99");
    let summed: BTreeSet<String> = (alarms["UnavailableAlarm"]["Metrics"]
        .as_vec()
        .unwrap()
        .iter())
    .filter_map(|m| {
        m["MetricStat"]["Metric"]
            .as_hash()
            .map(|_| &m["MetricStat"]["Metric"])
    })
    .inspect(|m| {
        assert_eq!(
            (text(&m["Namespace"]), text(&m["MetricName"])),
            (
                namespace.clone(),
                m2m_shared::metrics::UNAVAILABLE.to_owned()
            )
        )
    })
    .map(|m| text(&m["Dimensions"][0]["Value"]))
    .collect();
    let dependencies = m2m_shared::error::Dependency::ALL.map(|d| d.label().to_owned());
    assert_eq!(summed, BTreeSet::from(dependencies));
}

/// The API's access log: JSON lines kept `LogRetentionDays`, naming the request, never its query
/// string, a header or its caller's credentials; X-Ray tracing as the stack says.
#[test]
fn the_api_logs_each_request_without_its_query_or_headers() {
    let template = template();
    let api = &template["Resources"]["Api"]["Properties"]["AccessLogSettings"];
    assert_eq!(text(&api["DestinationArn"]), "ApiAccessLogs.Arn");
    let group = &template["Resources"]["ApiAccessLogs"]["Properties"];
    assert_eq!(text(&group["RetentionInDays"]), "LogRetentionDays");
    let format = text(&api["Format"]);
    let line: serde_json::Value = serde_json::from_str(&format).expect("one JSON object");
    assert_eq!(line["requestId"], "$context.requestId");
    assert_eq!(line["status"], "$context.status");
    for never in [
        "querystring",
        "header",
        "authorizer",
        "identity.apiKey",
        "requestOverride",
    ] {
        assert!(!format.contains(never), "{never} in {format}");
    }
    let tracing = &template["Globals"]["Function"]["Tracing"];
    assert_eq!(text(tracing), "Tracing");
    let allowed = texts(&template["Parameters"]["Tracing"]["AllowedValues"]);
    assert_eq!(allowed, ["Active", "PassThrough"]);
}
