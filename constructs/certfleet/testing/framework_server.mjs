// Runs aws-cdk-lib's Provider framework (framework.js of a synthesized asset) for certfleet's tests, as Lambda's
// Node.js runtime would: one JSON request per stdin line, one JSON answer per stdout line, one call at a time.
//
//   request  {"id": 1, "asset": "/abs/asset.<hash>", "entry": "onEvent"|"isComplete"|"onTimeout",
//             "env": {"USER_ON_EVENT_FUNCTION_ARN": "...", "AWS_REGION": "..."}, "event": {...}}
//   answer   {"id": 1, "ok": true, "result": <the handler's return value>, "logs": ["..."]}
//            {"id": 1, "ok": false, "error": {"errorType", "errorMessage", "trace"}, "logs": [...]}
//
// Each (asset, env) is its own module instance, as each framework function is its own Lambda sandbox (the framework
// caches its SDK clients per instance). The SDK reaches Lambda and Step Functions through AWS_ENDPOINT_URL_* (the
// caller's local endpoint). The framework PUTs its response with https.request to CloudFormation's presigned S3 URL:
// connections to that host are handed, unencrypted, to the caller's local endpoint (CERTFLEET_FW_RESPONSE_PORT);
// any other https connection fails, so nothing here reaches the network.
import { createRequire } from "node:module";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import util from "node:util";

const RESPONSE_HOST = /^cloudformation-custom-resource-response-[a-z0-9-]+\.s3(\.[a-z0-9-]+)?\.amazonaws\.com$/;
const RESPONSE_PORT = Number(process.env.CERTFLEET_FW_RESPONSE_PORT);
const require = createRequire(import.meta.url);
const write = process.stdout.write.bind(process.stdout);

class ResponseAgent extends http.Agent {
  createConnection(options, callback) {
    const host = options.host || options.hostname || "";
    if (!RESPONSE_HOST.test(host)) {
      callback(new Error(`framework_server: no network: refused a connection to ${host}`));
      return undefined;
    }
    return net.createConnection({ host: "127.0.0.1", port: RESPONSE_PORT });
  }
}
https.globalAgent = new ResponseAgent({ keepAlive: false });

let logs = [];
for (const name of ["log", "info", "warn", "error", "debug", "trace"]) {
  console[name] = (...args) => logs.push(util.format(...args));
}

const instances = new Map();
const baseEnv = { ...process.env };

function framework(asset, env) {
  const key = JSON.stringify([asset, env]);
  let instance = instances.get(key);
  if (instance === undefined) {
    const main = path.join(asset, "framework.js");
    for (const cached of Object.keys(require.cache)) {
      if (cached.startsWith(asset + path.sep)) delete require.cache[cached];
    }
    instance = require(main);
    instances.set(key, instance);
  }
  return instance;
}

function setEnv(env) {
  for (const name of Object.keys(process.env)) {
    if (!(name in baseEnv)) delete process.env[name];
  }
  Object.assign(process.env, baseEnv, env);
}

function asLambdaError(err) {
  if (err instanceof Error) {
    return { errorType: err.name, errorMessage: err.message, trace: String(err.stack || "").split("\n") };
  }
  return { errorType: "Error", errorMessage: String(err), trace: [] };
}

async function handle(request) {
  logs = [];
  setEnv(request.env || {});
  try {
    const handler = framework(request.asset, request.env || {})[request.entry];
    if (typeof handler !== "function") throw new Error(`framework.js has no entry point ${request.entry}`);
    const result = await handler(request.event, {});
    return { id: request.id, ok: true, result: result === undefined ? null : result, logs };
  } catch (err) {
    return { id: request.id, ok: false, error: asLambdaError(err), logs };
  }
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
write(JSON.stringify({ ready: true }) + "\n");
for await (const line of lines) {
  if (!line.trim()) continue;
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    write(JSON.stringify({ id: null, ok: false, error: asLambdaError(err), logs: [] }) + "\n");
    continue;
  }
  write(JSON.stringify(await handle(request)) + "\n");
}
