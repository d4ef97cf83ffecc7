// SnsApi: SNS's Query-protocol front end (Action=…&Version=2010-03-31, form-encoded POST or GET,
// XML answers) over notify::Notifier.
//
// Unsigned requests it accepts (RequiresAuth() false): GET /?Action=ConfirmSubscription&… (the
// SubscribeURL of a SubscriptionConfirmation), GET /?Action=Unsubscribe&… (the UnsubscribeURL of
// a notification) when they carry no signature, and GET /SimpleNotificationService-<id>.pem (the
// signing certificate behind SigningCertURL). Everything else must be signed; the signature's
// region scopes topics.
//
// Handle() runs on an I/O thread: it parses the parameters and posts the action to the blocking
// pool, which answers through the Responder. Errors go through api/error_table (SNS's
// <ErrorResponse>); codes the table does not distinguish come from Error::aws_code.
#pragma once

#include "api/router.h"
#include "common/blocking_pool.h"
#include "notify/notifier.h"

namespace inferd::api::sns {

class Params;  // sns_params.h

class SnsApi final : public ApiHandler {
 public:
  SnsApi(notify::Notifier& notifier, BlockingPool& pool);
  void Handle(http::Request request, const http::sigv4::Identity& identity,
              http::Responder respond) override;
  bool RequiresAuth(const http::Request& request) const override;

 private:
  notify::Notifier& notifier_;
  BlockingPool& pool_;
};

// Runs one action (on the calling thread; blocking). Returns the full XML answer body, or the
// error to answer with. Exposed for tests.
Result<std::string> RunAction(notify::Notifier& notifier, const std::string& action,
                              const Params& params, const notify::Caller& caller,
                              const std::string& request_id);

}  // namespace inferd::api::sns
