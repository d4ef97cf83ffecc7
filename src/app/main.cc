// inferd: SageMaker Asynchronous Inference on your own machines.
#include <CLI/CLI.hpp>
#include <iostream>

#include "app/config.h"
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

  CLI11_PARSE(app, argc, argv);

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
