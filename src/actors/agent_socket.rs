//! The agent dashboard's socket, `/ws/agent`.

use actix::Addr;

use crate::actors::messages::{FromAgent, Reply, SocketHandle};
use crate::actors::registry::SessionRegistry;
use crate::actors::socket::{Socket, SocketRole};
use crate::protocol::client::{AdminRequest, AgentRequest, Inbound};

pub enum Agent {}

impl SocketRole for Agent {
    type Request = AgentRequest;
    const NAME: &'static str = "agent";

    fn parse(text: &str) -> Inbound<AgentRequest> {
        AgentRequest::parse(text)
    }

    fn dispatch(registry: &Addr<SessionRegistry>, socket: SocketHandle, reply: Reply, request: AgentRequest) {
        registry.do_send(FromAgent { socket, reply, request });
    }

    fn admin(request: AgentRequest) -> Result<AdminRequest, AgentRequest> {
        match request {
            AgentRequest::Admin(admin) => Ok(admin),
            other => Err(other),
        }
    }
}

pub type AgentSocket = Socket<Agent>;
