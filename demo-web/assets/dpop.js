// DPoP (RFC 9449): the page's proof-of-possession key and the proofs it signs with it.
//
// The key pair is made by Web Crypto with `extractable: false`: script can sign with the private
// key but can never read it, so an access token copied out of the page (a log, an XSS payload's
// exfiltration, a proxy) is useless without a proof only this page can make. It lives in memory
// for the life of the page, like the tokens bound to it (oidc.js): a reload logs in again
// silently and gets a new key and new tokens.

/** The key pair, made on first use. */
let keyPair = null;

async function keys() {
  keyPair ??= await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  return keyPair;
}

/** The public key as a proof's `jwk` header carries it (RFC 7517: kty, crv, x, y only). */
async function publicJwk() {
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", (await keys()).publicKey);
  return { kty, crv, x, y };
}

/**
 * What the page can tell about its key: the RFC 7638 thumbprint (the `cnf.jkt` of its tokens)
 * and whether the private key could be read by script (it cannot).
 */
export async function describeKey() {
  const { crv, kty, x, y } = await publicJwk();
  // RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
  const canonical = JSON.stringify({ crv, kty, x, y });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical));
  return { thumbprint: base64url(digest), extractable: (await keys()).privateKey.extractable };
}

/**
 * A proof for one request (RFC 9449 §4.2): `htm` the method, `htu` the URL without query and
 * fragment, a fresh `iat` and random `jti`, and with an access token its hash as `ath`.
 */
export async function proof(method, url, accessToken = null) {
  const target = new URL(url);
  target.search = "";
  target.hash = "";
  const header = { typ: "dpop+jwt", alg: "ES256", jwk: await publicJwk() };
  const claims = {
    jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
    htm: method,
    htu: target.toString(),
    iat: Math.floor(Date.now() / 1000),
  };
  if (accessToken !== null) {
    claims.ath = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(accessToken)));
  }
  const signingInput = `${encodeJson(header)}.${encodeJson(claims)}`;
  // Web Crypto's ECDSA signature is r || s, 64 bytes: exactly the JWS form (RFC 7518 §3.4).
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    (await keys()).privateKey,
    new TextEncoder().encode(signingInput),
  );
  return `${signingInput}.${base64url(signature)}`;
}

function encodeJson(value) {
  return base64url(new TextEncoder().encode(JSON.stringify(value)));
}

function base64url(bytes) {
  const binary = String.fromCharCode(...new Uint8Array(bytes));
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
