#!/usr/bin/env node
// The AWS SDK for JavaScript v3 against an S3-compatible endpoint (inferd's embedded S3 API):
// uploads a *stream* body with PutObjectCommand, which the SDK sends as
//   Transfer-Encoding: chunked, Content-Encoding: aws-chunked,
//   x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER, x-amz-decoded-content-length,
//   x-amz-trailer: x-amz-checksum-crc32 (and the CRC32 in the trailer after the last chunk),
// plus a plain Buffer upload, an empty stream and a lib-storage (multipart) stream upload. Every
// object is read back with GetObject (SHA-256 of the downloaded bytes compared with what was sent),
// HeadObject (ContentLength) and ListObjectsV2.
//
// Usage: node s3_stream_upload.mjs ENDPOINT BUCKET
//   (or env S3_ENDPOINT, S3_BUCKET). Optional env: S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY
//   (default: the e2e harness's AKIDEXAMPLE pair), S3_STREAM_SIZE (bytes of the main stream
//   upload, default 5 MiB + 1234), S3_SKIP_MULTIPART=1 (leave out the lib-storage upload),
//   S3_CREATE_BUCKET=0 (the bucket exists: start with the stream upload).
//
// Prints one JSON object on stdout: {"ok": bool, "errors": [...], "objects": {...}, "requests":
// {...}, ...}. Exit code 0 when every check passed, 1 on a mismatch, 2 when an SDK call threw.

import { createHash } from "node:crypto";
import { Readable } from "node:stream";

import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

const MiB = 1024 * 1024;

const endpoint = process.argv[2] ?? process.env.S3_ENDPOINT;
const bucket = process.argv[3] ?? process.env.S3_BUCKET;
if (!endpoint || !bucket) {
  process.stderr.write("usage: node s3_stream_upload.mjs ENDPOINT BUCKET (or env S3_ENDPOINT, S3_BUCKET)\n");
  process.exit(2);
}
const streamSize = Number(process.env.S3_STREAM_SIZE ?? 5 * MiB + 1234);
const skipMultipart = process.env.S3_SKIP_MULTIPART === "1";
const createBucket = process.env.S3_CREATE_BUCKET !== "0";

const summary = {
  ok: false,
  endpoint,
  bucket,
  sdk: "@aws-sdk/client-s3",
  errors: [],
  objects: {},   // key -> {size, sha256, put: {...}, head: {...}, get: {...}}
  requests: {},  // "METHOD key" -> headers of the last request the SDK put on the wire
  list: null,
};

function fail(message) {
  summary.errors.push(message);
}

// ---- deterministic test data ------------------------------------------------------------------

// Pseudo-random bytes from a counter-mode SHA-256 stream: reproducible, incompressible.
function block(seed, index, size) {
  const out = Buffer.alloc(size);
  let off = 0;
  for (let n = 0; off < size; n++) {
    const h = createHash("sha256").update(`${seed}:${index}:${n}`).digest();
    off += h.copy(out, off);
  }
  return out;
}

// Chunk sizes the stream yields: all >= 8 KiB (S3's minimum aws-chunked chunk apart from the last)
// but irregular, so chunk boundaries of the SDK's framing do not line up with anything.
const CHUNK_SIZES = [65536, 8192, 100003, 16384, 262144, 12345, 65536 * 3 + 7];

function* chunksOf(seed, size) {
  let sent = 0;
  for (let i = 0; sent < size; i++) {
    const n = Math.min(CHUNK_SIZES[i % CHUNK_SIZES.length], size - sent);
    yield block(seed, i, n);
    sent += n;
  }
}

function describe(seed, size) {
  const sha = createHash("sha256");
  for (const c of chunksOf(seed, size)) sha.update(c);
  return { size, sha256: sha.digest("hex") };
}

// ---- the client -------------------------------------------------------------------------------

