// What the agent-facing LLM APIs share. Each API is one encapsulated fastify plugin built
// here: every route gets the guard for "no LLM configured" and the validation of its body in
// one place, and the errors the sidecar makes itself (a body that is not JSON or too large,
// an unknown path) are answered in the API's own error shape, so stock clients show why.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type * as z from "zod";
import { type FieldError, fieldPath, formatFieldErrors } from "../../api/field-errors.ts";
import type { Redactor } from "../redact.ts";
import type { PassThroughApi } from "./chat.ts";
import { describeFailure, type Failure, sendFailure } from "./failure.ts";
import type { Router } from "./router.ts";

/** What the LLM routes need of the running services; swapped whole when the config reloads. */
export interface LlmServices {
  router: Router | undefined;
  redact: Redactor;
}

/** One request being answered, with the router of the config it started on. */
export interface LlmCall {
  router: Router;
  reply: FastifyReply;
  /** Answers a failure in the API's error shape, credentials removed. */
  fail(error: unknown): FastifyReply;
  /** What to tell the agent of a failure inside a stream already started, credentials removed. */
  describe(error: unknown): Failure;
  /** The body as the agent sent it (parsed JSON), for a provider that takes it as it came. */
  body: Record<string, unknown>;
  /** Top-level fields the API's schema refused, kept for a provider that takes the body as it came. */
  heldBack: string[];
  /** A provider's text with every credential the sidecar holds removed. */
  redact(text: string): string;
}

export interface LlmApiOptions {
  /** The path prefix the API owns: its unknown paths are answered in its error shape. */
  prefix: string;
  /** The API's name in errors and the `api` label of the metrics. */
  name: string;
  /** The body of an error in the API's format. */
  errorShape(failure: Failure): object;
  services(): LlmServices;
  /** Reads every body as JSON whatever its content type, as Ollama does. */
  anyContentTypeIsJson?: boolean;
}

export interface LlmRoutes {
  /** A POST route; its body is validated by `schema` before `handle` sees it. */
  post<S extends z.ZodType>(
    url: string,
    schema: S,
    handle: (body: z.output<S>, call: LlmCall) => Promise<FastifyReply>,
    /** When a provider takes this API's requests as they came, fields the schema refuses go to it alone. */
    passThrough?: PassThroughApi,
  ): void;
  /** A GET route answered whether or not an LLM is configured. */
  get(url: string, handle: (services: LlmServices, reply: FastifyReply) => Promise<FastifyReply>): void;
}

const NO_LLM: Failure = {
  status: 503,
  type: "api_error",
  code: "no_llm",
  message: "this agent has no LLM configured (the AgentType has no spec.llm)",
};

/** Registers one agent-facing API as an encapsulated plugin under its prefix. */
export function registerLlmApi(
  app: FastifyInstance,
  options: LlmApiOptions,
  define: (routes: LlmRoutes) => void,
): void {
  const { errorShape } = options;
  void app.register(
    async (scope) => {
      if (options.anyContentTypeIsJson === true) {
        const json = scope.getDefaultJsonParser("error", "error");
        scope.removeAllContentTypeParsers();
        scope.addContentTypeParser("*", { parseAs: "string" }, json);
      }
      scope.setErrorHandler((error: FastifyError, request, reply) => {
        const failure = ownFailure(error, request);
        if (failure.status >= 500) request.log.error({ err: error, url: request.url }, "request failed");
        return reply.code(failure.status).send(errorShape(failure));
      });
      scope.setNotFoundHandler((request, reply) =>
        reply.code(404).send(
          errorShape({
            status: 404,
            type: "invalid_request_error",
            code: "unknown_url",
            message: `the ${options.name} API of the sidecar has no ${request.method} ${request.url.split("?")[0]}`,
          }),
        ),
      );
      define({
        post(url, schema, handle, passThrough) {
          scope.post(url, async (request, reply) => {
            const services = options.services();
            const { router, redact } = services;
            if (router === undefined) return reply.code(NO_LLM.status).send(errorShape(NO_LLM));
            let parsed = schema.safeParse(request.body);
            let heldBack: string[] = [];
            if (!parsed.success && passThrough !== undefined && router.passesThrough(passThrough)) {
              const held = withoutRefusedFields(schema, request.body, parsed.error);
              if (held !== undefined) [parsed, heldBack] = [held.parsed, held.fields];
            }
            if (!parsed.success) return reply.code(400).send(errorShape(invalid(parsed.error)));
            return handle(parsed.data, {
              router,
              reply,
              fail: (error) => sendFailure(reply, error, errorShape, redact),
              describe: (error) => describeFailure(error, redact),
              body: request.body as Record<string, unknown>,
              heldBack,
              redact: (text) => redact.text(text),
            });
          });
        },
        get(url, handle) {
          scope.get(url, async (_request, reply) => handle(options.services(), reply));
        },
      });
    },
    { prefix: options.prefix },
  );
}

