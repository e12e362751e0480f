// Probes one AgentHost: reads (or generates) the client key, connects over the host's pinned
// SSH connection, asks the driver for its health and versions and the host for its kernel, OS
// and size, counts the agent replicas placed there, and writes Reachable, versions and
// allocation when they changed. Failures become a Reachable=False reason (drivers/
// error-condition.ts) and a Warning Event on each transition; HostKeyMismatch names both keys.
import type { Logger } from "pino";
import { type AgentHost, agentHost } from "../../../api/agenthost.ts";
import { API_VERSION } from "../../../api/common.ts";
import { formatFieldErrors, parseAs } from "../../../api/field-errors.ts";
import { FIELD_MANAGER } from "../../build/names.ts";
import { type Call, within } from "../../drivers/call.ts";
import type { ContainerDriver, GroupInfo } from "../../drivers/driver.ts";
import { errorCondition } from "../../drivers/error-condition.ts";
import { HostKeyMismatchError } from "../../drivers/errors.ts";
import { LABEL_NAMESPACE, LABEL_UID, managedFilter, replicaOf } from "../../drivers/labels.ts";
import { removeReplicas } from "../../drivers/replica.ts";
import type { ReconcileResult } from "../../engine/controller.ts";
import type { ObjectCache } from "../../engine/informer.ts";
import { ClientKeyError, clientKey } from "../../hosts/client-key.ts";
import { type HostConnections, logRotation } from "../../hosts/host-connections.ts";
import type { KubeClient, KubeObject } from "../../kube/client.ts";
import type { EventRecorder } from "../../kube/events.ts";
import { resources } from "../../kube/resources.ts";
import { HOST_FACTS_COMMAND, hostStatus, hostStatusChanged, type Probe, parseHostFacts } from "./status.ts";

/** Between probes of a reachable host. */
export const PROBE_INTERVAL_MS = 20_000;
/** Most time one probe may take, connection included. */
const PROBE_DEADLINE_MS = 30_000;

export interface AgentHostReconcilerDeps {
  client: KubeClient;
  agentHosts: ObjectCache<KubeObject>;
  events: EventRecorder;
  hosts: HostConnections;
  /** The AgentTypes that exist, and whether an AgentType's namespace is watched (else we cannot know). */
  owners: { uids: () => Set<string>; watches: (namespace: string) => boolean };
}

/** A group younger than this is never an orphan: its AgentType may not be in our cache yet. */
const ORPHAN_MIN_AGE_MS = 120_000;

