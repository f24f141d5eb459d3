//! The customer widget's socket, `/ws/customer`.

use actix::Addr;

use crate::actors::messages::{FromCustomer, Reply, SocketHandle};
use crate::actors::registry::SessionRegistry;
use crate::actors::socket::{Socket, SocketRole};
use crate::protocol::client::{CustomerRequest, Inbound};

pub enum Customer {}

impl SocketRole for Customer {
    type Request = CustomerRequest;
    const NAME: &'static str = "customer";

    fn parse(text: &str) -> Inbound<CustomerRequest> {
        CustomerRequest::parse(text)
    }

    fn dispatch(registry: &Addr<SessionRegistry>, socket: SocketHandle, reply: Reply, request: CustomerRequest) {
        registry.do_send(FromCustomer { socket, reply, request });
    }
}

pub type CustomerSocket = Socket<Customer>;