/**
 * The body parsed without the top-level fields its schema refused (unknown to it, or refused
 * for want of a provider), when every error is one of those and the rest parses; undefined
 * otherwise. Those fields then reach only a provider that takes the body as it came.
 */
function withoutRefusedFields<S extends z.ZodType>(schema: S, body: unknown, error: z.ZodError) {
  if (typeof body !== "object" || body === null) return undefined;
  const fields = new Set<string>();
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys" && issue.path.length === 0)
      for (const key of issue.keys) fields.add(key);
    else if (issue.path.length >= 1 && typeof issue.path[0] === "string") fields.add(issue.path[0]);
    else return undefined;
  }
  const trimmed: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  for (const field of fields) delete trimmed[field];
  const parsed = schema.safeParse(trimmed);
  return parsed.success ? { parsed, fields: [...fields] } : undefined;
}

/**
 * The field errors of a body. Where a field may take several shapes (a string or a list of
 * parts), the shape the body came closest to names the field, not the union as a whole.
 */
function bodyErrors(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): FieldError[] {
  const depth = (branch: readonly z.core.$ZodIssue[]) => Math.max(0, ...branch.map((i) => i.path.length));
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === "invalid_union" && issue.errors.length > 0) {
      const closest = issue.errors.reduce((best, branch) => (depth(branch) > depth(best) ? branch : best));
      if (depth(closest) > 0) return bodyErrors(closest, path);
    }
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({ path: fieldPath([...path, key]), message: "unknown field" }));
    }
    return [{ path: fieldPath(path), message: issue.message }];
  });
}

function invalid(error: z.ZodError): Failure {
  const errors = bodyErrors(error.issues);
  return {
    status: 400,
    type: "invalid_request_error",
    code: "invalid_request",
    message: `invalid request: ${formatFieldErrors(errors).replaceAll("\n", "; ")}`,
    ...(errors[0] === undefined ? {} : { param: errors[0].path }),
  };
}

/** The failures the sidecar makes itself before a route runs, said so a person can act. */
function ownFailure(error: FastifyError, request: FastifyRequest): Failure {
  const status = error.statusCode ?? 500;
  const client = (code: string, message: string): Failure => ({
    status,
    type: "invalid_request_error",
    code,
    message,
  });
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE": {
      const limit = request.routeOptions.bodyLimit;
      return client(
        "request_too_large",
        `the request body is larger than the sidecar's limit of ${limit} bytes (${limit / 1024 / 1024} MiB)`,
      );
    }
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return client(
        "unsupported_media_type",
        `the request body's content type ${JSON.stringify(request.headers["content-type"] ?? "")} is not application/json`,
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return client("invalid_json", "the request body is empty; send a JSON object");
    case "FST_ERR_CTP_INVALID_JSON_BODY": {
      const cause = error.cause instanceof Error ? error.cause.message : "it does not parse";
      return client("invalid_json", `the request body is not valid JSON: ${cause}`);
    }
  }
  if (status < 500) return client("invalid_request", error.message);
  return {
    status: 500,
    type: "api_error",
    code: "internal_error",
    message: `sidecar error: ${error.message}`,
  };
}