export function createAgentHostReconciler(deps: AgentHostReconcilerDeps) {
  const { client, agentHosts, events, hosts, owners } = deps;

  /** Removes the groups of AgentTypes that no longer exist (after a restart or failover too). */
  async function removeOrphans(
    raw: KubeObject,
    driver: ContainerDriver,
    groups: readonly GroupInfo[],
    call: Call,
    signal: AbortSignal,
  ): Promise<number> {
    const known = owners.uids();
    const orphaned = new Set<string>();
    for (const g of groups) {
      const of = replicaOf(g.labels);
      const namespace = g.labels[LABEL_NAMESPACE] ?? "";
      const old = g.createdAt !== undefined && Date.now() - g.createdAt.getTime() > ORPHAN_MIN_AGE_MS;
      if (of !== undefined && !known.has(of.uid) && owners.watches(namespace) && old) orphaned.add(of.uid);
    }
    for (const uid of orphaned) {
      await removeReplicas(driver, { ...managedFilter(), [LABEL_UID]: uid }, 10_000, call);
      await events.record(
        raw,
        "Normal",
        "OrphanRemoved",
        `removed the containers of AgentType uid ${uid}, which no longer exists`,
        signal,
      );
    }
    return orphaned.size;
  }

  async function probe(host: AgentHost, privateKey: string, signal: AbortSignal): Promise<Probe> {
    const { connection, driver } = hosts.access(host, privateKey);
    const call = within(PROBE_DEADLINE_MS, signal);
    // Connect first: a refused host key or login is the answer, not a driver that is "not ready".
    await connection.connection(call);
    const health = await driver.health(call);
    if (!health.ready)
      return {
        reachable: false,
        reason: "DriverNotReady",
        message: health.message ?? `${driver.kind} is not ready`,
      };
    const facts = await connection.exec(HOST_FACTS_COMMAND, {}, call);
    const { kernel, os, ...size } = parseHostFacts(facts.stdout);
    let groups = await driver.listGroups(managedFilter(), call);
    if ((await removeOrphans(host as unknown as KubeObject, driver, groups, call, signal)) > 0)
      groups = await driver.listGroups(managedFilter(), call);
    const replicas = new Set(
      groups.flatMap((g) => {
        const of = replicaOf(g.labels);
        return of === undefined ? [] : [`${of.uid}/${of.replica}`];
      }),
    );
    return {
      reachable: true,
      facts: {
        versions: { ...health.versions, ...(kernel ? { kernel } : {}), ...(os ? { os } : {}) },
        ...size,
        agents: replicas.size,
      },
    };
  }

  /**
   * Rotates the agents' log files grown past the host's limit (spec.containerLogs). A failure is
   * a Warning Event; the host stays Reachable, as its agents run on.
   */
  async function rotateLogs(
    raw: KubeObject,
    host: AgentHost,
    privateKey: string,
    log: Logger,
    signal: AbortSignal,
  ): Promise<void> {
    const { driver } = hosts.access(host, privateKey);
    try {
      const rotated = await driver.rotateLogs(
        managedFilter(),
        logRotation(host),
        within(PROBE_DEADLINE_MS, signal),
      );
      if (rotated.length > 0) log.info({ rotated }, "rotated agents' log files");
    } catch (error) {
      if (signal.aborted) throw error;
      await events.record(raw, "Warning", "LogRotationFailed", (error as Error).message, signal);
    }
  }

  return async function reconcile(
    key: string,
    log: Logger,
    signal: AbortSignal,
  ): Promise<ReconcileResult | undefined> {
    const raw = agentHosts.get(key);
    if (raw === undefined || raw.metadata.deletionTimestamp !== undefined) {
      hosts.forget(key);
      return undefined;
    }
    const parsed = parseAs(agentHost, raw);
    let result: Probe;
    let publicKey: string | undefined = (raw as AgentHost).status?.clientPublicKey;
    let requeueAfterMs = PROBE_INTERVAL_MS;
    if (!parsed.ok) {
      result = {
        reachable: false,
        reason: "InvalidSpec",
        message: formatFieldErrors(parsed.errors).replaceAll("\n", "; "),
      };
      requeueAfterMs = 5 * 60_000;
    } else {
      const host = parsed.value;
      try {
        const key = await clientKey(client, host, signal);
        publicKey = key.publicKey;
        if (key.generated)
          await events.record(
            raw,
            "Normal",
            "GeneratedClientKey",
            `generated an SSH key for this host; authorize it for user ${host.spec.ssh.user} by adding this line to its authorized_keys: ${key.publicKey}`,
            signal,
          );
        result = await probe(host, key.privateKey, signal);
        if (result.reachable) await rotateLogs(raw, host, key.privateKey, log, signal);
      } catch (error) {
        if (signal.aborted) throw error;
        if (error instanceof ClientKeyError) {
          result = { reachable: false, reason: error.reason, message: error.message };
          requeueAfterMs = 60_000;
        } else {
          const mapped = errorCondition(error);
          result = { reachable: false, reason: mapped.reason, message: mapped.message };
          requeueAfterMs = Math.min(mapped.requeueAfterMs, PROBE_INTERVAL_MS);
          if (error instanceof HostKeyMismatchError)
            await events.record(
              raw,
              "Warning",
              "HostKeyMismatch",
              `host ${error.host} presented a key with fingerprint ${error.presented}, but the pinned key (spec.ssh.hostKey) has fingerprint ${error.expected}; refusing to connect`,
              signal,
            );
        }
      }
    }
    const host = raw as AgentHost;
    const status = hostStatus(host, result, publicKey, new Date());
    const before = host.status?.conditions?.find((c) => c.type === "Reachable");
    if (hostStatusChanged(host.status, status)) {
      await client.applyWithoutAnswer(
        resources.agentHost,
        { apiVersion: API_VERSION, kind: "AgentHost", metadata: { name: raw.metadata.name }, status },
        FIELD_MANAGER,
        "status",
        signal,
      );
      const now = status.conditions?.find((c) => c.type === "Reachable");
      if (now !== undefined && (before?.status !== now.status || before?.reason !== now.reason)) {
        const mismatchRecorded = now.reason === "HostKeyMismatch";
        if (!mismatchRecorded)
          await events.record(
            raw,
            now.status === "True" ? "Normal" : "Warning",
            now.reason,
            now.message,
            signal,
          );
      }
    }
    log.debug({ reachable: result.reachable }, "probed");
    return { requeueAfterMs };
  };
}
