// The AgentHost kind (cluster-scoped): a machine outside the cluster where agents run in
// containerd or in KVM guests, reached by the operator's driver adapters over SSH.
import * as z from "zod";
import {
  boundedQuantity,
  conditions,
  generationNeverGoesBack,
  namespacedSecretKeyRef,
  nonNegativeQuantity,
  objectMeta,
  observedGeneration,
  port,
  withRule,
} from "./common.ts";

const ssh = z
  .strictObject({
    address: z
      .string()
      .min(1)
      .max(253)
      .regex(/^([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|[0-9a-fA-F:]*:[0-9a-fA-F:.]+)$/, {
        error: "must be a host name, an IPv4 or an IPv6 address",
      })
      .describe("Host name or IP address of the machine's sshd."),
    port: port.default(22).describe("Port of the machine's sshd."),
    user: z
      .string()
      .min(1)
      .max(32)
      .regex(/^[a-z_][a-z0-9_-]*$/, { error: "must be a POSIX user name" })
      .default("agenttype")
      .describe("User the operator logs in as."),
    privateKeySecretRef: namespacedSecretKeyRef.describe(
      "Secret key holding the operator's SSH private key.",
    ),
    hostKey: z
      .string()
      .max(16384)
      .regex(
        /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) [A-Za-z0-9+/]+={0,3}$/,
        {
          error: "must be a public host key in OpenSSH format, such as 'ssh-ed25519 AAAA...'",
        },
      )
      .describe("The host's public key, pinned: the operator refuses a host that presents any other key."),
  })
  .describe("How the operator reaches the machine.");

const containerd = z
  .strictObject({
    socket: z
      .string()
      .max(4096)
      .regex(/^\/[!-~]+$/, { error: "must be an absolute path of visible ASCII characters" })
      .default("/run/containerd/containerd.sock")
      .describe("Path of containerd's socket on the host."),
    stateDir: z
      .string()
      .max(1024)
      .regex(/^\/[!-~]*[!-.0-~]$/, {
        error: "must be an absolute path of visible ASCII characters, not ending in /",
      })
      .default("/var/lib/agenttype")
      .describe("Root-only directory on the host for the agents' logs, config and volumes."),
    cgroupParent: z
      .string()
      .max(1024)
      .regex(/^\/[!-~]*$/, { error: "must be an absolute path of visible ASCII characters" })
      .optional()
      .describe("cgroup parent of the agents' containers on the host; containerd's default when unset."),
    crictl: z
      .string()
      .max(1024)
      .regex(/^[!-~]+$/, { error: "must be a command name or path of visible ASCII characters" })
      .default("crictl")
      .describe(
        "crictl on the host (cri-tools), by name on the SSH user's PATH or by path. Needed by interactive agents (their consoles attach with it) and by kubectl agenttype exec -i/-t; tmux is needed too.",
      ),
  })
  .describe(
    "Settings of the containerd driver. It speaks the CRI, whose containers live in containerd's k8s.io namespace.",
  );

const kvm = z
  .strictObject({
    uri: z
      .string()
      .max(1024)
      .regex(/^qemu(\+[A-Za-z0-9_]+)?:\/\/[!-~]*\/(system|session)$/, {
        error: "must be a libvirt QEMU URI such as qemu:///system",
      })
      .default("qemu:///system")
      .describe("libvirt connection URI on the host."),
    network: z.string().min(1).max(256).default("default").describe("libvirt network the guests attach to."),
    baseImage: z
      .string()
      .max(4096)
      .regex(/^\/[!-~]+$/, { error: "must be an absolute path of visible ASCII characters" })
      .optional()
      .describe(
        "Path on the host of the guest disk image agents boot from; the driver's default when unset.",
      ),
    stateDir: z
      .string()
      .max(1024)
      .regex(/^\/[!-~]*[!-.0-~]$/, {
        error: "must be an absolute path of visible ASCII characters, not ending in /",
      })
      .default("/var/lib/agenttype/kvm")
      .describe("Root-only directory on the host for the guests' overlays and console logs."),
    bootTimeoutSeconds: z
      .int()
      .min(10)
      .max(540)
      .optional()
      .describe(
        "How long a guest may take from its start until its containerd answers (DHCP lease, sshd, containerd). A guest past it is hung: it is removed, a Warning Event says at which stage, and it boots anew. 300 when unset; at most 540, within the 600 s the operator gives a guest's creation in all.",
      ),
  })
  .describe("Settings of the KVM (libvirt) driver.");