const client = new S3Client({
  endpoint,
  forcePathStyle: true,
  region: "us-east-1",
  credentials: {
    accessKeyId: process.env.S3_ACCESS_KEY_ID ?? "AKIDEXAMPLE",
    secretAccessKey: process.env.S3_SECRET_ACCESS_KEY ?? "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  },
  maxAttempts: 1,
  // The SDK's defaults, spelled out so the environment cannot change them.
  requestChecksumCalculation: "WHEN_SUPPORTED",
  responseChecksumValidation: "WHEN_SUPPORTED",
});

// Record what goes on the wire: the deserialize step sees the final, signed request.
client.middlewareStack.add(
  (next) => async (args) => {
    const req = args.request;
    if (req && req.headers) {
      const key = decodeURIComponent((req.path ?? "").replace(`/${bucket}`, "").replace(/^\//, ""));
      const headers = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (k.toLowerCase() !== "authorization") headers[k.toLowerCase()] = v;
      }
      const query = req.query ?? {};
      const what = query.partNumber ? ` part ${query.partNumber}` : query.uploads !== undefined ? " uploads" : "";
      summary.requests[`${req.method} ${key}${what}`] = headers;
    }
    return next(args);
  },
  { step: "deserialize", name: "inferdE2eCaptureRequest", priority: "low" },
);

async function sha256OfBody(body) {
  const sha = createHash("sha256");
  let size = 0;
  for await (const chunk of body) {
    sha.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: sha.digest("hex") };
}

async function verify(key, expected) {
  const entry = summary.objects[key];
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  entry.head = { contentLength: head.ContentLength, etag: head.ETag,
                 contentEncoding: head.ContentEncoding ?? null };
  if (head.ContentLength !== expected.size) {
    fail(`${key}: HeadObject ContentLength ${head.ContentLength}, uploaded ${expected.size} bytes`);
  }
  if (head.ContentEncoding && head.ContentEncoding.includes("aws-chunked")) {
    fail(`${key}: HeadObject Content-Encoding ${head.ContentEncoding} (aws-chunked must not be stored)`);
  }
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const body = await sha256OfBody(got.Body);
  entry.get = { contentLength: got.ContentLength, etag: got.ETag, ...body };
  if (body.size !== expected.size) fail(`${key}: GetObject returned ${body.size} bytes, uploaded ${expected.size}`);
  if (body.sha256 !== expected.sha256) fail(`${key}: GetObject SHA-256 ${body.sha256}, uploaded ${expected.sha256}`);
  if (got.ContentLength !== expected.size) {
    fail(`${key}: GetObject ContentLength ${got.ContentLength}, uploaded ${expected.size}`);
  }
}

function putResult(out) {
  return { etag: out.ETag ?? null, checksumCRC32: out.ChecksumCRC32 ?? null,
           status: out.$metadata?.httpStatusCode ?? null };
}

async function main() {
  if (createBucket) await client.send(new CreateBucketCommand({ Bucket: bucket }));

  // 1. A stream body with its length: aws-chunked + STREAMING-UNSIGNED-PAYLOAD-TRAILER + CRC32 trailer.
  const streamKey = "js/stream.bin";
  const streamExpected = describe("stream", streamSize);
  summary.objects[streamKey] = { ...streamExpected };
  let out = await client.send(new PutObjectCommand({
    Bucket: bucket, Key: streamKey, Body: Readable.from(chunksOf("stream", streamSize)),
    ContentLength: streamSize, ContentType: "application/octet-stream",
  }));
  summary.objects[streamKey].put = putResult(out);

  // 2. A plain Buffer body: x-amz-checksum-crc32 header, Content-Length, no aws-chunked.
  const bufferKey = "js/buffer.bin";
  const bufferData = Buffer.concat([...chunksOf("buffer", 300 * 1024 + 5)]);
  const bufferExpected = { size: bufferData.length, sha256: createHash("sha256").update(bufferData).digest("hex") };
  summary.objects[bufferKey] = { ...bufferExpected };
  out = await client.send(new PutObjectCommand({ Bucket: bucket, Key: bufferKey, Body: bufferData }));
  summary.objects[bufferKey].put = putResult(out);

  // 3. An empty stream (ContentLength 0): only the final 0-size chunk and the trailer.
  const emptyKey = "js/empty-stream";
  const emptyExpected = { size: 0, sha256: createHash("sha256").digest("hex") };
  summary.objects[emptyKey] = { ...emptyExpected };
  out = await client.send(new PutObjectCommand({
    Bucket: bucket, Key: emptyKey, Body: Readable.from([]), ContentLength: 0,
  }));
  summary.objects[emptyKey].put = putResult(out);

  // 4. lib-storage's Upload of a stream of unknown length: multipart, 5 MiB parts.
  let multipartKey = null;
  let multipartExpected = null;
  if (!skipMultipart) {
    multipartKey = "js/multipart-stream.bin";
    const size = 11 * MiB + 4321;
    multipartExpected = describe("multipart", size);
    summary.objects[multipartKey] = { ...multipartExpected };
    const upload = new Upload({
      client, params: { Bucket: bucket, Key: multipartKey, Body: Readable.from(chunksOf("multipart", size)) },
      partSize: 5 * MiB, queueSize: 2, leavePartsOnError: false,
    });
    out = await upload.done();
    summary.objects[multipartKey].put = putResult(out);
  }

  await verify(streamKey, streamExpected);
  await verify(bufferKey, bufferExpected);
  await verify(emptyKey, emptyExpected);
  if (multipartKey) await verify(multipartKey, multipartExpected);

  const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "js/" }));
  summary.list = {
    keyCount: listed.KeyCount,
    isTruncated: listed.IsTruncated ?? false,
    contents: (listed.Contents ?? []).map((o) => ({ key: o.Key, size: o.Size, etag: o.ETag })),
  };
  const want = Object.keys(summary.objects).sort();
  const got = summary.list.contents.map((o) => o.key);
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    fail(`ListObjectsV2 keys ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  }
  for (const o of summary.list.contents) {
    const expected = summary.objects[o.key];
    if (expected && o.size !== expected.size) fail(`ListObjectsV2 Size of ${o.key} is ${o.size}, uploaded ${expected.size}`);
  }
  if (listed.KeyCount !== want.length) fail(`ListObjectsV2 KeyCount ${listed.KeyCount}, expected ${want.length}`);

  // The stream upload must really have gone out as aws-chunked with a trailing checksum, or this
  // script is not testing what it says.
  const wire = summary.requests[`PUT ${streamKey}`] ?? {};
  const expectHeaders = {
    "content-encoding": "aws-chunked",
    "transfer-encoding": "chunked",
    "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "x-amz-decoded-content-length": String(streamSize),
    "x-amz-trailer": "x-amz-checksum-crc32",
  };
  for (const [k, v] of Object.entries(expectHeaders)) {
    if (String(wire[k]) !== v) fail(`the SDK sent ${k}: ${wire[k]} for the stream upload, expected ${v}`);
  }
}

let code = 0;
try {
  await main();
  code = summary.errors.length ? 1 : 0;
} catch (e) {
  summary.errors.push(`${e.name}: ${e.message}` +
    (e.$metadata ? ` (HTTP ${e.$metadata.httpStatusCode}, request id ${e.$metadata.requestId})` : ""));
  if (e.$response?.body === undefined && e.stack) process.stderr.write(`${e.stack}\n`);
  code = 2;
}
summary.ok = code === 0;
process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
process.exitCode = code;
