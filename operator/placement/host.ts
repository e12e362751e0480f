// Runs an AgentType with `runtime: containerd` or `kvm` on its AgentHost: the same desired objects as
// for pods, turned into pod-shaped groups (host-plan.ts) and converged by labels alone, so an
// operator restart or failover adopts what runs and restarts nothing healthy. Replicas beyond
// the host's capacity are left unplaced (HostFull); a spec change rolls one replica at a time
// (in KVM guests the new guest first, then the old one removed);
// an exited container is restarted with backoff and an Event naming its exit code and last
// lines; deletion removes everything of the AgentType from the host behind a finalizer.
import type { Logger } from "pino";
import type { AgentTool } from "../../api/agenttool.ts";
import { agentTool } from "../../api/agenttool.ts";
import { type AgentType, type AgentTypeStatus, agentType } from "../../api/agenttype.ts";
import { API_VERSION } from "../../api/common.ts";
import { formatFieldErrors, parseAs } from "../../api/field-errors.ts";
import { FIELD_MANAGER, selectorLabels } from "../build/names.ts";
import { type BuildSettings, buildObjects } from "../build/objects.ts";
import { providerCredentialsDir, toolSecretDir } from "../build/sidecar-config.ts";
import { transitions } from "../controllers/agenttype/status.ts";
import { type Call, within } from "../drivers/call.ts";
import type { ContainerDriver, ContainerInfo, GroupInfo } from "../drivers/driver.ts";
import { errorCondition } from "../drivers/error-condition.ts";
import { LABEL_REPLICA, managedFilter, type Owner, ownerLabels, replicaLabels } from "../drivers/labels.ts";
import {
  describeStartSteps,
  exitReport,
  ROLE_AGENT,
  ROLE_SIDECAR,
  removeReplicas,
  type StartedReplica,
  startReplica,
} from "../drivers/replica.ts";
import type { ReconcileResult } from "../engine/controller.ts";
import type { ObjectCache } from "../engine/informer.ts";
import { backoffDelay } from "../engine/workqueue.ts";
import { hostDriver } from "../hosts/host-access.ts";
import type { HostConnections } from "../hosts/host-connections.ts";
import { isNotFound, type KubeClient, type KubeObject } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import { resources } from "../kube/resources.ts";
import { resolveTools } from "../tools/resolve-tools.ts";
import {
  groupDamage,
  HostPlanError,
  hostReplicaPlan,
  LABEL_SPEC_HASH,
  replicaSize,
  replicaSpec,
  replicasThatFit,
  type SidecarFile,
  specHash,
  startsNewFirst,
  toolsUnreachableFromHost,
  usageOf,
} from "./host-plan.ts";
import { type HostObservation, type HostReplica, hostAgentStatus } from "./host-status.ts";

/** Removes the AgentType's containers and files from its host before the object goes. */
export const HOST_FINALIZER = "agenttype.dev/host-cleanup";
/** Set to "true" by an admin to let an AgentType go without cleaning its unreachable host. */
export const ABANDON_ANNOTATION = "agenttype.dev/abandon-host-cleanup";

const STEP_DEADLINE_MS = 120_000;
const STOP_GRACE_MS = 10_000;
/** How often a steady AgentType on a host is looked at: containers exit without telling us. */
const WATCH_INTERVAL_MS = 10_000;
const BUSY_INTERVAL_MS = 2_000;
const RESTART_BACKOFF = { initialMs: 5_000, maxMs: 300_000 };

export interface HostPlacementDeps {
  client: KubeClient;
  agentHosts: ObjectCache<KubeObject>;
  agentTools: ObjectCache<KubeObject>;
  hosts: HostConnections;
  events: EventRecorder;
  settings: BuildSettings;
}

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

/** Restarts of each replica's agent, and when the next may happen (kubelet's CrashLoopBackOff). */
interface RestartState {
  restarts: number;
  notBefore: number;
}

