#!/usr/bin/env node
// extract.mjs pins the part of GitHub's official REST description and
// webhook schemas that foureyes relies on, as plain JSON Schema 2020-12, for
// the fake GitHub's contract test (internal/fakegithub/contract_test.go).
//
//   node internal/fakegithub/testdata/openapi/extract.mjs            # regenerate from the pinned versions
//   node internal/fakegithub/testdata/openapi/extract.mjs --update   # move to the latest versions (then review the diff)
//
// It runs `npm pack` for @octokit/openapi and @octokit/openapi-webhooks,
// checks the tarballs against the integrity recorded below (unless
// --update), reads generated/api.github.com.json from each and writes:
//
//   rest.json      one response schema per (operation, status) foureyes
//                  calls, under operations/<operationId>/responses/<status>,
//                  plus GitHub's own example for it (examples/...), sharing
//                  the referenced components in $defs;
//   webhooks.json  one payload schema per webhook event+action foureyes
//                  handles, under events/<event>.<action>, sharing $defs.
//
// The REST description is OpenAPI 3.0.3, whose schema dialect is not JSON
// Schema: `nullable: true` becomes a "null" type (or an anyOf with null),
// `$ref` siblings are dropped (3.0 ignores them), annotations
// (description, example, x-*) are dropped to keep the copy small. Any other
// keyword the converter does not know stops the extraction, so a new
// construct in a future description cannot be silently weakened.
// The webhook description is OpenAPI 3.1 (JSON Schema 2020-12 already); it
// only loses annotations and has its $refs moved to $defs.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

// The pinned packages. --update replaces these in the output's x-source
// and prints the new values to paste here.
const PINNED = {
  rest: {
    name: "@octokit/openapi",
    version: "23.0.2",
    integrity:
      "sha512-pV8M7L9GY23AybNvTmo2nyjmpmnt6+2sRE/tqr0ZLQcPS4lnw7u5eZGNmwRNkBC3D7gZXbFx5AHzLUVRBXGDhg==",
  },
  webhooks: {
    name: "@octokit/openapi-webhooks",
    version: "12.1.0",
    integrity:
      "sha512-Z5eDsLCUNbx1zHpZb1LNQirADqdMTvWJQ/deahi0ws+tWWnwHXB+Pr4jfmM9OrETS9Y5iW8ZRu1fdbudObhLrg==",
  },
};

// The REST operations foureyes (forge/github, through go-github and
// ghinstallation) calls, and those the fake serves for tests and the demo.
// Keep in step with the routes in internal/fakegithub: the contract test
// fails for a route with no operation here.
const OPERATIONS = [
  "apps/create-installation-access-token", // ghinstallation: installation tokens
  "apps/get-authenticated", // GET /app
  "apps/create-from-manifest", // forge/github/manifest.go
  "apps/list-repos-accessible-to-installation", // installation backfill
  "apps/get-repo-installation", // the installation of a repository
  "users/get-authenticated", // GET /user with a user's OAuth token
  "repos/get",
  "repos/get-content", // forge/github/policy.go: .github/foureyes.yml
  "pulls/list", // publish.go: open PRs of a branch
  "pulls/get", // change.go
  "pulls/list-files", // change.go
  "pulls/list-commits", // change.go
  "pulls/list-reviews", // change.go
  "repos/get-collaborator-permission-level", // change.go: role_name
  "teams/get-membership-for-user-in-org", // change.go: team rules
  "checks/create", // publish.go
  "checks/update", // publish.go
  "checks/get",
  "checks/list-for-ref", // publish.go: find the prior run
  "repos/create-commit-status",
  "repos/list-commit-statuses-for-ref",
  "repos/list-pull-requests-associated-with-commit", // release.go
  "repos/compare-commits-with-basehead", // release.go
  "repos/list-tags", // release.go
  "repos/list-commits", // release.go
  "repos/get-commit",
  "repos/get-branch",
  "repos/list-branches", // guarded branches' tips
  "repos/list-activities", // pusher of a reconciled push
  "git/get-ref",
  "git/list-matching-refs",
  "issues/create", // release.go: flag issues
  "issues/list-for-repo", // release.go
  "issues/get",
  "issues/update", // release.go
  "issues/create-comment",
];

// The webhook events (event.action) foureyes receives, named as in
// X-GitHub-Event and the payload's action ("push" has no action).
const EVENTS = [
  "check_run.completed",
  "check_run.created",
  "check_run.requested_action",
  "check_run.rerequested",
  "check_suite.requested",
  "check_suite.rerequested",
  "installation.created",
  "installation.deleted",
  "installation_repositories.added",
  "installation_repositories.removed",
  "issue_comment.created",
  "merge_group.checks_requested",
  "pull_request.closed",
  "pull_request.edited",
  "pull_request.labeled",
  "pull_request.opened",
  "pull_request.ready_for_review",
  "pull_request.reopened",
  "pull_request.synchronize",
  "pull_request_review.dismissed",
  "pull_request_review.edited",
  "pull_request_review.submitted",
  "pull_request_review_comment.created",
  "push",
];

