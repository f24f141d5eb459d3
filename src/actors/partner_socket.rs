//! A partner organisation member's socket, `/ws/partner`: they follow and
//! write in the chats their organisation is invited into.

use actix::Addr;

use crate::actors::messages::{FromPartner, Reply, SocketHandle};
use crate::actors::registry::SessionRegistry;
use crate::actors::socket::{Socket, SocketRole};
use crate::protocol::client::{Inbound, PartnerRequest};

pub enum Partner {}

impl SocketRole for Partner {
    type Request = PartnerRequest;
    const NAME: &'static str = "partner";

    fn parse(text: &str) -> Inbound<PartnerRequest> {
        PartnerRequest::parse(text)
    }

    fn dispatch(registry: &Addr<SessionRegistry>, socket: SocketHandle, reply: Reply, request: PartnerRequest) {
        registry.do_send(FromPartner { socket, reply, request });
    }
}

pub type PartnerSocket = Socket<Partner>;
