// inferd: SageMaker Asynchronous Inference on your own machines.
#include <CLI/CLI.hpp>
#include <iostream>

#include "app/config.h"
#include "app/invocations_cli.h"
#include "app/logs.h"
#include "app/serve.h"

int main(int argc, char** argv) {
  CLI::App app{
      "inferd: a self-hosted, wire-compatible Amazon SageMaker Asynchronous Inference.\n"
      "Point boto3 / the AWS CLI at it with endpoint_url / --endpoint-url."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "inferd 0.1.0");

  inferd::app::Config config;
  auto* serve = app.add_subcommand(
      "serve", "Run the server: SageMaker control plane, runtime, S3 and SNS APIs on one port.");
  serve->add_option("--listen", config.listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  serve->add_option("--data-dir", config.data_dir, "Directory for the catalog, queue and objects")
      ->capture_default_str();
  serve->add_option("--config", config.config_file,
                    "JSON config file (keys: see `inferd config-reference`)");
  serve
      ->add_option("--log-level", config.log_level,
                   "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();

  app.add_subcommand("config-reference", "Print the config file's keys as a markdown table");

  inferd::app::LogsOptions logs_options;
  auto* logs = app.add_subcommand("logs", "Print the logs of an endpoint's model-server instances");
  logs->add_option("endpoint", logs_options.endpoint, "Endpoint name")->required();
  logs->add_option("--data-dir", logs_options.data_dir, "The server's data directory")
      ->capture_default_str();
  logs->add_option("--tail", logs_options.tail, "Only the last N lines of each instance's log");

  inferd::app::InvocationsOptions invocations_options;
  auto* invocations = app.add_subcommand(
      "invocations",
      "List, inspect and cancel asynchronous invocations on a running inferd (its /inferd/ API)");
  invocations->require_subcommand(1);
  auto common = [&invocations_options](CLI::App* command) {
    command->add_option("endpoint", invocations_options.endpoint, "Endpoint name")->required();
    command
        ->add_option("--endpoint-url", invocations_options.endpoint_url,
                     "URL of the running inferd")
        ->capture_default_str();
    command->add_option("--region", invocations_options.region,
                        "Region to sign for (default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1)");
    command->add_option("--access-key-id", invocations_options.access_key_id,
                        "Access key (default: AWS_ACCESS_KEY_ID)");
    command->add_option("--secret-access-key", invocations_options.secret_access_key,
                        "Secret key (default: AWS_SECRET_ACCESS_KEY)");
    command->add_option("--output", invocations_options.output, "table or json")
        ->capture_default_str();
  };
  auto* list = invocations->add_subcommand(
      "list", "An endpoint's queued and in-progress invocations, oldest first");
  common(list);
  list->add_option("--state", invocations_options.states,
                   "Queued, InProgress, Completed, Failed (comma-separated; default "
                   "Queued,InProgress)")
      ->delimiter(',');
  list->add_option("--limit", invocations_options.limit, "At most this many (default: all)");
  auto* get = invocations->add_subcommand("get", "One invocation by its InferenceId");
  common(get);
  get->add_option("inference_id", invocations_options.inference_id, "InferenceId")->required();
  auto* cancel = invocations->add_subcommand(
      "cancel",
      "Cancel a queued invocation: it ends as a failure \"cancelled\" with its notification");
  common(cancel);
  cancel->add_option("inference_id", invocations_options.inference_id, "InferenceId")->required();

  CLI11_PARSE(app, argc, argv);

  if (invocations->parsed()) {
    invocations_options.command = list->parsed() ? "list" : get->parsed() ? "get" : "cancel";
    return inferd::app::RunInvocations(invocations_options);
  }

  if (app.got_subcommand("logs")) return inferd::app::PrintLogs(logs_options);
  if (app.got_subcommand("config-reference")) {
    std::cout << inferd::app::ConfigReference();
    return 0;
  }
  if (auto st = config.Load(); !st.ok()) {
    std::cerr << "inferd: " << st.error().message << "\n";
    return 2;
  }
  return inferd::app::Serve(std::move(config));
}
