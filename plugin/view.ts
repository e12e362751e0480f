// What `list` and `describe` show, built from what was read, and rendered as kubectl renders:
// aligned columns, ages like 5m or 2d3h, -o json|yaml of the same data. Pure.
import type { CoreV1Event } from "@kubernetes/client-node";
import { dump } from "js-yaml";
import type { AgentHost } from "../api/agenthost.ts";
import type { AgentTool } from "../api/agenttool.ts";
import type { AgentType } from "../api/agenttype.ts";
import type { SidecarReading } from "./read.ts";
import type { Replica } from "./replicas.ts";

export interface ListRow {
  namespace: string;
  name: string;
  ready: string;
  replicas: { desired: number; ready: number };
  runtime: string;
  /** Per replica: its number, the pod or host, and where that is. */
  where: Replica[];
  model: string;
  /** Input plus output tokens over the replicas whose sidecar answered; undefined when none did. */
  tokens?: number;
  created: string;
}

export function listRow(agent: AgentType, replicas: Replica[], readings: SidecarReading[]): ListRow {
  const answered = readings.filter((r) => r.metrics !== undefined);
  const ready = agent.status?.conditions?.find((c) => c.type === "Ready");
  return {
    namespace: agent.metadata.namespace ?? "",
    name: agent.metadata.name,
    ready: ready?.status ?? "Unknown",
    replicas: { desired: agent.spec.replicas ?? 1, ready: agent.status?.readyReplicas ?? 0 },
    runtime: runtimeOf(agent),
    where: replicas,
    model: firstModel(agent),
    ...(answered.length === 0
      ? {}
      : {
          tokens: answered.reduce(
            (n, r) => n + (r.metrics?.tokens.input ?? 0) + (r.metrics?.tokens.output ?? 0),
            0,
          ),
        }),
    created: String(agent.metadata.creationTimestamp ?? ""),
  };
}

function runtimeOf(agent: AgentType): string {
  const runtime = agent.spec.runtime?.type ?? "kubernetes";
  const host = agent.spec.runtime?.hostRef?.name;
  return host === undefined ? runtime : `${runtime}/${host}`;
}

function firstModel(agent: AgentType): string {
  const fallback = agent.spec.llm?.fallback?.[0];
  const providers = agent.spec.llm?.providers ?? [];
  const first = providers.find((p) => p.name === fallback) ?? providers[0];
  return first?.model ?? "<none>";
}

/** kubectl's age: 45s, 12m, 3h4m, 2d5h, 400d. */
export function age(since: string, now: Date): string {
  const seconds = Math.max(0, Math.floor((now.getTime() - new Date(since).getTime()) / 1000));
  if (Number.isNaN(seconds) || since === "") return "<unknown>";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return `${minutes}m${seconds % 60 === 0 ? "" : `${seconds % 60}s`}`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return `${hours}h${minutes % 60 === 0 ? "" : `${minutes % 60}m`}`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (days < 8) return `${days}d${hours % 24 === 0 ? "" : `${hours % 24}h`}`;
  return `${days}d`;
}

/** Columns padded as kubectl pads them: three spaces between, the last one ragged. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] as number) + 3)))
      .join("")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

const whereCell = (replicas: Replica[]) =>
  replicas.length === 0 ? "<none>" : [...new Set(replicas.map((r) => r.where))].join(",");
const replicaCell = (replicas: Replica[]) =>
  replicas.length === 0 ? "<none>" : replicas.map((r) => `${r.index}:${r.name}`).join(",");

export function renderList(
  rows: ListRow[],
  options: { wide: boolean; allNamespaces: boolean },
  now: Date,
): string {
  if (rows.length === 0) return "";
  const header = [
    ...(options.allNamespaces ? ["NAMESPACE"] : []),
    "NAME",
    "READY",
    "REPLICAS",
    "RUNTIME",
    "WHERE",
    "MODEL",
    "TOKENS",
    "AGE",
    ...(options.wide ? ["REPLICA:POD/HOST"] : []),
  ];
  return table(
    header,
    rows.map((r) => [
      ...(options.allNamespaces ? [r.namespace] : []),
      r.name,
      r.ready,
      `${r.replicas.ready}/${r.replicas.desired}`,
      r.runtime,
      whereCell(r.where),
      r.model,
      r.tokens === undefined ? "-" : String(r.tokens),
      age(r.created, now),
      ...(options.wide ? [replicaCell(r.where)] : []),
    ]),
  );
}

export interface ToolView {
  name: string;
  range: string;
  required: boolean;
  version?: string;
  agentTool?: string;
  /** The AgentTool's Available condition: True, False or Unknown, with its message. */
  available?: string;
  message?: string;
}

