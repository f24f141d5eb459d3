//! The email that carries an agent's answer to an offline request, written
//! apart from any I/O. It goes through the mail outbox like a transcript
//! (kind `offline_reply`).

use uuid::Uuid;

use crate::db::models::outbox::NewEmail;

/// The outbox's kind for these emails.
pub const KIND: &str = "offline_reply";

/// `agent_name`'s answer to the customer's message, for `to`.
pub fn email(to: &str, session_id: Uuid, agent_name: &str, answer: &str) -> NewEmail {
    let text_body = format!(
        "{agent_name} answered the message you left us:\n\n{answer}\n\n\
         You'll also find this answer in the chat when you come back to our website; reply there to go on."
    );
    let paragraphs: String = answer
        .split("\n\n")
        .map(|paragraph| format!("<p>{}</p>", html_escape::encode_text(paragraph).replace('\n', "<br>")))
        .collect();
    let html_body = format!(
        "<!doctype html><html><body>\
         <p>{name} answered the message you left us:</p>\
         <blockquote>{paragraphs}</blockquote>\
         <p>You'll also find this answer in the chat when you come back to our website; reply there to go on.</p>\
         </body></html>",
        name = html_escape::encode_text(agent_name),
    );
    NewEmail {
        kind: KIND.to_owned(),
        session_id: Some(session_id),
        to_address: to.to_owned(),
        subject: format!("{agent_name} answered your message"),
        text_body,
        html_body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_in_both_parts_and_cannot_inject_html() {
        let mail = email("ann@example.com", Uuid::nil(), "Otto <3", "It ships <b>today</b>.\n\nBye & thanks");
        assert_eq!(mail.kind, "offline_reply");
        assert_eq!(mail.to_address, "ann@example.com");
        assert!(mail.text_body.contains("It ships <b>today</b>.\n\nBye & thanks"));
        assert!(mail.html_body.contains("<p>It ships &lt;b&gt;today&lt;/b&gt;.</p><p>Bye &amp; thanks</p>"));
        assert!(mail.html_body.contains("Otto &lt;3 answered"));
    }
}