const capacity = z
  .strictObject({
    agents: z.int().min(0).max(10_000).optional().describe("Most agents the host runs at once."),
    cpu: boundedQuantity({
      min: "1m",
      max: "4096",
      message: "must be a CPU quantity from 1m to 4096 (cores), such as 500m or 16",
    })
      .optional()
      .describe("CPU the agents may use in all."),
    memory: boundedQuantity({
      min: "4Mi",
      max: "64Ti",
      message: "must be a memory size from 4Mi to 64Ti, such as 8Gi",
    })
      .optional()
      .describe("Memory the agents may use in all."),
  })
  .describe("What the operator may place on the host.");

export const containerLogs = z
  .strictObject({
    maxSize: boundedQuantity({
      min: "4Ki",
      max: "1Gi",
      message: "must be a size from 4Ki to 1Gi, such as 10Mi",
    })
      .default("10Mi")
      .describe(
        "Size past which a container's log file is rotated, as the kubelet's containerLogMaxSize. Files are checked at each probe of the host (every 20 s), so one may grow past it until then.",
      ),
    maxFiles: z
      .int()
      .min(2)
      .max(10)
      .default(3)
      .describe(
        "Log files kept of each container, the one being written included, as the kubelet's containerLogMaxFiles; the oldest goes first.",
      ),
  })
  .describe(
    "Rotation of the agents' log files on the host (in its guests, with driver kvm): what kubectl agenttype logs reads.",
  );

export type ContainerLogs = z.output<typeof containerLogs>;

export const agentHostSpec = withRule(
  withRule(
    z
      .strictObject({
        driver: z.enum(["containerd", "kvm"]).describe("How agents run on the host."),
        ssh,
        containerd: containerd.optional(),
        kvm: kvm.optional(),
        capacity: capacity.optional(),
        containerLogs: containerLogs.optional(),
      })
      .describe("Desired state of an AgentHost."),
    {
      cel: "self.driver == 'containerd' || !has(self.containerd)",
      message: "containerd settings apply only to driver containerd",
      field: "containerd",
      reason: "FieldValueForbidden",
      holds: (h) => h.driver === "containerd" || h.containerd === undefined,
    },
  ),
  {
    cel: "self.driver == 'kvm' || !has(self.kvm)",
    message: "kvm settings apply only to driver kvm",
    field: "kvm",
    reason: "FieldValueForbidden",
    holds: (h) => h.driver === "kvm" || h.kvm === undefined,
  },
);

export const agentHostStatus = generationNeverGoesBack(
  z.strictObject({
    observedGeneration,
    conditions: conditions.optional(),
    versions: z
      .record(z.string().max(64), z.string().max(256))
      .optional()
      .describe("Versions the host reported, for example containerd, libvirt, kernel."),
    clientPublicKey: z
      .string()
      .max(16384)
      .optional()
      .describe(
        "The operator's public key for this host (authorized_keys line), when the operator generated it.",
      ),
    allocation: z
      .strictObject({
        agents: z.int().min(0).optional().describe("Agents placed on the host."),
        cpu: nonNegativeQuantity.optional().describe("CPU allocated to agents."),
        memory: nonNegativeQuantity.optional().describe("Memory allocated to agents."),
      })
      .optional()
      .describe("What is placed on the host now."),
  }),
).describe("Observed state of an AgentHost.");

export const agentHost = z
  .looseObject({
    apiVersion: z.literal("agenttype.dev/v1alpha1"),
    kind: z.literal("AgentHost"),
    metadata: objectMeta("Cluster"),
    spec: agentHostSpec,
    status: agentHostStatus.optional(),
  })
  .describe("A machine outside the cluster where agents run in containerd or KVM, reached over SSH.");

export type AgentHost = z.output<typeof agentHost>;
export type AgentHostSpec = z.output<typeof agentHostSpec>;