export function toolViews(agent: AgentType, tools: AgentTool[] | string): ToolView[] {
  return (agent.spec.tools ?? []).map((request) => {
    const resolved = agent.status?.resolvedTools?.find((t) => t.name === request.name);
    const view: ToolView = {
      name: request.name,
      range: request.version ?? "*",
      required: request.required ?? true,
    };
    if (resolved === undefined) return { ...view, available: "Missing" };
    const tool =
      typeof tools === "string" ? undefined : tools.find((t) => t.metadata.name === resolved.agentTool);
    const condition = tool?.status?.conditions?.find((c) => c.type === "Available");
    return {
      ...view,
      version: resolved.version,
      agentTool: resolved.agentTool,
      available: condition?.status ?? "Unknown",
      ...(condition?.message === undefined || condition.status === "True"
        ? {}
        : { message: condition.message }),
    };
  });
}

export interface Description {
  name: string;
  namespace: string;
  runtime: string;
  image: string;
  interactive: boolean;
  replicas: { desired: number; ready: number };
  conditions: {
    type: string;
    status: string;
    reason?: string;
    message?: string;
    lastTransitionTime?: string;
  }[];
  where: Replica[];
  host?: { name: string; reachable?: string; message?: string; unreadable?: string };
  tools: ToolView[];
  toolsUnreadable?: string;
  sidecars: SidecarReading[];
  sidecarsNote?: string;
  events: { type: string; reason: string; lastSeen: string; from: string; count: number; message: string }[];
  eventsUnreadable?: string;
}

export function describeAgent(
  agent: AgentType,
  replicas: Replica[],
  read: {
    tools: AgentTool[] | string;
    sidecars: SidecarReading[];
    sidecarsNote?: string;
    events: CoreV1Event[] | string;
    host?: AgentHost | string;
  },
): Description {
  const hostName = agent.spec.runtime?.hostRef?.name;
  const reachable =
    typeof read.host === "object"
      ? read.host.status?.conditions?.find((c) => c.type === "Reachable")
      : undefined;
  return {
    name: agent.metadata.name,
    namespace: agent.metadata.namespace ?? "",
    runtime: runtimeOf(agent),
    image: agent.spec.image,
    interactive: agent.spec.interactive === true,
    replicas: { desired: agent.spec.replicas ?? 1, ready: agent.status?.readyReplicas ?? 0 },
    conditions: (agent.status?.conditions ?? []).map((c) => ({
      type: c.type,
      status: c.status,
      ...(c.reason === undefined ? {} : { reason: c.reason }),
      ...(c.message === undefined ? {} : { message: c.message }),
      ...(c.lastTransitionTime === undefined ? {} : { lastTransitionTime: c.lastTransitionTime }),
    })),
    where: replicas,
    ...(hostName === undefined
      ? {}
      : {
          host: {
            name: hostName,
            ...(typeof read.host === "string" ? { unreadable: read.host } : {}),
            ...(reachable === undefined ? {} : { reachable: reachable.status }),
            ...(reachable?.message === undefined ? {} : { message: reachable.message }),
          },
        }),
    tools: toolViews(agent, read.tools),
    ...(typeof read.tools === "string" && (agent.spec.tools ?? []).length > 0
      ? { toolsUnreadable: read.tools }
      : {}),
    sidecars: read.sidecars,
    ...(read.sidecarsNote === undefined ? {} : { sidecarsNote: read.sidecarsNote }),
    events:
      typeof read.events === "string"
        ? []
        : [...read.events]
            .sort((a, b) => eventTime(a).localeCompare(eventTime(b)))
            .map((e) => ({
              type: e.type ?? "",
              reason: e.reason ?? "",
              lastSeen: eventTime(e),
              from: e.source?.component ?? e.reportingComponent ?? "",
              count: e.count ?? 1,
              message: e.message ?? "",
            })),
    ...(typeof read.events === "string" ? { eventsUnreadable: read.events } : {}),
  };
}

function eventTime(e: CoreV1Event): string {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp;
  return t === undefined ? "" : new Date(t).toISOString();
}

const labelText = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

