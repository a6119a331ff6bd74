//! The clock offset against a server whose time is off: measured at setup, warned about beyond
//! 30 s, applied to the codes (which that server then accepts), and measured again later.

use app::{check_clock, codes, setup_token};
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_ninety_seconds_ahead() {
    let b = Backend::start(90, |_| {}).await;
    let uid = b.issue("taro01").await;
    b.open_link(&uid).await;
    let client = b.client();
    let (_d, mut vault) = memory_vault();

    let (token, warning) = setup_token(&client, &mut vault, &input(&uid, "1234"))
        .await
        .unwrap();
    assert!(
        (89..=91).contains(&token.clock_offset.0),
        "offset measured against the server: {:?}",
        token.clock_offset
    );
    let warning = warning.expect("an offset over 30 s is reported");
    assert_eq!(warning.offset_secs, token.clock_offset.0);

    // The code computed on the device's own clock is 1-2 steps behind this server; with the
    // offset applied it is the server's current code, which activates the token.
    let view = vault.code_view(&token.id, codes::device_now()).unwrap();
    assert_eq!(
        view.clock_warning,
        Some(warning),
        "the code screen warns too"
    );
    let (st, v) = b
        .host_post(
            &format!("/tokens/{uid}/activate"),
            json!({"code": view.code.as_str()}),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    assert_eq!(
        v["result"], "ok",
        "codes computed with the offset are accepted: {v}"
    );

    // The server's clock is fixed (or the phone's): measuring again clears the warning.
    b.clock.set_skew(-45);
    let w = check_clock(&client, &mut vault, &token.id).await.unwrap();
    assert!(
        matches!(w, Some(w) if (-46..=-44).contains(&w.offset_secs)),
        "{w:?}"
    );
    b.clock.set_skew(0);
    assert_eq!(
        check_clock(&client, &mut vault, &token.id).await.unwrap(),
        None
    );
    assert!(vault.token(&token.id).unwrap().clock_offset.0.abs() <= 1);
}
