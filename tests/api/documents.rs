//! Documents as attachments: Word, Excel and OpenDocument files and CSV are
//! accepted, typed by what they hold, whatever they are called.

use std::io::{Cursor, Write};

use reqwest::StatusCode;
use serde_json::json;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use crate::helpers::spawn_app;
use crate::resume::{assigned_chat, customer_token, Chat};

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const ODT: &str = "application/vnd.oasis.opendocument.text";

fn zipped(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in entries {
        // ODF wants its `mimetype` entry first and stored, so that its type can be read at a fixed place.
        let method = if *name == "mimetype" { CompressionMethod::Stored } else { CompressionMethod::Deflated };
        writer.start_file(*name, SimpleFileOptions::default().compression_method(method)).expect("entry");
        writer.write_all(body.as_bytes()).expect("write");
    }
    writer.finish().expect("zip").into_inner()
}

/// The parts a word processor writes for a one-paragraph document.
fn word_document(text: &str) -> Vec<u8> {
    zipped(&[
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#,
        ),
        (
            "word/document.xml",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"#
            ),
        ),
    ])
}

fn spreadsheet() -> Vec<u8> {
    zipped(&[
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#,
        ),
        ("xl/workbook.xml", r#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>"#),
    ])
}

fn open_document_text() -> Vec<u8> {
    zipped(&[("mimetype", ODT), ("content.xml", "<office:document-content/>")])
}

#[tokio::test]
async fn documents_are_accepted_by_their_content_and_a_renamed_program_is_refused() {
    let app = spawn_app().await;
    let Chat { mut customer, mut agent, session_id: id, ann, alice, .. } = assigned_chat(&app).await;
    let ann = crate::helpers::Person { token: customer_token(&app, &ann).await, ..ann };

    let order = word_document("Order 1042: two pizzas, one missing");
    let (status, uploaded) = app.upload_as(&ann.token, &id, "order.docx", order.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    assert_eq!(uploaded["contentType"], DOCX);
    let docx_id = uploaded["attachmentId"].as_str().expect("id").to_owned();

    for (name, bytes, expected) in [
        ("prices.xlsx", spreadsheet(), XLSX),
        ("letter.odt", open_document_text(), ODT),
        ("items.csv", b"item,qty\nmargherita,2\n\"fries, large\",1\n".to_vec(), "text/csv"),
        ("items.txt", b"item,qty\nmargherita,2\n".to_vec(), "text/csv"),
        ("notes.csv", b"just a sentence".to_vec(), "text/plain"),
    ] {
        let (status, body) = app.upload_as(&ann.token, &id, name, bytes).await;
        assert_eq!((status, body["contentType"].as_str()), (StatusCode::CREATED, Some(expected)), "{name}: {body}");
    }

    let program = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0\xb8\0\0\0\0\0\0\0@\0".to_vec();
    for (name, bytes) in [
        ("invoice.docx", program),
        ("archive.docx", zipped(&[("setup.exe", "MZ")])),
        (
            "macros.docx",
            zipped(&[
                (
                    "[Content_Types].xml",
                    r#"<Types><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>"#,
                ),
                ("word/document.xml", "<w:document/>"),
            ]),
        ),
    ] {
        let (status, body) = app.upload_as(&ann.token, &id, name, bytes).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")),
            "{name}: {body}"
        );
    }

    customer
        .ok(
            "customer:send_message",
            "message:sent",
            json!({ "sessionId": id, "content": "my order", "clientMsgId": "d1", "attachments": [docx_id] }),
        )
        .await;
    let shown = agent.wait_for("the customer's document", |f| f["data"]["content"] == "my order").await;
    assert_eq!(shown["data"]["attachments"][0]["fileName"], "order.docx");
    assert_eq!(shown["data"]["attachments"][0]["contentType"], DOCX);

    let fetched = app.fetch_attachment(&docx_id, &alice.token).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.headers()["content-type"], DOCX);
    assert_eq!(fetched.headers()["content-disposition"], "attachment; filename=\"order.docx\"", "saved, not shown");
    assert_eq!(fetched.bytes().await.expect("bytes").to_vec(), order, "the agent gets the customer's file unchanged");
}

/// A file that opens like a ZIP archive, with a directory of `entries`
/// entries whose last is broken, and then `count` end-of-archive records,
/// each naming that directory.
fn countless_archive_ends(entries: u16, count: usize) -> Vec<u8> {
    let mut bytes = b"PK\x03\x04".to_vec();
    bytes.extend_from_slice(&[0; 26]);
    for _ in 1..entries {
        bytes.extend_from_slice(b"PK\x01\x02");
        bytes.extend_from_slice(&[0; 42]);
    }
    bytes.extend_from_slice(&[0; 46]);
    for _ in 0..count {
        bytes.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        bytes.extend_from_slice(&entries.to_le_bytes());
        bytes.extend_from_slice(&entries.to_le_bytes());
        bytes.extend_from_slice(&(u32::from(entries) * 46).to_le_bytes());
        bytes.extend_from_slice(&30u32.to_le_bytes());
        bytes.extend_from_slice(&[0; 2]);
    }
    bytes
}

#[tokio::test]
async fn a_file_of_countless_archive_ends_named_docx_is_refused_at_once() {
    let app = spawn_app().await;
    let Chat { session_id: id, ann, .. } = assigned_chat(&app).await;
    let ann = crate::helpers::Person { token: customer_token(&app, &ann).await, ..ann };

    // A few MB at most, under the upload limit. Were each record tried in
    // turn (the directory read again each time, or the file searched for
    // another), either would hold a worker for minutes.
    for (entries, count) in [(1, 200_000), (2_000, 20_000)] {
        let upload = app.upload_as(&ann.token, &id, "report.docx", countless_archive_ends(entries, count));
        let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(10), upload)
            .await
            .unwrap_or_else(|_| panic!("{count} records after {entries} entries: no answer within 10 s"));
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")),
            "{body}"
        );
    }
    let (status, _) = app.upload_as(&ann.token, &id, "order.docx", word_document("still here")).await;
    assert_eq!(status, StatusCode::CREATED);
}
