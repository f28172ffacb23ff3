//! `core::hub`'s JSON protocol as the Worker and its `StateHub` Durable Object exchange it:
//! the request shapes the cron and the isolates send, answers read back into store results,
//! and a bad request refused by the parser (the object answers 400, never panics).

use cmo_edge_router::core::controller::TickReport;
use cmo_edge_router::core::hub::{HubRequest, HubResponse, HubValue, Stored};
use cmo_edge_router::core::store::StoreError;

#[test]
fn requests_parse_from_their_documented_shapes() {
    let tick: HubRequest = serde_json::from_str(r#"{"op":"tick"}"#).unwrap();
    assert_eq!(tick, HubRequest::Tick);
    let get: HubRequest =
        serde_json::from_str(r#"{"op":"get","keys":["config/overrides","breaker/lightrag"]}"#)
            .unwrap();
    assert_eq!(
        get,
        HubRequest::Get {
            keys: vec!["config/overrides".into(), "breaker/lightrag".into()]
        }
    );
    let put: HubRequest =
        serde_json::from_str(r#"{"op":"put","key":"metrics/a","value":"{}","ttl_seconds":null}"#)
            .unwrap();
    assert_eq!(
        put,
        HubRequest::Put {
            key: "metrics/a".into(),
            value: "{}".into(),
            ttl_seconds: None
        }
    );
    // What the Worker sends is what the object parses.
    let list = HubRequest::List {
        prefix: "metrics/".into(),
        cursor: Some("metrics/a".into()),
        limit: 1000,
    };
    let text = serde_json::to_string(&list).unwrap();
    assert_eq!(serde_json::from_str::<HubRequest>(&text).unwrap(), list);
}

#[test]
fn bad_requests_are_refused_by_the_parser() {
    for bad in [
        "",
        "{",
        r#"{"op":"delete","key":"x"}"#,
        r#"{"op":"get"}"#,
        r#"{"op":"put","key":"x"}"#,
        r#"{"keys":["x"]}"#,
    ] {
        assert!(serde_json::from_str::<HubRequest>(bad).is_err(), "{bad}");
    }
}

#[test]
fn answers_round_trip_into_store_results() {
    let keys = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let r = HubResponse::Values {
        values: vec![
            HubValue {
                value: Some("1".into()),
                error: None,
            },
            HubValue::default(),
            HubValue {
                value: None,
                error: Some("boom".into()),
            },
        ],
    };
    let back: HubResponse = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    let got = back.into_values(&keys);
    assert_eq!(got[0], Ok(Some("1".into())));
    assert_eq!(got[1], Ok(None));
    assert!(matches!(&got[2], Err(StoreError::Failed { key, .. }) if key == "c"));
    // A failed answer fails every key, naming the hub's message.
    let failed: HubResponse =
        serde_json::from_str(r#"{"failed":{"message":"unreachable"}}"#).unwrap();
    assert!(failed
        .into_values(&keys)
        .iter()
        .all(|r| matches!(r, Err(e) if e.to_string().contains("unreachable"))));
    let done: HubResponse = serde_json::from_str(r#""done""#).unwrap();
    assert_eq!(done.into_done("k"), Ok(()));
    let report = TickReport::default();
    let ticked = HubResponse::Ticked {
        report: report.clone(),
    };
    let back: HubResponse = serde_json::from_str(&serde_json::to_string(&ticked).unwrap()).unwrap();
    assert_eq!(back.into_tick(), report);
}

#[test]
fn stored_values_expire() {
    let s = Stored::new("v", Some(60), 1_000);
    assert!(s.live(60_999));
    assert!(!s.live(61_000));
    assert!(Stored::new("v", None, 1_000).live(u64::MAX));
    // A zero TTL is already expired: the workerd helpers delete through it.
    assert!(!Stored::new("v", Some(0), 1_000).live(1_000));
    let text = serde_json::to_string(&s).unwrap();
    assert_eq!(text, r#"{"value":"v","expires_ms":61000}"#);
}
