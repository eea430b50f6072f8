// Login, refresh and logout for a public browser client: the OAuth 2.0 authorization code flow
// with PKCE (RFC 6749 §4.1, RFC 7636), OpenID Connect (Core §3.1, RP-Initiated Logout 1.0) and
// the authorization response's `iss` (RFC 9207, against mix-up). Every token is DPoP-bound
// (RFC 9449, dpop.js): each token request and each call to a service carries a proof signed by a
// key the page cannot export, so a token copied out of the page works nowhere else.
//
// Where the tokens live (README "Demo web app"): the access, refresh and id tokens are in the
// variable `tokens` of this module and nowhere else, never in localStorage or sessionStorage
// (draft-ietf-oauth-browser-based-apps, "in-memory token storage"). A reload therefore forgets
// them; the app then logs in again silently (prompt=none), which the auth server's SSO session
// cookie allows without the form. sessionStorage holds only what the redirect round trip needs
// (state, nonce, PKCE verifier, removed on return) and a flag "this tab was logged in".

import * as dpop from "./dpop.js";

const PENDING_LOGIN = "demo-web.pending-login";
const PENDING_LOGOUT = "demo-web.pending-logout";
const SIGNED_IN = "demo-web.signed-in";

/** The auth server could not be reached (network error): login and refresh must wait. */
export class AuthServerUnreachable extends Error {}

/** The session is over (refresh refused, logged out elsewhere): the user must log in again. */
export class SessionEnded extends Error {}

let config = null;
let discovery = null;
/** { accessToken, refreshToken, idToken } while logged in, else null. Never stored. */
let tokens = null;
/** The refresh in flight, shared: rotation makes a refresh token single-use. */
let refreshing = null;

/** Sets the configuration (from /config.json). */
export function configure(appConfig) {
  config = appConfig;
}

/** Whether this page holds tokens. */
export function isLoggedIn() {
  return tokens !== null;
}

/** Whether this tab was logged in before a reload (no secret: just a flag). */
export function wasLoggedIn() {
  return sessionStorage.getItem(SIGNED_IN) === "1";
}

/** The issuer's discovery document (OIDC Discovery §4), fetched once. */
export async function discover() {
  if (discovery === null) {
    const response = await reach(`${config.issuer}/.well-known/openid-configuration`);
    if (!response.ok) {
      throw new AuthServerUnreachable(`discovery answered ${response.status}`);
    }
    const document = await response.json();
    // OIDC Discovery §4.3: the document must name the issuer it was fetched from.
    if (document.issuer !== config.issuer) {
      throw new Error(`the discovery document names issuer ${document.issuer}, not ${config.issuer}`);
    }
    discovery = document;
  }
  return discovery;
}

/**
 * Sends the browser to the authorization endpoint. `silent` adds prompt=none: with an SSO
 * session the auth server answers at once with a code, without one with `login_required`.
 */
export async function login({ silent = false } = {}) {
  const endpoints = await discover();
  const state = randomToken();
  const nonce = randomToken();
  const verifier = randomToken();
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING_LOGIN, JSON.stringify({ state, nonce, verifier, silent }));
  const url = new URL(endpoints.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    scope: config.scope,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...(silent ? { prompt: "none" } : {}),
  }).toString();
  window.location.assign(url.toString());
}

/**
 * Finishes a login on /callback: checks `state` and `iss`, redeems the code with the PKCE
 * verifier, checks the id_token's claims. Returns true when logged in, false when a silent
 * attempt found no session (not an error). Throws with a readable message otherwise.
 */
export async function completeLogin(query) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING_LOGIN) ?? "null");
  // Single use, whatever happens next: a replayed callback finds nothing.
  sessionStorage.removeItem(PENDING_LOGIN);
  if (pending === null) {
    throw new Error("this login was not started here (no pending state); log in again");
  }
  // RFC 6749 §10.12: a response without our `state` may be a forged one (login CSRF).
  if (query.get("state") !== pending.state) {
    throw new Error("the login answer does not match the request (state); log in again");
  }
  // RFC 9207: the answer must come from our issuer, not another one the browser talked to.
  if (query.get("iss") !== config.issuer) {
    throw new Error(`the login answer comes from ${query.get("iss")}, not ${config.issuer}`);
  }
  const error = query.get("error");
  if (error !== null) {
    if (pending.silent && ["login_required", "consent_required", "interaction_required"].includes(error)) {
      sessionStorage.removeItem(SIGNED_IN);
      return false;
    }
    throw new Error(`login failed: ${query.get("error_description") ?? error}`);
  }
  const answer = await tokenRequest({
    grant_type: "authorization_code",
    code: query.get("code") ?? "",
    redirect_uri: config.redirect_uri,
    client_id: config.client_id,
    code_verifier: pending.verifier,
  });
  // The id_token came straight from the token endpoint, so its signature need not be checked
  // here (OIDC Core §3.1.3.7 item 6); its claims still must match this request.
  const claims = idTokenClaims(answer.id_token);
  const audiences = [claims.aud].flat();
  if (claims.iss !== config.issuer || !audiences.includes(config.client_id) || claims.nonce !== pending.nonce) {
    throw new Error("the id_token does not belong to this login (iss, aud or nonce)");
  }
  keep(answer);
  sessionStorage.setItem(SIGNED_IN, "1");
  return true;
}

