// A relying party built on openid-client (a certified OpenID Connect RP library) and jose,
// signing a user on at Lanyard the way a real application would:
//   discovery → authorization code + PKCE (S256) with state and nonce → sign-on through the
//   flows API (keeping the ST cookie like a browser) → resume → code exchange, with the library
//   validating the ID token (JWKS signature, iss, aud, exp, nonce) → userinfo → refresh
//   (rotation; a replayed refresh token is refused) → introspection and revocation → signoff.
//
// Input (environment): ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_REDIRECT_URI,
// USERNAME, PASSWORD, EXPECTED_SUB. Output: one JSON line on stdout; exit 1 on any failure.
// Run by crates/lanyard/tests/interop_oidc.rs.

import { createHash } from 'node:crypto';
import * as client from 'openid-client';
import * as jose from 'jose';

const need = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};
const ISSUER = need('ISSUER');
const CLIENT_ID = need('CLIENT_ID');
const CLIENT_SECRET = need('CLIENT_SECRET');
const REDIRECT_URI = need('REDIRECT_URI');
const POST_LOGOUT_REDIRECT_URI = need('POST_LOGOUT_REDIRECT_URI');
const USERNAME = need('USERNAME');
const PASSWORD = need('PASSWORD');
const EXPECTED_SUB = need('EXPECTED_SUB');

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// ---- a minimal browser: manual redirects and a cookie jar ----
const jar = new Map();
async function browse(url, init = {}) {
  const headers = new Headers(init.headers || {});
  if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const c of res.headers.getSetCookie()) {
    const [pair, ...attrs] = c.split(';');
    const i = pair.indexOf('=');
    const name = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    const expired = attrs.some((a) => a.trim().toLowerCase() === 'max-age=0');
    if (!value || expired) jar.delete(name);
    else jar.set(name, value);
  }
  return res;
}
async function json(res, what) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${what}: not JSON (${res.status}): ${text}`);
  }
}

// 1. Discovery (plain http is allowed for this test only).
const config = await client.discovery(
  new URL(ISSUER),
  CLIENT_ID,
  { redirect_uris: [REDIRECT_URI], response_types: ['code'] },
  client.ClientSecretBasic(CLIENT_SECRET),
  { execute: [client.allowInsecureRequests] },
);
// Verify ID token signatures against the JWKS (not only the TLS channel).
client.enableNonRepudiationChecks(config);
const meta = config.serverMetadata();
check(meta.issuer === ISSUER, `issuer ${meta.issuer}`);
check(meta.code_challenge_methods_supported?.includes('S256'), 'S256 is supported');

// 2. Authorization request: code + PKCE S256, state and nonce.
const codeVerifier = client.randomPKCECodeVerifier();
const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
const state = client.randomState();
const nonce = client.randomNonce();
const authUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: REDIRECT_URI,
  scope: 'openid profile email',
  code_challenge: codeChallenge,
  code_challenge_method: 'S256',
  state,
  nonce,
});
let res = await browse(authUrl);
check(res.status === 302, `authorize answers 302 (got ${res.status}: ${await res.clone().text()})`);
check(jar.has('ST'), 'authorize sets the ST session cookie');
const signonPage = new URL(res.headers.get('location'));
const flowId = signonPage.searchParams.get('flowId');
check(flowId, `a flowId in ${signonPage}`);

// 3. The sign-on page's work: read the flow, send the credentials, resume.
const base = ISSUER.replace(/\/as$/, '');
let flow = await json(await browse(`${base}/flows/${flowId}`), 'flow');
check(flow.status === 'USERNAME_PASSWORD_REQUIRED', `flow status ${flow.status}`);
const checkHref = flow._links?.['usernamePassword.check']?.href;
check(checkHref, 'the flow offers usernamePassword.check');
res = await browse(checkHref, {
  method: 'POST',
  headers: { 'content-type': 'application/vnd.pingidentity.usernamePassword.check+json' },
  body: JSON.stringify({ username: USERNAME, password: PASSWORD }),
});
flow = await json(res, 'usernamePassword.check');
check(res.status === 200 && flow.status === 'COMPLETED', `sign-on completes (${res.status} ${JSON.stringify(flow)})`);
res = await browse(flow.resumeUrl);
check(res.status === 302, `resume answers 302 (got ${res.status})`);
const callback = new URL(res.headers.get('location'));
check(callback.href.startsWith(REDIRECT_URI), `back at the redirect URI: ${callback}`);

// 4. Code exchange; the library checks state, then validates the ID token.
const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: codeVerifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
check(claims.sub === EXPECTED_SUB, `sub ${claims.sub}`);
check(claims.iss === ISSUER && claims.aud === CLIENT_ID && claims.nonce === nonce, 'iss/aud/nonce');
check(typeof tokens.refresh_token === 'string', 'a refresh token');
// at_hash (OIDC Core 3.1.3.8 / 3.2.2.9): the left half of SHA-256 of the access token.
const atHash = (t) => Buffer.from(createHash('sha256').update(t).digest().subarray(0, 16)).toString('base64url');
check(claims.at_hash === atHash(tokens.access_token), 'at_hash matches the access token');
// The access token is a JWT signed with the same published keys.
const jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri));
const at = await jose.jwtVerify(tokens.access_token, jwks, { issuer: ISSUER, algorithms: ['RS256'] });
check(at.payload.sub === EXPECTED_SUB && at.payload.client_id === CLIENT_ID, 'access token claims');
check(at.payload.sid === claims.sid, 'access token and ID token share the session');

// 5. Userinfo.
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
check(userinfo.preferred_username === USERNAME, `userinfo ${JSON.stringify(userinfo)}`);
check(typeof userinfo.email === 'string', 'userinfo has the email (email scope)');

// 6. Refresh: a new access token and a rotated refresh token; the old one is then refused.
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
check(refreshed.access_token && refreshed.access_token !== tokens.access_token, 'a new access token');
check(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, 'refresh tokens rotate');
check(refreshed.claims()?.sub === EXPECTED_SUB, 'the refreshed ID token is for the same user');
let replay = null;
try {
  await client.refreshTokenGrant(config, tokens.refresh_token);
} catch (e) {
  replay = e.error ?? e.cause?.error ?? e.code;
}
check(replay === 'invalid_grant', `a replayed refresh token is invalid_grant (got ${replay})`);

// 7. Introspection and revocation.
const active = await client.tokenIntrospection(config, tokens.access_token);
check(active.active === true && active.sub === EXPECTED_SUB, `introspection ${JSON.stringify(active)}`);
await client.tokenRevocation(config, tokens.access_token);
const revoked = await client.tokenIntrospection(config, tokens.access_token);
check(revoked.active === false, 'revoked tokens are inactive');

// 8. RP-initiated logout ends the session.
const logout = client.buildEndSessionUrl(config, {
  id_token_hint: tokens.id_token,
  post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI,
  state: 'bye',
});
res = await browse(logout);
check(res.status === 302, `signoff answers 302 (got ${res.status})`);
check(res.headers.get('location') === `${POST_LOGOUT_REDIRECT_URI}?state=bye`, `signoff location ${res.headers.get('location')}`);
check(!jar.has('ST'), 'signoff clears the session cookie');

console.log(
  JSON.stringify({
    ok: true,
    sub: claims.sub,
    sid: claims.sid,
    scope: tokens.scope,
    userinfo,
    refreshedScope: refreshed.scope,
  }),
);
