//! Canned replies and labels, managed by admins and used by agents; the
//! customer names and files their own chat.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;
use crate::resume::{assigned_chat, customer_token, Chat};

#[tokio::test]
async fn admins_manage_canned_replies_that_agents_list() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let alice = app.agent("alice", 1).await;

    // The desk's seven replies come with the product.
    let (status, replies) = app.get_as("/api/canned-replies", &alice.token).await;
    assert_eq!(status, StatusCode::OK);
    let shortcuts: Vec<&str> =
        replies.as_array().expect("list").iter().filter_map(|r| r["shortcut"].as_str()).collect();
    assert_eq!(shortcuts, ["anything", "goodbye", "greeting", "moment", "order", "passed", "refund"]);

    let (status, created) = app
        .post_as(
            "/api/admin/canned-replies",
            &admin.token,
            json!({ "shortcut": "ship", "title": "Shipping time", "content": "Orders ship within 2 days, {name}." }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let (_, replies) = app.get_as("/api/canned-replies", &alice.token).await;
    let ship = replies.as_array().expect("list").iter().find(|r| r["shortcut"] == "ship").expect("listed");
    assert_eq!(ship["content"], "Orders ship within 2 days, {name}.");

    let (status, body) = app
        .post_as(
            "/api/admin/canned-replies",
            &admin.token,
            json!({ "shortcut": "ship", "title": "Again", "content": "x" }),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("conflict")));
    for bad in [
        json!({ "shortcut": "Ship Now", "title": "t", "content": "c" }),
        json!({ "shortcut": "ok", "title": "", "content": "c" }),
        json!({ "shortcut": "ok", "title": "t" }),
        json!({ "shortcut": "ok", "title": "t", "content": "c", "extra": 1 }),
    ] {
        let (status, body) = app.post_as("/api/admin/canned-replies", &admin.token, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, updated) = app
        .patch_as(
            &format!("/api/admin/canned-replies/{id}"),
            &admin.token,
            json!({ "content": "Orders ship in 1 day." }),
        )
        .await;
    assert_eq!((status, updated["content"].as_str()), (StatusCode::OK, Some("Orders ship in 1 day.")));
    assert_eq!(updated["shortcut"], "ship");

    // Agents use them, never manage them; customers see none.
    let (status, _) = app
        .post_as("/api/admin/canned-replies", &alice.token, json!({ "shortcut": "mine", "title": "t", "content": "c" }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let visitor = app.visitor("Vic").await;
    let (status, _) = app.get_as("/api/canned-replies", &visitor.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = app.delete_as(&format!("/api/admin/canned-replies/{id}"), &admin.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete_as(&format!("/api/admin/canned-replies/{id}"), &admin.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, replies) = app.get_as("/api/canned-replies", &alice.token).await;
    assert!(replies.as_array().expect("list").iter().all(|r| r["shortcut"] != "ship"));
}

#[tokio::test]
async fn agents_label_their_chats_and_search_finds_them_by_label() {
    let app = spawn_app().await;
    let admin = app.staff("root", "admin", 1).await;
    let Chat { session_id, alice, ann, .. } = assigned_chat(&app).await;
    for (name, color) in [("vip", "#AA00FF"), ("refund", "#00aa00")] {
        let (status, body) =
            app.post_as("/api/admin/labels", &admin.token, json!({ "name": name, "color": color })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, _) =
        app.post_as("/api/admin/labels", &admin.token, json!({ "name": "vip", "color": "#000000" })).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = app.post_as("/api/admin/labels", &admin.token, json!({ "name": "red", "color": "red" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, labels) = app.get_as("/api/labels", &alice.token).await;
    let vip = labels.as_array().expect("labels").iter().find(|l| l["name"] == "vip").expect("vip");
    assert_eq!(vip["color"], "#aa00ff");

    let path = format!("/api/sessions/{session_id}/labels");
    let (status, set) = app.put_as(&path, &alice.token, json!({ "labels": ["vip", "refund", "vip"] })).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["labels"], json!(["refund", "vip"]));
    // An unknown or malformed label changes nothing.
    for labels in [json!(["vip", "nope"]), json!(["vip", "a\0b"]), json!([""])] {
        let (status, body) = app.put_as(&path, &alice.token, json!({ "labels": labels })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{labels}: {body}");
    }
    let (_, session) = app.get_as(&format!("/api/sessions/{session_id}"), &alice.token).await;
    assert_eq!(session["labels"], json!(["refund", "vip"]));
    // Not Bob's chat, not the customer's to label.
    let bob = app.agent("bob", 1).await;
    let (status, _) = app.put_as(&path, &bob.token, json!({ "labels": [] })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let token = customer_token(&app, &ann).await;
    let (status, _) = app.put_as(&path, &token, json!({ "labels": [] })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, own) = app.get_as(&format!("/api/sessions/{session_id}"), &token).await;
    assert!(own.get("labels").is_none(), "labels are the staff's: {own}");

    let (_, found) = app.get_as("/api/sessions?label=vip", &admin.token).await;
    let ids: Vec<&str> =
        found["sessions"].as_array().expect("sessions").iter().filter_map(|s| s["sessionId"].as_str()).collect();
    assert_eq!(ids, [session_id.as_str()]);
    assert_eq!(found["sessions"][0]["labels"], json!(["refund", "vip"]));

    // A label removed comes off every chat.
    let (status, _) =
        app.delete_as(&format!("/api/admin/labels/{}", vip["id"].as_str().expect("id")), &admin.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, found) = app.get_as("/api/sessions?label=vip", &admin.token).await;
    assert_eq!(found["sessions"].as_array().map(Vec::len), Some(0));
    let (_, session) = app.get_as(&format!("/api/sessions/{session_id}"), &alice.token).await;
    assert_eq!(session["labels"], json!(["refund"]));

    // The customer names and files their own chat, but sets no priority.
    let (status, renamed) = app
        .patch_as(
            &format!("/api/sessions/{session_id}"),
            &token,
            json!({ "title": "Where is my order", "category": "shipping" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(
        (renamed["title"].as_str(), renamed["category"].as_str()),
        (Some("Where is my order"), Some("shipping"))
    );
    let (status, _) = app.patch_as(&format!("/api/sessions/{session_id}"), &token, json!({ "priority": "high" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let _ = alice;
}
