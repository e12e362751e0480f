// Volumes of a host without a volume API: directories under the driver's root-only state
// directory, each with a JSON record of its labels beside it, made and removed over the host's
// transport. Files are written through SFTP with their owner and mode, never through a shell.
import { type Call, subCall } from "../call.ts";
import { type LabelFilter, parseConfig, type VolumeConfigInput, volumeConfig } from "../config.ts";
import type { VolumeInfo, VolumeOperations } from "../driver.ts";
import { AlreadyExistsError, AuthorizationError, CreationFailedError } from "../errors.ts";
import { matchesLabels } from "../labels.ts";
import { type HostTransport, shellCommand, shellQuote } from "../transport.ts";
import { type CriSettings, volumePath } from "./cri-spec.ts";

const EXISTS = 17;

/** Every directory a volume needs, parents before children. Pure. */
export function volumeDirectories(
  files: readonly { path: string }[],
  directories: readonly string[],
): string[] {
  const all = new Set<string>();
  const addWithParents = (path: string) => {
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    for (let i = 1; i <= parts.length; i++) all.add(parts.slice(0, i).join("/"));
  };
  for (const f of files) addWithParents(f.path.split("/").slice(0, -1).join("/"));
  for (const d of directories) addWithParents(d);
  return [...all].sort((a, b) => a.split("/").length - b.split("/").length || a.localeCompare(b));
}

export class HostVolumes implements VolumeOperations {
  readonly #transport: HostTransport;
  readonly #settings: CriSettings;

  constructor(transport: HostTransport, settings: CriSettings) {
    this.#transport = transport;
    this.#settings = settings;
  }

  async create(input: VolumeConfigInput, call: Call): Promise<VolumeInfo> {
    const config = parseConfig(volumeConfig, "volume", input);
    const root = volumePath(this.#settings, config.name);
    const owner = ["-o", String(config.uid), "-g", String(config.gid), "-m", config.mode.toString(8)];
    const script = [
      "set -e",
      shellCommand([
        "install",
        "-d",
        "-o",
        "0",
        "-g",
        "0",
        "-m",
        "700",
        this.#settings.stateDir,
        `${this.#settings.stateDir}/volumes`,
      ]),
      `if [ -e ${shellQuote(`${root}.json`)} ] || [ -e ${shellQuote(root)} ]; then exit ${EXISTS}; fi`,
      shellCommand(["install", "-d", ...owner, root]),
      ...volumeDirectories(config.files, config.directories).map((d) =>
        shellCommand(["install", "-d", ...owner, `${root}/${d}`]),
      ),
    ].join("\n");
    const made = await this.#transport.exec(script, {}, subCall(call, 30_000));
    if (made.exitCode === EXISTS)
      throw new AlreadyExistsError(`volume ${config.name} on ${this.#transport.target}`);
    if (made.exitCode !== 0) throw this.#failed(`create volume ${config.name}`, made.stderr);
    await this.#transport.writeFiles(
      [
        ...config.files.map((file) => ({
          path: `${root}/${file.path}`,
          data: file.content,
          options: { mode: file.mode, uid: config.uid, gid: config.gid },
        })),
        // Written last: a volume without its record is an interrupted create, removed like any other.
        {
          path: `${root}.json`,
          data: `${JSON.stringify({ name: config.name, labels: config.labels })}\n`,
          options: { mode: 0o600 },
        },
      ],
      call,
    );
    return { name: config.name, labels: config.labels, path: root };
  }

  async list(filter: LabelFilter, call: Call): Promise<VolumeInfo[]> {
    const dir = `${this.#settings.stateDir}/volumes`;
    const listed = await this.#transport.exec(
      `for f in ${shellQuote(dir)}/*.json; do [ -f "$f" ] && { tr -d '\\n' < "$f"; echo; }; done; true`,
      {},
      call,
    );
    if (listed.exitCode !== 0) throw this.#failed("list volumes", listed.stderr);
    const volumes: VolumeInfo[] = [];
    for (const line of listed.stdout.split("\n")) {
      if (line.trim() === "") continue;
      const record = JSON.parse(line) as { name: string; labels: Record<string, string> };
      if (matchesLabels(record.labels, filter))
        volumes.push({
          name: record.name,
          labels: record.labels,
          path: volumePath(this.#settings, record.name),
        });
    }
    return volumes.sort((a, b) => a.name.localeCompare(b.name));
  }

  async remove(name: string, call: Call): Promise<void> {
    parseConfig(volumeConfig.shape.name, "volume name", name);
    const root = volumePath(this.#settings, name);
    const removed = await this.#transport.exec(
      shellCommand(["rm", "-rf", "--one-file-system", root, `${root}.json`]),
      {},
      call,
    );
    if (removed.exitCode !== 0) throw this.#failed(`remove volume ${name}`, removed.stderr);
  }

  #failed(what: string, stderr: string) {
    const message = `${what} on ${this.#transport.target}: ${stderr.trim() || "failed"}`;
    return /permission denied|operation not permitted/i.test(stderr)
      ? new AuthorizationError(message)
      : new CreationFailedError(message);
  }
}
