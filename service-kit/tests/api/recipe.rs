//! The configuration of a service built with [`ResourceService`].

use service_kit::{NoSettings, ResourceService};

static SERVICE: ResourceService = ResourceService::new("hello-service", "127.0.0.1:8090");

/// Settings of a service with a flag of its own.
#[derive(Debug, Clone, clap::Args)]
struct GreeterSettings {
    /// The greeting.
    #[arg(long, default_value = "hello")]
    greeting: String,
}

static GREETER: ResourceService<GreeterSettings> = ResourceService::new("greeter-service", "127.0.0.1:8091");

#[test]
fn the_address_and_audience_default_to_the_recipes_and_flags_override_them() {
    let defaults = SERVICE.config_from(["hello-service"]).unwrap();
    let overridden = SERVICE
        .config_from(["hello-service", "--listen-addr", "127.0.0.1:9999", "--audience", "other"])
        .unwrap();

    assert_eq!(defaults.listen_addr.to_string(), "127.0.0.1:8090");
    assert_eq!(defaults.audience, "hello-service");
    assert_eq!(overridden.listen_addr.to_string(), "127.0.0.1:9999");
    assert_eq!(overridden.audience, "other");
    let _: NoSettings = defaults.service;
}

#[test]
fn a_services_own_settings_are_flattened_into_its_command_line() {
    let config = GREETER.config_from(["greeter-service", "--greeting", "good day"]).unwrap();

    assert_eq!(config.service.greeting, "good day");
    assert_eq!(config.audience, "greeter-service");
}

#[test]
fn a_bad_flag_is_a_clear_error_not_a_panic() {
    let error = SERVICE.config_from(["hello-service", "--listen-addr", "not-an-address"]).unwrap_err();

    assert!(error.to_string().contains("--listen-addr"), "{error}");
}

#[test]
fn absurd_durations_are_refused_when_the_flags_are_parsed() {
    for flag in [
        "--jwks-refresh-min-secs",
        "--jwks-refresh-max-secs",
        "--jwks-max-age-secs",
        "--unknown-kid-cooldown-secs",
        "--revocation-poll-secs",
        "--token-leeway-secs",
        "--auth-fetch-timeout-ms",
    ] {
        let error = SERVICE.config_from(["hello-service", flag, "18446744073709551615"]).unwrap_err();

        assert!(error.to_string().contains(flag), "{flag}: {error}");
    }
}
