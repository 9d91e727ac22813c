//! Keeps the OpenAPI document and the route table in step: every operation the document
//! promises is routed, every `/api/v1` route is documented, and every operation lists the
//! errors the API's conventions give it.

use std::collections::BTreeSet;

use serde_json::Value;

use super::routes::ROUTES;

/// The document the node serves at `GET /api/v1/openapi.json`.
const DOCUMENT: &str = include_str!("openapi.json");

/// Where the documented API lives; `/healthz`, `/metrics` and the MCP face are outside it.
const API_PREFIX: &str = "/api/v1/";

/// Routes under [`API_PREFIX`] that the document leaves out, and why.
const UNDOCUMENTED: &[&str] = &[
    // The fault-injection hook exists only with `test_hooks`, and its `{path}` spans
    // several segments, which an OpenAPI path template cannot express.
    "/api/v1/node/actors/{path}/fail",
];

/// The keys of an OpenAPI path item that are operations.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

type Operation = (String, String);

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is not JSON")
}

/// Follows a local `$ref` (`#/components/...`), as many times as it takes.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{reference}: only local references are expected"));
        value = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{reference} points at nothing"));
    }
    value
}

/// Every operation of the document with its path item, as (METHOD, path template).
fn operations(doc: &Value) -> Vec<(Operation, &Value, &Value)> {
    let paths = doc["paths"].as_object().expect("the document has paths");
    let mut found = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(*method) {
                found.push(((method.to_ascii_uppercase(), path.clone()), item, op));
            }
        }
    }
    found
}

fn documented(doc: &Value) -> BTreeSet<Operation> {
    operations(doc).into_iter().map(|(key, _, _)| key).collect()
}

fn routed() -> BTreeSet<Operation> {
    ROUTES
        .iter()
        .map(|route| (route.method.as_str().to_string(), route.path.to_string()))
        .collect()
}

fn list(ops: &BTreeSet<Operation>) -> String {
    ops.iter()
        .map(|(method, path)| format!("  {method} {path}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_document_is_openapi_3_1() {
    let doc = document();
    let version = doc["openapi"].as_str().expect("`openapi` is a string");
    assert!(
        version.starts_with("3.1."),
        "openapi is {version:?}, not 3.1.x"
    );
    let paths = doc["paths"].as_object().expect("`paths` is an object");
    assert!(!paths.is_empty(), "the document has no paths");
    for path in paths.keys() {
        assert!(
            path.starts_with(API_PREFIX),
            "{path} is outside {API_PREFIX}, which is all the document describes"
        );
    }
}

#[test]
fn every_documented_operation_is_routed() {
    let missing: BTreeSet<_> = documented(&document())
        .difference(&routed())
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "openapi.json documents operations the route table does not answer:\n{}",
        list(&missing)
    );
}

#[test]
fn every_api_route_is_documented() {
    let documented = documented(&document());
    let missing: BTreeSet<_> = routed()
        .into_iter()
        .filter(|(_, path)| path.starts_with(API_PREFIX) && !UNDOCUMENTED.contains(&path.as_str()))
        .filter(|op| !documented.contains(op))
        .collect();
    assert!(
        missing.is_empty(),
        "the route table answers operations openapi.json does not document:\n{}",
        list(&missing)
    );
}

#[test]
fn the_route_table_lists_each_operation_once() {
    let mut seen = BTreeSet::new();
    for route in ROUTES {
        assert!(
            seen.insert((route.method.as_str(), route.path)),
            "{} {} is in ROUTES twice",
            route.method,
            route.path
        );
    }
}

/// The conventions of docs/guides/api.md, operation by operation: 401 and 403 wherever a
/// token is needed, 400 wherever there is a body or a query to get wrong, 413 and 415
/// wherever there is a body, and every failure in the one `Error` shape.
#[test]
fn every_operation_lists_the_errors_it_can_give() {
    let doc = document();
    let global_security = &doc["security"];
    let mut public = BTreeSet::new();
    for ((method, path), item, op) in operations(&doc) {
        let name = format!("{method} {path}");
        let responses = op["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has no responses"));
        let has = |status: &str| responses.contains_key(status);

        let security = op.get("security").unwrap_or(global_security);
        let protected = security.as_array().is_some_and(|s| !s.is_empty());
        if protected {
            assert!(
                has("401") && has("403"),
                "{name} needs a token: list 401 and 403"
            );
        } else {
            public.insert(name.clone());
        }

        if op.get("requestBody").is_some() {
            for status in ["400", "413", "415"] {
                assert!(has(status), "{name} takes a body: list {status}");
            }
        }
        let query = item["parameters"]
            .as_array()
            .into_iter()
            .chain(op["parameters"].as_array())
            .flatten()
            .any(|p| resolve(&doc, p)["in"] == "query");
        if query {
            assert!(has("400"), "{name} takes query parameters: list 400");
        }
        assert!(
            !has("405"),
            "{name}: 405 is the route table's, not an operation's"
        );

        for (status, response) in responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let response = resolve(&doc, response);
            let schema = &response["content"]["application/json"]["schema"];
            let error = schema
                .get("allOf")
                .and_then(|all| all.get(0))
                .unwrap_or(schema);
            assert_eq!(
                error["$ref"], "#/components/schemas/Error",
                "{name} {status} is not an Error"
            );
        }
    }
    assert_eq!(
        public,
        BTreeSet::from(["POST /api/v1/auth/login".to_string()]),
        "only login goes without a token"
    );
}
