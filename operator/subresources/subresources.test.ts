import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { LogLine } from "../drivers/driver.ts";
import { issueCa, issueServingCertificate, serviceDnsNames } from "./certificates.ts";
import { frontProxyConfig, remoteUser } from "./front-proxy.ts";
import { advance, START } from "./log-follow.ts";
import { discovery, parseRequest } from "./requests.ts";
import { SessionLimit } from "./session-limit.ts";

const now = new Date("2026-11-27T09:00:00Z");

describe("certificates of the aggregated API", () => {
  it("issues a CA and a serving certificate for the Service's names that chains to it", () => {
    const ca = issueCa("test-ca", now);
    const serving = issueServingCertificate(
      ca,
      serviceDnsNames("agenttype-system", "agenttype-subresources"),
      now,
    );
    const caCert = new X509Certificate(ca.certificate);
    const cert = new X509Certificate(serving.certificate);
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.checkHost("agenttype-subresources.agenttype-system.svc")).toBe(
      "agenttype-subresources.agenttype-system.svc",
    );
    expect(cert.checkHost("elsewhere.example")).toBeUndefined();
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(now.getTime() + 300 * 86_400_000);
    // Another CA's certificate does not verify against this one.
    expect(cert.verify(new X509Certificate(issueCa("other", now).certificate).publicKey)).toBe(false);
  });
});

describe("the front proxy", () => {
  const config = frontProxyConfig({
    "requestheader-client-ca-file": "-----BEGIN CERTIFICATE-----\n...",
    "requestheader-allowed-names": '["front-proxy-client"]',
    "requestheader-username-headers": '["X-Remote-User"]',
    "requestheader-group-headers": '["X-Remote-Group"]',
    "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
  });

  it("reads kube-apiserver's published settings, and names what is missing", () => {
    expect(config.allowedNames).toEqual(["front-proxy-client"]);
    expect(() => frontProxyConfig({})).toThrow(/no requestheader-client-ca-file/);
    expect(() =>
      frontProxyConfig({ "requestheader-client-ca-file": "x", "requestheader-allowed-names": "{}" }),
    ).toThrow(/JSON array of strings/);
  });

  it("takes the user, groups and extras from an allowed front proxy only", () => {
    const headers = {
      "x-remote-user": ["alice"],
      "x-remote-group": ["devs", "system:authenticated"],
      "x-remote-extra-scopes%2fone": ["a", "b"],
    };
    expect(remoteUser(config, "front-proxy-client", headers)).toEqual({
      username: "alice",
      groups: ["devs", "system:authenticated"],
      extra: { "scopes/one": ["a", "b"] },
    });
    expect(remoteUser(config, "someone-else", headers)).toMatch(/not an allowed front proxy/);
    expect(remoteUser(config, undefined, headers)).toMatch(/no client certificate/);
    expect(remoteUser(config, "front-proxy-client", {})).toMatch(/no user in X-Remote-User/);
  });
});

