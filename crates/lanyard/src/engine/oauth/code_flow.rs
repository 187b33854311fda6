//! The end of an authorization request (the response parameters for a completed flow) and the
//! token endpoint grants that continue it: `authorization_code` (single use, PKCE, bound to the
//! client and redirect URI; a replay revokes what the code issued) and `refresh_token`
//! (rotated on every use; a replayed token revokes its whole family).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::authorize::AuthorizeRequest;
use super::grants::{self, ScopeSet};
use super::issue::{
    self, CODE_KIND, CODE_SECONDS, FAMILY_KIND, IdTokenInput, REFRESH_KIND, SignOn,
};
use crate::clock;
use crate::engine::secrets::secret_eq;
use crate::engine::sessions;
use crate::error::{ApiError, ApiResult, OAuthError};
use crate::resources::{environments, users};
use crate::state::App;
use crate::store::Doc;
use crate::store::runtime::NewItem;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CodeRecord {
    client_id: String,
    app_id: String,
    redirect_uri: Option<String>,
    scopes: ScopeSet,
    sign_on: SignOn,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    used: bool,
    /// What the code was exchanged for, revoked if the code is replayed.
    issued_jti: Option<(String, i64)>,
    issued_family: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshRecord {
    family: String,
    app_id: String,
    scopes: ScopeSet,
    sign_on: SignOn,
    used: bool,
    /// When the token was issued (unix milliseconds), compared with the user's marker
    /// (`sessions::end_sign_ons`); absent in tokens stored before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issued_ms: Option<i64>,
}

async fn signing(
    app: &App,
    env_id: &str,
) -> ApiResult<std::sync::Arc<crate::engine::keys::SigningKey>> {
    app.keys
        .default_key(&app.store, &app.master, env_id)
        .await?
        .ok_or_else(|| ApiError::internal("the environment has no signing key"))
}

async fn load_user(app: &App, env_id: &str, user_id: &str) -> ApiResult<Doc> {
    users::enabled(app, env_id, user_id)
        .await?
        .ok_or_else(user_gone)
}

fn user_gone() -> ApiError {
    OAuthError::new("invalid_grant", "The user no longer exists or is disabled.").into()
}

/// The parameters of the authorization response for a completed sign-on.
pub async fn authorization_response(
    app: &App,
    env_id: &str,
    client: &Doc,
    req: &AuthorizeRequest,
    scopes: &ScopeSet,
    sign_on: &SignOn,
) -> ApiResult<Vec<(String, String)>> {
    let org = environments::org_of(app, env_id).await?;
    let mut out = Vec::new();
    let mut code = None;
    if req.wants("code") {
        let c = issue::opaque();
        let rec = CodeRecord {
            client_id: req.client_id.clone(),
            app_id: client.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scopes: scopes.clone(),
            sign_on: sign_on.clone(),
            code_challenge: req.code_challenge.clone(),
            code_challenge_method: req.code_challenge_method.clone(),
            used: false,
            issued_jti: None,
            issued_family: None,
        };
        // Kept past its lifetime so a replay can still be recognised and punished.
        app.store
            .runtime_put(
                CODE_KIND,
                &issue::sha256_b64(&c),
                env_id,
                &json!(rec),
                clock::unix() + 10 * CODE_SECONDS,
            )
            .await?;
        out.push(("code".into(), c.clone()));
        code = Some(c);
    }
    let key = signing(app, env_id).await?;
    let mut access = None;
    if req.wants("token") {
        let (at, expires_in, scope) =
            issue::access_token(app, &key, env_id, &org, client, scopes, Some(sign_on));
        out.push(("access_token".into(), at.clone()));
        out.push(("token_type".into(), "Bearer".into()));
        out.push(("expires_in".into(), expires_in.to_string()));
        out.push(("scope".into(), scope));
        access = Some(at);
    }
    if req.wants("id_token") {
        let user = load_user(app, env_id, &sign_on.user_id).await?;
        let id = issue::id_token(
            app,
            &key,
            env_id,
            &org,
            client,
            &user,
            scopes,
            sign_on,
            IdTokenInput {
                access_token: access.as_deref(),
                code: code.as_deref(),
            },
        )
        .await?;
        out.push(("id_token".into(), id));
    }
    if let Some(s) = &req.state {
        out.push(("state".into(), s.clone()));
    }
    Ok(out)
}

fn pkce_ok(challenge: &str, method: &str, verifier: &str) -> bool {
    if !(43..=128).contains(&verifier.len())
        || !verifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    {
        return false;
    }
    let computed = match method {
        "S256" => {
            use base64::Engine;
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d)
        }
        _ => verifier.to_string(),
    };
    secret_eq(&computed, challenge)
}

