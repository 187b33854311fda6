//! First start: the organization, the `Administrators` environment and its admin worker
//! application with organization-wide roles; then `admin-credentials.json` on every start.

use std::path::Path;

use serde_json::json;

use crate::engine::authz::{ENVIRONMENT_ADMIN, IDENTITY_DATA_ADMIN, ORGANIZATION_ADMIN};
use crate::error::ApiResult;
use crate::resources::{WriteCtx, applications, environments, roles};
use crate::state::App;

pub const ORG_SETTING: &str = "organization_id";
const ADMIN_APP_SETTING: &str = "admin_application_id";

pub struct AdminCredentials {
    pub environment_id: String,
    pub client_id: String,
    pub client_secret: String,
}

pub async fn run(app: &App) -> anyhow::Result<AdminCredentials> {
    ensure(app)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap failed: {e:?}"))?;
    let creds = credentials(app)
        .await
        .map_err(|e| anyhow::anyhow!("reading admin credentials: {e:?}"))?;
    write_credentials_file(app, &creds)?;
    Ok(creds)
}

async fn ensure(app: &App) -> ApiResult<()> {
    let mut tx = app.store.begin().await?;
    tx.lock_bootstrap().await?;
    if tx.setting(ORG_SETTING).await?.is_some() {
        // Fixed credentials from the environment win over what is stored.
        if let (Some(id), Some(secret)) = (
            &app.settings.admin_client_id,
            &app.settings.admin_client_secret,
        ) {
            let env_id = tx
                .setting(environments::ADMIN_ENV_SETTING)
                .await?
                .unwrap_or_default();
            if let Some(mut doc) = tx.get(applications::KIND, &env_id, id).await?
                && !applications::secret_matches(app, &doc, secret)?
            {
                doc.secrets = Some(app.master.encrypt_json(&json!({ "secret": secret })));
                tx.update_data(&mut doc).await?;
            }
        }
        return tx.commit().await;
    }
    let org_id = uuid::Uuid::new_v4().to_string();
    tx.set_setting(ORG_SETTING, &org_id).await?;
    let env = environments::create_in(
        app,
        &mut tx,
        &org_id,
        &json!({ "name": "Administrators", "description": "Holds the organization's administrators and admin applications", "type": "PRODUCTION", "region": "NA" }),
        None,
    )
    .await?;
    tx.set_setting(environments::ADMIN_ENV_SETTING, &env.id)
        .await?;
    let app_id = app
        .settings
        .admin_client_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let worker = {
        let mut ctx = WriteCtx {
            app,
            tx: &mut tx,
            env: &env,
            org_id: &org_id,
        };
        applications::create_fixed(
            &mut ctx,
            &json!({
                "name": "Lanyard Admin",
                "description": "The organization's bootstrap admin worker",
                "enabled": true,
                "type": "WORKER",
                "protocol": "OPENID_CONNECT",
                "grantTypes": ["CLIENT_CREDENTIALS"],
                "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
            }),
            &app_id,
            app.settings.admin_client_secret.as_deref(),
        )
        .await?
    };
    for role in [ORGANIZATION_ADMIN, ENVIRONMENT_ADMIN, IDENTITY_DATA_ADMIN] {
        roles::assign_read_only(&mut tx, &env.id, &worker.id, role, "ORGANIZATION", &org_id)
            .await?;
    }
    tx.set_setting(ADMIN_APP_SETTING, &worker.id).await?;
    tx.commit().await
}

async fn credentials(app: &App) -> ApiResult<AdminCredentials> {
    let mut r = app.store.read();
    let env_id = r
        .setting(environments::ADMIN_ENV_SETTING)
        .await?
        .unwrap_or_default();
    let app_id = r.setting(ADMIN_APP_SETTING).await?.unwrap_or_default();
    let doc = r
        .get(applications::KIND, &env_id, &app_id)
        .await?
        .ok_or_else(crate::error::ApiError::not_found)?;
    let secrets = applications::secrets_of(app, &doc)?;
    Ok(AdminCredentials {
        environment_id: env_id,
        client_id: doc.data["clientId"].as_str().unwrap_or(&doc.id).to_string(),
        client_secret: secrets["secret"].as_str().unwrap_or_default().to_string(),
    })
}

fn write_credentials_file(app: &App, c: &AdminCredentials) -> anyhow::Result<()> {
    let public = app.public_url();
    let body = json!({
        "environmentId": c.environment_id,
        "clientId": c.client_id,
        "clientSecret": c.client_secret,
        "tokenEndpoint": format!("{public}/{}/as/token", c.environment_id),
        "apiPath": format!("{public}/v1"),
        "authPath": public,
    });
    let path = app.settings.data_dir.join("admin-credentials.json");
    crate::fsutil::write_private(
        Path::new(&path),
        serde_json::to_string_pretty(&body)?.as_bytes(),
    )?;
    tracing::info!(path = %path.display(), environment_id = %c.environment_id, client_id = %c.client_id, "admin credentials written");
    Ok(())
}
