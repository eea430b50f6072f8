//! The hosted login page, consent and the browser session (issue 13), against the in-process server.