describe("requests to the aggregated API", () => {
  const url = (path: string) => new URL(`https://x/apis/subresources.agenttype.dev/v1alpha1${path}`);

  it("serves discovery with each subresource and the HTTP verb RBAC sees", () => {
    expect(parseRequest("GET", url(""))).toEqual({ kind: "discovery" });
    expect(discovery()).toMatchObject({
      groupVersion: "subresources.agenttype.dev/v1alpha1",
      resources: [
        { name: "agenttypes/log", verbs: ["get"] },
        { name: "agenttypes/exec", verbs: ["get"] },
        { name: "agenttypes/attach", verbs: ["get"] },
      ],
    });
  });

  it("reads log and exec requests, kubectl's query parameters included", () => {
    expect(
      parseRequest(
        "GET",
        url(
          "/namespaces/ns/agenttypes/a/log?replica=2&container=sidecar&follow=true&tailLines=5&sinceSeconds=60",
        ),
      ),
    ).toEqual({
      kind: "log",
      target: { namespace: "ns", name: "a", replica: 2, container: "sidecar" },
      follow: true,
      timestamps: false,
      tailLines: 5,
      sinceSeconds: 60,
    });
    expect(
      parseRequest(
        "GET",
        url(
          "/namespaces/ns/agenttypes/a/exec?command=sh&command=-c&command=echo+hi&stdout=true&stderr=true&stdin=false&tty=false&container=agent",
        ),
      ),
    ).toEqual({
      kind: "exec",
      target: { namespace: "ns", name: "a", replica: 0, container: "agent" },
      command: ["sh", "-c", "echo hi"],
      stdin: false,
      tty: false,
    });
    expect(
      parseRequest("GET", url("/namespaces/ns/agenttypes/a/exec?command=sh&stdin=true&tty=true")),
    ).toMatchObject({ kind: "exec", command: ["sh"], stdin: true, tty: true });
    expect(
      parseRequest(
        "GET",
        url("/namespaces/ns/agenttypes/a/attach?container=agent&stdin=true&stdout=true&tty=true&replica=1"),
      ),
    ).toEqual({
      kind: "attach",
      target: { namespace: "ns", name: "a", replica: 1, container: "agent" },
    });
  });

  it("refuses what it cannot honour, naming the parameter", () => {
    const refusal = (path: string, method = "GET") => parseRequest(method, url(path));
    expect(refusal("/namespaces/ns/agenttypes/a/log?replica=-1")).toMatchObject({
      code: 400,
      message: expect.stringMatching(/^replica:/),
    });
    expect(refusal("/namespaces/ns/agenttypes/a/log?container=init")).toMatchObject({
      message: expect.stringMatching(/^container:/),
    });
    expect(refusal("/namespaces/ns/agenttypes/a/log?previous=true")).toMatchObject({
      message: expect.stringMatching(/^previous:/),
    });
    expect(refusal("/namespaces/ns/agenttypes/a/log?follow=maybe")).toMatchObject({
      message: expect.stringMatching(/^follow:/),
    });
    expect(refusal("/namespaces/ns/agenttypes/a/exec")).toMatchObject({
      message: expect.stringMatching(/^command:/),
    });
    expect(refusal("/namespaces/ns/agenttypes/a/exec?command=cat&stdin=maybe")).toMatchObject({
      code: 400,
      message: expect.stringMatching(/^stdin:/),
    });
    expect(refusal("/namespaces/ns/agenttypes/a/exec?command=sh&tty=2")).toMatchObject({
      message: expect.stringMatching(/^tty:/),
    });
    expect(refusal("/namespaces/ns/agenttypes/a/exec?command=sh&tty=true&stdin=false")).toMatchObject({
      code: 400,
      message: expect.stringMatching(/^tty: a terminal needs stdin/),
    });
    expect(refusal("/namespaces/ns/agenttypes/a/attach?container=sidecar")).toMatchObject({
      code: 400,
      message: expect.stringMatching(/^container: only the agent has a console/),
    });
    expect(refusal("/namespaces/ns/agenttypes/a/console")).toMatchObject({ code: 404 });
    expect(refusal("/namespaces/ns/agenttypes/a/log", "POST")).toMatchObject({ code: 405 });
    expect(refusal("/namespaces/ns/pods/a/log")).toMatchObject({ code: 404 });
  });
});

describe("following a log by reading it again", () => {
  const line = (ms: number, text: string): LogLine => ({ time: new Date(ms), stream: "stdout", text });

  it("writes each line once, lines sharing a time included", () => {
    let step = advance(START, [line(1, "a"), line(2, "b"), line(2, "c")]);
    expect(step.fresh.map((l) => l.text)).toEqual(["a", "b", "c"]);
    // The next read starts at time 2: b and c again, then d at the same time, then e.
    step = advance(step.cursor, [line(2, "b"), line(2, "c"), line(2, "d"), line(3, "e")]);
    expect(step.fresh.map((l) => l.text)).toEqual(["d", "e"]);
    step = advance(step.cursor, [line(3, "e")]);
    expect(step.fresh).toEqual([]);
    step = advance(step.cursor, [line(3, "e"), line(3, "f")]);
    expect(step.fresh.map((l) => l.text)).toEqual(["f"]);
    step = advance(step.cursor, [line(3, "e"), line(3, "f"), line(3, "g")]);
    expect(step.fresh.map((l) => l.text)).toEqual(["g"]);
  });
});

describe("sessions to a host, bounded", () => {
  it("takes places up to the bound per host, frees each once, and counts hosts apart", () => {
    const limit = new SessionLimit(2);
    const a1 = limit.take("a");
    const a2 = limit.take("a");
    expect(a1 && a2).toBeDefined();
    expect(limit.take("a")).toBeUndefined();
    expect(limit.take("b")).toBeDefined();
    a1?.();
    a1?.();
    expect(limit.open("a")).toBe(1);
    expect(limit.take("a")).toBeDefined();
    expect(limit.take("a")).toBeUndefined();
    expect(() => new SessionLimit(0)).toThrow(/positive integer/);
  });
});