fn param<'a>(form: &'a [(String, String)], k: &str) -> Option<&'a str> {
    form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn invalid_grant(m: &str) -> ApiError {
    OAuthError::new("invalid_grant", m).into()
}

/// `grant_type=authorization_code`.
pub async fn redeem_code(
    app: &App,
    env_id: &str,
    client: &Doc,
    form: &[(String, String)],
) -> ApiResult<Value> {
    let code = param(form, "code")
        .ok_or_else(|| OAuthError::new("invalid_request", "code is required."))?;
    let Some(item) = app
        .store
        .runtime_get(CODE_KIND, &issue::sha256_b64(code))
        .await?
        .filter(|i| i.env_id == env_id)
    else {
        return Err(invalid_grant(
            "The authorization code is invalid or expired.",
        ));
    };
    let mut rec: CodeRecord =
        serde_json::from_value(item.data.clone()).map_err(ApiError::internal)?;
    if rec.used {
        // RFC 6749 §4.1.2: a reused code revokes the tokens it issued.
        if let Some((jti, exp)) = &rec.issued_jti {
            issue::revoke_jti(app, env_id, jti, *exp).await?;
        }
        if let Some(f) = &rec.issued_family {
            revoke_family(app, env_id, f).await?;
        }
        return Err(invalid_grant(
            "The authorization code has already been used.",
        ));
    }
    let created = item.expires_at - 10 * CODE_SECONDS;
    if clock::unix() > created + CODE_SECONDS {
        return Err(invalid_grant("The authorization code has expired."));
    }
    if rec.app_id != client.id {
        return Err(invalid_grant(
            "The authorization code was issued to another client.",
        ));
    }
    if rec.redirect_uri.as_deref() != param(form, "redirect_uri") && rec.redirect_uri.is_some() {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request.",
        ));
    }
    match (&rec.code_challenge, param(form, "code_verifier")) {
        (Some(ch), Some(v)) => {
            if !pkce_ok(
                ch,
                rec.code_challenge_method.as_deref().unwrap_or("plain"),
                v,
            ) {
                return Err(invalid_grant(
                    "The code_verifier does not match the code_challenge.",
                ));
            }
        }
        (Some(_), None) => return Err(invalid_grant("code_verifier is required.")),
        (None, Some(_)) => {
            return Err(invalid_grant(
                "No code_challenge was sent with the authorization request.",
            ));
        }
        (None, None) => {
            if client.data["tokenEndpointAuthMethod"] == "NONE"
                && client.data["pkceEnforcement"] != "OPTIONAL"
            {
                return Err(invalid_grant("PKCE is required for this client."));
            }
        }
    }
    // Claim the code before issuing anything: a concurrent exchange loses here.
    rec.used = true;
    let user = load_user(app, env_id, &rec.sign_on.user_id).await?;
    let (body, jti, family) =
        issue_tokens(app, env_id, client, &user, &rec.scopes, &rec.sign_on, None).await?;
    rec.issued_jti = Some(jti);
    rec.issued_family = family;
    if !app
        .store
        .runtime_swap(&item, &json!(rec), item.expires_at)
        .await?
    {
        return Err(invalid_grant(
            "The authorization code has already been used.",
        ));
    }
    Ok(body)
}

