#!/usr/bin/env node
// The AWS SDK for JavaScript v3's SageMaker Runtime client against inferd:
//   1. InvokeEndpointAsync with InputLocation (the SDK sends content-type: application/octet-stream
//      and an empty body);
//   2. InvokeEndpointAsync with an inline Body (the newer API: the payload is the request body);
//   3. InvokeEndpoint on a real-time endpoint.
//
// Usage: node sagemaker_runtime.mjs ENDPOINT_URL ASYNC_ENDPOINT INPUT_LOCATION REALTIME_ENDPOINT
// Env: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default the e2e harness's pair).
// Prints one JSON object: {"async": {...}, "inline": {...}, "realtime": {...}, "errors": [...]};
// exit code 0 when every call succeeded, 2 when one threw.

import {
  InvokeEndpointAsyncCommand,
  InvokeEndpointCommand,
  SageMakerRuntimeClient,
} from "@aws-sdk/client-sagemaker-runtime";

const [endpointUrl, asyncEndpoint, inputLocation, realtimeEndpoint] = process.argv.slice(2);
if (!endpointUrl || !asyncEndpoint || !inputLocation || !realtimeEndpoint) {
  process.stderr.write(
    "usage: node sagemaker_runtime.mjs ENDPOINT_URL ASYNC_ENDPOINT INPUT_LOCATION REALTIME_ENDPOINT\n",
  );
  process.exit(2);
}

const client = new SageMakerRuntimeClient({
  endpoint: endpointUrl,
  region: "us-east-1",
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? "AKIDEXAMPLE",
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  },
  maxAttempts: 1,
});

const summary = { errors: [] };

function pick(out) {
  return {
    status: out.$metadata.httpStatusCode,
    inferenceId: out.InferenceId,
    outputLocation: out.OutputLocation,
    failureLocation: out.FailureLocation,
  };
}

try {
  summary.async = pick(
    await client.send(
      new InvokeEndpointAsyncCommand({
        EndpointName: asyncEndpoint,
        InputLocation: inputLocation,
        ContentType: "text/plain",
        InferenceId: "js-sdk-input-location",
      }),
    ),
  );
  summary.inline = pick(
    await client.send(
      new InvokeEndpointAsyncCommand({
        EndpointName: asyncEndpoint,
        Body: Buffer.from("inline payload from the JS SDK"),
        ContentType: "text/plain",
      }),
    ),
  );
  const rt = await client.send(
    new InvokeEndpointCommand({
      EndpointName: realtimeEndpoint,
      Body: Buffer.from("real-time from the JS SDK"),
      ContentType: "text/plain",
    }),
  );
  summary.realtime = {
    status: rt.$metadata.httpStatusCode,
    body: Buffer.from(rt.Body).toString("utf8"),
    contentType: rt.ContentType,
    invokedProductionVariant: rt.InvokedProductionVariant,
  };
} catch (e) {
  summary.errors.push({ name: e.name, message: e.message, status: e.$metadata?.httpStatusCode });
}
process.stdout.write(JSON.stringify(summary) + "\n");
process.exit(summary.errors.length ? 2 : 0);
