// `inferd invocations list|get|cancel`: a client of a running inferd's /inferd/ API (docs/api.md)
// over HTTP, SigV4-signed like the AWS CLI signs (service "sagemaker").
//
// Credentials and region: the flags, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and
// AWS_REGION / AWS_DEFAULT_REGION, else a placeholder key (accepted by a server without
// configured credentials) and us-east-1. Exit codes: 0 success; 1 the server refused (its error
// code and message on stderr); 2 inferd could not be reached or the arguments are wrong.
#pragma once

#include <string>
#include <vector>

namespace inferd::app {

struct InvocationsOptions {
  std::string command;  // "list", "get" or "cancel"
  std::string endpoint;
  std::string inference_id;         // get, cancel
  std::vector<std::string> states;  // list: Queued, InProgress, Completed, Failed ("a,b" allowed)
  int limit = 0;                    // list: at most this many (0 = all)
  std::string endpoint_url = "http://127.0.0.1:8600";
  std::string region;  // "" = from the environment
  std::string access_key_id, secret_access_key;
  std::string output = "table";  // "table" or "json"
};

int RunInvocations(const InvocationsOptions& options);

}  // namespace inferd::app