/// Access token (+ ID token, + refresh token) for a sign-on of `user` (read by the caller:
/// it exists and is enabled). Returns the body, the access token's (jti, exp) and the
/// refresh family.
async fn issue_tokens(
    app: &App,
    env_id: &str,
    client: &Doc,
    user: &Doc,
    scopes: &ScopeSet,
    sign_on: &SignOn,
    family: Option<&str>,
) -> ApiResult<(Value, (String, i64), Option<String>)> {
    let org = environments::org_of(app, env_id).await?;
    let key = signing(app, env_id).await?;
    let (at, expires_in, scope) =
        issue::access_token(app, &key, env_id, &org, client, scopes, Some(sign_on));
    let jti = crate::engine::keys::UnverifiedJwt::parse(&at)
        .and_then(|j| j.claims["jti"].as_str().map(str::to_string))
        .unwrap_or_default();
    let mut body = json!({ "access_token": at, "token_type": "Bearer", "expires_in": expires_in, "scope": scope });
    if scopes.has("openid") {
        body["id_token"] = json!(
            issue::id_token(
                app,
                &key,
                env_id,
                &org,
                client,
                user,
                scopes,
                sign_on,
                IdTokenInput {
                    access_token: Some(&at),
                    code: None
                }
            )
            .await?
        );
    }
    let can_refresh = client.data["grantTypes"]
        .as_array()
        .is_some_and(|a| a.iter().any(|g| g == "REFRESH_TOKEN"));
    let mut fam = None;
    if can_refresh {
        let f = family
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let lifetime = client.data["refreshTokenDuration"]
            .as_i64()
            .unwrap_or(2_592_000);
        let rt = issue::opaque();
        let rec = RefreshRecord {
            family: f.clone(),
            app_id: client.id.clone(),
            scopes: scopes.clone(),
            sign_on: sign_on.clone(),
            used: false,
            issued_ms: Some(sessions::now_ms()),
        };
        let (rt_hash, rec_data, family_data) = (
            issue::sha256_b64(&rt),
            json!(rec),
            json!({ "revoked": false }),
        );
        let expires_at = clock::unix() + lifetime;
        let refresh = NewItem {
            kind: REFRESH_KIND,
            id: &rt_hash,
            env_id,
            data: &rec_data,
            expires_at,
        };
        // A new family is stored with its first token (one statement).
        let new_family = family.is_none().then_some(NewItem {
            kind: FAMILY_KIND,
            id: &f,
            env_id,
            data: &family_data,
            expires_at,
        });
        let items: Vec<NewItem<'_>> = new_family.into_iter().chain([refresh]).collect();
        app.store.runtime_put_many(&items).await?;
        body["refresh_token"] = json!(rt);
        fam = Some(f);
    }
    Ok((body, (jti, clock::unix() + expires_in), fam))
}

