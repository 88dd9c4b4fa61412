//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/api/v1/openapi.json`. `switchboard openapi` prints it; CI checks `docs/openapi.json` is current.

use axum::Json;
use utoipa::{
    openapi::security::{ApiKey, ApiKeyValue, SecurityScheme},
    Modify, OpenApi,
};

use crate::agent::{flows_api, flows_db, simulate};
use crate::{channels, http::pagination::Page, inbox, jobs, routing, tenants};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard API", description = "Configure and read a Switchboard messaging gateway. Authenticate with `Authorization: Bearer <api key>`."),
    paths(
        tenants::api::create_tenant, tenants::api::list_tenants, tenants::api::current_tenant,
        tenants::api::webhook_secret,
        channels::api::create_channel, channels::api::list_channels, channels::api::get_channel,
        channels::api::update_channel, channels::api::delete_channel,
        inbox::api::list_conversations, inbox::api::get_conversation, inbox::api::list_messages,
        jobs::api::list_jobs, jobs::api::retry_job,
        flows_api::create_flow, flows_api::list_flows, flows_api::update_flow, flows_api::delete_flow,
        flows_api::list_versions, flows_api::get_version, flows_api::publish_version,
        flows_api::validate_flow, flows_api::rollback_flow, flows_api::simulate_flow,
        routing::teams_api::create_team, routing::teams_api::list_teams, routing::teams_api::get_team,
        routing::teams_api::update_team, routing::teams_api::delete_team, routing::teams_api::team_queue,
        routing::api::list_agents, routing::api::update_agent, routing::api::routing_history,
        channels::form::submit_form,
        crate::agent::usage_api::llm_usage, crate::agent::llm_settings_api::get_llm_settings,
        crate::agent::llm_settings_api::put_llm_settings,
        crate::agent::prompt_overrides::list_prompts, crate::agent::prompt_overrides::put_prompt,
        crate::agent::prompt_overrides::delete_prompt,
        tenants::notices::api::list_notices, tenants::notices::api::acknowledge_notice,
        tenants::notices::api::get_notifications, tenants::notices::api::put_notifications,
    ),
    components(schemas(
        tenants::db::Tenant, tenants::api::CreateTenant, tenants::api::CreatedTenant,
        tenants::api::WebhookSecret,
        channels::db::Channel, channels::api::CreateChannel, channels::api::UpdateChannel, channels::ChannelKind,
        inbox::db::ConversationView, inbox::MessageView, Page<inbox::db::ConversationView>, Page<inbox::MessageView>,
        jobs::DeadJob,
        flows_db::FlowVersion, flows_db::VersionRow, flows_db::VersionSummary, flows_db::FlowSummary,
        flows_api::FlowSource, flows_api::ValidateRequest, flows_api::RollbackRequest,
        flows_api::SimulateRequest, flows_api::Validation, flows_api::Simulation, simulate::SimulatedTurn,
        crate::agent::usage_api::UsageReport, crate::agent::llm_settings_api::LlmSettingsBody,
        crate::agent::llm_settings_api::LlmSettingsView, crate::agent::llm_settings_api::LlmSource,
        crate::agent::llm_usage::MonthTotals,
        crate::agent::prompt_overrides::PromptOverride, crate::agent::prompt_overrides::PromptList,
        crate::agent::prompt_overrides::PutPrompt,
        routing::teams_db::Team, routing::teams_db::TeamMember, routing::teams_db::AgentView,
        routing::teams_api::CreateTeam, routing::teams_api::UpdateTeam, routing::teams_api::MemberInput,
        routing::api::UpdateAgent, routing::db::QueueEntry, routing::RoutingDecision,
        routing::DecisionTarget, routing::Strategy, routing::Priority, routing::TeamId,
        channels::form::FormFields, channels::form::FormAccepted,
        tenants::notices::Notice, Page<tenants::notices::Notice>,
        tenants::notices::api::NotificationSettings,
    )),
    modifiers(&ApiKeyAuth),
)]
pub struct ApiDoc;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("Authorization"))),
            );
        }
    }
}

/// The document as pretty JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into())
}

/// `GET /api/v1/openapi.json`
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
