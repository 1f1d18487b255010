//! Signed links in mail (SPEC §6): the token format lives in [`token`]; the
//! web pages that open them and the database checks (revocation by contact
//! generation) build on it.

pub mod issue;
pub mod token;

pub use issue::{link_for, IssueError};
pub use token::{sign, verify, LinkClaims, LinkError, LinkPurpose};
