// Rotation of the containers' log files on a host, as the kubelet rotates a node's: a file
// grown past the limit is renamed `<file>.1` (older ones shift to `.2` and on, the oldest
// beyond the count removed), then the CRI's ReopenContainerLog makes containerd write a new
// `<file>`. Until the reopen, containerd writes on into `<file>.1`: no line is lost. Pure.
import { shellCommand, shellQuote } from "../transport.ts";

/** Most rotated files of one container there can be (maxFiles' bound, less the live one). */
export const MAX_ROTATED_FILES = 9;

/** The log files under `logRoot` (each container's, at any depth) larger than `maxBytes`. */
export function oversizedLogsCommand(logRoot: string, maxBytes: number): string {
  // A root without logs yet is no error: nothing is oversized.
  return `test ! -d ${shellQuote(logRoot)} || ${shellCommand([
    "find",
    logRoot,
    "-type",
    "f",
    "-name",
    "*.log",
    "-size",
    `+${maxBytes}c`,
    "-print",
  ])}`;
}

/** The paths in `find -print` output, one a line. */
export function parseOversizedLogs(stdout: string): string[] {
  return stdout.split("\n").filter((line) => line.startsWith("/"));
}

/** The file's rotated files, newest first: `<file>.1`, `<file>.2`, … */
export function rotatedLogPaths(path: string, count = MAX_ROTATED_FILES): string[] {
  return Array.from({ length: count }, (_, i) => `${path}.${i + 1}`);
}

/**
 * Shifts `<file>.1…` one up, the last kept being `<file>.<maxFiles - 1>`, removes any beyond
 * (from a larger maxFiles before), and renames the live file `<file>.1`.
 */
export function rotateLogCommand(path: string, maxFiles: number): string {
  const kept = Math.max(1, Math.min(MAX_ROTATED_FILES, maxFiles - 1));
  const rotated = rotatedLogPaths(path);
  const live = shellQuote(path);
  const steps = [
    `if [ ! -f ${live} ]; then echo ${shellQuote(`${path}: no such file`)} >&2; exit 1; fi`,
    shellCommand(["rm", "-f", "--", ...rotated.slice(kept)]),
  ];
  for (let i = kept - 1; i >= 1; i--) {
    const from = shellQuote(rotated[i - 1] as string);
    steps.push(`if [ -e ${from} ]; then mv -f -- ${from} ${shellQuote(rotated[i] as string)}; fi`);
  }
  steps.push(shellCommand(["mv", "-f", "--", path, rotated[0] as string]));
  return `set -e; ${steps.join("; ")}`;
}