pub async fn revoke_family(app: &App, env_id: &str, family: &str) -> ApiResult<()> {
    for _ in 0..5 {
        match app.store.runtime_get(FAMILY_KIND, family).await? {
            Some(item) if item.env_id == env_id => {
                if app
                    .store
                    .runtime_swap(&item, &json!({ "revoked": true }), item.expires_at)
                    .await?
                {
                    return Ok(());
                }
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// How a refresh token stands, from one read of its family and its session, and one of its
/// user.
pub(crate) struct RefreshStanding {
    /// The family has not been revoked (a replay revokes it).
    pub family_live: bool,
    /// The session the token came from still exists and still signs the user on: signoff,
    /// another user's sign-on, the session's limits, an account lock and a password reset
    /// end it.
    pub session_live: bool,
    /// The token's user, if they still exist and are enabled.
    pub user: Option<Doc>,
}

pub(crate) async fn refresh_standing(
    app: &App,
    env_id: &str,
    family: &str,
    sign_on: &SignOn,
    issued_ms: Option<i64>,
) -> ApiResult<RefreshStanding> {
    let mut found = app
        .store
        .runtime_get_many(&[
            (FAMILY_KIND, family),
            (sessions::KIND, &sign_on.session_key),
        ])
        .await?
        .into_iter();
    let family_live = found
        .next()
        .flatten()
        .is_some_and(|f| f.data["revoked"] != true);
    let session = sessions::of_item(found.next().flatten(), env_id)?
        .map(|(_, s)| s)
        .filter(|s| s.id == sign_on.session_id);
    let user = users::enabled(app, env_id, &sign_on.user_id).await?;
    let limits = sessions::Limits::of(app, env_id).await?;
    let session_live = match (&session, &user) {
        (Some(s), Some(u)) => {
            s.keeps_token(sign_on.auth_time, issued_ms, u, &limits, sessions::now_ms())
        }
        _ => false,
    };
    Ok(RefreshStanding {
        family_live,
        session_live,
        user,
    })
}

/// `grant_type=refresh_token`: rotate; a replayed token revokes the whole family.
pub async fn refresh(
    app: &App,
    env_id: &str,
    client: &Doc,
    form: &[(String, String)],
) -> ApiResult<Value> {
    let token = param(form, "refresh_token")
        .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is required."))?;
    let can_refresh = client.data["grantTypes"]
        .as_array()
        .is_some_and(|a| a.iter().any(|g| g == "REFRESH_TOKEN"));
    if !can_refresh {
        return Err(OAuthError::new(
            "unauthorized_client",
            "The application does not have the refresh_token grant.",
        )
        .into());
    }
    let Some(item) = app
        .store
        .runtime_get(REFRESH_KIND, &issue::sha256_b64(token))
        .await?
        .filter(|i| i.env_id == env_id)
    else {
        return Err(invalid_grant("The refresh token is invalid or expired."));
    };
    let mut rec: RefreshRecord =
        serde_json::from_value(item.data.clone()).map_err(ApiError::internal)?;
    if rec.app_id != client.id {
        return Err(invalid_grant(
            "The refresh token was issued to another client.",
        ));
    }
    if rec.used {
        if client.data["additionalRefreshTokenReplayProtectionEnabled"] != false {
            revoke_family(app, env_id, &rec.family).await?;
        }
        return Err(invalid_grant("The refresh token has already been used."));
    }
    let standing = refresh_standing(app, env_id, &rec.family, &rec.sign_on, rec.issued_ms).await?;
    if !standing.family_live {
        return Err(invalid_grant("The refresh token has been revoked."));
    }
    let user = standing.user.ok_or_else(user_gone)?;
    // Refresh tokens are usable while the session they came from signs the user on.
    if !standing.session_live {
        return Err(invalid_grant(
            "The session of this refresh token has ended.",
        ));
    }
    // A narrower scope may be asked for; never a wider one.
    let scopes = match param(form, "scope") {
        Some(s) => {
            let asked: Vec<String> = s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect();
            let granted = rec.scopes.all();
            if let Some(extra) = asked.iter().find(|a| !granted.contains(a)) {
                return Err(OAuthError::new(
                    "invalid_scope",
                    format!("The scope '{extra}' was not granted originally."),
                )
                .into());
            }
            grants::resolve(app, client, &asked).await?
        }
        None => rec.scopes.clone(),
    };
    rec.used = true;
    if !app
        .store
        .runtime_swap(&item, &json!(rec), item.expires_at)
        .await?
    {
        revoke_family(app, env_id, &rec.family).await?;
        return Err(invalid_grant("The refresh token has already been used."));
    }
    let mut sign_on = rec.sign_on.clone();
    sign_on.nonce = None;
    let (body, _, _) = issue_tokens(
        app,
        env_id,
        client,
        &user,
        &scopes,
        &sign_on,
        Some(&rec.family),
    )
    .await?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pkce_rfc7636_vector() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(super::pkce_ok(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "S256",
            v
        ));
        assert!(!super::pkce_ok(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cX",
            "S256",
            v
        ));
        assert!(super::pkce_ok(v, "plain", v));
    }
}
