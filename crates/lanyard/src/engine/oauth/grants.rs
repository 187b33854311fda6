//! Which scopes an application may be given: the scopes of its resource grants, split by the
//! resource that owns them (the openid resource, the PingOne API, one custom resource).

use serde::{Deserialize, Serialize};

use crate::error::{ApiResult, OAuthError};
use crate::resources::{applications, resources};
use crate::state::App;
use crate::store::Doc;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScopeSet {
    /// Scopes of the openid resource (`openid`, `profile`, … and custom OIDC scopes).
    pub oidc: Vec<String>,
    /// PingOne API self-service scopes (`p1:read:user` …).
    pub platform: Vec<String>,
    /// Scopes of one custom resource, with its audience and token lifetime.
    pub custom: Vec<String>,
    pub custom_audience: Option<String>,
    pub custom_lifetime: Option<i64>,
    /// `offline_access` was requested and the application may refresh.
    pub offline: bool,
}

impl ScopeSet {
    pub fn all(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .oidc
            .iter()
            .chain(&self.platform)
            .chain(&self.custom)
            .cloned()
            .collect();
        if self.offline {
            v.push("offline_access".into());
        }
        v
    }
    pub fn has(&self, s: &str) -> bool {
        self.oidc
            .iter()
            .chain(&self.platform)
            .chain(&self.custom)
            .any(|x| x == s)
    }
    /// The access token audience: the custom resource, else the platform API.
    pub fn audience(&self) -> String {
        self.custom_audience
            .clone()
            .unwrap_or_else(|| crate::engine::tokens::PLATFORM_AUDIENCE.to_string())
    }
}

/// Resolves requested scopes against the application's grants; an ungranted scope is `invalid_scope`.
pub async fn resolve(app: &App, client: &Doc, requested: &[String]) -> ApiResult<ScopeSet> {
    let mut set = ScopeSet::default();
    let grants = app
        .cached_children(applications::GRANT_KIND, &client.env_id, &client.id)
        .await?;
    let mut granted: Vec<(String, Doc)> = Vec::new();
    for g in grants.iter() {
        let res_id = g.data["resource"]["id"].as_str().unwrap_or_default();
        let Some(res) = app
            .cached_doc(resources::KIND, &client.env_id, res_id)
            .await?
        else {
            continue;
        };
        for s in g.data["scopes"].as_array().into_iter().flatten() {
            let scope_id = s["id"].as_str().unwrap_or_default();
            if let Some(scope) = app
                .cached_doc(resources::SCOPE_KIND, &client.env_id, scope_id)
                .await?
            {
                granted.push((
                    scope.data["name"].as_str().unwrap_or_default().to_string(),
                    res.clone(),
                ));
            }
        }
    }
    let can_refresh = client.data["grantTypes"]
        .as_array()
        .is_some_and(|a| a.iter().any(|g| g == "REFRESH_TOKEN"));
    let multi = client.data["requestScopesForMultipleResourcesEnabled"] == true;
    for s in requested {
        if s == "offline_access" {
            if !can_refresh {
                return Err(OAuthError::new(
                    "invalid_scope",
                    "offline_access requires the REFRESH_TOKEN grant.",
                )
                .into());
            }
            set.offline = true;
            continue;
        }
        let Some((_, res)) = granted.iter().find(|(n, _)| n == s) else {
            // `openid` belongs to every OIDC application without a grant (PingOne refuses it in
            // grants; its how-tos grant `profile` or `p1:*` scopes and ask for `openid`).
            if s == "openid" {
                set.oidc.push(s.clone());
                continue;
            }
            return Err(OAuthError::new(
                "invalid_scope",
                format!("The scope '{s}' is not granted to this application."),
            )
            .into());
        };
        match res.data["type"].as_str() {
            Some("OPENID_CONNECT") => set.oidc.push(s.clone()),
            Some("PINGONE_API") => set.platform.push(s.clone()),
            _ => {
                let aud = res.data["audience"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if set.custom_audience.as_ref().is_some_and(|a| *a != aud) && !multi {
                    return Err(OAuthError::new(
                        "invalid_scope",
                        "Scopes of several custom resources cannot be requested together.",
                    )
                    .into());
                }
                let lifetime = res.data["accessTokenValiditySeconds"]
                    .as_i64()
                    .unwrap_or(3600);
                set.custom_lifetime =
                    Some(set.custom_lifetime.map_or(lifetime, |l| l.min(lifetime)));
                set.custom_audience.get_or_insert(aud);
                set.custom.push(s.clone());
            }
        }
    }
    if !set.custom.is_empty() && !set.platform.is_empty() {
        return Err(OAuthError::new(
            "invalid_scope",
            "PingOne API scopes and custom resource scopes cannot be requested together.",
        )
        .into());
    }
    Ok(set)
}