/**
 * Refreshes the tokens once (grant_type=refresh_token, RFC 6749 §6). Concurrent callers share
 * one request: the auth server rotates refresh tokens, and a second use of the old one would
 * count as theft and end the session.
 */
export function refresh() {
  if (tokens === null) {
    return Promise.reject(new SessionEnded("not logged in"));
  }
  refreshing ??= tokenRequest({
    grant_type: "refresh_token",
    refresh_token: tokens.refreshToken,
    client_id: config.client_id,
  })
    .then((answer) => keep(answer))
    .catch((error) => {
      if (!(error instanceof AuthServerUnreachable)) {
        forget();
        throw new SessionEnded(`the session ended (${error.message}); log in again`);
      }
      throw error;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/**
 * Calls a service with the access token and a fresh DPoP proof for this request (RFC 9449 §7.1).
 * On a 401 for an invalid (expired) token it refreshes once and retries with a new proof;
 * without the auth server that refresh throws AuthServerUnreachable.
 */
export async function authorizedFetch(url, options = {}) {
  if (tokens === null) {
    throw new SessionEnded("not logged in");
  }
  const method = (options.method ?? "GET").toUpperCase();
  const send = async () => {
    const { accessToken } = tokens;
    const headers = {
      ...options.headers,
      Authorization: `DPoP ${accessToken}`,
      DPoP: await dpop.proof(method, url, accessToken),
    };
    return fetch(url, { ...options, headers });
  };
  const response = await send();
  const challenge = response.headers.get("WWW-Authenticate") ?? "";
  if (response.status !== 401 || !challenge.includes("invalid_token")) {
    return response;
  }
  await refresh();
  return send();
}

/**
 * RP-Initiated Logout: forgets the tokens and sends the browser to the end_session_endpoint
 * with the id_token as hint, so the auth server logs out at once and comes back to the app.
 */
export async function logout() {
  const endpoints = await discover();
  const state = randomToken();
  const url = new URL(endpoints.end_session_endpoint);
  url.search = new URLSearchParams({
    id_token_hint: tokens?.idToken ?? "",
    client_id: config.client_id,
    post_logout_redirect_uri: config.post_logout_redirect_uri,
    state,
  }).toString();
  sessionStorage.setItem(PENDING_LOGOUT, state);
  forget();
  window.location.assign(url.toString());
}

/** Whether `query` is the auth server coming back from our logout (its `state` matches). */
export function completeLogout(query) {
  const state = sessionStorage.getItem(PENDING_LOGOUT);
  sessionStorage.removeItem(PENDING_LOGOUT);
  return state !== null && query.get("state") === state;
}

/** Forgets the tokens (memory) and the "was logged in" flag. */
export function forget() {
  tokens = null;
  sessionStorage.removeItem(SIGNED_IN);
}

/** The page's DPoP key: its thumbprint (the tokens' `cnf.jkt`) and whether script can read it. */
export function dpopKey() {
  return dpop.describeKey();
}

function keep(answer) {
  // The auth server binds every token of this client to the proof's key (`--dpop`); a Bearer
  // answer would be a token anyone holding it could use.
  if (answer.token_type !== "DPoP") {
    throw new Error(`the token endpoint issued a ${answer.token_type} token, not a DPoP-bound one`);
  }
  tokens = {
    accessToken: answer.access_token,
    // A refresh answer may leave out what did not change.
    refreshToken: answer.refresh_token ?? tokens?.refreshToken,
    idToken: answer.id_token ?? tokens?.idToken,
  };
}

/**
 * POSTs a form to the token endpoint with a DPoP proof; throws AuthServerUnreachable or an Error
 * with the reason.
 */
async function tokenRequest(fields) {
  const endpoints = await discover();
  const response = await reach(endpoints.token_endpoint, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      DPoP: await dpop.proof("POST", endpoints.token_endpoint),
    },
    body: new URLSearchParams(fields),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(answer.error_description ?? answer.error ?? `token endpoint answered ${response.status}`);
  }
  return answer;
}

/** fetch, with a network failure (server down, connection refused) as AuthServerUnreachable. */
async function reach(url, options = {}) {
  try {
    return await fetch(url, { ...options, signal: AbortSignal.timeout(5000) });
  } catch (error) {
    throw new AuthServerUnreachable(`the auth server is unreachable (${error.message})`);
  }
}

function idTokenClaims(idToken) {
  const payload = (idToken ?? "").split(".")[1];
  if (payload === undefined) {
    throw new Error("the token endpoint sent no id_token");
  }
  const json = atob(payload.replaceAll("-", "+").replaceAll("_", "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (char) => char.charCodeAt(0))));
}

/** 256 random bits, base64url: state, nonce and PKCE verifier (RFC 7636 §4.1: 43-128 characters). */
function randomToken() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

function base64url(bytes) {
  const binary = String.fromCharCode(...new Uint8Array(bytes));
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