export function createHostPlacement(deps: HostPlacementDeps) {
  const { client, agentHosts, agentTools, hosts, events, settings } = deps;
  const restarts = new Map<string, RestartState>();

  async function setFinalizer(raw: KubeObject, present: boolean, signal: AbortSignal): Promise<void> {
    const { name, namespace } = raw.metadata;
    await client.applyWithoutAnswer(
      resources.agentType,
      {
        apiVersion: API_VERSION,
        kind: "AgentType",
        metadata: { name, namespace, ...(present ? { finalizers: [HOST_FINALIZER] } : {}) },
      },
      `${FIELD_MANAGER}-host`,
      undefined,
      signal,
    );
  }

  /** The host and a driver on it, or why not. */
  const hostAccess = (hostName: string, runtime: string, signal: AbortSignal) =>
    hostDriver(client, hosts, hostName, agentHosts.get(hostName), runtime, signal);

  /** True when the API server (not only our cache, which may lag) says the AgentHost does not exist. */
  async function hostIsGone(hostName: string, signal: AbortSignal): Promise<boolean> {
    if (hostName === "") return true;
    if (agentHosts.get(hostName) !== undefined) return false;
    try {
      await client.get(resources.agentHost, undefined, hostName, signal);
      return false;
    } catch (error) {
      if (isNotFound(error)) return true;
      throw error;
    }
  }

  async function credentialFiles(
    agent: AgentType,
    tools: AgentTool[],
    signal: AbortSignal,
  ): Promise<SidecarFile[]> {
    const namespace = agent.metadata.namespace ?? "default";
    const files: SidecarFile[] = [];
    const secret = (name: string) => client.get<SecretObject>(resources.secret, namespace, name, signal);
    for (const provider of agent.spec.llm?.providers ?? []) {
      if (provider.credentialsSecretRef === undefined) continue;
      const data = (await secret(provider.credentialsSecretRef.name)).data ?? {};
      for (const [key, value] of Object.entries(data))
        files.push({
          path: `${providerCredentialsDir(provider.name)}/${key}`,
          content: Buffer.from(value, "base64").toString("utf8"),
        });
    }
    for (const tool of tools) {
      const auth = tool.spec.auth;
      if (auth === undefined) continue;
      const value = (await secret(auth.secretKeyRef.name)).data?.[auth.secretKeyRef.key];
      if (value === undefined) continue;
      files.push({
        path: `${toolSecretDir(tool.spec.name ?? tool.metadata.name)}/${auth.secretKeyRef.key}`,
        content: Buffer.from(value, "base64").toString("utf8"),
      });
    }
    return files;
  }

  async function writeStatus(
    raw: KubeObject,
    observation: HostObservation,
    signal: AbortSignal,
  ): Promise<void> {
    const previous = (raw as { status?: AgentTypeStatus }).status;
    const status = hostAgentStatus(previous, observation, new Date());
    const asSent = (s: unknown) => JSON.stringify(sortKeys(s ?? {}));
    if (asSent(previous) === asSent(status)) return;
    const { name, namespace } = raw.metadata;
    await client.applyWithoutAnswer(
      resources.agentType,
      { apiVersion: API_VERSION, kind: "AgentType", metadata: { name, namespace }, status },
      FIELD_MANAGER,
      "status",
      signal,
    );
    for (const condition of transitions(previous, status)) {
      const warning =
        (condition.type === "Degraded" && condition.status === "True") ||
        (condition.type === "ToolsResolved" && condition.status === "False") ||
        (condition.type === "Ready" && condition.reason === "HostFull");
      if (warning || (condition.type === "Ready" && condition.status === "True"))
        await events.record(raw, warning ? "Warning" : "Normal", condition.reason, condition.message, signal);
    }
  }

  async function cleanUp(
    raw: KubeObject,
    log: Logger,
    signal: AbortSignal,
  ): Promise<ReconcileResult | undefined> {
    if (!(raw.metadata.finalizers ?? []).includes(HOST_FINALIZER)) return undefined;
    const hostName = (raw as AgentType).spec?.runtime?.hostRef?.name ?? "";
    if (raw.metadata.annotations?.[ABANDON_ANNOTATION] === "true") {
      await events.record(
        raw,
        "Warning",
        "HostCleanupAbandoned",
        `${ABANDON_ANNOTATION} is set: containers and files of this agent may remain on host ${hostName}`,
        signal,
      );
      await setFinalizer(raw, false, signal);
      return undefined;
    }
    try {
      if (await hostIsGone(hostName, signal)) {
        // Nothing can be removed from a host the cluster no longer knows: keeping the finalizer
        // would keep the AgentType forever. Should the machine come back under an AgentHost,
        // that host's probe removes these containers as orphans.
        await events.record(
          raw,
          "Warning",
          "HostGone",
          `AgentHost ${hostName} no longer exists: containers and files of this agent that were on it could not be removed`,
          signal,
        );
        await setFinalizer(raw, false, signal);
        log.info({ host: hostName }, "released the finalizer: the agent's host no longer exists");
        return undefined;
      }
      const runtime = (raw as AgentType).spec?.runtime?.type ?? "";
      const access = await hostAccess(hostName, runtime, signal);
      if ("reason" in access) throw new Error(access.message);
      const owner = ownerOf(raw);
      // Persistent memory goes with the AgentType unless its retain policy keeps it on the host.
      const retain = (raw as AgentType).spec?.memory?.retainPolicy === "Retain";
      const unreached = await removeReplicas(
        access.driver,
        ownerLabels(owner),
        STOP_GRACE_MS,
        within(STEP_DEADLINE_MS, signal),
        !retain,
      );
      for (const k of restarts.keys()) if (k.startsWith(`${owner.uid}/`)) restarts.delete(k);
      await events.record(
        raw,
        "Normal",
        "HostCleanedUp",
        `removed the agent's containers and files from host ${hostName}${
          retain && (raw as AgentType).spec?.memory?.type === "persistent"
            ? "; its persistent memory stays there (retainPolicy Retain): an AgentType of the same name and namespace finds it again"
            : ""
        }${unreached.map((sentence) => `; ${sentence}`).join("")}`,
        signal,
      );
      await setFinalizer(raw, false, signal);
      log.info({ host: hostName }, "removed the agent from its host");
      return undefined;
    } catch (error) {
      if (signal.aborted) throw error;
      const mapped = errorCondition(error);
      await events.record(
        raw,
        "Warning",
        "HostCleanupFailed",
        `cannot remove the agent from host ${hostName} (${mapped.reason}: ${mapped.message}); retrying with backoff. To give up, annotate the AgentType ${ABANDON_ANNOTATION}=true`,
        signal,
      );
      throw error;
    }
  }

  return async function reconcileOnHost(
    _key: string,
    raw: KubeObject,
    log: Logger,
    signal: AbortSignal,
  ): Promise<ReconcileResult | undefined> {
    if (raw.metadata.deletionTimestamp !== undefined) return cleanUp(raw, log, signal);
    const base = {
      generation: Number(raw.metadata.generation ?? 0),
      selector: Object.entries(selectorLabels(raw))
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
      host: "",
      desiredReplicas: 0,
      replicas: [] as HostReplica[],
    };
    const parsed = parseAs(agentType, raw);
    if (!parsed.ok) {
      const message = formatFieldErrors(parsed.errors).replaceAll("\n", "; ");
      await writeStatus(raw, { ...base, problem: { reason: "InvalidSpec", message } }, signal);
      return undefined;
    }
    const agent = parsed.value;
    const hostName = agent.spec.runtime.hostRef?.name ?? "";
    const observation: HostObservation = { ...base, host: hostName, desiredReplicas: agent.spec.replicas };
    if (!(raw.metadata.finalizers ?? []).includes(HOST_FINALIZER)) await setFinalizer(raw, true, signal);

    const namespace = agent.metadata.namespace ?? "default";
    const tools = agentTools.list(namespace).flatMap((t) => {
      const p = parseAs(agentTool, t);
      return p.ok ? [p.value] : [];
    });
    const resolution = resolveTools(agent.metadata.name, agent.spec.tools, tools);
    observation.resolution = resolution;
    const missing = resolution.missing.filter((m) => m.required);
    if (missing.length > 0) {
      observation.toolProblem = {
        reason: "ToolsMissing",
        message: missing.map((m) => `${m.name} ${m.range}: ${m.reason}`).join("; "),
      };
    }
    const unreachable = toolsUnreachableFromHost(resolution.resolved);
    if (unreachable.length > 0)
      observation.toolProblem = {
        reason: "ToolNotReachableFromHost",
        message: `host ${hostName} is outside the cluster and cannot reach ${unreachable.join(", ")}; give the AgentTool an endpoint URL the host can reach`,
      };

    try {
      const access = await hostAccess(hostName, agent.spec.runtime.type, signal);
      if ("reason" in access) {
        observation.problem = { reason: access.reason, message: access.message };
        await writeStatus(raw, observation, signal);
        return { requeueAfterMs: 15_000 };
      }
      let call = within(STEP_DEADLINE_MS, signal);
      const owner = ownerOf(raw);
      const { host, driver } = access;
      if (driver.suspend !== undefined && driver.resume !== undefined) {
        const longCall = within(Math.max(STEP_DEADLINE_MS, driver.startDeadlineMs ?? 0), signal);
        if (agent.spec.suspend === true) {
          const saved = await driver.suspend(ownerLabels(owner), longCall);
          if (saved.length > 0)
            await events.record(
              raw,
              "Normal",
              "Suspended",
              `saved ${saved.length} replicas to disk on host ${hostName}, memory included (spec.suspend)`,
              signal,
            );
          const groups = await driver.listGroups(ownerLabels(owner), within(STEP_DEADLINE_MS, signal));
          observation.suspend = "suspended";
          observation.replicas = [...groupOfReplica(groups, undefined)].map(([replica, group]) => ({
            replica,
            state: "suspended",
            current: true,
            restarts: 0,
            ...(group.machine === undefined ? {} : { machine: group.machine }),
          }));
          await writeStatus(raw, observation, signal);
          return { requeueAfterMs: WATCH_INTERVAL_MS };
        }
        // Saved replicas resume where they were before anything else looks at them: seen
        // stopped, they would be replaced, and their memory lost.
        const resumed = await driver.resume(ownerLabels(owner), longCall);
        if (resumed.length > 0)
          await events.record(
            raw,
            "Normal",
            "Resumed",
            `resumed ${resumed.length} replicas on host ${hostName} where they were`,
            signal,
          );
        observation.suspend = "running";
      }
      const [ownGroups, allGroups, containers] = await Promise.all([
        driver.listGroups(ownerLabels(owner), call),
        driver.listGroups(managedFilter(), call),
        driver.list(ownerLabels(owner), call),
      ]);
      let byReplica = groupOfReplica(ownGroups, undefined);
      const replicas = observeReplicas(owner, byReplica, containers, undefined);
      observation.replicas = replicas;
      if (observation.toolProblem !== undefined) {
        // Running replicas are left as they are: a tool problem must not take an agent down.
        await writeStatus(raw, observation, signal);
        return { requeueAfterMs: 30_000 };
      }

      const objects = buildObjects(agent, resolution.resolved, settings);
      const credentials = await credentialFiles(
        agent,
        resolution.resolved.map((r) => r.agentTool),
        signal,
      );
      const specOf = (replica: number) => replicaSpec(owner, replica, objects, credentials);
      const hash = specHash(specOf(0));
      byReplica = groupOfReplica(ownGroups, hash);
      observation.replicas = observeReplicas(owner, byReplica, containers, hash);
      const others = usageOf(
        allGroups.filter((g) => g.labels["agenttype.dev/uid"] !== ownerLabels(owner)["agenttype.dev/uid"]),
      );
      const { fit, limit } = replicasThatFit(
        host.spec.capacity,
        others,
        replicaSize(specOf(0)),
        agent.spec.replicas,
      );
      if (limit !== undefined) observation.hostFull = { placed: fit, limit };

      let busy = false;
      // Scale down: the highest replicas go first.
      for (const [replica, group] of [...byReplica].sort((a, b) => b[0] - a[0])) {
        if (replica < fit) continue;
        await removeReplicas(driver, replicaLabels(owner, replica), STOP_GRACE_MS, call);
        byReplica.delete(replica);
        restarts.delete(`${owner.uid}/${replica}`);
        log.info({ replica, group: group.name }, "removed a replica beyond the desired count");
      }
      // Start missing replicas and damaged ones (host-plan.ts groupDamage); roll one outdated
      // replica at a time, only while the others run.
      for (let replica = 0; replica < fit; replica++) {
        const group = byReplica.get(replica);
        const damage = group === undefined ? undefined : groupDamage(group, containers);
        const damaged = damage !== undefined;
        // Other groups of the replica: an old one beside its new one (a roll new-first), or one
        // an interrupted roll left.
        const stale = ownGroups.filter(
          (g) => Number(g.labels[LABEL_REPLICA]) === replica && g.id !== group?.id,
        );
        if (group !== undefined && !damaged && group.labels[LABEL_SPEC_HASH] === hash) {
          for (const old of stale) await driver.removeGroup(old.id, STOP_GRACE_MS, call);
          continue;
        }
        if (group !== undefined && !damaged) {
          const othersReady = replicas.filter((r) => r.replica !== replica && r.replica < fit);
          if (busy || othersReady.some((r) => r.state !== "running" || !r.current)) {
            busy = true;
            continue;
          }
        }
        // A start may take minutes (a guest boots first): say what is going on before it.
        await writeStatus(raw, observation, signal);
        const plan = hostReplicaPlan(specOf(replica), hostName);
        const startCall = within(Math.max(STEP_DEADLINE_MS, driver.startDeadlineMs ?? 0), signal);
        let started: StartedReplica;
        if (startsNewFirst(driver.rollsNewFirst === true, plan)) {
          // The new group runs beside the old (its name tells them apart); the old goes once it runs.
          if (damaged && group !== undefined) await driver.removeGroup(group.id, STOP_GRACE_MS, call);
          started = await startReplica(driver, plan, startCall);
          call = within(STEP_DEADLINE_MS, signal);
          for (const old of stale) await driver.removeGroup(old.id, STOP_GRACE_MS, call);
          if (group !== undefined && !damaged) await driver.removeGroup(group.id, STOP_GRACE_MS, call);
        } else {
          await removeReplicas(driver, replicaLabels(owner, replica), STOP_GRACE_MS, call);
          started = await startReplica(driver, plan, startCall);
        }
        call = within(STEP_DEADLINE_MS, signal); // the steps after a long start get their own time
        restarts.delete(`${owner.uid}/${replica}`);
        const note = driver.startNote?.(started.groupId);
        const how = `; ${describeStartSteps(started.stepsMs)}${note === undefined ? "" : `; ${note}`}`;
        if (damaged)
          await events.record(
            raw,
            "Warning",
            "ReplicaRecreated",
            `replica ${replica} on host ${hostName} was started again: ${damage}${how}`,
            signal,
          );
        else if (group !== undefined)
          await events.record(
            raw,
            "Normal",
            "ReplicaUpdated",
            `replica ${replica} on host ${hostName} runs the new spec${how}`,
            signal,
          );
        else
          await events.record(
            raw,
            "Normal",
            "ReplicaStarted",
            `started replica ${replica} on host ${hostName}${how}`,
            signal,
          );
        busy = true;
        if (group !== undefined && !damaged) break; // one at a time: look again once it runs
      }
      // Restart exited containers, with backoff.
      const after = await driver.list(ownerLabels(owner), call);
      for (const c of after) {
        if (
          c.state !== "exited" ||
          (c.labels["agenttype.dev/role"] !== ROLE_AGENT && c.labels["agenttype.dev/role"] !== ROLE_SIDECAR)
        )
          continue;
        const replica = Number(c.labels[LABEL_REPLICA]);
        if (!(replica < fit)) continue;
        const stateKey = `${owner.uid}/${replica}`;
        const state = restarts.get(stateKey) ?? { restarts: 0, notBefore: 0 };
        if (Date.now() < state.notBefore) {
          busy = true;
          continue;
        }
        await restartContainer(raw, driver, c, specOf(replica), hostName, state, call, signal);
        restarts.set(stateKey, {
          restarts: state.restarts + 1,
          notBefore:
            Date.now() + backoffDelay(state.restarts + 1, RESTART_BACKOFF.initialMs, RESTART_BACKOFF.maxMs),
        });
        busy = true;
      }
      const finalGroups = await driver.listGroups(ownerLabels(owner), call);
      const finalContainers = await driver.list(ownerLabels(owner), call);
      const finalByReplica = groupOfReplica(finalGroups, hash);
      observation.replicas = observeReplicas(owner, finalByReplica, finalContainers, hash);
      await writeStatus(raw, observation, signal);
      const settled =
        observation.replicas.every((r) => r.state === "running" && r.current) &&
        observation.replicas.length === fit;
      return { requeueAfterMs: busy || !settled ? BUSY_INTERVAL_MS : WATCH_INTERVAL_MS };
    } catch (error) {
      if (signal.aborted) throw error;
      if (error instanceof HostPlanError) {
        observation.problem = { reason: error.reason, message: error.message };
        await writeStatus(raw, observation, signal);
        return { requeueAfterMs: 5 * 60_000 };
      }
      const mapped = errorCondition(error);
      const message = `on host ${hostName}: ${mapped.message}`;
      if (mapped.retryable) observation.retrying = { reason: mapped.reason, message };
      else observation.problem = { reason: mapped.reason, message };
      await writeStatus(raw, observation, signal);
      await events.record(raw, "Warning", mapped.reason, message, signal);
      log.warn({ err: mapped.message, reason: mapped.reason }, "host placement failed");
      return { requeueAfterMs: mapped.requeueAfterMs };
    }
  };

  async function restartContainer(
    raw: KubeObject,
    driver: ContainerDriver,
    c: ContainerInfo,
    spec: ReturnType<typeof replicaSpec>,
    hostName: string,
    state: RestartState,
    call: Call,
    signal: AbortSignal,
  ): Promise<void> {
    const report = await exitReport(driver, c.id, 10, call).catch(() => ({
      exitCode: c.exitCode,
      lastLines: [],
    }));
    const role = c.labels["agenttype.dev/role"];
    const plan = hostReplicaPlan(spec, hostName);
    const config = plan.containers.find((x) => x.name === role);
    if (config === undefined) return;
    await driver.remove(c.id, call);
    const created = await driver.create(c.groupId, { ...config, attempt: c.attempt + 1 }, call);
    await driver.start(created.id, call);
    const lines = report.lastLines.map((l) => l.text).join("\n");
    await events.record(
      raw,
      "Warning",
      "ContainerRestarted",
      `${role} of replica ${c.labels[LABEL_REPLICA]} on host ${hostName} exited with code ${report.exitCode ?? "unknown"} and was restarted (restart ${state.restarts + 1}); last lines:\n${lines}`,
      signal,
    );
  }
}

