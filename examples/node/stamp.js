// The whole meterai flow from the protos alone, as an integrator writing Node.js would:
// TLS trusting the platform CA, the key as `authorization: Bearer`, buy quota, submit with an
// idempotency key, watch the job, download the stamped PDF, verify it, and read the
// google.rpc error details of a refusal (reason, field, retry advice) instead of its English.
//
//   METERAI_HOME=.meterai node stamp.js letter.pdf stamped.pdf
//
// The platform is found as the `meterai` CLI finds it: $METERAI_HOME/platform.json (address),
// tls/ca.crt (CA) and credentials.json (the demo key), or METERAI_API_KEY. Prints one JSON
// object with what happened; exits non-zero if any step did not go as the README says.
"use strict";

const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const HOME = process.env.METERAI_HOME || ".meterai";
const PROTOS = path.resolve(__dirname, "..", "..", "protos");
const RPC_PROTOS = path.resolve(__dirname, "protos");

function load(file) {
  return grpc.loadPackageDefinition(
    protoLoader.loadSync(file, {
      includeDirs: [PROTOS, RPC_PROTOS],
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
    })
  );
}

const quota = load("meterai/quota/v1/quota.proto").meterai.quota.v1;
const stamping = load("meterai/stamping/v1/stamping.proto").meterai.stamping.v1;
const verify = load("meterai/verify/v1/verify.proto").meterai.verify.v1;
const rpcRoot = new protobuf.Root().loadSync(
  [
    path.join(RPC_PROTOS, "google/rpc/status.proto"),
    path.join(RPC_PROTOS, "google/rpc/error_details.proto"),
  ],
  { keepCase: true }
);

function platform() {
  const where = JSON.parse(fs.readFileSync(path.join(HOME, "platform.json"), "utf8"));
  const credentialsFile = path.join(HOME, "credentials.json");
  const key =
    process.env.METERAI_API_KEY ||
    (fs.existsSync(credentialsFile)
      ? JSON.parse(fs.readFileSync(credentialsFile, "utf8")).api_key
      : undefined);
  const ca = fs.readFileSync(path.join(HOME, "tls", "ca.crt"));
  const bearer = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${key}`);
    callback(null, metadata);
  });
  const credentials = grpc.credentials.combineChannelCredentials(
    grpc.credentials.createSsl(ca),
    bearer
  );
  const options = { "grpc.max_send_message_length": 25 * 1024 * 1024 };
  const address = (name) => `${where.host}:${where.ports[name]}`;
  return {
    quota: new quota.QuotaService(address("quota"), credentials, options),
    stamping: new stamping.StampingService(address("stamping"), credentials, options),
    verify: new verify.VerificationService(
      address("verify"),
      grpc.credentials.createSsl(ca),
      options
    ),
  };
}

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 60_000);
    client[method](request, { deadline }, (error, answer) =>
      error ? reject(error) : resolve(answer)
    );
  });
}

// google.rpc.Status from the grpc-status-details-bin trailer, its details decoded by type.
function details(error) {
  const raw = error.metadata && error.metadata.get("grpc-status-details-bin")[0];
  if (!raw) return null;
  const Status = rpcRoot.lookupType("google.rpc.Status");
  const status = Status.decode(raw);
  const found = {};
  for (const any of status.details) {
    const name = any.type_url.split("/").pop();
    const type = rpcRoot.lookupType(name);
    found[name.replace("google.rpc.", "")] = type.toObject(type.decode(any.value), {
      longs: Number,
    });
  }
  return found;
}

async function submitAsAdvised(client, request) {
  // Retry what the platform asks to come back to, after the delay it gives, with the SAME key.
  for (let attempt = 0; attempt < 10; attempt += 1) {
    try {
      return await unary(client, "SubmitDocument", request);
    } catch (error) {
      const advice = details(error);
      const retry = advice && advice.RetryInfo;
      if (!retry) throw error;
      const delay = retry.retry_delay || {};
      const ms = (delay.seconds || 0) * 1000 + (delay.nanos || 0) / 1e6;
      await new Promise((done) => setTimeout(done, ms));
    }
  }
  throw new Error("still refused after 10 attempts");
}

function watchUntilEnded(client, jobId) {
  return new Promise((resolve, reject) => {
    const call = client.WatchJob({ job_id: jobId }, { deadline: new Date(Date.now() + 120_000) });
    let last = null;
    call.on("data", (job) => {
      last = job;
    });
    call.on("error", reject);
    call.on("end", () => resolve(last));
  });
}

function download(client, jobId) {
  return new Promise((resolve, reject) => {
    const pieces = [];
    const call = client.GetStampedDocument(
      { job_id: jobId },
      { deadline: new Date(Date.now() + 60_000) }
    );
    call.on("data", (chunk) => pieces.push(chunk.data));
    call.on("error", reject);
    call.on("end", () => resolve(Buffer.concat(pieces)));
  });
}

async function main() {
  const [source, target] = process.argv.slice(2);
  if (!source || !target) throw new Error("usage: node stamp.js IN.pdf OUT.pdf");
  const pdf = fs.readFileSync(source);
  const clients = platform();
  const report = {};

  const order = await unary(clients.quota, "PurchaseQuota", {
    quantity: 1,
    idempotency_key: crypto.randomUUID(),
  });
  report.order_state = order.state;

  const request = {
    pdf,
    placement: { page: 1, rect: { x0: 300, y0: 60, x1: 440, y1: 200 } },
    metadata: { document_type: "Surat Pernyataan" },
    idempotency_key: "node-" + crypto.createHash("sha256").update(pdf).digest("hex").slice(0, 40),
    filename: path.basename(source),
  };
  const job = await submitAsAdvised(clients.stamping, request);
  const ended = await watchUntilEnded(clients.stamping, job.job_id);
  report.state = ended.state;
  report.serial = ended.serial;
  const stamped = await download(clients.stamping, job.job_id);
  fs.writeFileSync(target, stamped);
  const verdict = await unary(clients.verify, "VerifyDocument", { pdf: stamped });
  report.genuine = verdict.genuine;

  const again = await submitAsAdvised(clients.stamping, request);
  report.replayed = again.replayed;
  report.same_job = again.job_id === job.job_id;

  try {
    await unary(clients.stamping, "SubmitDocument", {
      ...request,
      placement: { page: 1, rect: { x0: 300, y0: 60, x1: 4400, y1: 200 } },
      idempotency_key: crypto.randomUUID(),
    });
    report.refusal = null;
  } catch (error) {
    const found = details(error) || {};
    report.refusal = {
      code: grpc.status[error.code],
      reason: found.ErrorInfo && found.ErrorInfo.reason,
      field: found.BadRequest && found.BadRequest.field_violations[0].field,
    };
  }
  process.stdout.write(JSON.stringify(report) + "\n");
  const ok =
    report.state === "JOB_STATE_DONE" &&
    report.genuine &&
    report.replayed &&
    report.same_job &&
    report.refusal &&
    report.refusal.reason === "RECT_OUTSIDE_PAGE";
  process.exit(ok ? 0 : 1);
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(2);
});