// Keywords that carry no validation meaning (or none foureyes' contract
// needs) and are dropped.
const ANNOTATIONS = new Set([
  "description",
  "example",
  "examples",
  "title",
  "default",
  "readOnly",
  "writeOnly",
  "deprecated",
  "externalDocs",
  "discriminator", // oneOf branches are told apart by their own constraints
  "xml",
]);
// Keywords kept as they are (their values hold no schemas).
const PLAIN = new Set([
  "type",
  "required",
  "enum",
  "const",
  "format",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "uniqueItems",
  "minProperties",
  "maxProperties",
  "multipleOf",
]);

function fail(msg) {
  console.error("extract: " + msg);
  process.exit(1);
}

function pack(spec, dir) {
  const out = execFileSync("npm", ["pack", spec, "--json", "--pack-destination", dir], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [info] = JSON.parse(out);
  return { ...info, file: join(dir, info.filename) };
}

function readFromTarball(file, path) {
  return JSON.parse(
    execFileSync("tar", ["-xzOf", file, path], { encoding: "utf8", maxBuffer: 1 << 30 }),
  );
}

// Converter walks one schema, renaming component $refs to #/$defs/<name>
// and queueing the components it reaches.
class Converter {
  constructor(components, openapi30) {
    this.components = components;
    this.openapi30 = openapi30;
    this.defs = {};
    this.queue = [];
  }

  ref(r, at) {
    const m = /^#\/components\/schemas\/([^/]+)$/.exec(r);
    if (!m) fail(`${at}: unsupported $ref ${r}`);
    const name = m[1];
    if (!(name in this.components)) fail(`${at}: dangling $ref ${r}`);
    if (!(name in this.defs)) {
      this.defs[name] = null; // reserved; filled by drain()
      this.queue.push(name);
    }
    return { $ref: "#/$defs/" + name };
  }

  drain() {
    while (this.queue.length) {
      const name = this.queue.shift();
      this.defs[name] = this.schema(this.components[name], "components/" + name);
    }
    return Object.fromEntries(Object.entries(this.defs).sort(([a], [b]) => a.localeCompare(b)));
  }

  schema(s, at) {
    if (typeof s === "boolean") return s;
    if (s === null || typeof s !== "object" || Array.isArray(s)) fail(`${at}: not a schema`);
    if (s.$ref !== undefined) {
      // OpenAPI 3.0 ignores a $ref's siblings; 3.1 (webhooks) has none here
      // but would apply them, so keep them there.
      const r = this.ref(s.$ref, at);
      if (this.openapi30) return r;
      const rest = { ...s };
      delete rest.$ref;
      const conv = this.schema(rest, at);
      return Object.keys(conv).length ? { allOf: [r, conv] } : r;
    }
    const out = {};
    let nullable = false;
    for (const [k, v] of Object.entries(s)) {
      if (ANNOTATIONS.has(k) || k.startsWith("x-")) continue;
      if (PLAIN.has(k)) out[k] = v;
      else if (k === "nullable" && this.openapi30) nullable = v === true;
      else if (k === "properties" || k === "patternProperties")
        out[k] = Object.fromEntries(
          Object.entries(v).map(([p, ps]) => [p, this.schema(ps, `${at}/${k}/${p}`)]),
        );
      else if (k === "items" || k === "additionalProperties" || k === "not")
        out[k] = this.schema(v, `${at}/${k}`);
      else if (k === "allOf" || k === "anyOf" || k === "oneOf")
        out[k] = v.map((x, i) => this.schema(x, `${at}/${k}/${i}`));
      else if (k === "exclusiveMinimum" || k === "exclusiveMaximum") {
        if (this.openapi30) fail(`${at}: OpenAPI 3.0 boolean ${k} is not converted`);
        out[k] = v;
      } else fail(`${at}: unknown keyword ${k}`);
    }
    if (!nullable) return out;
    // nullable: null is one more allowed value.
    if (out.enum && !out.enum.includes(null)) out.enum = [...out.enum, null];
    if (typeof out.type === "string") {
      out.type = [out.type, "null"];
      return out;
    }
    if (Array.isArray(out.type)) {
      if (!out.type.includes("null")) out.type = [...out.type, "null"];
      return out;
    }
    return { anyOf: [{ type: "null" }, out] };
  }
}

// jsonBody returns the JSON body (schema and examples) of a response.
function jsonBody(api, resp, at) {
  if (resp.$ref) {
    const m = /^#\/components\/responses\/([^/]+)$/.exec(resp.$ref);
    if (!m) fail(`${at}: unsupported response $ref ${resp.$ref}`);
    resp = api.components.responses[m[1]];
  }
  const content = resp.content || {};
  // go-github asks for application/vnd.github.v3+json, which GitHub answers
  // with the application/json shape.
  return content["application/json"] || null;
}

function example(api, ex) {
  // An example is inline, a $ref to components/examples, or (in a few
  // places) inline with a value that is itself such a $ref.
  for (let depth = 0; ex && depth < 4; depth++) {
    const ref = ex.$ref || (ex.value && typeof ex.value === "object" && ex.value.$ref);
    if (!ref) return ex.value;
    const m = /^#\/components\/examples\/([^/]+)$/.exec(ref);
    if (!m) fail(`unsupported example $ref ${ref}`);
    ex = api.components.examples[m[1]];
  }
  fail("unresolvable example");
}

function restSubset(api) {
  if (!/^3\.0\./.test(api.openapi)) fail(`REST description is OpenAPI ${api.openapi}, expected 3.0.x`);
  const byID = {};
  for (const [path, item] of Object.entries(api.paths))
    for (const [method, op] of Object.entries(item))
      if (op && op.operationId) byID[op.operationId] = { method, path, op };
  const conv = new Converter(api.components.schemas, true);
  const operations = {};
  for (const id of OPERATIONS) {
    const found = byID[id];
    if (!found) fail(`operation ${id} is not in the description`);
    const responses = {};
    const examples = {};
    for (const [status, resp] of Object.entries(found.op.responses)) {
      const body = jsonBody(api, resp, `${id} ${status}`);
      if (!body || !body.schema) {
        // Documented without a body schema (a 404 "if the user is not a
        // member", a 304): any body is within the description.
        responses[status] = true;
        continue;
      }
      responses[status] = conv.schema(body.schema, `${id}/responses/${status}`);
      for (const [name, ex] of Object.entries(body.examples || {})) {
        const v = example(api, ex);
        if (v !== undefined) examples[`${status}.${name}`] = v;
      }
    }
    operations[id] = {
      method: found.method.toUpperCase(),
      path: found.path,
      responses,
      examples,
    };
  }
  return { operations, $defs: conv.drain() };
}

function webhooksSubset(hooks) {
  if (!/^3\.1\./.test(hooks.openapi)) fail(`webhooks description is OpenAPI ${hooks.openapi}, expected 3.1.x`);
  const conv = new Converter(hooks.components.schemas, false);
  const events = {};
  for (const ev of EVENTS) {
    const key = ev.replaceAll("_", "-").replace(".", "-");
    const hook = hooks.webhooks[key];
    if (!hook || !hook.post) fail(`webhook ${key} (${ev}) is not in the description`);
    const body = hook.post.requestBody.content["application/json"];
    if (!body) fail(`webhook ${key} has no application/json body`);
    events[ev] = conv.schema(body.schema, `webhooks/${key}`);
  }
  return { events, $defs: conv.drain() };
}

function main() {
  const update = process.argv.includes("--update");
  const tmp = mkdtempSync(join(tmpdir(), "foureyes-openapi-"));
  try {
    const got = {};
    for (const [k, p] of Object.entries(PINNED)) {
      const info = pack(update ? p.name : `${p.name}@${p.version}`, tmp);
      if (!update && info.integrity !== p.integrity)
        fail(`${info.id}: integrity ${info.integrity}, pinned ${p.integrity}`);
      got[k] = info;
    }
    const source = (info, doc) => ({
      package: info.name,
      version: info.version,
      description_version: doc.info.version,
      integrity: info.integrity,
      shasum: info.shasum,
      file: "package/generated/api.github.com.json",
      license: "MIT",
    });
    const restDoc = readFromTarball(got.rest.file, "package/generated/api.github.com.json");
    const hooksDoc = readFromTarball(got.webhooks.file, "package/generated/api.github.com.json");
    const rest = restSubset(restDoc);
    const hooks = webhooksSubset(hooksDoc);
    const write = (name, info, from, body) => {
      const doc = {
        $schema: "https://json-schema.org/draft/2020-12/schema",
        "x-source": source(info, from),
        "x-generated-by": "internal/fakegithub/testdata/openapi/extract.mjs",
        ...body,
      };
      writeFileSync(join(here, name), JSON.stringify(doc, null, 1) + "\n");
      console.log(`wrote ${name}: ${Object.keys(body.operations || body.events).length} entries, ${Object.keys(body.$defs).length} $defs`);
    };
    // Both packages carry the same MIT licence, whose notice must travel
    // with the copy.
    writeFileSync(
      join(here, "LICENSE"),
      execFileSync("tar", ["-xzOf", got.rest.file, "package/LICENSE"], { encoding: "utf8" }),
    );
    write("rest.json", got.rest, restDoc, rest);
    write("webhooks.json", got.webhooks, hooksDoc, hooks);
    if (update)
      for (const [k, info] of Object.entries(got))
        console.log(`PINNED.${k}: version ${info.version} integrity ${info.integrity}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main();
