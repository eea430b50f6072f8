//! An OpenID "Basic OP" equivalent: the `openidconnect` crate, a relying party nobody here wrote, drives the real auth server.