/**
 * Each replica's group. A replica has two while a roll starts its new one beside the old (a
 * driver that rolls new-first): the one running `hash` is the replica's, else the newest. Pure.
 */
export function groupOfReplica(
  groups: readonly GroupInfo[],
  hash: string | undefined,
): Map<number, GroupInfo> {
  const byReplica = new Map<number, GroupInfo>();
  const rank = (g: GroupInfo) => [
    hash !== undefined && g.labels[LABEL_SPEC_HASH] === hash ? 1 : 0,
    g.createdAt?.getTime() ?? 0,
  ];
  for (const g of groups) {
    const replica = Number(g.labels[LABEL_REPLICA]);
    const known = byReplica.get(replica);
    if (known === undefined) {
      byReplica.set(replica, g);
      continue;
    }
    const [a0, a1] = rank(g) as [number, number];
    const [b0, b1] = rank(known) as [number, number];
    if (a0 > b0 || (a0 === b0 && a1 > b1)) byReplica.set(replica, g);
  }
  return byReplica;
}

function ownerOf(raw: KubeObject): Owner {
  return {
    namespace: raw.metadata.namespace ?? "default",
    name: raw.metadata.name,
    uid: String(raw.metadata.uid ?? ""),
  };
}

/** Each replica's state from its group and containers; `hash` marks which run the current spec. */
function observeReplicas(
  owner: Owner,
  groups: Map<number, GroupInfo>,
  containers: readonly ContainerInfo[],
  hash: string | undefined,
): HostReplica[] {
  void owner;
  return [...groups].map(([replica, group]) => {
    const own = containers.filter((c) => c.groupId === group.id);
    const role = (r: string) =>
      own.filter((c) => c.labels["agenttype.dev/role"] === r).sort((a, b) => b.attempt - a.attempt)[0];
    const agent = role(ROLE_AGENT);
    const sidecar = role(ROLE_SIDECAR);
    const state =
      agent?.state === "running" && sidecar?.state === "running"
        ? "running"
        : agent?.state === "exited" || sidecar?.state === "exited"
          ? "exited"
          : "starting";
    return {
      replica,
      state,
      current: hash === undefined || group.labels[LABEL_SPEC_HASH] === hash,
      restarts: Math.max(agent?.attempt ?? 0, sidecar?.attempt ?? 0),
      ...(group.machine === undefined ? {} : { machine: group.machine }),
    };
  });
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, sortKeys(v)]),
    );
  return value;
}