export function renderDescription(d: Description, now: Date): string {
  const out: string[] = [];
  out.push(`Name:         ${d.name}`, `Namespace:    ${d.namespace}`, `Runtime:      ${d.runtime}`);
  out.push(`Image:        ${d.image}`, `Interactive:  ${d.interactive}`);
  out.push(`Replicas:     ${d.replicas.ready} ready / ${d.replicas.desired} desired`);
  if (d.host !== undefined) {
    const state =
      d.host.unreadable ??
      `Reachable=${d.host.reachable ?? "Unknown"}${d.host.message ? `: ${d.host.message}` : ""}`;
    out.push(`Host:         ${d.host.name} (${state})`);
  }
  out.push("Conditions:");
  out.push(
    indent(
      d.conditions.length === 0
        ? "<none>"
        : table(
            ["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"],
            d.conditions.map((c) => [
              c.type,
              c.status,
              c.reason ?? "",
              c.lastTransitionTime === undefined ? "" : age(c.lastTransitionTime, now),
              c.message ?? "",
            ]),
          ),
    ),
  );
  out.push("Where:");
  out.push(
    indent(
      d.where.length === 0
        ? "<none>"
        : table(
            [
              "REPLICA",
              d.where[0]?.kind === "host" ? "HOST" : "POD",
              "NODE/HOST",
              "STATE",
              "READY",
              "RESTARTS",
            ],
            d.where.map((r) => [
              String(r.index),
              r.name,
              r.where,
              r.state,
              String(r.ready),
              String(r.restarts),
            ]),
          ),
    ),
  );
  out.push("Tools:");
  out.push(
    indent(
      d.toolsUnreadable !== undefined
        ? `AgentTools unreadable: ${d.toolsUnreadable}`
        : d.tools.length === 0
          ? "<none>"
          : table(
              ["NAME", "RANGE", "REQUIRED", "VERSION", "AGENTTOOL", "AVAILABLE", "MESSAGE"],
              d.tools.map((t) => [
                t.name,
                t.range,
                String(t.required),
                t.version ?? "-",
                t.agentTool ?? "-",
                t.available ?? "",
                t.message ?? "",
              ]),
            ),
    ),
  );
  out.push("Providers:");
  out.push(indent(renderProviders(d)));
  out.push("Events:");
  out.push(
    indent(
      d.eventsUnreadable !== undefined
        ? `unreadable: ${d.eventsUnreadable}`
        : d.events.length === 0
          ? "<none>"
          : table(
              ["TYPE", "REASON", "AGE", "FROM", "MESSAGE"],
              d.events.map((e) => [
                e.type,
                e.reason,
                `${age(e.lastSeen, now)}${e.count > 1 ? ` (x${e.count})` : ""}`,
                e.from,
                e.message,
              ]),
            ),
    ),
  );
  return out.join("\n");
}

function renderProviders(d: Description): string {
  if (d.sidecarsNote !== undefined) return d.sidecarsNote;
  if (d.sidecars.length === 0) return "<no sidecar running>";
  const parts: string[] = [];
  for (const reading of d.sidecars) {
    parts.push(`pod ${reading.pod}:`);
    if (reading.unreadable !== undefined) {
      parts.push(indent(`sidecar unreadable: ${reading.unreadable}`));
      continue;
    }
    const providers = reading.status?.providers ?? [];
    parts.push(
      indent(
        providers.length === 0
          ? "<no provider>"
          : table(
              ["NAME", "TYPE", "MODEL", "STATE", "FAILURES", "LAST ERROR"],
              providers.map((p) => [
                p.name,
                p.type,
                p.model,
                p.state,
                String(p.consecutiveFailures),
                p.lastError === undefined
                  ? ""
                  : `${p.lastError.at} ${p.lastError.errorClass}: ${p.lastError.message}`,
              ]),
            ),
      ),
    );
    const m = reading.metrics;
    if (m === undefined) continue;
    const counts = (title: string, entries: { labels: Record<string, string>; count: number }[]) =>
      `${title}: ${entries.length === 0 ? "none" : entries.map((e) => `${labelText(e.labels)} ${e.count}`).join("; ")}`;
    parts.push(indent(`Tokens: ${m.tokens.input} input, ${m.tokens.output} output`));
    parts.push(indent(counts("Requests", m.requests)));
    parts.push(indent(counts("Provider errors", m.providerErrors)));
    parts.push(indent(counts("Fallbacks", m.fallbacks)));
    parts.push(indent(counts("Rate-limit hits", m.rateLimited)));
  }
  return parts.join("\n");
}

const indent = (text: string) =>
  text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");

export function renderData(data: unknown, format: "json" | "yaml"): string {
  return format === "json"
    ? JSON.stringify(data, null, 2)
    : dump(data, { noRefs: true, lineWidth: -1 }).trimEnd();
}
