//! The application's `accessControl`, checked when a sign-on has done all its actions: with
//! `role.type: ADMIN_USERS_ONLY` only users who hold a role assignment may use it; with
//! `group` the user must be in any (`ANY_GROUP`) or all (`ALL_GROUPS`) of the groups. Lanyard
//! has no groups yet, so nobody is in one and a group rule admits no one.

use super::Flow;
use crate::error::ApiResult;
use crate::resources::{applications, roles};
use crate::state::App;

/// Why the flow's user may not use the flow's application, if they may not.
pub async fn refusal(app: &App, flow: &Flow) -> ApiResult<Option<&'static str>> {
    let Some(user_id) = &flow.user_id else {
        return Ok(None);
    };
    let Some(client) = applications::cached(app, &flow.env_id, &flow.application.id).await? else {
        return Ok(None);
    };
    let rules = &client.data["accessControl"];
    if rules["role"]["type"] == "ADMIN_USERS_ONLY"
        && app
            .store
            .read()
            .children(roles::KIND, &flow.env_id, user_id)
            .await?
            .is_empty()
    {
        return Ok(Some("Only administrators may use this application."));
    }
    let groups = rules["group"]["groups"].as_array().map_or(0, Vec::len);
    if groups > 0 {
        return Ok(Some(
            "The user is not in a group allowed to use this application.",
        ));
    }
    Ok(None)
}
